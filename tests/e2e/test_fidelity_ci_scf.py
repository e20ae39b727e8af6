"""The local cloud behaves like CI and SCF as their documents and SDK sources say (COS:
tests/e2e/test_fidelity_cos.py).

Every assertion names its source. The real cos-python-sdk-v5 is the client throughout: a
local cloud that only agrees with a client we wrote proves nothing about the service.
"""
import time

import pytest

from helpers import BUCKET, REGION, ROOT, clients_for, function_env, sdk_client, settings_for
from shared import xmlcodec
from shared.identity import Correlation


# -- CI ----------------------------------------------------------------------------------------

def job_request(key="input/a.mp4", marker="cm:test"):
    from shared.jobs import JobRequest

    return JobRequest.model_validate({
        "Tag": "SegmentVideoBody", "Input": {"Object": key},
        "Operation": {"UserData": marker, "Output": {"Region": REGION, "Bucket": BUCKET, "Object": "matting/a.mp4"}}})


@pytest.fixture
def ci(cloud):
    return clients_for(cloud, settings_for(cloud)).ci


def test_job_creation_sends_application_xml(cloud, ci, cos_client):
    job = ci.create(job_request())
    # The create-job page (460/83973) sends Content-Type: application/xml.
    assert cloud.jobs.record(BUCKET, job.JobId).content_type == "application/xml"
    # cos_client.py ci_create_media_jobs adds no Content-Type by itself: the client must pass it.
    raw = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=job_request().wire())["JobsDetail"][0]["JobId"]
    assert cloud.jobs.record(BUCKET, raw).content_type == ""


def test_cancel_only_a_job_not_yet_started(cloud, ci):
    from shared.cloud import CloudError

    waiting = ci.create(job_request())
    ci.cancel(waiting.JobId)
    assert ci.describe(waiting.JobId).State == "Cancel"
    running = ci.create(job_request())
    cloud.set_job_state(BUCKET, running.JobId, "Running")
    # https://cloud.tencent.com/document/api/1246/109264: "只有未执行的任务才可以被取消";
    # intl 1045/43702 names the error "The job provided can not be modified".
    for root in ("Response", "Error"):  # CI documents <Response>; the Go SDK parses <Error>: both map
        cloud.ci_error_root = root
        with pytest.raises(CloudError) as err:
            ci.cancel(running.JobId)
        assert (err.value.status, err.value.code) == (400, "InvalidArgument")
        assert "can not be modified" in err.value.message
    assert cloud.get_job(BUCKET, running.JobId).State == "Running"


def test_describe_of_an_id_ci_never_created(cloud, ci, cos_client):
    from shared.cloud import CloudError

    never = "s" + "f" * 32
    # DescribeMediaJob (460/84790): an unknown id answers 200 with <NonExistJobIds>, not an error.
    answer = cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=never)
    assert answer["NonExistJobIds"] == never and not answer.get("JobsDetail")
    with pytest.raises(CloudError) as err:
        ci.describe(never)
    assert (err.value.status, err.value.code) == (404, "NoSuchJob")
    known = ci.create(job_request())
    both = cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=f"{known.JobId},{never}")
    assert [j["JobId"] for j in both["JobsDetail"]] == [known.JobId] and both["NonExistJobIds"] == never


