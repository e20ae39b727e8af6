"""Terminal helpers every command shares: the one-line error, the `--yes` / prompt for bulk
changes, and tables measured in display columns (wide CJK characters take two).

    raise usage("--bucket 'Videos'", "expected NAME-APPID", "e.g. --bucket videos-1250000000")
    if not confirm(args, f"cancel {n} job(s)?"): return EXIT_FAILED
    print(table(["KEY", "STATE"], rows, wrap={0: 40}))
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, Dict, List, Optional, Sequence, TextIO

from cli.common import EXIT_USAGE, UsageError


class WorkError(Exception):
    """The work failed (not the user's input): one line, exit 1. Raise it with what/which/what to do."""

    exit_code = 1


def message(what: str, which: Optional[str] = None, fix: Optional[str] = None) -> str:
    """`<which>: <what> (<fix>)` on one line: what went wrong, which input, what to do."""
    text = f"{which}: {what}" if which else what
    return f"{text}; {fix}" if fix else text


def usage(which: Optional[str], what: str, fix: Optional[str] = None) -> UsageError:
    """A usage or configuration mistake (exit 2), as an exception to raise."""
    return UsageError(message(what, which, fix))


def failure(which: Optional[str], what: str, fix: Optional[str] = None) -> WorkError:
    """A failure of the work (exit 1), as an exception to raise."""
    return WorkError(message(what, which, fix))


def print_error(text: str, stream: Optional[TextIO] = None) -> None:
    stream = stream or sys.stderr
    first = " ".join(str(text).split())  # always one line
    stream.write(f"cos-matting: error: {first}\n")
    stream.flush()


# COS/CI error codes that mean the settings are wrong, not the work: exit 2 with what to fix.
# Codes as COS documents them (https://cloud.tencent.com/document/product/436/7730).
_CONFIG_CODES = {
    "NoSuchBucket": ("the bucket does not exist (in this region)",
                     "check COS_MATTING_BUCKET (name-APPID) and COS_MATTING_REGION; with the local cloud, start it "
                     "with --bucket NAME-APPID"),
    "SignatureDoesNotMatch": ("the secret key was refused (signature does not match)",
                              "check TENCENTCLOUD_SECRETKEY (with the local cloud: localsecretkey unless you passed "
                              "--secret-key)"),
    "InvalidAccessKeyId": ("the secret id is not known",
                           "check TENCENTCLOUD_SECRETID (with the local cloud: AKIDlocal unless you passed --secret-id)"),
    "AccessDenied": ("access denied", "check the credentials' CAM policy (python -m deploy.policy prints the one "
                                      "cos-matting needs)"),
}


def explain(exc: BaseException) -> "tuple[int, str]":
    """(exit code, one line) for an exception that reached the command line."""
    from shared.cloud import CloudError
    from shared.config import ConfigError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, WorkError):
        return exc.exit_code, str(exc)
    try:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        if isinstance(exc, (CosClientError, CosServiceError)):
            from shared.cloud import _wrap

            exc = _wrap("cos", exc)
    except ImportError:
        pass
    if isinstance(exc, CloudError):
        if exc.code in _CONFIG_CODES:
            what, fix = _CONFIG_CODES[exc.code]
            return EXIT_USAGE, message(what, f"{exc.operation} (HTTP {exc.status} {exc.code})", fix)
        if exc.status == 0:
            return 1, message(f"could not reach the service ({exc.message.splitlines()[0][:200]})", exc.operation,
                              "check the network, or COS_MATTING_ENDPOINT / that `cos-matting localcloud` runs")
        return 1, str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return 1, message(exc.strerror or str(exc), str(exc.filename))
    text = str(exc).splitlines()[0] if str(exc) else ""
    return 1, f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"


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


__all__ = ["EXIT_USAGE", "WorkError", "message", "usage", "failure", "print_error", "explain", "add_yes", "confirm",
           "width", "pad", "wrap", "table", "size", "seconds"]
