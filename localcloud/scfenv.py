"""How SCF runs a deployed function: interpreter, path, working directory, environment.

One home for these facts, used by the local SCF (functions deployed through the API)
and by the packaging tests (the zips alone, with nothing else on the path):

* the code zip is unpacked in one folder (SCF: `/var/user`), which is also the working
  directory; each layer zip in another (SCF: `/opt`); the Python path is exactly the
  code folder then the layer folders, then the interpreter's standard library
  (SCF's built-in PYTHONPATH=/var/user:/opt, 583/32748; Tencent's layer page 583/40159);
* the interpreter is CPython 3.10 (the newest Python runtime SCF offers) when this
  machine has one, started isolated (`-I -S`: no site-packages, no user site, no
  PYTHON* variables), so a handler cannot lean on what the developer installed;
* the environment holds the function's variables plus what SCF adds (role
  credentials, region, `SCF_*`), nothing inherited from the process that deploys.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

WORKER = str(Path(__file__).resolve().with_name("worker.py"))
PYTHON_VERSION = "3.10"


def find_python310() -> Optional[str]:
    """A CPython 3.10 interpreter: pyenv's first, then `python3.10` on PATH; None if absent."""
    candidates: List[Path] = []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=20).stdout.strip()
        if root:
            candidates += sorted(Path(root).glob("versions/3.10.*/bin/python3.10"), reverse=True)
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += sorted((Path.home() / ".pyenv").glob("versions/3.10.*/bin/python3.10"), reverse=True)
    which = shutil.which("python3.10")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def command(python: str, code_dir: str, layers: Sequence[str] = (), run: Optional[str] = None,
            handler: str = "main_handler") -> List[str]:
    """argv that starts the SCF-like runtime on `code_dir` (a warm worker serving `index.<handler>`, or
    `run` one script). The handler is an argument, not a variable: SCF sets no such variable."""
    argv = [python, "-I", "-S", WORKER]
    for layer in layers:
        argv += ["--layer", os.path.abspath(layer)]
    if run:
        argv += ["--run", os.path.abspath(run)]
    if handler != "main_handler":
        argv += ["--handler", handler]
    return argv + [os.path.abspath(code_dir)]


def environment(variables: Mapping[str, str], function_name: str, namespace: str = "default") -> Dict[str, str]:
    """The process environment of a deployed function: nothing inherited but PATH and locale."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env.update({"SCF_FUNCTIONNAME": function_name, "SCF_NAMESPACE": namespace, "SCF_FUNCTIONVERSION": "$LATEST",
                "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update({k: str(v) for k, v in variables.items()})
    return env
