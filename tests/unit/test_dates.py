"""shared/dates.py: the one reader of the platform's time stamps (ISO with Z or an offset, CI's
+0800 form, HTTP dates), and the CLI's --since built on it."""
import argparse
from datetime import datetime, timedelta, timezone

import pytest

from cli.sources import parse_modified
from cli.ui import parse_since
from shared.dates import epoch_of, parse_time
from shared.records import age_seconds

WHEN = datetime(2026, 11, 1, 8, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("stamp", [
    "2026-11-01T08:00:00.000Z",          # GET Bucket LastModified
    "2026-11-01T08:00:00+00:00",         # our records (now_iso)
    "2026-11-01T16:00:00+08:00",         # an offset with a colon
    "2026-11-01T16:00:00+0800",          # CI's CreationTime form (3.10's fromisoformat refuses it)
    "Sun, 01 Nov 2026 08:00:00 GMT",     # HEAD Last-Modified (RFC 7231)
    "2026-11-01T08:00:00",               # no zone: UTC
])
def test_every_stamp_the_platform_writes_reads_as_the_same_instant(stamp):
    when = parse_time(stamp)
    assert when == WHEN and when.tzinfo is not None
    assert epoch_of(stamp) == int(WHEN.timestamp())


def test_a_date_alone_is_midnight_utc():
    assert parse_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("stamp", ["", "-", "yesterday", "2026-13-01", None])
def test_what_is_not_a_date_is_refused_or_zero(stamp):
    with pytest.raises(ValueError):
        parse_time(stamp)
    assert epoch_of(stamp) == 0
    assert parse_modified(stamp or "") is None


def test_age_seconds_of_iso_and_http_stamps():
    now = WHEN.timestamp() + 90
    assert age_seconds("2026-11-01T08:00:00Z", now=now) == 90
    assert age_seconds("Sun, 01 Nov 2026 08:00:00 GMT", now=now) == 90
    assert age_seconds("", now=now) == 0.0
    with pytest.raises(ValueError):
        age_seconds("not a date", now=now)


def test_since_is_utc_without_a_zone_and_names_the_expected_form():
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_since("2026-11-01T08:00:00+08:00").utcoffset() == timedelta(hours=8)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration like 10m, 24h, 7d, or a date like 2026-11-01"):
        parse_since("last week")
