"""CI job API of the local cloud: the real SDK's ci_* calls, callbacks, the runner, faults."""
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from qcloud_cos.cos_auth import CosS3Auth
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from helpers import BUCKET, OTHER_BUCKET, REGION, sdk_client
from localcloud import EngineError, LocalCloud
from shared import xmlcodec
from shared.jobs import JobDetail, JobRequest, JobsResponse, background_url

DOCS_MALFORMED = b"""<Request>
  <Tag>SegmentVideoBody</Tag>
  <Input><Object>input/test.mp4</Object></Input>
  <Operation>
    <SegmentVideoBody><Mode>Mask</Mode></SegmentVideoBody>
    <Output><Region>ap-guangzhou</Region><Bucket>videos-1250000000</Bucket><Object>out.mp4</Object></Output>
  </Operation>
  <CallBackFormat>JSON<CallBackFormat>
</Request>"""


def job_dict(key="input/test.mp4", out="matting/test.mp4", level=0, user_data="cm:abc", **extra):
    jobs = {"Tag": "SegmentVideoBody", "Input": {"Object": key},
            "Operation": {"SegmentVideoBody": {"Mode": "Mask", "SegmentType": "HumanSeg"},
                          "Output": {"Region": REGION, "Bucket": BUCKET, "Object": out},
                          "UserData": user_data, "JobLevel": str(level)}}
    jobs.update(extra)
    return jobs


def create(client, **kw):
    return client.ci_create_media_jobs(Bucket=BUCKET, Jobs=job_dict(**kw))["JobsDetail"][0]


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
    assert root == "Response" and body["Code"] == "InvalidArgument" and "Resource" not in body
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
    assert root == "Response" and body["Code"] == "InvalidArgument" and field in body["Message"]


def test_get_unknown_job_and_ci_error_shape(cos_client):
    # An unknown id is not an error: 200 with <NonExistJobIds> (PLATFORM.md section 1).
    answer = cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs="s" + "0" * 32)
    assert answer["NonExistJobIds"] == "s" + "0" * 32 and not answer.get("JobsDetail")
    with pytest.raises(CosServiceError) as info:
        cos_client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=101)
    root, body = xmlcodec.parse(info.value.get_origin_msg())
    assert info.value.get_status_code() == 400
    assert root == "Response" and set(body) == {"Code", "Message", "RequestId"}


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


# --- callbacks ----------------------------------------------------------------

