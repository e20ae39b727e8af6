"""`cos-matting demo`: the whole pipeline offline, ending in demo-out/report.html.

Starts the local cloud with its matting engine, deploys into it with `cos-matting
deploy` (the same command, zips and API calls as a real deploy: role, layer, the three
functions, COS trigger, Function URL, timer), uploads sample clips, lets triggers, jobs
and callbacks run, then downloads the outputs and writes a report with before/after frames.
"""
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "videos-1250000000"
REGION = "ap-guangzhou"

# Per-prefix rules: one upload folder per way of matting, so one run shows them all.
RULES = [
    {"prefix": "input/people/", "mode": "Foreground", "segment_type": "HumanSeg",
     "background_red": 40, "background_green": 120, "background_blue": 220},
    {"prefix": "input/people-mask/", "mode": "Mask", "segment_type": "HumanSeg"},
    {"prefix": "input/greenscreen/", "mode": "Combination", "segment_type": "GreenScreenSeg",
     "background_key": "backgrounds/sunset.png"},
    {"prefix": "input/solid/", "mode": "Foreground", "segment_type": "SolidColorSeg",
     "remove_red": 0, "remove_green": 177, "remove_blue": 64, "binary_threshold": 128,
     "background_red": 250, "background_green": 250, "background_blue": 250},
]


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the whole pipeline offline and write demo-out/report.html",
                            description=__doc__)
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs (default: 600)")
    parser.set_defaults(func=run)


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def sample_clips(folder: Path) -> Dict[str, Path]:
    """The sample videos: a person clip and a green-screen clip, generated here."""
    from localcloud.matting.samples import make_samples

    made = make_samples(str(folder))
    paths = [Path(p) for p in (made.values() if isinstance(made, dict) else made or [])] or sorted(folder.glob("*.mp4"))
    person = next(p for p in paths if "green" not in p.name and p.suffix == ".mp4")
    green = next(p for p in paths if "green" in p.name and p.suffix == ".mp4")
    return {"person": person, "green": green}


def background_png(path: Path) -> Path:
    import cv2
    import numpy as np

    h, w = 360, 640
    y = np.linspace(0, 1, h)[:, None, None]
    top, bottom = np.array([90, 60, 200]), np.array([40, 170, 255])  # BGR: purple sky to orange
    image = (top * (1 - y) + bottom * y).repeat(w, axis=1).astype("uint8")
    cv2.circle(image, (w // 2, int(h * 0.78)), 70, (80, 220, 255), -1)
    cv2.imwrite(str(path), image)
    return path


def run(args) -> int:
    from qcloud_cos import CosConfig, CosS3Client

    from localcloud import LocalCloud
    from localcloud.matting import engine
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.records import RecordStore

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "frames").mkdir(parents=True)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="cos-matting-demo-"))
    cloud = LocalCloud(data_dir=str(work / "cloud"), buckets=[BUCKET], region=REGION, engine=engine)
    cloud.start()
    say(f"local cloud up at {cloud.url} (bucket {BUCKET}, data in {work})")
    try:
        settings_env = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
                        "COS_MATTING_RULES": json.dumps(RULES), "COS_MATTING_CALLBACK_FORMAT": "JSON",
                        "COS_MATTING_CALLBACK_KEYS": "demo-callback-key-0123456789abcdef"}
        deploy(cloud, settings_env, work)
        env = {**cloud.function_env(), **settings_env}
        settings = load_settings(env)

        clips = sample_clips(work / "samples")
        client = CosS3Client(CosConfig(**cloud.cos_config_kwargs()), retry=1)
        client.put_object(Bucket=BUCKET, Key="backgrounds/sunset.png",
                          Body=background_png(work / "sunset.png").read_bytes())
        uploads: List[Tuple[str, Path]] = [
            ("input/people/presenter.mp4", clips["person"]),
            ("input/people-mask/presenter.mp4", clips["person"]),
            ("input/greenscreen/studio take.mp4", clips["green"]),
            ("input/solid/studio take.mp4", clips["green"]),
        ]
        for key, path in uploads:
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
            say(f"uploaded {key} ({path.stat().st_size // 1024} KB)")

        clients = Clients(settings, env)
        store = RecordStore(clients.storage, settings.rec_bucket, settings.records_prefix)
        records = wait_for_jobs(store, len(uploads), args.timeout)
        cloud.wait_idle(timeout=30)
        return write_outputs(out, client, clients, store, records, {k: p for k, p in uploads}, started)
    finally:
        cloud.stop()
        shutil.rmtree(work, ignore_errors=True)


