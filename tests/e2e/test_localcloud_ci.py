"""CI job API of the local cloud: the real SDK's ci_* calls and faults (callbacks:
test_localcloud_ci_callbacks.py; the runner: test_localcloud_ci_runner.py)."""
import time

import pytest
from qcloud_cos.cos_auth import CosS3Auth
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from helpers import BUCKET, OTHER_BUCKET, REGION, sdk_client
from shared import xmlcodec
from shared.jobs import JobRequest, JobsResponse, background_url
from .ci_support import create, job_dict

DOCS_MALFORMED = b"""<Request>
  <Tag>SegmentVideoBody</Tag>
  <Input><Object>input/test.mp4</Object></Input>
  <Operation>
    <SegmentVideoBody><Mode>Mask</Mode></SegmentVideoBody>
    <Output><Region>ap-guangzhou</Region><Bucket>videos-1250000000</Bucket><Object>out.mp4</Object></Output>
  </Operation>
  <CallBackFormat>JSON<CallBackFormat>
</Request>"""


def post_jobs(cloud, client, body: bytes):
    """POST /jobs with a raw body, signed and sent by the SDK's own request machinery."""
    url = client._conf.uri(bucket=BUCKET, path="/jobs", endpoint=client._conf._endpoint_ci)
    return client.send_request("POST", url, bucket=BUCKET, data=body, auth=CosS3Auth(client._conf, "/jobs"),
                               headers={"Content-Type": "application/xml"}, ci_request=True, cos_request=False)


def test_create_with_sdk_dict_form(cos_client):
    job = create(cos_client)
    assert job["State"] == "Submitted" and job["Tag"] == "SegmentVideoBody"
    assert job["JobId"].startswith("s") and len(job["JobId"]) == 33
    assert job["Input"] == {"BucketId": BUCKET, "Object": "input/test.mp4", "Region": REGION}
    assert job["Operation"]["Output"]["Object"] == "matting/test.mp4"
    assert job["Operation"]["UserData"] == "cm:abc" and job["Operation"]["JobLevel"] == "0"
    assert job["StartTime"] == job["EndTime"] == "-"
    assert time.strptime(job["CreationTime"], "%Y-%m-%dT%H:%M:%S%z")
    assert job["QueueId"].startswith("p")


def test_create_with_raw_xml_from_the_job_model(cloud, cos_client):
    request = JobRequest.model_validate(job_dict(key="input/a b.mp4", CallBack="no", CallBackFormat="JSON"))
    resp = post_jobs(cloud, cos_client, request.to_xml())
    assert resp.status_code == 200 and resp.headers["x-ci-request-id"]
    [detail] = JobsResponse.from_xml(resp.content).JobsDetail
    assert detail.State == "Submitted" and detail.Input.Object == "input/a b.mp4"
    described = cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=detail.JobId)["JobsDetail"][0]
    assert described["JobId"] == detail.JobId


def test_docs_malformed_example_gets_400_and_server_keeps_serving(cloud, cos_client):
    resp = post_jobs(cloud, cos_client, DOCS_MALFORMED)
    assert resp.status_code == 400 and resp.headers["x-ci-request-id"]
    root, body = xmlcodec.parse(resp.content)
    assert root == "Error" and body["Code"] == "InvalidArgument" and "Resource" not in body
    assert "XML" in body["Message"] and body["RequestId"] == resp.headers["x-ci-request-id"]
    for junk in (b"", b"not xml", b"<Request>", b"<!DOCTYPE x [<!ENTITY a 'b'>]><Request>&a;</Request>",
                 b"<Other/>", b"\xff\xfe<", b"<Request>" * 40):
        assert post_jobs(cloud, cos_client, junk).status_code == 400
    assert create(cos_client)["State"] == "Submitted"


@pytest.mark.parametrize("change, field", [
    ({"Operation": {"Output": {"Region": REGION, "Bucket": BUCKET, "Object": "o.mp4"}, "JobLevel": "5"}},
     "Operation.JobLevel"),
    ({"Tag": "Transcode"}, "Tag"),
    ({"Input": {"Object": ""}}, "Input.Object"),
    ({"Operation": {"SegmentVideoBody": {"Mode": "Combination"},
                    "Output": {"Region": REGION, "Bucket": BUCKET, "Object": "o.mp4"}}}, "BackgroundLogoUrl"),
    ({"Operation": {"SegmentVideoBody": {"Mode": "Combination", "BackgroundLogoUrl":
                                         background_url(OTHER_BUCKET, REGION, "bg.jpg")},
                    "Output": {"Region": REGION, "Bucket": BUCKET, "Object": "o.mp4"}}}, "source bucket"),
    ({"CallBackFormat": "YAML"}, "CallBackFormat"),
])
def test_invalid_fields_are_named_in_the_400(cos_client, change, field):
    jobs = job_dict()
    jobs.update(change)
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=jobs)
    err = info.value
    assert err.get_status_code() == 400
    root, body = xmlcodec.parse(err.get_origin_msg())
    assert root == "Error" and body["Code"] == "InvalidArgument" and field in body["Message"]


