"""The benchmarks' one way to run `cos-matting localcloud` as its own process (as a user does)."""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
BUCKET, REGION = "videos-1250000000", "ap-guangzhou"


def start_cloud(data_dir: str, *extra: str, buckets: Sequence[str] = (BUCKET,)) -> Tuple[subprocess.Popen, str]:
    """(the process, its URL). This tree's code (`-m cli.main` from ROOT), on a free port; `extra`
    are more `localcloud` flags (triggers, --env ...)."""
    cmd = [sys.executable, "-m", "cli.main", "localcloud", "--port", "0", "--data", data_dir, "--region", REGION,
           *([] if "--engine" in extra else ["--engine", "none"]), "--quiet", *[flag for b in buckets for flag in ("--bucket", b)], *extra]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"local cloud did not start: {line!r}")
    return proc, match.group(1)
