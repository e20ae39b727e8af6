"""The local cloud's CI API under invalid requests (hypothesis), through the real SDK's signer:
one 400 naming the field, and the server keeps serving. (The pure parsers' fuzz is tests/unit/test_fuzz.py.)"""
import json

import requests
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError

from shared import xmlcodec
from shared.jobs import JobRequest


def bad_requests():
    good = {"Tag": "SegmentVideoBody", "Input": {"Object": "input/a.mp4"},
            "Operation": {"SegmentVideoBody": {"Mode": "Mask"},
                          "Output": {"Region": "ap-guangzhou", "Bucket": "videos-1250000000", "Object": "o.mp4"}}}
    field = st.sampled_from([("Operation", "SegmentVideoBody", "Mode"), ("Operation", "SegmentVideoBody", "BackgroundRed"),
                             ("Operation", "SegmentVideoBody", "BinaryThreshold"), ("Operation", "JobLevel"),
                             ("Operation", "UserData"), ("Tag",), ("CallBackFormat",), ("CallBackType",),
                             ("Operation", "SegmentVideoBody", "SegmentType")])
    value = st.sampled_from(["Blur", "256", "-1", "3", "x" * 1100, "Snapshot", "YAML", "Kafka", "é", ""])

    def build(args):
        path, val = args
        data = json.loads(json.dumps(good))
        node = data
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = val
        return ".".join(path), xmlcodec.dump("Request", data)
    return st.tuples(field, value).map(build)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bad_requests())
def test_ci_api_rejects_invalid_requests_with_400_naming_the_field(cloud, cos_client, case):
    field, body = case
    try:
        JobRequest.from_xml(body, bucket="videos-1250000000")
        return  # this combination happens to be valid ("" for UserData, say)
    except (ValueError, ValidationError):
        pass
    url = cos_client._conf.uri(bucket="videos-1250000000", path="/jobs", endpoint=cos_client._conf._endpoint_ci)
    from qcloud_cos.cos_auth import CosS3Auth

    response = requests.post(url, data=body, auth=CosS3Auth(cos_client._conf, "/jobs"), timeout=10,
                             headers={"Host": "videos-1250000000.ci.ap-guangzhou.myqcloud.com",
                                      "Content-Type": "application/xml"})
    assert response.status_code == 400, response.text
    root, error = xmlcodec.parse(response.content)
    assert root == "Error" and error["Code"] and "Resource" not in error
    leaf = field.split(".")[-1]
    assert leaf in error["Message"] or field.split(".")[0] in error["Message"], error["Message"]
    assert response.headers.get("x-ci-request-id")
    health = requests.get(cloud.url + "/_localcloud/health", timeout=5)
    assert health.status_code == 200  # still serving
