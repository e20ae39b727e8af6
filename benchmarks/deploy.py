"""`cos-matting deploy` against the local cloud: how long each kind of deploy takes, and the zip sizes.

The local cloud runs in its own process (`cos-matting localcloud`), and every deploy is the
command a user runs (`cos-matting deploy --local URL --yes`), so the times include the
CLI's start, packaging, the SDK's signed HTTP calls and the local SCF starting nothing
(functions start on their first event). First `cos-matting package` into an empty dist/
(the layer zip built from the wheel cache: run `cos-matting package` once beforehand to
fill it), then, one after the other:

  plan       --plan into an empty cloud: reads only, prints the calls
  first      into an empty cloud (the layer zip is reused: its inputs did not change)
  unchanged  the same again: reads only, no write call
  one change COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY changed: one write
  destroy    --destroy from another, empty folder (a fresh clone: nothing local to go by)

and, after the unchanged deploy, `cos-matting doctor --json` twice: the first cold-starts each
function through SCF Invoke (the health event), the second finds them warm (its drift check
builds the zips and plans a deploy).

    .venv/bin/python benchmarks/deploy.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from _cloud import BUCKET, REGION, start_cloud  # noqa: E402 (benchmarks/, the script's folder)
SETTINGS = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
            "COS_MATTING_CALLBACK_KEYS": "bench-key-0123456789abcdef0123"}


def deploy(url: str, work: Path, *extra: str, command: str = "deploy", cwd: Path = None):
    cmd = [sys.executable, "-m", "cli.main", command, "--local", url, "--env-file", str(work / ".env"),
           "--dist", str(work / "dist"), *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(cwd or work), capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0 and command == "deploy":
        raise SystemExit(f"deploy failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    changes = re.search(r": (\d+) call\(s\)", proc.stdout) or re.search(r"(\d+)/\d+ checks passed", proc.stdout)
    return took, int(changes.group(1)) if changes else -1


def doctor(url: str, work: Path):
    """(wall time of the command, doctor's own elapsed_s, checks passed/total)."""
    cmd = [sys.executable, "-m", "cli.main", "doctor", "--local", url, "--env-file", str(work / ".env"),
           "--dist", str(work / "dist"), "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(work), capture_output=True, text=True)
    took = time.perf_counter() - started
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"doctor printed no JSON ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took, report["elapsed_s"], f"{report['passed']}/{report['passed'] + report['failed']}"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cos-matting-bench-deploy-"))
    (work / ".env").write_text("".join(f"{k}={v}\n" for k, v in SETTINGS.items()))
    proc, url = start_cloud(str(work / "cloud"))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli.main", "package", "--out", str(work / "dist"), "--offline"],
                       cwd=str(ROOT), check=True, capture_output=True)
        package_s = time.perf_counter() - started
        rows = [("plan", *deploy(url, work, "--plan")), ("first", *deploy(url, work, "--yes")),
                ("unchanged", *deploy(url, work, "--yes"))]
        doctors = [("cold", *doctor(url, work)), ("warm", *doctor(url, work))]
        (work / ".env").write_text((work / ".env").read_text() + "COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY=3\n")
        rows.append(("one change", *deploy(url, work, "--yes")))
        fresh = work / "fresh-clone"
        fresh.mkdir()
        rows.append(("destroy", *deploy(url, work, "--destroy", "--yes", cwd=fresh)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"cos-matting package (empty dist/, layer from the wheel cache): {package_s:6.2f} s")
    print("cos-matting deploy against the local cloud (own process), wall time of the whole command:")
    for name, took, changes in rows:
        print(f"  {name:<11} {took:6.2f} s  {changes:3d} call(s)")
    print("cos-matting doctor --json (wall time; doctor's own time; checks passed):")
    for name, took, own, passed in doctors:
        print(f"  {name:<11} {took:6.2f} s  {own:6.2f} s  {passed}")
    manifest = json.loads((work / "dist" / "manifest.json").read_text())
    print("zips (dist/manifest.json):")
    for name, info in sorted(manifest.items()):
        print(f"  {name:<28} {info['bytes']:>10,d} bytes  {info['bytes'] / 1024 / 1024:6.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
