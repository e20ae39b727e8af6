"""Backfill at bucket scale: what the user's process spends, `--via scf` against `--via local`.

The local cloud runs in its own process (`cos-matting localcloud`, with the submit function, whose
workers are its own subprocesses). N tiny objects are written straight into its object store
beforehand (no HTTP, no trigger), and a COS inventory of them is generated through the control API.
Then, each as the installed `cos-matting` command in a subprocess, so its CPU time is exactly the
user's process:

- `backfill --via scf --inventory KEY`: reads the report, filters, sends batches with async SCF
  Invoke; the function does the submit path. Measured: on N objects (default 100,000) the CPU seconds
  of the command per 1,000 objects and its wall time; on a smaller set (default 5,000: the function's
  two workers on this machine's two cores drain ~100/s) the end-to-end time until every object has
  a job, i.e. the function's queue drained.
- `backfill --via local --inventory KEY2` on a smaller sample (default 2,000 objects): the command runs
  the whole submit path itself. Measured: CPU seconds per 1,000 objects and objects per second.

    .venv/bin/python benchmarks/backfill_scale.py [--objects 100000] [--local-objects 2000]
        [--e2e-objects 5000] [--rate 2000] [--batch 50] [--function-concurrency 2]

Target: --via scf spends at least 50x less CPU per 1,000 objects in the user's process.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _cloud import BUCKET, REGION, start_cloud  # noqa: E402 (benchmarks/, the script's folder)
COMMAND = [sys.executable, "-m", "cli.main"]  # this tree's code (run from ROOT), not whatever is installed
TARGET = 50.0


def fill(data_dir: str, prefix: str, n: int) -> None:
    from localcloud import LocalCloud

    cloud = LocalCloud(data_dir=data_dir, buckets=[BUCKET], region=REGION, port=0)
    bucket = cloud.bucket(BUCKET)
    for i in range(n):  # sorted keys: the index appends, no O(n) inserts
        bucket.put_bytes(f"{prefix}clip-{i:06d}.mp4", b"\x00\x00\x00\x18ftypmp42 %d" % i)
    cloud.stop()


def start_submit_cloud(data_dir: str, concurrency: int) -> Tuple[subprocess.Popen, str]:
    return start_cloud(data_dir, "--trigger", "functions/submit", "--function-concurrency", str(concurrency),
                       "--env", f"COS_MATTING_BUCKET={BUCKET}", "--env", f"COS_MATTING_REGION={REGION}",
                       "--env", "COS_MATTING_CALLBACK_KEYS=" + "k" * 32)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s: a local cloud with 10^5 queued events is slow to wind down."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def control(url: str, path: str, payload=None, timeout: float = 600):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{url}/_localcloud/{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def user_env(url: str) -> Dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    return {**keep, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_ENDPOINT": url,
            "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "localsecretkey",
            "COS_MATTING_CALLBACK_KEYS": "k" * 32}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(argv: List[str], env: Dict[str, str]) -> Tuple[Dict, float, float]:
    """(summary JSON, CPU seconds, wall seconds) of one `cos-matting` run."""
    cpu0, wall0 = children_cpu(), time.perf_counter()
    done = subprocess.run([*COMMAND, *argv, "--json", "--no-progress"], env=env, cwd=str(ROOT),
                          capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), cpu, wall


def scf_backfill(url: str, env: Dict[str, str], manifest: str, args: argparse.Namespace, checkpoint: str) -> Tuple[Dict, float, float]:
    return run_command(["backfill", "--no-callback", "--via", "scf", "--function", "submit", "--inventory", manifest, "--rate",
                        str(args.rate), "--batch", str(args.batch), "--checkpoint", checkpoint], env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000, help="objects for --via scf (default: %(default)s)")
    parser.add_argument("--local-objects", type=int, default=2000, help="sample for --via local (default: %(default)s)")
    parser.add_argument("--e2e-objects", type=int, default=5000,
                        help="objects sent --via scf and waited for until each has a job (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=2000, help="--rate for --via scf (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=50, help="--batch for --via scf (default: %(default)s)")
    parser.add_argument("--function-concurrency", type=int, default=2, help="submit workers (default: %(default)s)")
    args = parser.parse_args()
    print(f"backfill at scale: {args.objects} objects via scf (user CPU), {args.e2e_objects} via scf end to end, "
          f"{args.local_objects} via local; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cos-matting-scale-") as tmp:
        started = time.perf_counter()
        for prefix, n in (("input/scf/", args.objects), ("input/e2e/", args.e2e_objects),
                          ("input/local/", args.local_objects)):
            fill(tmp, prefix, n)
        print(f"filled {args.objects + args.e2e_objects + args.local_objects} objects in "
              f"{time.perf_counter() - started:.1f} s (straight into the store)", flush=True)
        reports, scf, scf_cpu = via_scf(tmp, args)
        done, local_cpu = via_local(tmp, args, reports)
    per_scf, per_local = scf_cpu / scf["sent"], local_cpu / done
    ratio = per_local / per_scf
    print(f"user CPU per 1,000 objects: scf {per_scf * 1000:.3f} s ({scf['sent']} objects), local "
          f"{per_local * 1000:.3f} s ({done} objects) -> {ratio:.0f}x less via scf "
          f"({'meets' if ratio >= TARGET else 'BELOW'} the {TARGET:.0f}x target)")
    return 0


def via_scf(tmp: str, args: argparse.Namespace) -> Tuple[Dict[str, Dict], Dict, float]:
    """Steps 1 and 2 on one local cloud: (the inventory reports, step 2's summary, its user CPU)."""
    proc, url = start_submit_cloud(tmp, args.function_concurrency)
    env = user_env(url)
    try:
        t0 = time.perf_counter()
        reports = {name: control(url, "inventory", {"bucket": BUCKET, "filter_prefix": f"input/{name}/",
                                                    "inventory_id": f"bench-{name}"})
                   for name in ("scf", "e2e", "local")}
        print(f"inventories generated in {time.perf_counter() - t0:.1f} s "
              f"({', '.join(str(r['objects']) for r in reports.values())} rows)", flush=True)
        # 1. end to end: send, then wait until the function has drained its queue
        wall0 = time.perf_counter()
        e2e, _, e2e_send = scf_backfill(url, env, reports["e2e"]["manifest_key"], args, f"{tmp}/e2e.checkpoint")
        while not control(url, "idle?timeout=60", timeout=120)["idle"]:
            pass
        end_to_end = time.perf_counter() - wall0
        jobs = control(url, f"jobs?bucket={BUCKET}&count=1")["count"]
        print(f"--via scf   : {jobs} jobs for {e2e['sent']} objects {end_to_end:.1f} s after the start (sent in "
              f"{e2e_send:.1f} s) = {jobs / end_to_end:.1f} objects/s end to end (function concurrency "
              f"{args.function_concurrency})", flush=True)
        # 2. the user's process at full scale: read, filter, batch and send everything
        scf, scf_cpu, scf_wall = scf_backfill(url, env, reports["scf"]["manifest_key"], args,
                                              f"{tmp}/scf.checkpoint")
        print(f"--via scf   : sent {scf['sent']} in {scf['invocations']} invocations (payload max "
              f"{scf['payload_bytes']['max']} B) in {scf_wall:.1f} s; user CPU {scf_cpu:.2f} s = "
              f"{scf_cpu / scf['sent'] * 1000:.3f} s per 1,000 objects", flush=True)
    finally:
        stop(proc)  # the events of step 2 still queued are dropped with it
    return reports, scf, scf_cpu


def via_local(tmp: str, args: argparse.Namespace, reports: Dict[str, Dict]) -> Tuple[int, float]:
    """Step 3: the user's process doing the submit path itself, against a fresh, idle local cloud:
    (objects submitted, user CPU)."""
    proc, url = start_submit_cloud(tmp, args.function_concurrency)
    env = user_env(url)
    try:
        local, local_cpu, local_wall = run_command(
            ["backfill", "--no-callback", "--via", "local", "--inventory", reports["local"]["manifest_key"], "-j", "16"], env)
    finally:
        stop(proc)
    done = local["totals"]["submitted"]
    print(f"--via local : submitted {done} in {local_wall:.1f} s = {done / local_wall:.1f} objects/s; user CPU "
          f"{local_cpu:.2f} s = {local_cpu / done * 1000:.3f} s per 1,000 objects", flush=True)
    return done, local_cpu


if __name__ == "__main__":
    sys.exit(main())
