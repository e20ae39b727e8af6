"""A progress line on stderr for anything that can take more than a second.

On a terminal it is rewritten in place with a bar, the total and an ETA; otherwise (a pipe, a
log file, CI) one plain line every few seconds, so logs stay readable. Nothing is shown for
work that ends within `delay` seconds.

    progress = Progress(total=len(jobs), label="cancel")
    for i, job in enumerate(jobs, 1):
        ...
        progress.update(i, {"cancelled": n})
    progress.finish(len(jobs), {"cancelled": n})
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, Mapping, Optional, TextIO, TypeVar

T = TypeVar("T")
BAR = 20


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    def __init__(self, total: Optional[int] = None, stream: Optional[TextIO] = None, enabled: bool = True,
                 interval: Optional[float] = None, label: str = "", unit: str = "", delay: float = 0.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled, self.total, self.label, self.unit = enabled, total, label, unit
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.delay = delay
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def line(self, done: int, counts: Optional[Mapping[str, int]] = None) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        unit = f" {self.unit}" if self.unit else ""
        parts = [self.label] if self.label else []
        if self.total is not None:
            width = len(str(self.total))
            parts.append(f"[{done:>{width}}/{self.total}]")
            if self.tty:
                filled = int(BAR * min(done, self.total) / self.total) if self.total else BAR
                parts.append("|" + "#" * filled + " " * (BAR - filled) + "|")
            parts.append(f"{100 * done / self.total:3.0f}%" if self.total else "100%")
        else:
            parts.append(f"[{done}/?]")
        parts.append(f"{rate:.0f}{unit}/s")
        if self.total is not None and done < self.total:
            parts.append(f"ETA {duration((self.total - done) / rate)}" if rate > 0 else "ETA ?")
        else:
            parts.append(f"in {duration(elapsed)}")
        parts.extend(f"{k}={v}" for k, v in (counts or {}).items())
        return " ".join(parts)

    def update(self, done: int, counts: Optional[Mapping[str, int]] = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and (now - self._last < self.interval or now - self.started < self.delay):
            return
        self._last = now
        text = self.line(done, counts)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def finish(self, done: int, counts: Optional[Mapping[str, int]] = None) -> None:
        """The final line (always, unless the work ended within `delay` and nothing was shown)."""
        if not self.enabled or (not self._shown and time.monotonic() - self.started < self.delay):
            return
        self.update(done, counts, force=True)
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, updating after each one and finishing at the end."""
        done = 0
        for item in items:
            yield item
            done += 1
            self.update(done)
        self.finish(done)
