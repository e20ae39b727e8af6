"""Plumbing for the CLI tests (no tests here): run `cos-matting` in-process or as the installed
script, with an environment that points at the `cloud` fixture."""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from cli.main import main
from helpers import BUCKET, KEYS, ROOT, function_env

SCRIPT = Path(sys.executable).with_name("cos-matting")
REGION = "ap-guangzhou"
APPID = "1250000000"


def clean_environ() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}


@pytest.fixture
def cli_env(cloud, monkeypatch):
    """os.environ pointing at the local cloud, as a user would export it; returns the cloud."""
    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    for name, value in function_env(cloud).items():
        monkeypatch.setenv(name, value)
    return cloud


def run_cli(capsys, *argv: str) -> Tuple[int, str, str]:
    """`cos-matting ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run_cli(capsys, *argv, "--json")
    try:
        return code, json.loads(out)
    except ValueError:
        raise AssertionError(f"not JSON (exit {code}):\n{out}\n{err}") from None


def run_script(argv: List[str], env: Dict[str, str], stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed `.venv/bin/cos-matting` in a subprocess: the real entry point."""
    return subprocess.run([str(SCRIPT), *argv], input=stdin, env=env, cwd=str(ROOT), capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def script_env(cloud, **extra: str) -> Dict[str, str]:
    return {**clean_environ(), **function_env(cloud), **extra}


def all_jobs(cloud) -> list:
    return cloud.list_jobs(BUCKET)


__all__ = ["APPID", "BUCKET", "KEYS", "REGION", "ROOT", "SCRIPT", "all_jobs", "clean_environ", "cli_env", "run_cli",
           "run_json", "run_script", "script_env"]
