"""Terminal helpers every command shares: the one-line error, the `--yes` / prompt for bulk
changes, `--since`, tables measured in display columns (wide CJK characters take two), and
how sizes, durations, ages and JSON are printed. (The errors themselves: `cli.errors`.)

    if not confirm(args, f"cancel {n} job(s)?", n): return EXIT_FAILED
    print(table(["KEY", "SIZE", "STATE"], rows, wrap_at={0: 40}, right=[1]))
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, TextIO

from cli.errors import usage


def print_error(text: str, stream: Optional[TextIO] = None) -> None:
    stream = stream or sys.stderr
    first = " ".join(str(text).split())  # always one line
    stream.write(f"cos-matting: error: {first}\n")
    stream.flush()


# -- confirmation for bulk changes --------------------------------------------------------------

def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true",
                        help="do not ask before changing many things (needed when standard input is not a terminal)")


def confirm(args: argparse.Namespace, question: str, count: int, threshold: int = 2,
            stdin: Optional[TextIO] = None, stream: Optional[TextIO] = None) -> bool:
    """True to go on. Asks on a terminal when `count` >= threshold and --yes was not given; without a
    terminal, refuses (exit 2) rather than change many things unasked."""
    if getattr(args, "yes", False) or count < threshold:
        return True
    stdin = stdin or sys.stdin
    stream = stream or sys.stderr
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise usage(None, f"{question.rstrip('?')}: not confirmed",
                    "pass --yes to confirm (standard input is not a terminal, so there is nobody to ask)")
    stream.write(f"{question} [y/N] ")
    stream.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> datetime:
    """`--since` of backfill, status, retry and logs: a duration back from now (90s, 10m, 24h, 7d; as
    `serverless logs --startTime 5m`), or an ISO date or date-time, UTC when it has no zone."""
    import re
    from datetime import timedelta, timezone

    from shared.dates import parse_time

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if m:
        return datetime.now(timezone.utc) - timedelta(seconds=float(m.group(1)) * UNITS[m.group(2)])
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 10m, 24h, 7d, or a date like "
                                         "2026-11-01 or 2026-11-01T08:00:00+08:00")


# -- colour on a terminal ------------------------------------------------------------------------

STATE_COLOURS = {"Success": "32", "Failed": "31", "Cancel": "33", "Gone": "2", "Superseded": "2",
                 "Submitted": "36", "Running": "36", "Claimed": "36", "Pause": "33", "NoRecord": "31",
                 "Pending": "2"}


def is_terminal(stream: Optional[TextIO] = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def use_colour(stream: Optional[TextIO] = None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    import os

    return is_terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def colour_states(text: str, column_start: int, stream: Optional[TextIO] = None) -> str:
    """A rendered table with the state word at `column_start` of each row coloured (terminal only)."""
    if not use_colour(stream) or column_start < 0:
        return text
    out = []
    for line in text.splitlines():
        word = line[column_start:].split(" ", 1)[0] if len(line) > column_start else ""
        code = STATE_COLOURS.get(word)
        if code and width(line[:column_start]) == column_start:
            line = f"{line[:column_start]}\x1b[{code}m{word}\x1b[0m{line[column_start + len(word):]}"
        out.append(line)
    return "\n".join(out)


# -- display width ------------------------------------------------------------------------------

def width(text: str) -> int:
    """Terminal columns of `text` (wcwidth: wide characters 2, combining 0)."""
    if text.isascii() and text.isprintable():
        return len(text)
    from wcwidth import wcswidth, wcwidth

    total = wcswidth(text)
    if total >= 0:
        return total
    return sum(max(wcwidth(ch), 0) for ch in text)  # control characters count 0


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def wrap(text: str, columns: int) -> List[str]:
    """Split into lines of at most `columns` display columns, at spaces where possible, never losing a character."""
    if columns <= 0 or width(text) <= columns:
        return [text]
    if text.isascii():
        return textwrap.wrap(text, columns, break_long_words=True, break_on_hyphens=False) or [text]
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if width(candidate) <= columns:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:  # a word wider than the column is cut by character
            if width(line + ch) > columns:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], wrap_at: Optional[Dict[int, int]] = None,
          right: Sequence[int] = ()) -> str:
    """A fixed-width table. Columns in `wrap_at` ({column: width}) wrap onto extra lines (whole text
    kept); columns in `right` are right-aligned (numbers)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    split = [[wrap(cell, (wrap_at or {}).get(i, 0)) for i, cell in enumerate(row)] for row in cells]
    widths = [max(width(line) for row in split for line in row[i]) for i in range(len(headers))]
    out = []
    for n, row in enumerate(split):
        height = max(len(c) for c in row)
        for k in range(height):
            parts = []
            for i, lines in enumerate(row):
                text = lines[k] if k < len(lines) else ""
                gap = " " * max(0, widths[i] - width(text))
                parts.append(gap + text if i in right and n else text + gap)
            out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def size(n: Optional[float]) -> str:
    """Bytes in binary units: 0 B, 512 B, 1.5 KiB, 12.0 MiB."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def seconds(value: Optional[float]) -> str:
    """A duration with its unit: 0.27 s, 3.02 s, 2 min 5 s."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f} s"
    minutes, rest = divmod(int(round(value)), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def dump_json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
