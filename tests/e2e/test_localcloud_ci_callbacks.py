"""The local cloud's CI callbacks: formats, retries until 2xx, faults on delivery (the job API:
tests/e2e/test_localcloud_ci.py)."""
import json
import shutil

import pytest
import requests
from qcloud_cos.cos_exception import CosServiceError

from helpers import BUCKET, OTHER_BUCKET, REGION, sdk_client
from localcloud import LocalCloud
from shared import xmlcodec
from shared.jobs import JobDetail
from .ci_support import Receiver, create


def test_json_callback_on_success(cloud, cos_client, receiver):
    job_id = create(cos_client, CallBack=receiver.url, CallBackFormat="JSON")["JobId"]
    cloud.set_job_state(BUCKET, job_id, "Success")
    assert cloud.wait_idle(5)
    [(status, ctype, path, body)] = receiver.bodies
    assert ctype == "application/json" and path == "/cb?token=t1"
    data = json.loads(body)
    assert data["EventName"] == "TaskFinish"
    [detail] = data["JobsDetail"]  # an array (intl CI docs "Callback content", job APIs)
    assert detail["JobId"] == job_id and detail["State"] == "Success"
    assert detail["Operation"]["JobLevel"] == "0"  # every value is a string
    # MediaResult.OutputFile carries Md5Info in real answers (not in the field tables of 460/84790).
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
    order = [json.loads(b)["JobsDetail"][0]["JobId"] for b in receiver.ok_bodies()]
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
