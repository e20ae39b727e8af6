"""Settings, COS event decoding, tags and tokens: pure functions, no network."""
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from shared import tags, tokens
from shared.config import ConfigError, known_variables, load_settings, output_key
from shared.events import Upload, build_event, decode_key, parse_event, uploads
from shared.funcurl import to_wsgi_event

BASE = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}


def test_defaults():
    s = load_settings(BASE)
    assert s.watch_prefixes == ("input/",) and ".webm" in s.suffixes and s.out_bucket == s.bucket
    assert s.output_prefix == "matting/" and s.defaults.mode == "Mask"


@pytest.mark.parametrize("env, needle", [
    ({"COS_MATTING_MODE": "Blur"}, "COS_MATTING_MODE: allowed values: 'Mask', 'Foreground' or 'Combination'"),
    ({"COS_MATTING_SEGMENT_TYPE": "Sky"}, "COS_MATTING_SEGMENT_TYPE: allowed values"),
    ({"COS_MATTING_BACKGROUND_GREEN": "300"}, "COS_MATTING_BACKGROUND_GREEN"),
    ({"COS_MATTING_JOB_LEVEL": "5"}, "COS_MATTING_JOB_LEVEL"),
    ({"COS_MATTING_CALLBACK_FORMAT": "YAML"}, "COS_MATTING_CALLBACK_FORMAT: allowed values: 'JSON' or 'XML'"),
    ({"COS_MATTING_OUTPUT_PREFIX": "input/matted"}, "COS_MATTING_OUTPUT_PREFIX"),
    ({"COS_MATTING_RECORDS_PREFIX": "input/"}, "COS_MATTING_RECORDS_PREFIX"),
    ({"COS_MATTING_WATCH_PREFIXES": "/"}, "COS_MATTING_OUTPUT_PREFIX"),  # the whole bucket: loops
    ({"COS_MATTING_OUTPUT_NAME": "{stem}.mp4"}, "COS_MATTING_OUTPUT_NAME"),
    ({"COS_MATTING_OUTPUT_NAME": "{output_prefix}{nope}"}, "allowed: {output_prefix}"),
    ({"COS_MATTING_RULES": "not json"}, "COS_MATTING_RULES: not valid JSON"),
    ({"COS_MATTING_RULES": '[{"prefix": "input/g/", "segment_type": "Chroma"}]'}, "COS_MATTING_RULES rule 1 (prefix 'input/g/'): \"segment_type\": allowed values"),
    ({"COS_MATTING_MODE": "Combination"}, "set COS_MATTING_BACKGROUND_KEY"),
    ({"COS_MATTING_CALLBACK_URL": "https://x.example/cb"}, "COS_MATTING_CALLBACK_KEYS"),
    ({"COS_MATTING_CALLBACK_KEYS": "short"}, "COS_MATTING_CALLBACK_KEYS"),
    ({"COS_MATTING_BUCKET": "videos"}, "COS_MATTING_BUCKET"),
])
def test_invalid_settings_name_the_variable(env, needle):
    with pytest.raises(ConfigError) as err:
        load_settings({**BASE, **env})
    assert needle in str(err.value)


def test_rules_longest_prefix_wins():
    s = load_settings({**BASE, "COS_MATTING_RULES": json.dumps([
        {"prefix": "input/green/", "segment_type": "GreenScreenSeg"},
        {"prefix": "input/green/studio/", "segment_type": "SolidColorSeg", "remove_blue": 200}])})
    assert s.options_for("input/a.mp4").segment_type == "HumanSeg"
    assert s.options_for("input/green/a.mp4").segment_type == "GreenScreenSeg"
    studio = s.options_for("input/green/studio/a.mp4")
    assert (studio.segment_type, studio.remove_blue) == ("SolidColorSeg", 200)


def test_every_setting_has_a_variable():
    names = known_variables()
    assert "COS_MATTING_WATCH_PREFIXES" in names and "COS_MATTING_BINARY_THRESHOLD" in names
    assert len(names) == len(set(names))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=5))
def test_output_never_escapes_the_output_prefix(parts):
    s = load_settings(BASE)
    out = output_key(s, "input/" + "/".join(parts), "Mask", "HumanSeg", "rid")
    assert out.startswith("matting/") and "/../" not in "/" + out + "/"
    assert not any(ord(c) < 32 for c in out)