def deploy(cloud, settings_env: Dict[str, str], work: Path) -> None:
    """`cos-matting deploy` into the local cloud, as a user would run it against Tencent Cloud."""
    from cli.main import main

    env_file = work / "demo.env"
    env_file.write_text("".join(f"{k}='{v}'\n" for k, v in settings_env.items()), encoding="utf-8")
    started = time.time()
    code = main(["deploy", "--local", cloud.url, "--env-file", str(env_file), "--state-dir", str(work / "state"),
                 "--dist", str(ROOT / "dist"), "--yes"])
    if code != 0:
        raise SystemExit(f"[demo] cos-matting deploy failed (exit {code})")
    say(f"deployed with `cos-matting deploy` in {time.time() - started:.1f} s: submit <- COS trigger on input/, "
        "callback <- Function URL, reconcile <- timer")


def wait_for_jobs(store, expected: int, timeout: float):
    from shared.records import latest

    start, last = time.time(), ""
    while True:
        groups = list(store.scan())
        snapshots = [store.read(latest(g)) for g in groups]
        done = [r for r in snapshots if r and r.terminal]
        states: Dict[str, int] = {}
        for r in snapshots:
            states[r.state] = states.get(r.state, 0) + 1
        line = f"{len(done)}/{expected} jobs finished  " + "  ".join(f"{k}={v}" for k, v in sorted(states.items()))
        if line != last:
            say(f"{time.time() - start:5.1f}s  {line}")
            last = line
        if len(done) >= expected:
            return snapshots
        if time.time() - start > timeout:
            raise SystemExit(f"[demo] gave up after {timeout:.0f}s: {line}")
        time.sleep(0.5)


def write_outputs(out: Path, client, clients, store, records, sources: Dict[str, Path], started: float) -> int:
    from cli.report import job_section, middle_frame_png, write_report

    sections, failed = [], 0
    for i, record in enumerate(sorted(records, key=lambda r: r.source.key)):
        before = middle_frame_png(sources[record.source.key], out / "frames" / f"{i:02d}-before.png")
        after = None
        output_tags: Dict[str, str] = {}
        if record.state == "Success" and record.output:
            local = out / record.output["key"]
            local.parent.mkdir(parents=True, exist_ok=True)
            body = client.get_object(Bucket=record.output["bucket"], Key=record.output["key"])["Body"]
            local.write_bytes(body.get_raw_stream().read())
            after = middle_frame_png(local, out / "frames" / f"{i:02d}-after.png")
            output_tags = clients.storage.get_tags(record.output["bucket"], record.output["key"]) or {}
            took = (record.timings or {}).get("total_s")
            say(f"{record.source.key}: {record.state}, job {record.job_id}"
                + (f", {took:.1f} s" if took is not None else "") + f" -> {local}")
        else:
            failed += 1
            say(f"{record.source.key}: {record.state} {record.error}")
        source_tags = clients.storage.get_tags(record.source.bucket, record.source.key) or {}
        rel = lambda p: str(p.relative_to(out)) if p else None  # noqa: E731
        sections.append(job_section(record, rel(before), rel(after), source_tags, output_tags))
    (out / "records.json").write_text(json.dumps([r.model_dump(exclude_none=True) for r in records], indent=2,
                                                 ensure_ascii=False))
    summary = {"jobs": len(records), "failed": failed, "took": f"{time.time() - started:.1f} s",
               "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    report = write_report(out / "report.html", sections, summary)
    say(f"report: {report.resolve()}")
    return 1 if failed else 0
