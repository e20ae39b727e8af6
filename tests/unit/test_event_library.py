"""Every file of events/ parses, and the event alone decides what is skipped."""
import json
from pathlib import Path

import pytest

from shared.callback import BadCallback, job_ids
from shared.config import load_settings
from shared.events import parse_event, uploads
from shared.submit import skip_reason

EVENTS = Path(__file__).resolve().parents[2] / "events"
SETTINGS = load_settings({"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"})

# file -> the skip reason of each record (None: goes on to claim and submit)
EXPECTED = {
    "put-video": [None], "post-video": [None], "copy-video": [None], "multipart-video": [None],
    "batch-3-videos": [None, None, None],
    "batch-mixed-video-image-remove": [None, "suffix", "event-name"],
    "key-space": [None], "key-plus": [None], "key-percent": [None], "key-unicode": [None],
    "key-uppercase-ext": [None], "key-deep-folders": [None], "key-encoded-in-key-field": [None],
    "non-video-jpg": ["suffix"], "empty-object": ["empty"], "output-prefix-loop": ["loop-guard"],
    "records-prefix-loop": ["loop-guard"], "outside-watched-prefix": ["prefix"], "oversize": ["too-large"],
    "remove-delete": ["event-name"],
    # The SCF COS-trigger page's sample (https://cloud.tencent.com/document/product/583/9707), on our
    # bucket: no s3Region/cosRegion, no ETag, eventName "cos:ObjectCreated:*", Authorization scrubbed.
    "official-doc-shape": [None],
}
KEYS = {"key-space": "input/team a/my clip.mp4", "key-plus": "input/a+b=c.mp4", "key-percent": "input/100% real.mp4",
        "key-unicode": "input/视频/舞蹈 练习.mp4", "key-encoded-in-key-field": "input/encoded key+plus.mp4"}


def test_the_library_is_complete():
    assert sorted(p.stem for p in (EVENTS / "cos").glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cos_event_files(name):
    data = json.loads((EVENTS / "cos" / f"{name}.json").read_text())
    assert "Authorization" not in json.dumps(data)
    ups = uploads(parse_event(data))
    assert [skip_reason(SETTINGS, u) for u in ups] == EXPECTED[name]
    if name in KEYS:
        assert ups[0].key == KEYS[name]
    # The region comes from settings: events name it in different ways, or (the doc sample) not at all.
    assert all(u.region == SETTINGS.region for u in uploads(parse_event(data), SETTINGS.region))


@pytest.mark.parametrize("path", sorted((EVENTS / "callbacks").glob("*")), ids=lambda p: p.name)
def test_callback_body_files(path):
    body = path.read_bytes()
    if path.name.startswith("invalid-"):
        with pytest.raises(BadCallback):
            job_ids(body)
    else:
        assert job_ids(body) == ["s0000000000000000000000000000000"]


@pytest.mark.parametrize("body", [b"", b"   ", b"null", b"[]", b"{}", b'{"EventName": "TaskFinish"}',
                                  b'{"EventName": "TaskFinish", "JobsDetail": []}', b"\xff\xfe<\x00R\x00",
                                  b'{"EventName": "TaskFinish", "JobsDetail": {"JobId": ""}}', b"plain text"])
def test_bad_callback_bodies_get_a_clear_error(body):
    with pytest.raises(BadCallback):
        job_ids(body)