class Receiver:
    """A tiny HTTP server recording what is POSTed to it; answers `statuses` in turn, then 200."""

    def __init__(self, statuses=()):
        self.bodies, self.statuses, self.lock = [], list(statuses), threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.bodies.append((status, self.headers["Content-Type"], self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb?token=t1"

    def ok_bodies(self):
        return [b for s, _, _, b in self.bodies if s == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_json_callback_on_success(cloud, cos_client, receiver):
    job_id = create(cos_client, CallBack=receiver.url, CallBackFormat="JSON")["JobId"]
    cloud.set_job_state(BUCKET, job_id, "Success")
    assert cloud.wait_idle(5)
    [(status, ctype, path, body)] = receiver.bodies
    assert ctype == "application/json" and path == "/cb?token=t1"
    data = json.loads(body)
    assert data["EventName"] == "TaskFinish"
    detail = data["JobsDetail"]
    assert detail["JobId"] == job_id and detail["State"] == "Success"
    assert detail["Operation"]["JobLevel"] == "0"  # every value is a string
    # MediaResult.OutputFile carries Md5Info in real answers (PLATFORM.md section 1).
    output_md5 = cos_client.head_object(Bucket=BUCKET, Key="matting/test.mp4")["ETag"].strip('"')
    assert detail["Operation"]["MediaResult"]["OutputFile"] == {
        "Bucket": BUCKET, "Region": REGION, "ObjectName": "matting/test.mp4",
        "Md5Info": {"ObjectName": "matting/test.mp4", "Md5": output_md5}}
    assert JobDetail.model_validate(detail).terminal
    # Success without an engine writes a small fake output
    assert cos_client.head_object(Bucket=BUCKET, Key="matting/test.mp4")["Content-Type"] == "video/mp4"
    assert cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]["State"] == "Success"


def test_xml_callback_on_failure(cloud, cos_client, receiver):
    job_id = create(cos_client, CallBack=receiver.url, CallBackFormat="XML")["JobId"]
    cloud.set_job_state(BUCKET, job_id, "Running")
    cloud.set_job_state(BUCKET, job_id, "Failed", code="InvalidInput", message="not a video")
    assert cloud.wait_idle(5)
    [(_, ctype, _, body)] = receiver.bodies  # no callback for Running
    root, content = xmlcodec.parse(body)
    assert ctype == "application/xml" and root == "Response" and content["EventName"] == "TaskFinish"
    detail = JobDetail.model_validate(content["JobsDetail"])
    assert (detail.State, detail.Code, detail.Message) == ("Failed", "InvalidInput", "not a video")
    assert detail.StartTime != "-" and detail.EndTime != "-"
    with pytest.raises(ValueError):
        cloud.set_job_state(BUCKET, job_id, "Success")  # terminal states stay terminal


def test_callback_json_arrays_option(tmp_path, receiver):
    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], callback_arrays="all") as cloud:
        job_id = create(sdk_client(cloud), CallBack=receiver.url, CallBackFormat="JSON")["JobId"]
        cloud.set_job_state(BUCKET, job_id, "Failed", code="X", message="y")
        assert cloud.wait_idle(5)
    data = json.loads(receiver.ok_bodies()[0])
    assert isinstance(data["JobsDetail"], list) and isinstance(data["JobsDetail"][0]["Operation"], list)


def test_no_callback_for_no_or_absent(cloud, cos_client, receiver):
    a = create(cos_client, CallBack="no")["JobId"]
    b = create(cos_client)["JobId"]
    cloud.set_job_state(BUCKET, a, "Success")
    cloud.set_job_state(BUCKET, b, "Success")
    assert cloud.wait_idle(5)
    assert receiver.bodies == [] and cloud.callbacks == []


def test_callback_retries_until_2xx():
    bad = Receiver(statuses=[500, 503])
    try:
        import tempfile

        with LocalCloud(tempfile.mkdtemp(), buckets=[BUCKET], callback_backoff=(0.01,)) as cloud:
            job_id = create(sdk_client(cloud), CallBack=bad.url, CallBackFormat="JSON")["JobId"]
            cloud.set_job_state(BUCKET, job_id, "Success")
            assert cloud.wait_idle(5)
            [record] = cloud.callbacks
            assert (record.attempts, record.ok, record.status) == (3, True, 200)
        assert [s for s, *_ in bad.bodies] == [500, 503, 200]
    finally:
        bad.close()
        shutil.rmtree(cloud.data_dir, ignore_errors=True)


def test_callback_to_dead_url_gives_up(cloud, cos_client):
    job_id = create(cos_client, CallBack="http://127.0.0.1:9/nothing", CallBackFormat="JSON")["JobId"]
    cloud.set_job_state(BUCKET, job_id, "Success")
    assert cloud.wait_idle(5)
    [record] = cloud.callbacks
    assert record.ok is False and record.attempts == 3 and record.status is None


