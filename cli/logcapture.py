"""The pipeline's log lines in the CLI. `shared.log` writes them through the `cos_matting`
logger; the CLI puts one handler on it (`route_logs`) that keeps each invocation's lines
apart (`captured`: `invoke`, `replay`) or keeps them out of a command's output (`logs_aside`:
dropped, or on stderr with --verbose). Nothing swaps sys.stdout, so threads do not mix.
"""
from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import sys
import threading
from typing import Iterator, List, Optional, TextIO

_capture: "contextvars.ContextVar[Optional[List[str]]]" = contextvars.ContextVar("cos_matting_capture", default=None)
_aside: List[Optional[TextIO]] = []  # logs_aside targets, innermost last; None drops the lines
_lock = threading.Lock()


class _Router(logging.Handler):
    """The CLI's one handler on the `cos_matting` logger: a line goes to the capture of the
    invocation running in this context (`captured`), else where `logs_aside` sends it, else to
    stdout as a deployed function would print it."""

    prints_lines = True  # shared.log.configure adds no stdout handler next to it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            lines = _capture.get()
            if lines is not None:
                lines.append(line)
                return
            with _lock:
                target = _aside[-1] if _aside else sys.stdout
            if target is not None:
                target.write(line + "\n")
                target.flush()
        except Exception:
            self.handleError(record)


def route_logs() -> None:
    """Install the router (once): it replaces the stdout handler a handler's cold start may have
    added (`shared.log.configure` adds none while the router is there)."""
    from shared.log import JsonFormatter, StdoutHandler, logger

    with _lock:
        if any(isinstance(h, _Router) for h in logger.handlers):
            return
        for old in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
            logger.removeHandler(old)
        router = _Router()
        router.setFormatter(JsonFormatter())
        logger.addHandler(router)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False


@contextlib.contextmanager
def captured() -> Iterator[List[str]]:
    """The log lines written in this context (this thread, this invocation) while it lasts;
    other threads' invocations keep theirs apart."""
    route_logs()
    lines: List[str] = []
    token = _capture.set(lines)
    try:
        yield lines
    finally:
        _capture.reset(token)


@contextlib.contextmanager
def logs_aside(verbose: bool = False) -> Iterator[TextIO]:
    """Keep the pipeline's JSON log lines out of the command's output, from every thread: dropped,
    or with `verbose` sent to stderr. Yields the stdout for the command's output."""
    route_logs()
    target = sys.stderr if verbose else None
    with _lock:
        _aside.append(target)
    try:
        yield sys.stdout
    finally:
        with _lock:
            _aside.remove(target)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="show the pipeline's JSON log lines on stderr")
