"""Load a page in headless Chromium (Debian's `chromium` package): read the mark the report's own
script sets on <body> (`data-media`, see cli.report) and take a screenshot of the page.

Only local files are loaded and every network feature Chromium has is off (no background
networking, no component updates, no sync); a throwaway profile folder is used each time.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--mute-audio"]


def find() -> Optional[str]:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _run(binary: str, extra: List[str], page: Path, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="cos-matting-chromium-") as profile:
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def media_mark(page: Path, binary: Optional[str] = None, budget_ms: int = 15000, timeout: float = 120) -> str:
    """'ok', 'broken: <files>' or 'unmarked' (the page's script never finished) for `page`."""
    binary = binary or find()
    if not binary:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    dom = _run(binary, [f"--virtual-time-budget={budget_ms}", "--dump-dom"], page, timeout)
    match = re.search(r"<body[^>]*\bdata-media=\"([^\"]*)\"", dom)
    return match.group(1) if match else "unmarked"


def screenshot(page: Path, png: Path, binary: Optional[str] = None, width: int = 1280, height: int = 2400,
               budget_ms: int = 8000, timeout: float = 120) -> Path:
    binary = binary or find()
    if not binary:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    _run(binary, [f"--virtual-time-budget={budget_ms}", f"--window-size={width},{height}",
                  f"--screenshot={png.resolve()}"], page, timeout)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot at {png}")
    return png
