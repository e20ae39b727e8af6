"""`cos-matting status` with 100 open records and 0, then 50,000 finished ones: time and peak memory.

Records are written straight into the local cloud's object store through the real RecordStore
(its naming, its open index), with a writer that puts objects into the store in-process instead of
over HTTP (50,000 x 3 PUTs would take minutes and measure nothing of `status`). The 100 open
records' sources exist under input/; the finished ones' sources are gone (archived history), so
the "never became a job" scan reads the same objects in both runs and only the history differs.
Then the local cloud runs in its own process and `status --json` runs as the installed command,
three times per case; time is the median wall time, memory the peak RSS of the command.

    .venv/bin/python benchmarks/status_scale.py [--open 100] [--finished 50000] [--runs 3]

Target: flat within 1.5x between 0 and 50,000 finished records.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _cloud import BUCKET, REGION, start_cloud  # noqa: E402 (benchmarks/, the script's folder)
SCRIPT = Path(sys.executable).with_name("cos-matting")
TARGET = 1.5


class DirectWrites:
    """The writes RecordStore makes, straight into a LocalCloud bucket (no HTTP)."""

    def __init__(self, cloud) -> None:
        self.cloud = cloud

    def put_json(self, bucket: str, key: str, body: bytes, create_only: bool = False) -> bool:
        from localcloud.cos import CosError

        try:
            self.cloud.bucket(bucket).put_bytes(key, body, "application/json", forbid_overwrite=create_only)
        except CosError:
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        self.cloud.bucket(bucket).delete(key)


def fill(data_dir: str, n_open: int, n_finished: int, start: int) -> None:
    from localcloud import LocalCloud
    from shared.config import load_settings
    from shared.identity import ObjectVersion
    from shared.records import Record, RecordStore, Source

    cloud = LocalCloud(data_dir=data_dir, buckets=[BUCKET], region=REGION, port=0)
    settings = load_settings({"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
                              "COS_MATTING_CALLBACK_KEYS": "k" * 32})
    store = RecordStore.of(settings, DirectWrites(cloud))
    bucket = cloud.bucket(BUCKET)
    for i in range(start, start + n_open + n_finished):
        finished = i >= start + n_open
        key = f"{'archived' if finished else 'input'}/clip-{i:06d}.mp4"
        if finished:
            version = ObjectVersion(BUCKET, key, f"{i:032x}", 1000, 1_700_000_000 + i)
        else:
            meta = bucket.put_bytes(key, b"\x00\x00\x00\x18ftypmp42 %d" % i)
            version = ObjectVersion(BUCKET, key, meta.etag, meta.size, int(meta.last_modified))
        record = Record(id=version.record_id, source=Source.of(version, REGION))
        store.claim(record)
        submitted = record.model_copy(update={"state": "Submitted", "job_id": f"s{i:031x}"})
        store.advance(submitted)
        if finished:
            store.advance(submitted.model_copy(update={"state": "Success",
                                                       "output": {"key": f"matting/{key}.mask.mp4"}}))
    cloud.stop()


def status_run(url: str, cache: str) -> Tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one `cos-matting status --json`."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    env = {**keep, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_ENDPOINT": url,
           "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "localsecretkey",
           "COS_MATTING_CALLBACK_KEYS": "k" * 32, "XDG_CACHE_HOME": cache}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        # --since now: the history was just written, but stands for records finished before the default
        # view's window (24 h): this measures what history beyond the window costs (listing pages, no reads)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        proc = subprocess.Popen([str(SCRIPT), "status", "--json", "--no-progress", "--since", now], env=env,
                                cwd=str(ROOT),
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"status exited {proc.returncode}: {err.read()[-2000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def fill_elsewhere(data_dir: str, n_open: int, n_finished: int) -> float:
    """fill() in a child process: this process stays small, so a child it forks starts small (a forked
    child's peak RSS counts the parent's pages)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fill", data_dir, str(n_open), str(n_finished)], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=100, help="open records (default: %(default)s)")
    parser.add_argument("--finished", type=int, default=50_000, help="finished records (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="status runs per case, alternating (default: %(default)s)")
    parser.add_argument("--fill", nargs=3, metavar=("DIR", "OPEN", "FINISHED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(args.fill[0], int(args.fill[1]), 0, 0)
        fill(args.fill[0], 0, int(args.fill[2]), int(args.fill[1]))
        return 0
    print(f"status at scale: {args.open} open records, with 0 and with {args.finished} finished; {os.cpu_count()} "
          f"CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    cases = {"0 finished": 0, f"{args.finished} finished": args.finished}
    with tempfile.TemporaryDirectory(prefix="cos-matting-status-") as tmp:
        clouds = {}
        try:
            for label, finished in cases.items():
                data = os.path.join(tmp, label.split()[0])
                seconds = fill_elsewhere(data, args.open, finished)
                print(f"{label}: wrote {args.open} open + {finished} finished records "
                      f"({args.open * 4 + finished * 3} objects) in {seconds:.0f} s", flush=True)
                clouds[label] = start_cloud(data)
            walls: Dict[str, List[float]] = {label: [] for label in cases}
            rss: Dict[str, float] = {label: 0.0 for label in cases}
            shown: Dict[str, str] = {}
            for i in range(args.runs):  # alternating, so load from other work hits both cases alike
                for label in cases:
                    wall, peak, out = status_run(clouds[label][1], os.path.join(tmp, f"cache-{label.split()[0]}-{i}"))
                    walls[label].append(wall)
                    rss[label] = max(rss[label], peak)
                    shown[label] = out
        finally:
            for proc, _ in clouds.values():
                proc.terminate()
                proc.wait(timeout=20)
    import json

    results = {}
    for label in cases:
        data = json.loads(shown[label])
        results[label] = r = {"wall": statistics.median(walls[label]), "rss": rss[label]}
        print(f"{label:>16}: status {r['wall']:.2f} s (median of {args.runs}; {min(walls[label]):.2f}-"
              f"{max(walls[label]):.2f}), peak RSS {r['rss']:.0f} MiB; {len(data['records'])} open records shown, "
              f"never-became-a-job={data['never_became_a_job']}", flush=True)
    a, b = results["0 finished"], results[f"{args.finished} finished"]
    time_ratio, mem_ratio = b["wall"] / a["wall"], b["rss"] / a["rss"]
    verdict = "meets" if max(time_ratio, mem_ratio) <= TARGET else "MISSES"
    print(f"with {args.finished} finished records: time x{time_ratio:.2f}, memory x{mem_ratio:.2f} -> {verdict} the "
          f"flat-within-{TARGET}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
