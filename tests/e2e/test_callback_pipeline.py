"""Callback path end to end: CI emulator -> Function URL -> real handler -> records and tags."""
import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from helpers import BUCKET, ROOT, clients_for, function_env, put, settings_for
from shared import tags, tokens
from shared.events import Upload
from shared.reconcile import reconcile
from shared.records import RecordStore
from shared.submit import Submitter

CALLBACKS = ROOT / "events" / "callbacks"
PLACEHOLDER = "s0000000000000000000000000000000"


def make_flow(cloud, cos_client, env=None, **settings_env):
    """A deployed pair: callback function behind a Function URL (with `env` beside the defaults), submit
    wired to it. (settings, clients, store, submit(key, body) -> (record id, job id, its callback URL))."""
    env = env or {}
    url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), function_env(cloud, **env))
    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL=url, **env, **settings_env)
    clients = clients_for(cloud, settings)
    store = RecordStore.of(settings, clients.storage)

    def submit(key="input/clip.mp4", body=b"video bytes"):
        etag = put(cos_client, key, body)
        up = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag,
                    size=len(body), event_name="cos:ObjectCreated:Put")
        out = Submitter(settings, clients, sleep=lambda s: None).process(up)
        assert out.outcome == "submitted"
        # The callback URL submit put into the job, with a token for this record.
        url = tokens.callback_url(settings.callback_url, settings.callback_keys, out.record_id, 600, time.time())
        return out.record_id, out.job_id, url

    return settings, clients, store, submit


@pytest.fixture
def flow(cloud, cos_client):
    return make_flow(cloud, cos_client, COS_MATTING_RECONCILE_AFTER_SECONDS="0")


def finish_silently(cloud, job_id, state="Success", **kw):
    """The job ends but its callback is lost."""
    cloud.faults.add("callback.send", count=10, drop=True)
    cloud.set_job_state(BUCKET, job_id, state, **kw)
    cloud.wait_idle(timeout=30)
    cloud.faults.clear()


def post(url, body, content_type="application/json"):
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=20)


def test_success_callback_records_result_and_tags(flow, cloud, cos_client):
    settings, clients, store, submit = flow
    rid, job_id, url = submit()
    cloud.set_job_state(BUCKET, job_id, "Success")
    cloud.wait_idle(timeout=30)
    record, _ = store.load(rid)
    assert record.state == "Success" and record.output["key"] == "matting/input/clip.mp4.mask.mp4"
    assert record.media and record.timings and "total_s" in record.timings
    out_tags = clients.storage.get_tags(BUCKET, "matting/input/clip.mp4.mask.mp4")
    assert out_tags[tags.ROLE] == "output" and out_tags[tags.RECORD] == rid and out_tags[tags.JOB] == job_id
    src_tags = clients.storage.get_tags(BUCKET, "input/clip.mp4")
    assert src_tags[tags.STATE] == "Success" and src_tags[tags.JOB] == job_id


def test_failed_job_stores_code_and_message(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit("input/broken.mp4")
    cloud.set_job_state(BUCKET, job_id, "Failed", code="InputNotVideo", message="input is not a video")
    cloud.wait_idle(timeout=30)
    record, _ = store.load(rid)
    assert record.state == "Failed" and record.error == {"Code": "InputNotVideo", "Message": "input is not a video"}
    assert clients.storage.get_tags(BUCKET, "input/broken.mp4")[tags.STATE] == "Failed"


@pytest.mark.parametrize("path", sorted(p for p in CALLBACKS.iterdir() if not p.name.startswith("invalid-")),
                         ids=lambda p: p.name)
def test_every_body_shape(flow, cloud, path):
    _, clients, store, submit = flow
    rid, job_id, url = submit(f"input/{path.stem}.mp4")
    finish_silently(cloud, job_id, "Success")
    body = path.read_bytes().replace(PLACEHOLDER.encode(), job_id.encode())
    response = post(url, body, "application/xml" if path.suffix == ".xml" else "application/json")
    assert response.status_code == 200, response.text
    record, _ = store.load(rid)
    assert record.state == "Success"  # whatever the body claims, the re-read job decides


@pytest.mark.parametrize("path", sorted(CALLBACKS.glob("invalid-*")), ids=lambda p: p.name)
def test_invalid_bodies_get_400_and_write_nothing(flow, cloud, path):
    _, clients, store, submit = flow
    rid, job_id, url = submit(f"input/{path.stem}.mp4")
    finish_silently(cloud, job_id)
    response = post(url, path.read_bytes())
    assert response.status_code == 400 and response.json()["error"]
    assert store.load(rid)[0].state == "Submitted"


def test_forged_and_tampered_tokens_get_401(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit()
    finish_silently(cloud, job_id)
    base = url.split("?")[0]
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}})
    for query in ({}, {**q, "t": "forged"}, {**q, "exp": str(int(q["exp"]) + 10)}, {**q, "rid": "0" * 32},
                  {"rid": q["rid"], "exp": q["exp"]}):
        assert requests.post(base, params=query, data=body, timeout=20).status_code == 401
    assert store.load(rid)[0].state == "Submitted"