def test_the_lookup_finds_a_job_on_the_ai_queue_and_never_an_uncreated_one(cloud, ci, cos_client):
    # ci_get_ai_queue is DescribeAiProcessQueues, GET /ai_queue (460/79394).
    queues = cos_client.ci_get_ai_queue(Bucket=BUCKET)["QueueList"]
    [queue] = queues if isinstance(queues, list) else [queues]
    assert queue["Category"] == "AIProcess"
    job = ci.create(job_request("input/x.mp4", "cm:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.1|user data"))
    assert job.QueueId == queue["QueueId"]  # the job went to the AI queue
    for _ in range(3):
        ci.create(job_request("input/other.mp4", "cm:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.1"))
    lookup = clients_for(cloud, settings_for(cloud)).ci  # a fresh instance: its queue comes from /ai_queue
    before = dict(cloud.requests)
    found = lookup.find(Correlation("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), input_object="input/x.mp4")
    assert found is not None and found.JobId == job.JobId
    spent = {k: v - before.get(k, 0) for k, v in cloud.requests.items() if v != before.get(k, 0)}
    assert spent == {"ci.ai_queue": 1, "ci.list": 1}  # queue cached after this, one page of jobs
    assert lookup.find(Correlation("cccccccccccccccccccccccccccccccc"), input_object="input/x.mp4") is None
    assert lookup.find(Correlation("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), input_object="input/other.mp4") is None  # scoped to the input key
    assert cloud.requests["ci.ai_queue"] == before.get("ci.ai_queue", 0) + 1


def test_response_models_keep_unknown_fields_and_requests_stay_strict(cloud, ci):
    from pydantic import ValidationError

    from shared.jobs import JobRequest, JobsResponse

    # Real JobsDetail carry fields the field tables omit (DescribeMediaJob's own example has Progress, api/436/47211).
    body = xmlcodec.dump("Response", {"JobsDetail": {
        "JobId": "s1", "State": "Success", "Progress": "100", "SubTag": "x", "Workflow": {"Name": "w"},
        "Input": {"Object": "input/a.mp4", "CosHeaders": {"Key": "k", "Value": "v"}},
        "Operation": {"SegmentVideoBody": {"Mode": "Mask", "NewOption": "1"},
                      "Output": {"Region": REGION, "Bucket": BUCKET, "Object": "o.mp4", "StreamExtract": ""},
                      "MediaResult": {"OutputFile": {"Bucket": BUCKET, "Region": REGION, "ObjectName": "o.mp4",
                                                     "Md5Info": {"ObjectName": "o.mp4", "Md5": "abc"}}}}}})
    [detail] = JobsResponse.from_xml(body).JobsDetail
    assert detail.terminal and detail.wire()["Progress"] == "100"
    assert detail.Operation.MediaResult.OutputFile.wire()["Md5Info"]["Md5"] == "abc"
    with pytest.raises(ValidationError, match="Unexpected"):
        JobRequest.model_validate({**job_request().wire(), "Unexpected": "1"})
    job = ci.describe(ci.create(job_request()).JobId)  # the local CI sends such fields too
    assert job.wire()["Progress"] == "0" and job.wire()["QueueType"] == "AIProcess"


# -- SCF ---------------------------------------------------------------------------------------

def test_function_url_events_new_and_old_shapes_reach_flask_alike():
    from shared.funcurl import to_wsgi_event

    # SCF doc 583/96099 (2025): queryString, no requestContext/isBase64Encoded, x-scf-remote-addr.
    new = {"httpMethod": "POST", "path": "/", "headers": {"x-scf-remote-addr": "203.0.113.9"}, "body": "{}",
           "queryString": {"rid": "r"}}
    old = {"httpMethod": "POST", "path": "/", "headers": {}, "body": "e30=", "isBase64Encoded": True,
           "queryString": {"rid": "r"}, "requestContext": {"sourceIp": "203.0.113.9"}}
    for event in (new, old):
        out = to_wsgi_event(event)
        assert out["requestContext"]["identity"]["sourceIp"] == "203.0.113.9"
        assert out["queryStringParameters"] == {"rid": "r"}


def test_cos_events_from_the_local_scf_are_shaped_like_captured_ones(cloud, cos_client, tmp_path):
    fn = tmp_path / "dump"
    fn.mkdir()
    (fn / "index.py").write_text("def main_handler(event, context):\n    return event\n")
    cloud.add_trigger(BUCKET, str(fn), prefix="input/")
    cos_client.put_object(Bucket=BUCKET, Key="input/e.mp4", Body=b"x")
    assert cloud.wait_idle(20)
    [inv] = cloud.invocations
    record = inv.result["Records"][0]
    # Delivered events carry s3Region and a full-region cosRegion beside 583/9707's short
    # region, and the trigger's qualifier $DEFAULT in eventQueue.
    assert record["cos"]["cosBucket"] == {"region": "gz", "name": "videos", "appid": "1250000000",
                                          "s3Region": REGION, "cosRegion": REGION}
    assert record["event"]["eventQueue"].endswith(".dump.$DEFAULT")


def test_rotating_credentials_no_call_fails_and_old_ones_expire(tmp_path):
    from localcloud import LocalCloud
    from shared.cloud import Clients, CloudError

    # SCF role credentials are temporary (TENCENTCLOUD_SESSIONTOKEN, 583/32748): here they rotate every 0.3 s
    # and each pair stops working 0.9 s after it was issued.
    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], region=REGION, credential_rotation=0.3,
                    credential_lifetime=0.9) as cloud:
        env = function_env(cloud, **cloud.function_env())
        first = dict(env)
        clients = Clients(settings_for(cloud), env)  # reads `env` again before every call

        deadline = time.time() + 2.0
        calls = 0
        while time.time() < deadline:
            env.update(cloud.credentials.role_env())  # what SCF hands the next invocation
            clients.storage.put_json(BUCKET, f"r/{calls}.json", b"{}")
            clients.ci.list(size=1)
            calls += 1
        assert calls > 5 and cloud.credentials.issued >= 5
        stale = Clients(settings_for(cloud), first)  # never sees the new credentials
        with pytest.raises(CloudError) as err:
            stale.storage.get(BUCKET, "r/0.json")
        assert err.value.code == "ExpiredToken"
        env.update(TENCENTCLOUD_SECRETID=cloud.secret_id, TENCENTCLOUD_SECRETKEY=cloud.secret_key,
                   TENCENTCLOUD_SESSIONTOKEN="")  # to a long-term key without token (SDK: set_credential)
        assert clients.storage.get(BUCKET, "r/0.json") == b"{}"
        no_token = {**env, **cloud.credentials.role_env(), "TENCENTCLOUD_SESSIONTOKEN": ""}  # needs its token
        with pytest.raises(CloudError) as err:
            Clients(settings_for(cloud), no_token).storage.get(BUCKET, "r/0.json")
        assert err.value.status == 403


@pytest.mark.slow
def test_rotating_credentials_during_a_run_of_the_real_functions(tmp_path):
    from localcloud import LocalCloud

    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], region=REGION, credential_rotation=0.4,
                    credential_lifetime=1.2) as cloud:
        env = function_env(cloud)
        for name in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY"):
            env.pop(name)  # the function gets the role's credentials, as on SCF
        cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="input/",
                          concurrency=1)
        uploader = sdk_client(cloud)  # the account's own key: it does not rotate
        for i in range(6):
            uploader.put_object(Bucket=BUCKET, Key=f"input/{i}.mp4", Body=b"\x00\x00\x00\x18ftypmp42 x")
            time.sleep(0.5)  # longer than a rotation: every invocation meets new credentials
        assert cloud.wait_idle(60)
        assert [i.ok for i in cloud.invocations] == [True] * 6, [i.error for i in cloud.invocations]
        first = cloud.runtime.functions["submit"].env["TENCENTCLOUD_SECRETID"]  # what its cold start got
        assert len(cloud.list_jobs(BUCKET)) == 6
        assert cloud.credentials.issued >= 3 and cloud.credentials.expired(first)