def test_output_names_are_predictable():
    s = load_settings(BASE)
    assert output_key(s, "input/team/Clip One.MOV", "Foreground", "HumanSeg", "r") == \
        "matting/input/team/Clip One.MOV.foreground.mp4"
    assert output_key(s, "input/../../etc/x.mp4", "Mask", "HumanSeg", "r") == "matting/input/%2E%2E/%2E%2E/etc/x.mp4.mask.mp4"


# --- COS events -----------------------------------------------------------------

TRICKY = ["input/a b.mp4", "input/a+b.mp4", "input/100%.mp4", "input/视频/舞蹈.MP4", "input/x/y/z/Deep.MoV",
          "input/%2F.mp4", "input/a%20b.mp4", "input/plus+and space.webm"]


def _upload(key, **kw):
    return Upload(**{"bucket": "videos-1250000000", "appid": "1250000000", "region": "ap-guangzhou", "key": key,
                     "etag": "9d8f", "size": 1024, "event_name": "cos:ObjectCreated:Put", **kw})


@pytest.mark.parametrize("key", TRICKY)
@pytest.mark.parametrize("key_encoded", [False, True])
def test_tricky_keys_decode_whether_or_not_the_key_field_is_encoded(key, key_encoded):
    event = build_event([_upload(key)])
    if key_encoded:
        obj = event["Records"][0]["cos"]["cosObject"]
        obj["key"] = "/1250000000/videos/" + quote(key, safe="/")
    assert uploads(parse_event(event))[0].key == key


@hsettings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_key_decoding_property(key):
    up = _upload("input/" + key)
    assert uploads(parse_event(build_event([up])))[0].key == up.key


def test_event_fields_and_batches():
    event = build_event([_upload("input/a.mp4"), _upload("input/b.mp4", event_name="cos:ObjectRemove:Delete")])
    first, second = uploads(parse_event(event))
    assert (first.bucket, first.appid, first.region, first.etag, first.size) == (
        "videos-1250000000", "1250000000", "ap-guangzhou", "9d8f", 1024)
    assert first.created and not second.created


def test_raw_key_without_url_is_kept():
    assert decode_key("/125/b/in/a%20b.mp4", "", "125", "b") == "in/a%20b.mp4"


# --- tags and tokens --------------------------------------------------------------

def test_tag_merge_keeps_user_tags_and_respects_the_limit():
    user = {f"team{i}": "x" for i in range(9)}
    merged, skipped = tags.merge(user, {tags.ROLE: "output", tags.JOB: "s1"})
    assert all(merged[k] == "x" for k in user) and len(merged) == 10
    assert merged[tags.ROLE] == "output" and skipped == [tags.JOB]


def test_tag_values_are_cleaned_to_allowed_characters():
    merged, _ = tags.merge({}, {tags.RECORD: "a/b c+d=e_f.g:h-舞?*"})
    assert merged[tags.RECORD] == "a/b c+d=e_f.g:h-___"


def test_tokens_rotate_expire_and_bind_to_the_record():
    old, new = "o" * 32, "n" * 32
    url = tokens.callback_url("https://f.example/cb", [old], "rid1", 600, now=1000)
    q = dict(p.split("=") for p in url.split("?")[1].split("&"))
    assert tokens.verify([new, old], "rid1", q["exp"], q["t"], now=1000)      # rotation: both keys valid
    assert not tokens.verify([new], "rid1", q["exp"], q["t"], now=1000)       # old key retired
    assert not tokens.verify([old], "rid2", q["exp"], q["t"], now=1000)       # other record
    assert not tokens.verify([old], "rid1", q["exp"], q["t"], now=1601)       # expired
    assert not tokens.verify([old], "rid1", str(int(q["exp"]) + 1), q["t"], now=1000)  # tampered expiry
    assert not tokens.verify([old], "rid1", q["exp"], "", now=1000)


# --- Function URL adapter -----------------------------------------------------------

def test_function_url_event_is_adapted_for_serverless_wsgi():
    event = {"httpMethod": "POST", "path": "/cb", "headers": {"content-type": "application/json"},
             "body": "e30=", "isBase64Encoded": True, "queryString": {"rid": "r", "t": ["a", "b"]},
             "requestContext": {"sourceIp": "9.9.9.9", "requestId": "x"}}
    out = to_wsgi_event(event)
    assert out["queryStringParameters"] == {"rid": "r", "t": "b"}
    assert out["multiValueQueryStringParameters"] == {"rid": ["r"], "t": ["a", "b"]}
    assert out["requestContext"]["identity"]["sourceIp"] == "9.9.9.9"
    assert out["isBase64Encoded"] is True and out["body"] == "e30="