def test_get_unknown_job_and_ci_error_shape(cos_client):
    # An unknown id is not an error: 200 with <NonExistJobIds> (DescribeMediaJob, 460/84790).
    answer = cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs="s" + "0" * 32)
    assert answer["NonExistJobIds"] == "s" + "0" * 32 and not answer.get("JobsDetail")
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=101)
    root, body = xmlcodec.parse(info.value.get_origin_msg())
    assert info.value.get_status_code() == 400
    assert root == "Error" and set(body) == {"Code", "Message", "RequestId", "TraceId"}  # CI error codes page


def test_list_pagination_filters_and_order(cloud, cos_client):
    ids = [create(cos_client, out=f"matting/{i}.mp4")["JobId"] for i in range(5)]
    seen, token = [], ""
    while True:
        page = cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=2, NextToken=token)
        seen += [j["JobId"] for j in page.get("JobsDetail") or []]
        token = page.get("NextToken") or ""
        if not token:
            break
    assert seen == ids[::-1]  # Desc by default
    asc = cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", OrderByTime="Asc", Size=100)
    assert [j["JobId"] for j in asc["JobsDetail"]] == ids
    cos_client.ci_cancel_jobs(Bucket=BUCKET, JobID=ids[1])
    cancelled = cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", States="Cancel")
    assert [j["JobId"] for j in cancelled["JobsDetail"]] == [ids[1]]
    submitted = cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", States="Submitted,Running",
                                              Size=100)
    assert len(submitted["JobsDetail"]) == 4
    future = time.strftime("%Y-%m-%dT%H:%M:%S+0800", time.gmtime(time.time() + 8 * 3600 + 3600))
    later = cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", StartCreationTime=future)
    assert not later.get("JobsDetail")
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=101)
    assert info.value.get_status_code() == 400


def test_cancel_only_from_active_states(cloud, cos_client):
    job_id = create(cos_client)["JobId"]
    assert cos_client.ci_cancel_jobs(Bucket=BUCKET, JobID=job_id) == ""
    assert cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]["State"] == "Cancel"
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_cancel_jobs(Bucket=BUCKET, JobID=job_id)
    assert info.value.get_status_code() == 400
    running = create(cos_client)["JobId"]
    cloud.set_job_state(BUCKET, running, "Running")
    # "只有未执行的任务才可以被取消" (https://cloud.tencent.com/document/api/1246/109264).
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_cancel_jobs(Bucket=BUCKET, JobID=running)
    assert info.value.get_status_code() == 400 and "can not be modified" in info.value.get_origin_msg()
    assert cloud.get_job(BUCKET, running).State == "Running"


def test_ci_requests_need_a_valid_signature(cloud):
    with pytest.raises(CosServiceError) as info:
        sdk_client(cloud, SecretKey="wrong").ci_create_media_jobs(Bucket=BUCKET, Jobs=job_dict())
    assert info.value.get_status_code() == 403
    assert "SignatureDoesNotMatch" in info.value.get_origin_msg()
    assert cloud.list_jobs() == []
    token_client = sdk_client(cloud, Token="tmp-token")  # sent as x-ci-security-token
    assert create(token_client)["State"] == "Submitted"


def test_timeout_after_create_leaves_exactly_one_job(cloud, cos_client):
    cloud.faults.add("ci.create", drop=True, after=True)
    with pytest.raises(CosClientError):
        create(cos_client, user_data="cm:once")
    jobs = cloud.list_jobs(BUCKET)
    assert len(jobs) == 1 and jobs[0].Operation.UserData == "cm:once"
    cloud.faults.add("ci.create", delay=1.0, after=True)
    with pytest.raises(CosClientError):
        create(sdk_client(cloud, Timeout=0.3), user_data="cm:twice")
    assert len(cloud.list_jobs(BUCKET)) == 2
    assert cloud.faults.injected["ci.create"] == 2


def test_fault_before_create_makes_no_job(cloud, cos_client):
    cloud.faults.add("ci.create", status=429)
    with pytest.raises(CosServiceError) as info:
        create(cos_client)
    assert info.value.get_status_code() == 429
    assert "TooManyRequests" in info.value.get_origin_msg()
    cloud.faults.add("ci.get", status=500, count=2)
    job_id = create(cos_client)["JobId"]
    for _ in range(2):
        with pytest.raises(CosServiceError):
            cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)
    assert cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]["JobId"] == job_id
    assert len(cloud.list_jobs()) == 1


def test_fault_after_status_creates_the_job_but_reports_an_error(cloud, cos_client):
    """A 5xx after the job was created: the SDK's own retry would create a second job."""
    cloud.faults.add("ci.create", status=503, after=True)
    with pytest.raises(CosServiceError):
        create(cos_client)
    assert len(cloud.list_jobs()) == 1
    cloud.faults.add("ci.create", status=503, after=True)
    create(sdk_client(cloud, retry=1))
    assert len(cloud.list_jobs()) == 3
