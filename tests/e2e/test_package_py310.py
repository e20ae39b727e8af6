"""Deployed code (functions/, shared/) must run on SCF's newest Python runtime, 3.10."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _vermin():
    exe = Path(sys.executable).with_name("vermin")
    return [str(exe)] if exe.exists() else ([shutil.which("vermin")] if shutil.which("vermin") else None)


def test_vermin_reports_no_violation_for_python310():
    cmd = _vermin()
    if cmd is None:
        pytest.skip("vermin is not installed (pip install -e '.[dev]')")
    proc = subprocess.run(cmd + ["--no-tips", "-t=3.10-", "--violations", "functions", "shared"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "not met" not in out and " requires " not in out, out


def test_every_deployed_file_compiles_on_python310(tmp_path):
    from localcloud.scfenv import find_python310

    PY310 = find_python310()
    if PY310 is None:
        pytest.skip("no CPython 3.10 interpreter found")
    files = sorted(str(p) for d in ("functions", "shared") for p in (ROOT / d).rglob("*.py"))
    probe = ("import sys, py_compile\n"
             "for f in sys.argv[1:]:\n"
             "    py_compile.compile(f, cfile=sys.argv[0] + '.pyc', doraise=True)\n")
    script = tmp_path / "probe.py"
    script.write_text(probe)
    proc = subprocess.run([PY310, "-I", "-S", str(script), *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
