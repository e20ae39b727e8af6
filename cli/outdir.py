"""An output folder a command may write into without ever touching what it did not write.

The folder must be new (it is created, with a marker file), empty, or marked as this tool's
own earlier output. The new output is built in a staging folder inside it; `commit()` then
removes only the files the marker lists from the previous run, moves the new files in (the
report last, by rename, so a half-written report is never in place) and rewrites the marker.
Anything else in the folder is left exactly as it was. A failed run leaves the previous
output untouched (`abort()` removes the staging folder).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import List

from cli.errors import failure, usage

MARKER = ".cos-matting-demo.json"
STAGING = ".cos-matting-demo.staging"


class OutputFolder:
    def __init__(self, path: Path, flag: str = "--out", last: str = "report.html") -> None:
        self.path, self.flag, self.last = Path(path), flag, last
        self.staging = self.path / STAGING
        self.previous: List[str] = []

    def prepare(self) -> Path:
        """Check the folder is ours (or new, or empty) and return an empty staging folder."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise usage(f"{self.flag} {path}", "is a file, not a folder", "give a new folder name")
        if not path.exists():
            path.mkdir(parents=True)
            self._write_marker([])
        marker = path / MARKER
        if marker.exists():
            try:
                data = json.loads(marker.read_text(encoding="utf-8"))
                self.previous = [str(f) for f in data.get("files", [])]
            except (ValueError, AttributeError, OSError):
                raise usage(f"{self.flag} {path}", f"its {MARKER} is unreadable, so this folder may not be ours",
                            "give a new folder name, or delete the folder yourself") from None
        elif any(path.iterdir()):
            raise usage(f"{self.flag} {path}", "the folder exists, is not empty and is not the output of an "
                        "earlier demo; nothing in it is touched",
                        "give a new folder name (it is created), or an empty one")
        else:
            self._write_marker([])
        if self.staging.exists():
            shutil.rmtree(self.staging)  # ours: left by a run that was killed
        self.staging.mkdir()
        return self.staging

    def _write_marker(self, files: List[str]) -> None:
        tmp = self.path / (MARKER + ".tmp")
        tmp.write_text(json.dumps({"written_by": "cos-matting demo", "files": files}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / MARKER)

    def commit(self) -> List[str]:
        """Replace the previous output with the staged one; returns the files now listed."""
        new = sorted(p.relative_to(self.staging).as_posix() for p in self.staging.rglob("*") if p.is_file())
        previous = set(self.previous)
        clash = [f for f in new if (self.path / f).exists() and f not in previous]
        if clash:
            raise failure(f"{self.flag} {self.path}", f"{clash[0]} exists and was not written by an earlier demo: "
                          f"left alone", f"the new output is in {self.staging}")
        for rel in sorted(previous - set(new)):
            target = self.path / rel
            if target.is_file():
                target.unlink()
                self._prune(target.parent)
        ordered = [f for f in new if f != self.last] + [f for f in new if f == self.last]
        for rel in ordered:
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / rel, target)
        self._write_marker(new)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.previous = new
        return new

    def _prune(self, folder: Path) -> None:
        """Remove folders the previous output left empty (never the output folder itself)."""
        while folder != self.path and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