def test_callback_faults_duplicate_drop_delay_reorder(cloud, cos_client, receiver):
    ids = [create(cos_client, out=f"matting/{i}.mp4", CallBack=receiver.url, CallBackFormat="JSON")["JobId"]
           for i in range(4)]
    cloud.faults.add("callback.send", duplicate=True)
    cloud.set_job_state(BUCKET, ids[0], "Success")
    assert cloud.wait_idle(5)
    cloud.faults.add("callback.send", drop=True)
    cloud.set_job_state(BUCKET, ids[1], "Success")
    assert cloud.wait_idle(5)
    cloud.faults.add("callback.send", reorder=True)
    cloud.set_job_state(BUCKET, ids[2], "Failed", code="X", message="y")
    cloud.set_job_state(BUCKET, ids[3], "Success")
    assert cloud.wait_idle(5)
    order = [json.loads(b)["JobsDetail"]["JobId"] for b in receiver.ok_bodies()]
    assert order == [ids[0], ids[0], ids[3], ids[2]]
    assert cloud.faults.injected["callback.send"] == 3


def test_control_api_over_http(cloud, cos_client, receiver):
    job_id = create(cos_client, CallBack=receiver.url, CallBackFormat="JSON")["JobId"]
    base = f"{cloud.url}/_localcloud"
    assert requests.get(f"{base}/health").json()["buckets"] == sorted([BUCKET, OTHER_BUCKET])
    assert [j["JobId"] for j in requests.get(f"{base}/jobs", params={"bucket": BUCKET}).json()] == [job_id]
    resp = requests.post(f"{base}/jobs/{BUCKET}/{job_id}/state",
                         json={"state": "Failed", "code": "E1", "message": "boom"})
    assert resp.status_code == 200 and resp.json()["State"] == "Failed"
    assert requests.post(f"{base}/faults", json={"route": "ci.get", "status": 503}).status_code == 200
    with pytest.raises(CosServiceError):
        cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)
    assert requests.get(f"{base}/faults").json()["injected"] == {"ci.get": 1}
    assert requests.get(f"{base}/idle").json() == {"idle": True}
    assert requests.get(f"{base}/callbacks").json()[0]["ok"] is True
    assert requests.post(f"{base}/faults", json={"route": "nope"}).status_code == 400
    assert requests.get(f"{base}/unknown").status_code == 404


# --- the runner with an engine ------------------------------------------------

def copy_engine(job, request, input_path, background_path, output_path):
    """A real (trivial) engine: the output is the input, reversed, plus the background size."""
    with open(input_path, "rb") as fh:
        data = fh.read()[::-1]
    if background_path:
        data += str(os.path.getsize(background_path)).encode()
    with open(output_path, "wb") as fh:
        fh.write(data)
    return {"Format": {"Duration": "2.5", "Size": str(len(data)), "FormatName": "mp4", "NumStream": "1"},
            "Stream": {"Video": {"Width": "64", "Height": "36", "Fps": "25"}}}


def test_engine_runs_jobs_to_success(cloud, cos_client, receiver):
    cloud.set_engine(copy_engine)
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"abcdef")
    cos_client.put_object(Bucket=BUCKET, Key="bg/b.jpg", Body=b"1234")
    opts = {"Mode": "Combination", "BackgroundLogoUrl": background_url(BUCKET, REGION, "bg/b.jpg")}
    jobs = job_dict(key="input/v.mp4", out="matting/v.mp4", CallBack=receiver.url, CallBackFormat="XML")
    jobs["Operation"]["SegmentVideoBody"] = opts
    job_id = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=jobs)["JobsDetail"][0]["JobId"]
    assert cloud.wait_idle(5)
    assert cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]["State"] == "Success"
    detail = cloud.get_job(BUCKET, job_id)
    assert detail.State == "Success" and detail.StartTime != "-" and detail.EndTime != "-"
    assert detail.Operation.MediaInfo.Format.Duration == 2.5
    assert detail.Operation.MediaResult.OutputFile.ObjectName == "matting/v.mp4"
    assert cos_client.get_object(Bucket=BUCKET, Key="matting/v.mp4")["Body"].get_raw_stream().read() == b"fedcba4"
    assert len(receiver.ok_bodies()) == 1


