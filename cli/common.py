"""Captured logs: shared.log writes JSON lines to stdout, so commands that run the pipeline
in-process keep them out of their own output (dropped, or on stderr with --verbose), and
`invoke` reads them back. (Errors and exit codes: `cli.errors`; the environment and
settings: `cli.env`; clients: `cli.clients`; tables, prompts and formatting: `cli.ui`.)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading
from typing import Any, Dict, Iterator, List, Optional, TextIO


class LogSink(io.TextIOBase):
    """A thread-safe stdout stand-in: keeps complete lines, optionally forwards them."""

    def __init__(self, forward: Optional[TextIO] = None, keep: bool = True) -> None:
        self.forward, self.keep = forward, keep
        self.lines: List[str] = []
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            text, self._partial = self._partial + text, ""
            *done, self._partial = text.split("\n")
            for line in done:
                if self.keep:
                    self.lines.append(line)
                if self.forward is not None:
                    self.forward.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.forward is not None:
            self.forward.flush()

    def close_partial(self) -> None:
        with self._lock:
            if self._partial:
                if self.keep:
                    self.lines.append(self._partial)
                if self.forward is not None:
                    self.forward.write(self._partial + "\n")
                self._partial = ""


@contextlib.contextmanager
def captured_stdout(sink: LogSink, stderr_too: bool = False) -> Iterator[LogSink]:
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sink  # type: ignore[assignment]
    if stderr_too:
        sys.stderr = sink  # type: ignore[assignment]
    try:
        yield sink
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        sink.close_partial()


@contextlib.contextmanager
def logs_aside(verbose: bool = False) -> Iterator[TextIO]:
    """Keep the pipeline's JSON log lines (shared.log writes them to stdout) out of the command's
    output: dropped, or with `verbose` sent to stderr. Yields the real stdout for the command's output."""
    out = sys.stdout
    sink = LogSink(forward=sys.stderr if verbose else None, keep=False)
    with captured_stdout(sink):
        yield out


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="show the pipeline's JSON log lines on stderr")


def parse_log_line(line: str) -> Optional[Dict[str, Any]]:
    import json

    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "event" in data else None
