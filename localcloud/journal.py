"""Append-only JSON-lines journal: the cheap way to persist small state changes.

One open file per bucket instead of one new file per change keeps a put or a
job update to a single buffered append (file creation dominates the cost on
busy disks). Replayed and compacted at start-up; a torn last line is ignored.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any, Dict, Iterable, Iterator


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")

    @staticmethod
    def replay(path: str) -> Iterator[Dict[str, Any]]:
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except ValueError:  # torn write from a crash: everything after it is suspect too
                    return

    def append(self, entry: Dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._fh.closed:  # the cloud was stopped and started again
                self._fh = open(self.path, "a", encoding="utf-8")
            self._fh.write(line)
            self._fh.flush()

    def compact(self, entries: Iterable[Dict[str, Any]]) -> None:
        """Rewrite the journal as exactly `entries` (atomic replace)."""
        tmp = self.path + ".compact"
        with open(tmp, "w", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n")
        with self._lock:
            self._fh.close()
            os.replace(tmp, self.path)
            self._fh = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            self._fh.close()
