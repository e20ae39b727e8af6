"""Reading the time stamps the platform writes, one home for every reader.

- ISO 8601 with `Z` or an offset: GET Bucket's `LastModified` (`2026-11-01T08:00:00.000Z`),
  our records (`now_iso`), the CLI's `--since`; CPython 3.10's `fromisoformat` does not take
  `Z`, hence the replace.
- CI's `CreationTime` / `StartTime` / `EndTime`, `2022-06-27T14:44:10+0800` (the CI job
  API's format: DescribeMediaJob's example, api/436/47211, and the callback sample, 460/76956): an offset
  without a colon, which 3.10's `fromisoformat` refuses, hence the `strptime`.
- HTTP dates (RFC 7231, `Tue, 01 Dec 2026 10:00:00 GMT`): HEAD's `Last-Modified`.

A stamp without a zone is UTC (COS and our records write UTC).
"""
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Optional

CI_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def parse_time(stamp: Any) -> datetime:
    """An aware datetime from any of the stamps above; ValueError when it is none of them."""
    text = str(stamp if stamp is not None else "").strip()
    when: Optional[datetime] = None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = datetime.strptime(text, CI_FORMAT)
        except ValueError:
            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):  # 3.10 raises TypeError, later ones ValueError
                when = None
    if when is None:
        raise ValueError(f"not a date: {text!r}")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def epoch_of(stamp: Any) -> int:
    """Whole seconds since the epoch; 0 if absent or unreadable (an object version's Last-Modified)."""
    try:
        return int(parse_time(stamp).timestamp()) if str(stamp or "").strip() else 0
    except ValueError:
        return 0
