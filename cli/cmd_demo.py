"""`cos-matting demo`: the whole pipeline offline, ending in demo-out/report.html.

Starts the local cloud with its matting engine, deploys into it with `cos-matting
deploy` (the same command, zips and API calls as a real deploy: role, layer, the three
functions, COS trigger, Function URL, timer), uploads sample clips, lets triggers, jobs
and callbacks run, then downloads the outputs and writes a report with frames across every
clip, the videos playable in the page, and sizes, durations and timings with units.

The output folder is only ever written if it is new, empty, or the output of an earlier
demo (it holds a marker file); the new output is staged inside it and replaces the previous
one only when complete (cli.outdir). Nothing else in the folder is touched.
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

from shared.states import JOB_FINAL, State

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
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out",
                        help="output folder: new, empty, or an earlier demo's output (default: demo-out)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs (default: 600)")
    parser.add_argument("--no-browser-check", action="store_true",
                        help="do not load the report in headless Chromium (checked when chromium is installed: "
                             "every image and video loads; writes report.png)")
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
    from cli.errors import require_engine
    from cli.outdir import OutputFolder

    require_engine("demo")

    folder = OutputFolder(Path(args.out))
    staging = folder.prepare()
    try:
        code = pipeline(args, staging)
        files = folder.commit()
    except BaseException:
        folder.abort()
        raise
    say(f"report: {(folder.path / 'report.html').resolve()} ({len(files)} files)")
    return code


def pipeline(args, out: Path) -> int:
    from qcloud_cos import CosConfig, CosS3Client

    from localcloud import LocalCloud
    from localcloud.matting import describe_humanseg, engine
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.records import RecordStore

    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="cos-matting-demo-"))
    cloud = LocalCloud(data_dir=str(work / "cloud"), buckets=[BUCKET], region=REGION, engine=engine)
    cloud.start()
    say(f"local cloud up at {cloud.url} (bucket {BUCKET}, data in {work})")
    say(describe_humanseg())
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
        uploaded: Dict[str, float] = {}
        for key, path in uploads:
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
            uploaded[key] = time.monotonic()
            say(f"uploaded {key} ({path.stat().st_size / 1024:.1f} KiB)")

        clients = Clients(settings, env)
        store = RecordStore.of(settings, clients.storage)
        records, seen = wait_for_jobs(store, len(uploads), args.timeout)
        cloud.wait_idle(timeout=30)
        code = write_outputs(out, client, clients, records, {k: p for k, p in uploads},
                             measured_timings(uploaded, seen), started)
        return check_in_browser(out, code, skip=args.no_browser_check)
    finally:
        cloud.stop()
        shutil.rmtree(work, ignore_errors=True)


def deploy(cloud, settings_env: Dict[str, str], work: Path) -> None:
    """`cos-matting deploy` into the local cloud, as a user would run it against Tencent Cloud."""
    from cli.main import main

    env_file = work / "demo.env"
    env_file.write_text("".join(f"{k}='{v}'\n" for k, v in settings_env.items()), encoding="utf-8")
    started = time.time()
    code = main(["deploy", "--local", cloud.url, "--env-file", str(env_file),
                 "--dist", str(ROOT / "dist"), "--yes"])
    if code != 0:
        raise SystemExit(f"[demo] cos-matting deploy failed (exit {code})")
    say(f"deployed with `cos-matting deploy` in {time.time() - started:.1f} s: submit <- COS trigger on input/, "
        "callback <- Function URL, reconcile <- timer")


def wait_for_jobs(store, expected: int, timeout: float):
    """The newest snapshot of every record once `expected` are final, and when (time.monotonic) this
    poll first saw each record in each state: {source key: {state: t}} (polled every 0.1 s)."""
    start, last = time.time(), ""
    seen: Dict[str, Dict[str, float]] = {}
    while True:
        snapshots = list(store.newest_records())
        now = time.monotonic()
        for r in snapshots:
            seen.setdefault(r.source.key, {}).setdefault(r.state, now)
        done = [r for r in snapshots if r.terminal]
        states: Dict[str, int] = {}
        for r in snapshots:
            states[r.state] = states.get(r.state, 0) + 1
        line = f"{len(done)}/{expected} jobs finished  " + "  ".join(f"{k}={v}" for k, v in sorted(states.items()))
        if line != last:
            say(f"{time.time() - start:5.1f} s  {line}")
            last = line
        if len(done) >= expected:
            return snapshots, seen
        if time.time() - start > timeout:
            from cli.errors import failure

            raise failure("--timeout", f"gave up after {timeout:.0f} s: {line}", "give it longer with --timeout")
        time.sleep(0.1)


def measured_timings(uploaded: Dict[str, float], seen: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """Per source key, seconds from upload to the job being submitted and to its final state (±0.1 s)."""
    out: Dict[str, Dict[str, float]] = {}
    for key, t0 in uploaded.items():
        states = seen.get(key, {})
        submitted = min((t for s, t in states.items() if s != State.Claimed), default=None)
        final = min((t for s, t in states.items() if s in JOB_FINAL), default=None)
        row: Dict[str, float] = {}
        if submitted is not None:
            row["upload_to_submitted_s"] = submitted - t0
        if final is not None:
            row["upload_to_final_s"] = final - t0
            if submitted is not None:
                row["submitted_to_final_s"] = final - submitted
        out[key] = row
    return out


def _clip(out: Path, video: Path, stem: str) -> Dict[str, Any]:
    from cli.report import frames_across, probe

    return {"rel": video.relative_to(out).as_posix(), "info": probe(video),
            "frames": [(p.relative_to(out).as_posix(), t) for p, t in frames_across(video, out / "frames", stem)]}


def write_outputs(out: Path, client, clients, records, sources: Dict[str, Path],
                  measured: Dict[str, Dict[str, float]], started: float) -> int:
    from cli.report import job_section, write_report

    (out / "frames").mkdir(exist_ok=True)
    sections, failed = [], 0
    for i, record in enumerate(sorted(records, key=lambda r: r.source.key)):
        source_copy = out / "inputs" / record.source.key
        source_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[record.source.key], source_copy)
        source = _clip(out, source_copy, f"{i:02d}-input")
        output: Dict[str, Any] = {}
        output_tags: Dict[str, str] = {}
        if record.state == "Success" and record.output:
            local = out / record.output["key"]
            local.parent.mkdir(parents=True, exist_ok=True)
            body = client.get_object(Bucket=record.output["bucket"], Key=record.output["key"])["Body"]
            local.write_bytes(body.get_raw_stream().read())
            output = _clip(out, local, f"{i:02d}-output")
            output_tags = clients.storage.get_tags(record.output["bucket"], record.output["key"]) or {}
            took = measured.get(record.source.key, {}).get("upload_to_final_s")
            say(f"{record.source.key}: {record.state}, job {record.job_id}"
                + (f", {took:.2f} s from upload" if took is not None else "") + f" -> {record.output['key']}")
        else:
            failed += 1
            say(f"{record.source.key}: {record.state} {record.error}")
        source_tags = clients.storage.get_tags(record.source.bucket, record.source.key) or {}
        sections.append(job_section(record, source, output, source_tags, output_tags,
                                    measured.get(record.source.key, {})))
    (out / "records.json").write_text(json.dumps([r.model_dump(exclude_none=True) for r in records], indent=2,
                                                 ensure_ascii=False))
    summary = {"jobs": len(records), "failed": failed, "took": f"{time.time() - started:.1f} s",
               "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_report(out / "report.html", sections, summary)
    return 1 if failed else 0


def check_in_browser(out: Path, code: int, skip: bool = False) -> int:
    """Load the report in headless Chromium when it is installed: every image and video must load."""
    from cli import browser

    binary = None if skip else browser.find()
    if binary is None:
        if not skip:
            say("report not checked in a browser: chromium is not installed (Debian: apt-get install chromium)")
        return code
    mark = browser.media_mark(out / "report.html", binary)
    browser.screenshot(out / "report.html", out / "report.png", binary)
    say(f"report checked in headless Chromium: images and videos {mark}; screenshot report.png")
    return code if mark == "ok" else 1
