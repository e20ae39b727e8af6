"""Hypothesis-driven bad input: every bad input gets a clear error, never a crash."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError

from shared import xmlcodec
from shared.callback import BadCallback, job_ids
from shared.config import ConfigError, known_variables, load_settings
from shared.events import build_event, parse_event, uploads, Upload
from shared.jobs import JobRequest, format_errors
from shared.submit import skip_reason

BASE = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}
SETTINGS = load_settings(BASE)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)


def mutate(event, path, value):
    """Replace one leaf of the real event shape with a fuzzed value."""
    node = event
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return event


PATHS = [("Records",), ("Records", 0, "cos"), ("Records", 0, "cos", "cosObject", "key"),
         ("Records", 0, "cos", "cosObject", "size"), ("Records", 0, "cos", "cosObject", "url"),
         ("Records", 0, "cos", "cosObject", "meta"), ("Records", 0, "cos", "cosBucket", "appid"),
         ("Records", 0, "cos", "cosBucket", "name"), ("Records", 0, "event", "eventName"),
         ("Records", 0, "event"), ("Records", 0, "cos", "cosObject", "meta", "ETag")]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATHS), json_values)
def test_cos_event_parser_fuzz(path, value):
    event = build_event([Upload(bucket="videos-1250000000", appid="1250000000", region="ap-guangzhou",
                                key="input/a.mp4", etag="e", size=5, event_name="cos:ObjectCreated:Put")])
    event = mutate(event, path, value)
    try:
        parsed = uploads(parse_event(event))
    except ValidationError as exc:
        assert exc.errors()  # a clear, located error
        return
    for up in parsed:  # whatever parsed must be safe to filter
        reason = skip_reason(SETTINGS, up)
        assert reason is None or isinstance(reason, str)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_cos_event_parser_fuzz_whole_body(value):
    try:
        uploads(parse_event(value if isinstance(value, dict) else {"Records": value}))
    except ValidationError:
        pass


def callback_bodies():
    detail = st.dictionaries(st.sampled_from(["JobId", "State", "Code", "Operation", "Extra"]), json_values, max_size=5)
    as_json = st.fixed_dictionaries({"EventName": st.sampled_from(["TaskFinish", "x", ["TaskFinish"]]),
                                     "JobsDetail": detail | st.lists(detail, max_size=3) | json_values}
                                    ).map(lambda d: json.dumps(d).encode())
    as_xml = st.fixed_dictionaries({"EventName": st.sampled_from(["TaskFinish", "Other"]),
                                    "JobsDetail": st.dictionaries(st.sampled_from(["JobId", "State"]),
                                                                  st.text(max_size=30), max_size=2)}
                                   ).map(lambda d: xmlcodec.dump("Response", d))
    raw = st.binary(max_size=300)
    encodings = st.text(max_size=50).map(lambda t: ("<Response>" + t + "</Response>").encode("utf-16"))
    return as_json | as_xml | raw | encodings


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(callback_bodies())
def test_callback_parser_fuzz(body):
    try:
        ids = job_ids(body)
    except BadCallback as exc:
        assert str(exc)
        return
    assert ids and all(isinstance(i, str) and i and len(i) <= 128 for i in ids)


@pytest.mark.parametrize("body", [
    b"<Response>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</Response>",          # deep nesting
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 1000 + b'">]><Response>&a;</Response>',
    b"<Response><EventName>TaskFinish</EventName>" + b"<JobsDetail><JobId>s</JobId></JobsDetail>" * 20000 + b"</Response>",
    "<Response><EventName>TaskFinish</EventName></Response>".encode("utf-16"),
    b'{"EventName": "TaskFinish", "JobsDetail": ' + b"[" * 5000 + b"]" * 5000 + b"}",
])
def test_callback_parser_hostile_bodies(body):
    with pytest.raises(BadCallback):
        job_ids(body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(known_variables()), st.text(max_size=40))
def test_settings_fuzz(variable, value):
    try:
        load_settings({**BASE, variable: value})
    except ConfigError as exc:
        message = str(exc)
        assert "COS_MATTING_" in message  # the error names a variable


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["Mode", "SegmentType", "BackgroundRed", "BinaryThreshold", "RemoveBlue",
                                        "BackgroundLogoUrl", "Unknown"]), st.text(max_size=12), min_size=1),
       st.sampled_from(["0", "1", "2", "3", "-1", "x", ""]))
def test_request_model_fuzz(body, level):
    data = {"Tag": "SegmentVideoBody", "Input": {"Object": "in/a.mp4"},
            "Operation": {"SegmentVideoBody": body, "JobLevel": level,
                          "Output": {"Region": "ap-guangzhou", "Bucket": "videos-1250000000", "Object": "o.mp4"}}}
    try:
        JobRequest.model_validate(data, context={"bucket": "videos-1250000000"})
    except ValidationError as exc:
        message = format_errors(exc)  # every error names its field, by location or in the rule's message
        assert all(err["loc"] or any(f in err["msg"] for f in body) for err in exc.errors()), message
