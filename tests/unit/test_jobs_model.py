"""The one SegmentVideoBody model: ranges, rules, XML both ways."""
import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from shared import xmlcodec
from shared.jobs import JobDetail, JobRequest, JobsResponse, background_url, format_errors

BUCKET = "videos-1250000000"
channel = st.integers(0, 255)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1024)
keys = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60)


@st.composite
def requests(draw):
    mode = draw(st.sampled_from(["Mask", "Foreground", "Combination"]))
    body = {
        "Mode": mode,
        "SegmentType": draw(st.sampled_from(["HumanSeg", "GreenScreenSeg", "SolidColorSeg"])),
        "BackgroundRed": draw(channel), "BackgroundGreen": draw(channel), "BackgroundBlue": draw(channel),
        "BinaryThreshold": draw(channel),
        "RemoveRed": draw(channel), "RemoveGreen": draw(channel), "RemoveBlue": draw(channel),
    }
    if mode == "Combination":
        body["BackgroundLogoUrl"] = background_url(BUCKET, "ap-guangzhou", draw(keys))
    return JobRequest.model_validate({
        "Tag": "SegmentVideoBody",
        "Input": {"Object": draw(keys)},
        "Operation": {
            "SegmentVideoBody": body,
            "Output": {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": draw(keys)},
            "UserData": draw(printable),
            "JobLevel": draw(st.integers(0, 2)),
        },
        "CallBack": draw(st.none() | st.just("https://example.com/cb?rid=1&t=x")),
        "CallBackFormat": draw(st.sampled_from(["JSON", "XML"])),
    }, context={"bucket": BUCKET})


@settings(max_examples=150, deadline=None)
@given(requests())
def test_request_xml_round_trip(request):
    assert JobRequest.from_xml(request.to_xml(), bucket=BUCKET) == request


@settings(max_examples=100, deadline=None)
@given(requests())
def test_every_value_is_a_string_on_the_wire(request):
    def leaves(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from leaves(v)
        else:
            yield value
    assert all(isinstance(v, str) for v in leaves(request.wire()))


def base(**op):
    return {"Tag": "SegmentVideoBody", "Input": {"Object": "in/a.mp4"},
            "Operation": {"Output": {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": "out/a.mp4"}, **op}}


@pytest.mark.parametrize("op, field", [
    ({"SegmentVideoBody": {"BackgroundRed": "256"}}, "Operation.SegmentVideoBody.BackgroundRed"),
    ({"SegmentVideoBody": {"RemoveGreen": "-1"}}, "Operation.SegmentVideoBody.RemoveGreen"),
    ({"SegmentVideoBody": {"Mode": "Blur"}}, "Operation.SegmentVideoBody.Mode"),
    ({"SegmentVideoBody": {"SegmentType": "SkySeg"}}, "Operation.SegmentVideoBody.SegmentType"),
    ({"SegmentVideoBody": {"Mode": "Combination"}}, "Operation.SegmentVideoBody"),
    ({"JobLevel": "3"}, "Operation.JobLevel"),
    ({"UserData": "x" * 1025}, "Operation.UserData"),
    ({"UserData": "caf\u00e9"}, "Operation.UserData"),
    ({"UserData": "line\nbreak"}, "Operation.UserData"),
])
def test_invalid_fields_are_named(op, field):
    with pytest.raises(ValidationError) as err:
        JobRequest.model_validate(base(**op), context={"bucket": BUCKET})
    assert field in format_errors(err.value)


def test_output_must_be_complete():
    data = base()
    del data["Operation"]["Output"]["Bucket"]
    with pytest.raises(ValidationError) as err:
        JobRequest.model_validate(data)
    assert "Operation.Output.Bucket" in format_errors(err.value)


def test_combination_background_must_be_in_source_bucket():
    op = {"SegmentVideoBody": {"Mode": "Combination",
                               "BackgroundLogoUrl": background_url("other-1250000000", "ap-guangzhou", "bg.jpg")}}
    with pytest.raises(ValidationError, match="source bucket"):
        JobRequest.model_validate(base(**op), context={"bucket": BUCKET})
    op["SegmentVideoBody"]["BackgroundLogoUrl"] = background_url(BUCKET, "ap-guangzhou", "bg.jpg")
    assert JobRequest.model_validate(base(**op), context={"bucket": BUCKET}).Operation.SegmentVideoBody.Mode == "Combination"


def test_defaults_match_the_api():
    body = JobRequest.model_validate(base()).Operation.SegmentVideoBody
    assert (body.Mode, body.SegmentType, body.BinaryThreshold, body.BackgroundRed) == ("Mask", "HumanSeg", 0, 0)
    assert JobRequest.model_validate(base()).CallBackFormat == "XML"


def test_documented_malformed_example_is_rejected_not_crashed():
    bad = b"<Request><Tag>SegmentVideoBody</Tag><CallBackFormat>JSON<CallBackFormat></Request>"
    with pytest.raises(ValueError, match="malformed XML"):
        JobRequest.from_xml(bad)


def test_response_single_detail_and_list_both_parse():
    detail = {"JobId": "s123", "State": "Success", "Code": "Success", "Message": "",
              "Operation": {"MediaInfo": {"Format": {"Duration": "5.0", "Size": "100"},
                                          "Stream": {"Video": {"Width": "640", "Height": "360"}}},
                            "UserData": "cm:abc"}}
    one = JobsResponse.from_xml(xmlcodec.dump("Response", {"JobsDetail": detail}))
    many = JobsResponse.from_xml(xmlcodec.dump("Response", {"JobsDetail": [detail, {**detail, "JobId": "s2"}]}))
    assert one.JobsDetail[0].JobId == "s123" and [d.JobId for d in many.JobsDetail] == ["s123", "s2"]
    assert one.JobsDetail[0].Operation.MediaInfo.Stream.Video.Width == 640
    assert JobsResponse.from_xml(one.to_xml()) == one


def test_job_state_is_validated():
    with pytest.raises(ValidationError):
        JobDetail.model_validate({"JobId": "s1", "State": "Exploded"})


@pytest.mark.parametrize("bomb", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Request>&b;</Request>',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><Request/>',
    b"<a>" * 100 + b"</a>" * 100,
])
def test_xml_bombs_and_deep_nesting_are_refused(bomb):
    with pytest.raises(xmlcodec.XMLError):
        xmlcodec.parse(bomb)
