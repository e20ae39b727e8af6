"""Webhook events: the Stripe-style signature, the stable event id, the settings that turn them on."""
import hashlib
import hmac
import json

import pytest

from shared import notify
from shared.config import ConfigError, load_settings
from shared.records import Record, Retry, Source

SECRET = "whsec-0123456789abcdef"
BASE = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}


def record(state="Success", attempt=1):
    return Record(id="a" * 32, state=state, attempt=attempt, job_id="job1",
                  source=Source(bucket="videos-1250000000", region="ap-guangzhou", key="input/a.mp4", etag="e",
                                version_id="v1"),
                  output={"bucket": "videos-1250000000", "region": "ap-guangzhou", "key": "matting/a.mp4"}
                  if state == "Success" else None,
                  error=None if state == "Success" else {"Code": "X", "Message": "broken"},
                  retry=None if state == "Success" else Retry.NEW_INPUT)


def test_signature_is_stripes_scheme_and_verifies():
    body = b'{"id":"evt_1"}'
    header = notify.sign(SECRET, body, 1700000000)
    # The receiver's recipe (README): HMAC-SHA256 over "<t>.<body>", hex.
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert notify.verify(SECRET, header, body, now=1700000100) == 1700000000


@pytest.mark.parametrize("case", ["tampered", "wrong-secret", "too-old", "from-future", "no-t", "no-v1", "empty"])
def test_verify_refuses(case):
    body, t = b'{"id":"evt_1"}', 1700000000
    header, secret, now = notify.sign(SECRET, body, t), SECRET, t + 10
    if case == "tampered":
        body = b'{"id":"evt_2"}'
    elif case == "wrong-secret":
        secret = "another-secret-0123456789"
    elif case == "too-old":
        now = t + notify.TOLERANCE_SECONDS + 1
    elif case == "from-future":
        now = t - notify.TOLERANCE_SECONDS - 1
    elif case == "no-t":
        header = header.split(",", 1)[1]
    elif case == "no-v1":
        header = header.split(",", 1)[0]
    elif case == "empty":
        header = ""
    with pytest.raises(notify.SignatureError):
        notify.verify(secret, header, body, now=now)


def test_verify_accepts_any_of_several_secrets_and_signatures():
    body, t = b"{}", 1700000000
    header = notify.sign(SECRET, body, t) + ",v1=" + "0" * 64  # rotation: a second signature beside
    assert notify.verify(["old-secret-0123456789", SECRET], header, body, now=t) == t


def test_event_id_is_stable_per_record_attempt_and_state():
    assert notify.event_id(record()) == notify.event_id(record())
    ids = {notify.event_id(record("Success")), notify.event_id(record("Failed")),
           notify.event_id(record("Success", attempt=2))}
    assert len(ids) == 3


def test_event_carries_what_a_receiver_needs():
    event = notify.event(record("Failed"))
    assert event["id"] == notify.event_id(record("Failed")) and event["record_id"] == "a" * 32
    assert event["state"] == "Failed" and event["job_id"] == "job1" and event["attempt"] == 1
    assert event["source"]["key"] == "input/a.mp4" and event["source"]["version_id"] == "v1"
    assert event["error"] == {"Code": "X", "Message": "broken"} and event["retry"] == "new-input"
    assert event["output"] is None
    assert notify.event(record())["output"]["key"] == "matting/a.mp4"
    json.dumps(event)  # a JSON body


def test_settings_need_a_secret_with_the_url_and_never_show_it():
    with pytest.raises(ConfigError, match="COS_MATTING_NOTIFY_SECRET is empty"):
        load_settings({**BASE, "COS_MATTING_NOTIFY_URL": "https://hooks.example.com/x"})
    with pytest.raises(ConfigError, match="COS_MATTING_NOTIFY_SECRET: at least 16 characters") as err:
        load_settings({**BASE, "COS_MATTING_NOTIFY_URL": "https://hooks.example.com/x",
                       "COS_MATTING_NOTIFY_SECRET": "short-secret"})
    assert "short-secret" not in str(err.value)
    with pytest.raises(ConfigError, match="COS_MATTING_NOTIFY_URL: expected an http"):
        load_settings({**BASE, "COS_MATTING_NOTIFY_URL": "ftp://x", "COS_MATTING_NOTIFY_SECRET": SECRET})
    settings = load_settings({**BASE, "COS_MATTING_NOTIFY_URL": "https://hooks.example.com/x",
                              "COS_MATTING_NOTIFY_SECRET": SECRET})
    assert settings.notify_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_notify_secret_is_scrubbed_from_log_lines():
    from shared.log import scrub

    assert scrub({"notify_secret": SECRET, "event_id": "evt_1"}) == {"event_id": "evt_1"}


def test_backoff_doubles_to_a_cap():
    assert [notify.backoff(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert notify.backoff(50) == notify.BACKOFF_CAP


def test_the_readme_recipe_accepts_what_we_sign_and_refuses_the_rest():
    """The receiver's recipe in README "Notifications", run as printed."""
    import re
    import time
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Notifications"):]
    namespace: dict = {}
    exec(re.findall(r"```python\n(.*?)```", section, re.S)[0], namespace)  # noqa: S102 - our own README
    recipe, body, now = namespace["verify"], b'{"id":"evt_1"}', int(time.time())
    assert recipe(SECRET, notify.sign(SECRET, body, now), body)
    assert not recipe("another-secret-0123456789", notify.sign(SECRET, body, now), body)
    assert not recipe(SECRET, notify.sign(SECRET, body, now - 301), body)
    assert not recipe(SECRET, notify.sign(SECRET, body, now), body + b" ")