def test_engine_failures_missing_input_and_background(cloud, cos_client):
    def failing(job, request, input_path, background_path, output_path):
        raise EngineError("InputNotVideo", "cannot decode input")

    cloud.set_engine(failing)
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"abc")
    failed = create(cos_client, key="input/v.mp4")["JobId"]
    missing = create(cos_client, key="input/missing.mp4")["JobId"]
    jobs = job_dict(key="input/v.mp4")
    jobs["Operation"]["SegmentVideoBody"] = {"Mode": "Combination",
                                             "BackgroundLogoUrl": background_url(BUCKET, REGION, "bg/none.jpg")}
    no_bg = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=jobs)["JobsDetail"][0]["JobId"]
    assert cloud.wait_idle(5)
    got = {j: cloud.get_job(BUCKET, j) for j in (failed, missing, no_bg)}
    assert (got[failed].State, got[failed].Code, got[failed].Message) == ("Failed", "InputNotVideo",
                                                                          "cannot decode input")
    assert got[missing].State == "Failed" and "input/missing.mp4" in got[missing].Message
    assert got[no_bg].State == "Failed" and "bg/none.jpg" in got[no_bg].Message


def test_job_level_orders_the_queue(tmp_path):
    order, gate = [], threading.Event()

    def engine(job, request, input_path, background_path, output_path):
        gate.wait(5)
        order.append(job.Operation.UserData)
        open(output_path, "wb").close()
        return {}

    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], job_workers=1) as cloud:
        client = sdk_client(cloud)
        client.put_object(Bucket=BUCKET, Key="input/test.mp4", Body=b"x")
        cloud.set_engine(engine)
        for name, level in [("first", 0), ("low", 0), ("high", 2), ("mid", 1), ("high2", 2)]:
            create(client, user_data=name, level=level)  # "first" runs at once and holds the only worker
        gate.set()
        assert cloud.wait_idle(5)
    assert order == ["first", "high", "high2", "mid", "low"]


def test_engine_installed_later_picks_up_submitted_jobs_by_level(tmp_path):
    order = []

    def engine(job, request, input_path, background_path, output_path):
        order.append(job.Operation.UserData)
        open(output_path, "wb").close()
        return {}

    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], job_workers=1) as cloud:
        client = sdk_client(cloud)
        client.put_object(Bucket=BUCKET, Key="input/test.mp4", Body=b"x")
        for name, level in [("a", 0), ("b", 1), ("c", 0), ("d", 2)]:
            create(client, user_data=name, level=level)
        time.sleep(0.1)
        assert {j.State for j in cloud.list_jobs()} == {"Submitted"}  # no engine: jobs wait
        cloud.set_engine(engine)
        assert cloud.wait_idle(5)
    assert order == ["d", "b", "a", "c"]


def test_jobs_survive_restart(tmp_path):
    data = str(tmp_path / "c")
    with LocalCloud(data, buckets=[BUCKET]) as cloud:
        client = sdk_client(cloud)
        kept = create(client, user_data="cm:kept")["JobId"]
        done = create(client)["JobId"]
        cloud.set_job_state(BUCKET, done, "Success")
    with LocalCloud(data, buckets=[BUCKET]) as cloud:
        client = sdk_client(cloud)
        detail = client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=kept)["JobsDetail"][0]
        assert (detail["State"], detail["Operation"]["UserData"]) == ("Submitted", "cm:kept")
        assert client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=done)["JobsDetail"][0]["State"] == "Success"
        new = create(client)["JobId"]
        listed = client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=10)["JobsDetail"]
        assert [j["JobId"] for j in listed] == [new, done, kept]


def test_fault_after_status_creates_the_job_but_reports_an_error(cloud, cos_client):
    """A 5xx after the job was created: the SDK's own retry would create a second job."""
    cloud.faults.add("ci.create", status=503, after=True)
    with pytest.raises(CosServiceError):
        create(cos_client)
    assert len(cloud.list_jobs()) == 1
    cloud.faults.add("ci.create", status=503, after=True)
    create(sdk_client(cloud, retry=1))
    assert len(cloud.list_jobs()) == 3
