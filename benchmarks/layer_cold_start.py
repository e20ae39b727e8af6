"""The SCF layer before and after issue 24 (only what the functions import), in one run.

For each layer: its zip size, then a cold start as SCF does it, repeated: unpack the layer
zip and the function zip into fresh folders (SCF fetches and unpacks both before the first
event), start CPython 3.10 under the SCF-like runtime (localcloud/scfenv.py: no bytecode
cache, the code then /opt on the path) and import the function's index.py. Prints the
minimum over the runs of unpack, import and their sum per layer, and the ratio after/before.

The "before" layer is built from requirements-deploy.txt at --before (default: the commit
before the change) with today's deploy/package.py; wheels come from .cache/wheels or pip.

    .venv/bin/python benchmarks/layer_cold_start.py [--runs 7] [--before REV]
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy import checks, package  # noqa: E402
from deploy.components import function_environment  # noqa: E402
from deploy.files import load_serverless  # noqa: E402
from localcloud import scfenv  # noqa: E402

BEFORE = "279d89d"  # main before issue 24: pycryptodome and tencentcloud-sdk-python-common in the layer
PROBE = "import json, time; t = time.perf_counter(); import index; print(json.dumps(time.perf_counter() - t))\n"


def build(lock: Path, out: Path) -> Path:
    package.build(out, package.DEFAULT_CACHE, lock=lock, log=lambda m: None)
    return out


def cold_start(dist: Path, function: str, python: str, work: Path) -> tuple:
    if work.exists():
        shutil.rmtree(work)
    started = time.perf_counter()
    with zipfile.ZipFile(dist / "cos-matting-layer.zip") as zf:
        zf.extractall(work / "opt")
    with zipfile.ZipFile(dist / f"cos-matting-{function}.zip") as zf:
        zf.extractall(work / "code")
    unpack = time.perf_counter() - started
    (work / "probe.py").write_text(PROBE)
    sf = load_serverless(checks.SERVERLESS, checks.example_environ())
    env = {k: v for k, v in function_environment(sf, function).items() if v}
    env.update(TENCENTCLOUD_SECRETID="AKIDbench", TENCENTCLOUD_SECRETKEY="bench", TENCENTCLOUD_REGION="ap-guangzhou")
    proc = subprocess.run(scfenv.command(python, str(work / "code"), [str(work / "opt")], run=str(work / "probe.py")),
                          cwd=str(work / "code"), env=scfenv.environment(env, function), capture_output=True,
                          text=True, check=True)
    return unpack, float(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", default=BEFORE, help="git revision whose requirements-deploy.txt is 'before'")
    args = parser.parse_args()
    python = scfenv.find_python310()
    if python is None:
        raise SystemExit("no CPython 3.10 interpreter (pyenv's versions/3.10.*, or python3.10 on PATH)")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        old_lock = tmpdir / "lock-before.txt"
        old_lock.write_text(subprocess.run(["git", "show", f"{args.before}:requirements-deploy.txt"], cwd=ROOT,
                                           capture_output=True, text=True, check=True).stdout)
        layers = {"before": build(old_lock, tmpdir / "before"), "after": build(package.LOCK, tmpdir / "after")}
        best = {}
        for function in package.FUNCTIONS:
            for name, dist in layers.items():
                cold_start(dist, function, python, tmpdir / "work")  # warm the page cache
            runs = {name: [] for name in layers}
            for _ in range(args.runs):  # interleaved, so both see the same machine
                for name, dist in layers.items():
                    runs[name].append(cold_start(dist, function, python, tmpdir / "work"))
            for name, samples in runs.items():
                unpack, imp = min(s[0] for s in samples), min(s[1] for s in samples)
                total = min(s[0] + s[1] for s in samples)
                best[(function, name)] = (unpack, imp, total)
        for name, dist in layers.items():
            size = (dist / "cos-matting-layer.zip").stat().st_size
            print(f"layer {name:6s} {size:>10,d} bytes ({package.human(size)})")
        for function in package.FUNCTIONS:
            (bu, bi, bt), (au, ai, at) = best[(function, "before")], best[(function, "after")]
            print(f"{function:9s} unpack {bu * 1000:6.1f} -> {au * 1000:6.1f} ms   import {bi * 1000:6.1f} -> "
                  f"{ai * 1000:6.1f} ms (ratio {ai / bi:.2f})   cold start {bt * 1000:6.1f} -> {at * 1000:6.1f} ms "
                  f"(ratio {at / bt:.2f})   min of {args.runs}")


if __name__ == "__main__":
    main()
