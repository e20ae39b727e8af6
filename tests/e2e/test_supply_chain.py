"""Reproducible installs from a lock file, and a vulnerability audit of what it pins."""
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked():
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[norm(name)] = version
    return pins


def declared():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs} - {"cos-matting"}


def test_lock_pins_every_declared_dependency():
    missing = declared() - set(locked())
    assert not missing, f"add to requirements.lock: {sorted(missing)}"


def test_installed_versions_match_the_lock():
    pins = locked()
    wrong = {}
    for dist in metadata.distributions():
        name = norm(dist.metadata["Name"])
        if name in pins and pins[name] != dist.version:
            wrong[name] = (pins[name], dist.version)
    assert not wrong, f"installed differs from requirements.lock (locked, installed): {wrong}"


@pytest.mark.slow  # 20-30 s: pip-audit asks the index about every locked package
def test_no_known_vulnerabilities_in_locked_dependencies():
    audit = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    if not audit:
        pytest.skip("pip-audit is not installed")
    out = subprocess.run([audit, "-r", str(LOCK), "--no-deps", "--progress-spinner", "off", "-f", "json"],
                         capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        pytest.skip(f"pip-audit gave no report (vulnerability service unreachable?): {out.stderr.strip()[-300:]}")
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        pytest.skip("the vulnerability service is unreachable from this machine (every package skipped: "
                    f"{deps[0]['skip_reason'] if deps else 'no output'}); the audit runs where PyPI's JSON API answers")
    vulnerable = {d["name"]: [v["id"] for v in d.get("vulns", [])] for d in audited if d.get("vulns")}
    assert not vulnerable, f"known vulnerabilities: {vulnerable}"
