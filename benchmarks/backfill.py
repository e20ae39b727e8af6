"""Backfill throughput against the local cloud: objects per second at concurrency 1, 4 and 16.

The local cloud runs in its own process (`cos-matting localcloud`, as a user runs it), filled
beforehand with N objects per concurrency level under its own prefix, so every run submits N
new jobs through `Submitter.process` (jobs are not executed). A rerun at the highest
concurrency measures the all-duplicate path. CPU seconds per object of the backfill process
and of the local cloud process show which side limits the rate.

    .venv/bin/python benchmarks/backfill.py [--objects 2000] [--concurrency 1 4 16]

Target: at least 200 objects/s with concurrency 16.
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _cloud import BUCKET, REGION, start_cloud  # noqa: E402 (benchmarks/, the script's folder)
APPID = "1250000000"
TARGET = 200.0


def fill(data_dir: str, prefixes: List[str], n: int) -> None:
    from localcloud import LocalCloud

    cloud = LocalCloud(data_dir=data_dir, buckets=[BUCKET], region=REGION, port=0)
    bucket = cloud.bucket(BUCKET)
    for prefix in prefixes:
        for i in range(n):
            bucket.put_bytes(f"{prefix}clip-{i:05d}.mp4", b"\x00\x00\x00\x18ftypmp42 %d" % i)
    cloud.stop()


def cpu_seconds(pid: int) -> float:
    """utime + stime of another process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(url: str, prefix: str, concurrency: int, server_pid: int) -> Dict[str, float]:
    from cli.backfill import backfill
    from cli.env import quiet_sdk_logs
    from cli.clients import ThreadClients
    from cli.logcapture import logs_aside
    from shared.config import load_settings

    quiet_sdk_logs()
    env = {**os.environ, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_ENDPOINT": url,
           "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "localsecretkey"}
    settings = load_settings(env)
    clients = ThreadClients(settings, env, pool=4)
    server0, client0, wall0 = cpu_seconds(server_pid), own_cpu(), time.perf_counter()
    with logs_aside():
        summary = backfill(settings, clients, BUCKET, [prefix], concurrency=concurrency)
    wall = time.perf_counter() - wall0
    done = summary.done
    return {"done": done, "wall": wall, "rate": done / wall, "totals": summary.totals(),
            "client_ms": (own_cpu() - client0) / done * 1000, "server_ms": (cpu_seconds(server_pid) - server0) / done * 1000}


def report(label: str, r: Dict[str, float]) -> None:
    totals = " ".join(f"{k}={v}" for k, v in r["totals"].items() if v)
    print(f"{label:<26} {r['rate']:7.1f} objects/s  ({r['done']} in {r['wall']:5.1f} s; {totals}; CPU per object: "
          f"backfill {r['client_ms']:.1f} ms, local cloud {r['server_ms']:.1f} ms)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000, help="objects per run (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="levels (default: 1 4 16)")
    args = parser.parse_args()
    levels = sorted(set(args.concurrency))
    print(f"backfill benchmark: {args.objects} objects per run, local cloud in its own process, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="cos-matting-bench-") as tmp:
        started = time.perf_counter()
        fill(tmp, [f"input/c{c}/" for c in levels], args.objects)
        print(f"filled {len(levels) * args.objects} objects in {time.perf_counter() - started:.1f} s", flush=True)
        proc, url = start_cloud(tmp)
        results = {}
        try:
            for c in levels:
                results[c] = run(url, f"input/c{c}/", c, proc.pid)
                report(f"concurrency {c:>2} (new jobs)", results[c])
            top = levels[-1]
            rerun = run(url, f"input/c{top}/", top, proc.pid)
            report(f"concurrency {top:>2} (rerun)", rerun)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    top = levels[-1]
    rate = results[top]["rate"]
    verdict = "meets" if rate >= TARGET else "BELOW"
    print(f"concurrency {top}: {rate:.0f} objects/s {verdict} the target of {TARGET:.0f}/s")
    r = results[top]
    per_object = r["client_ms"] + r["server_ms"]
    cpus = os.cpu_count() or 1
    print(f"CPU bound estimate: {per_object:.1f} ms CPU per object over {cpus} CPUs -> at most "
          f"{cpus * 1000 / per_object:.0f}/s with both processes busy; the local cloud alone allows "
          f"{1000 / r['server_ms']:.0f}/s (one Python process, GIL), the backfill alone {1000 / r['client_ms']:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
