"""The one `.env` reader: the deploy tools and the CLI (`--env-file`) read a file the same way.

    KEY=value            value, spaces around it trimmed
    export KEY=value     the `export ` of a shell-sourced file is allowed
    KEY=value # note     an unquoted value ends where a blank and `#` start a comment
    KEY='a # b'          single quotes: literal
    KEY="a \\" b"         double quotes: \\" and \\\\ are escapes (POSIX shell rules, `shlex`)
    KEY=                 the empty string
    # comment, blank     ignored

The rules are python-dotenv's and a POSIX shell's for these cases; the last assignment of a
key wins. Anything else (no `=`, a key that is not letters, digits and `_`, unbalanced quotes)
is an error naming the file and line: a typo must not silently drop a setting.

Note: dotenv 8, which @serverless/components 2.x uses (its package.json), does not strip
` # note` from an unquoted value; quote values that contain ` #` if that CLI reads the file too.
"""
import re
import shlex
from pathlib import Path
from typing import Dict, Union


_COMMENT = re.compile(r"\s#")


class DotenvError(ValueError):
    """A line the reader refuses; the message starts with `<path>:<line>:`."""


def parse(text: str, source: str = ".env") -> Dict[str, str]:
    values: Dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name or not name.replace("_", "").isalnum():
            raise DotenvError(f"{source}:{number}: expected KEY=VALUE, got {raw.strip()!r}")
        values[name] = _value(value.strip(), f"{source}:{number}", name)
    return values


def _value(value: str, where: str, name: str) -> str:
    if value[:1] in ("'", '"'):
        try:
            parts = shlex.split(value, comments=True)
        except ValueError:
            raise DotenvError(f"{where}: unbalanced quotes in {name}") from None
        if len(parts) > 1:
            raise DotenvError(f"{where}: text after the closing quote in {name} (quote the whole value)")
        return parts[0] if parts else ""
    return _COMMENT.split(value, 1)[0].rstrip()


def read(path: Union[str, Path]) -> Dict[str, str]:
    """The variables of the file at `path`; OSError if it cannot be read, DotenvError if a line is bad."""
    return parse(Path(path).read_text(encoding="utf-8"), str(path))
