"""The operator's bulk commands on N records: how long `status` and `cancel --state` take, and
how soon a dead local cloud is reported.

The local cloud runs in its own process (`cos-matting localcloud`), filled with N objects that
`backfill` turns into N Submitted records (jobs are not executed). Then, through the installed
command as a user runs it: `status` (records read in parallel, a progress line after 1 s),
`cancel --state Submitted --yes` with -j 1 (one job at a time, as it was) on the first half and
-j 8 on the second, and finally `status` against a port where nothing listens.

    .venv/bin/python benchmarks/operator_bulk.py [--records 3000]
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRIPT = Path(sys.executable).with_name("cos-matting")
BUCKET = "videos-1250000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, env):
    started = time.monotonic()
    proc = subprocess.run([str(SCRIPT), *argv], env=env, capture_output=True, text=True, timeout=1800)
    return time.monotonic() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    half = args.records // 2
    with tempfile.TemporaryDirectory(prefix="cm-bench-") as data:
        from localcloud import LocalCloud

        cloud = LocalCloud(data_dir=data, buckets=[BUCKET], port=0)
        bucket = cloud.bucket(BUCKET)
        for prefix, count in (("input/a/", half), ("input/b/", args.records - half)):
            for i in range(count):
                bucket.put_bytes(f"{prefix}clip-{i:05d}.mp4", b"\x00\x00\x00\x18ftypmp42 %d" % i)
        cloud.stop()
        port = free_port()
        server = subprocess.Popen([str(SCRIPT), "localcloud", "--engine", "none", "--port", str(port), "--data", data, "--quiet"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            server.stdout.readline()
            env = {**{k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))},
                   "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": "ap-guangzhou",
                   "COS_MATTING_ENDPOINT": f"http://127.0.0.1:{port}",
                   "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "localsecretkey"}
            took, proc = timed(["backfill", "--no-callback", "--prefix", "input/", "-j", "16", "--no-progress"], env)
            assert proc.returncode == 0, proc.stderr
            print(f"backfill of {args.records} objects: {took:.1f} s")
            took, proc = timed(["status", "--no-uploads"], env)
            assert proc.returncode == 0, proc.stderr
            shown = "reading records [" in proc.stderr
            print(f"status on {args.records} records: {took:.1f} s (progress line shown: {shown})")
            for prefix, jobs in (("a", 1), ("b", 8)):
                # one half at a time: the records of the other stay Submitted for the next run
                took, proc = timed(["cancel", "--state", "Submitted", "--prefix", f"input/{prefix}/", "--yes",
                                    "-j", str(jobs)], env)
                count = re.search(r"cancelled (\d+) of (\d+)", proc.stdout)
                print(f"cancel --state Submitted -j {jobs}: {count.group(0) if count else proc.stdout[-200:]} "
                      f"in {took:.1f} s ({int(count.group(1)) / took:.0f} jobs/s)" if count else proc.stderr[-300:])
        finally:
            server.terminate()
            server.wait(20)
    dead = {**env, "COS_MATTING_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    took, proc = timed(["status"], dead)
    print(f"status with no local cloud listening: exit {proc.returncode} after {took:.2f} s: {proc.stderr.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