def test_token_of_one_record_cannot_finish_another_job(flow, cloud):
    _, clients, store, submit = flow
    rid_a, job_a, url_a = submit("input/a.mp4")
    rid_b, job_b, _ = submit("input/b.mp4")
    finish_silently(cloud, job_b)
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_b}})
    assert post(url_a, body).status_code == 403
    assert store.load(rid_a)[0].state == "Submitted" and store.load(rid_b)[0].state == "Submitted"


def test_duplicates_replays_and_out_of_order(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit()
    cloud.set_job_state(BUCKET, job_id, "Success")
    cloud.wait_idle(timeout=30)
    final, stages = store.load(rid)
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id, "State": "Running"}})
    for _ in range(3):  # replayed, duplicated, and a stale "Running" hint
        response = post(url, body)
        assert response.status_code == 200 and response.json()["results"][0]["result"] == "unchanged"
    again, stages_after = store.load(rid)
    assert again == final and [s.key for s in stages_after] == [s.key for s in stages]


def test_concurrent_callbacks_for_one_job(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit()
    finish_silently(cloud, job_id)
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}})
    codes = []
    threads = [threading.Thread(target=lambda: codes.append(post(url, body).status_code)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    record, stages = store.load(rid)
    assert record.state == "Success" and sum(1 for s in stages if s.rank == 3) == 1
    assert clients.storage.get_tags(BUCKET, "matting/input/clip.mp4.mask.mp4")[tags.ROLE] == "output"


def test_write_failure_answers_5xx_and_the_retry_succeeds(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit()
    finish_silently(cloud, job_id)
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}})
    cloud.faults.add("cos.put", count=3, status=503)
    assert post(url, body).status_code == 503
    assert store.load(rid)[0].state == "Submitted"
    assert post(url, body).status_code == 200
    assert store.load(rid)[0].state == "Success"


def test_dropped_callback_is_recovered_by_reconcile(flow, cloud):
    settings, clients, store, submit = flow
    rid, job_id, url = submit()
    finish_silently(cloud, job_id, "Success")
    assert store.load(rid)[0].state == "Submitted"
    summary = reconcile(settings, clients, older_than=0)
    assert summary.advanced == 1 and summary.failed == 0
    record, _ = store.load(rid)
    assert record.state == "Success"
    assert clients.storage.get_tags(BUCKET, "matting/input/clip.mp4.mask.mp4")[tags.ROLE] == "output"
    assert reconcile(settings, clients, older_than=0).advanced == 0  # idempotent


def test_reconcile_resubmits_a_claim_that_never_became_a_job(flow, cloud, cos_client):
    settings, clients, store, submit = flow
    from shared.records import Record, Source

    put(cos_client, "input/orphan.mp4", b"orphan")
    version = clients.storage.version(BUCKET, "input/orphan.mp4")
    rid = version.record_id
    store.claim(Record(id=rid, source=Source.of(version, "ap-guangzhou")))
    summary = reconcile(settings.model_copy(update={"claim_lease_seconds": 0}), clients, older_than=3600)
    assert summary.resubmitted == 1
    record, _ = store.load(rid)
    assert record.state == "Submitted" and record.job_id


def test_oversized_body_gets_413(flow, cloud):
    _, clients, store, submit = flow
    rid, job_id, url = submit()
    response = post(url, b"<" + b"x" * (300 * 1024))
    assert response.status_code == 413


def test_reconcile_sweeps_uploads_that_never_became_a_record(flow, cloud, cos_client):
    settings, clients, store, submit = flow
    put(cos_client, "input/never-triggered.mp4", b"lost event")   # its trigger never ran
    put(cos_client, "input/notes.txt", b"not a video")            # skipped: suffix
    put(cos_client, "matting/already-an-output.mp4", b"output")   # not watched
    summary = reconcile(settings, clients, older_than=0)
    assert summary.swept == 1 and summary.failed == 0
    again = reconcile(settings, clients, older_than=0)
    assert again.swept == 0 and again.resubmitted == 0
    jobs, _ = clients.ci.list()
    assert [j.Input.Object for j in jobs] == ["input/never-triggered.mp4"]


def test_reconcile_goes_on_past_an_unreadable_record(flow, cloud, cos_client):
    settings, clients, store, submit = flow
    rid, job_id, url = submit("input/fine.mp4")
    finish_silently(cloud, job_id)
    broken, _, _ = submit("input/broken-record.mp4")
    for name in ("001-0-claim-1.json", "001-1-submitted.json"):  # every snapshot of it unreadable
        cos_client.put_object(Bucket=BUCKET, Key=f"{settings.records_prefix}{broken}/{name}", Body=b"")
    summary = reconcile(settings, clients, older_than=0)
    assert summary.advanced == 1 and len(summary.unreadable) == 1
    assert summary.unreadable[0].startswith(f"{settings.records_prefix}{broken}/001-1-submitted.json: empty")
    assert store.load(rid)[0].state == "Success"
