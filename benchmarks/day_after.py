"""The day after deploy, at size: `status` and `logs --since 1h` against a stage deployed into the
local cloud with 10,000 finished records and 100,000 log lines; `upload` from Ctrl-C to exit.

A stage `bench` is deployed with `cos-matting deploy --local` (the real zips and SCF API calls). The
records are written through the real RecordStore straight into the cloud's object store (30,000
PUTs over HTTP would measure nothing of `status`; benchmarks/status_scale.py does the same), all
finished within the last 24 hours (the default view reads them: the worst case). The log lines are
10,000 finished invocations of the stage's submit function with 8 lines each, plus the START and
Report lines SCF adds (100,000 CLS logs), served by the local cloud's CLS SearchLog. The commands
run as the installed script in a subprocess; times are the median wall time of --runs.

    .venv/bin/python benchmarks/day_after.py [--records 10000] [--invocations 10000] [--runs 3]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cloud import BUCKET, REGION  # noqa: E402
from status_scale import DirectWrites  # noqa: E402

SCRIPT = Path(sys.executable).with_name("cos-matting")
KEYS = "bench-callback-key-0123456789abcdef"


def environ(url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_", "TENCENT_"))}
    env.update(COS_MATTING_ENDPOINT=url, TENCENTCLOUD_SECRETID="AKIDlocal", TENCENTCLOUD_SECRETKEY="localsecretkey")
    return env


def timed(argv, env, cwd, runs, cold=False):
    """Median wall time of `runs` runs; `cold`: each with an empty cache folder (XDG_CACHE_HOME)."""
    times, out = [], ""
    for n in range(runs):
        run_env = {**env, "XDG_CACHE_HOME": str(Path(cwd) / ("cold-%d" % n if cold else "warm"))}
        started = time.monotonic()
        proc = subprocess.run([str(SCRIPT), *argv], env=run_env, cwd=cwd, capture_output=True, text=True)
        times.append(time.monotonic() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{argv}: exit {proc.returncode}: {proc.stderr[-1500:]}")
        out = proc.stdout
    return statistics.median(times), out


def fill_records(cloud, n: int) -> None:
    from shared.config import load_settings
    from shared.identity import ObjectVersion
    from shared.records import Record, RecordStore, Source

    settings = load_settings({"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
                              "COS_MATTING_CALLBACK_KEYS": KEYS})
    store = RecordStore.of(settings, DirectWrites(cloud))
    for i in range(n):
        key = f"archived/clip-{i:06d}.mp4"
        version = ObjectVersion(BUCKET, key, f"{i:032x}", 1000, 1_700_000_000 + i)
        record = Record(id=version.record_id, source=Source.of(version, REGION))
        store.claim(record)
        submitted = record.model_copy(update={"state": "Submitted", "job_id": f"s{i:031x}"})
        store.advance(submitted)
        final = {"state": "Success", "output": {"bucket": BUCKET, "key": f"matting/{key}.mask.mp4"}} if i % 50 else \
            {"state": "Failed", "error": {"Code": "InvalidInput", "Message": "not a video"}}
        store.advance(submitted.model_copy(update=final))


def fill_logs(cloud, function: str, n: int) -> None:
    from localcloud.scf import Invocation

    now = time.time()
    for i in range(n):
        started = now - 3000 + i * (2900 / n)  # spread over the last 50 minutes
        inv = Invocation(function, "cos", {}, ok=True, started=started, duration=0.2)
        inv.logs = [json.dumps({"event": f"submit.step{j}", "key": f"archived/clip-{i:06d}.mp4", "n": j})
                    for j in range(8)]
        cloud.runtime.invocations.append(inv)


def uploads(cloud) -> list:
    """The multipart uploads in progress (the SDK's ListMultipartUploads, over HTTP)."""
    from qcloud_cos import CosConfig, CosS3Client

    client = CosS3Client(CosConfig(Region=REGION, SecretId="AKIDlocal", SecretKey="localsecretkey", Scheme="http",
                                   IP="127.0.0.1", Port=cloud.port))
    return client.list_multipart_uploads(Bucket=BUCKET, Prefix="input/big.mp4").get("Upload") or []


def upload_ctrl_c(url: str, env: dict, work: Path, cloud, runs: int) -> list:
    big = work / "big.mp4"
    big.write_bytes(os.urandom(32 << 20))
    took = []
    client_env = {**env, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION}
    for _ in range(runs):
        cloud.faults.add("cos.multipart.part", count=10_000, delay=1.0)  # a slow link: parts take 1 s
        proc = subprocess.Popen([str(SCRIPT), "upload", str(big), "input/big.mp4", "--part-size", "1",
                                 "--no-progress"], env=client_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while time.time() < deadline and not uploads(cloud):
            time.sleep(0.05)
        time.sleep(1.5)  # parts in flight
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        took.append(time.monotonic() - sent)
        cloud.faults.clear()
        assert code == 130, (code, proc.stderr.read())
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from localcloud import LocalCloud

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cloud = LocalCloud(data_dir=str(work / "cloud"), buckets=[BUCKET], region=REGION).start()
        try:
            env = environ(cloud.url)
            (work / "bench.env").write_text(f"COS_MATTING_BUCKET={BUCKET}\nCOS_MATTING_REGION={REGION}\n"
                                            f"COS_MATTING_CALLBACK_KEYS={KEYS}\n")
            started = time.monotonic()
            deploy = subprocess.run([str(SCRIPT), "deploy", "--stage", "bench", "--yes", "--local", cloud.url,
                                     "--env-file", str(work / "bench.env"), "--dist", str(work / "dist"),
                                     "--state-dir", str(work / "state")], env=env, cwd=tmp, capture_output=True,
                                    text=True)
            if deploy.returncode:
                raise SystemExit(f"deploy failed: {deploy.stderr[-2000:]}")
            print(f"deployed stage bench into the local cloud in {time.monotonic() - started:.1f} s", flush=True)
            started = time.monotonic()
            fill_records(cloud, args.records)
            fill_logs(cloud, "cos-matting-bench-submit", args.invocations)
            print(f"wrote {args.records} finished records and {args.invocations * 10} log lines in "
                  f"{time.monotonic() - started:.1f} s", flush=True)
            stage = ["--stage", "bench", "--no-uploads"]
            t, out = timed(["status", *stage], env, tmp, args.runs, cold=True)
            summary = next(line for line in out.splitlines() if line.startswith("summary:"))
            print(f"status --stage bench, first call (reads every record finished in 24 h): {t:.2f} s  [{summary}]",
                  flush=True)
            timed(["status", *stage], env, tmp, 1)  # fills the cache
            t, out = timed(["status", *stage], env, tmp, args.runs)
            print(f"status --stage bench, next calls (finished rows kept by their final stage's key): {t:.2f} s",
                  flush=True)
            t, out = timed(["status", *stage, "--json"], env, tmp, args.runs)
            print(f"status --stage bench --json: {t:.2f} s ({len(json.loads(out)['records'])} rows)", flush=True)
            t, out = timed(["status", *stage, "--all", "--limit", "100"], env, tmp, args.runs)
            print(f"status --stage bench --all (newest 100 of the history): {t:.2f} s", flush=True)
            t, out = timed(["logs", "--stage", "bench", "--since", "1h"], env, tmp, args.runs)
            print(f"logs --stage bench --since 1h: {t:.2f} s ({len(out.splitlines())} lines printed)", flush=True)
            t, out = timed(["logs", "submit", "--stage", "bench", "--since", "1h", "--filter",
                            f"archived/clip-{min(4242, args.records - 1):06d}.mp4"], env, tmp, args.runs)
            print(f"logs submit --stage bench --since 1h --filter KEY: {t:.2f} s ({len(out.splitlines())} lines)",
                  flush=True)
            took = upload_ctrl_c(cloud.url, env, work, cloud, args.runs)
            assert not uploads(cloud), "a multipart upload was left behind"
            print(f"upload Ctrl-C to exit (32 MiB, 1 MiB parts, 1 s per part; aborted, none left): median {statistics.median(took):.3f} s, "
                  f"max {max(took):.3f} s over {len(took)} runs", flush=True)
        finally:
            cloud.stop()


if __name__ == "__main__":
    main()
