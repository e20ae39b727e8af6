"""Submit path end to end against the local cloud: one upload, exactly one job."""
import threading

import pytest

from helpers import BUCKET, ROOT, clients_for, function_env, put, settings_for
from shared import tags
from shared.events import Upload
from shared.records import Record, RecordStore, Source
from shared.submit import Submitter, handle


def all_jobs(clients):
    jobs, token = [], ""
    while True:
        page, token = clients.ci.list(next_token=token)
        jobs += page
        if not token or not page:
            return jobs


def upload_of(client, key, body=b"\x00\x00\x00\x18ftypmp42 video bytes", event="cos:ObjectCreated:Put"):
    etag = put(client, key, body)
    return Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag,
                  size=len(body), event_name=event)


@pytest.fixture
def pipeline(cloud, cos_client):
    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL="http://127.0.0.1:1/cb",
                            COS_MATTING_CLAIM_LEASE_SECONDS="60",
                            COS_MATTING_RULES='[{"prefix": "input/greenscreen/", "segment_type": "GreenScreenSeg"}]')
    clients = clients_for(cloud, settings)
    submitter = Submitter(settings, clients, sleep=lambda s: None)
    store = RecordStore.of(settings, clients.storage)
    return settings, clients, submitter, store


def test_upload_becomes_one_complete_job(pipeline, cos_client):
    settings, clients, submitter, store = pipeline
    up = upload_of(cos_client, "input/team/Interview One.MOV")
    out = submitter.process(up)
    assert out.outcome == "submitted" and out.job_id
    [job] = all_jobs(clients)
    assert job.JobId == out.job_id and job.State == "Submitted"
    rid = clients.storage.version(up.bucket, up.key).record_id
    assert job.Operation.UserData == f"cm:{rid}.1"
    # the job writes its own key; the callback publishes it as matting/input/team/Interview One.MOV.mask.mp4
    assert job.Operation.Output.Object == f"matting/.versions/{rid}-1.mp4"
    assert job.Input.Object == up.key
    record, _ = store.load(rid)
    assert (record.state, record.job_id) == ("Submitted", job.JobId)
    assert "CallBack" not in record.request  # the token never lands in the record
    assert cos_client.get_object_tagging(Bucket=BUCKET, Key=up.key)["TagSet"]["Tag"]
    assert clients.storage.get_tags(BUCKET, up.key)[tags.JOB] == job.JobId


def test_rules_choose_the_segment_type(pipeline, cos_client):
    _, clients, submitter, _ = pipeline
    out = submitter.process(upload_of(cos_client, "input/greenscreen/take1.mp4"))
    job = clients.ci.describe(out.job_id)
    assert job.Operation.SegmentVideoBody.SegmentType == "GreenScreenSeg"


def test_same_event_twice_at_once_and_later_gives_one_job(pipeline, cos_client):
    _, clients, submitter, _ = pipeline
    up = upload_of(cos_client, "input/race.mp4")
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(submitter.process(up).outcome)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes.append(submitter.process(up).outcome)  # an SCF retry, later
    assert sorted(outcomes) == ["duplicate"] * 4 + ["submitted"]
    assert len(all_jobs(clients)) == 1


def test_new_version_of_same_key_is_a_new_job(pipeline, cos_client):
    _, clients, submitter, _ = pipeline
    first = submitter.process(upload_of(cos_client, "input/v.mp4", b"version one"))
    second = submitter.process(upload_of(cos_client, "input/v.mp4", b"version two"))
    assert first.outcome == second.outcome == "submitted" and first.record_id != second.record_id
    assert len(all_jobs(clients)) == 2


def test_timeout_after_job_created_still_one_job(pipeline, cloud, cos_client):
    _, clients, submitter, _ = pipeline
    up = upload_of(cos_client, "input/slow.mp4")
    cloud.faults.add("ci.create", count=1, drop=True, after=True)  # the job IS created, the answer is lost
    out = submitter.process(up)
    assert out.outcome == "submitted"
    [job] = all_jobs(clients)
    assert job.JobId == out.job_id


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_5xx_are_retried(pipeline, cloud, cos_client, status):
    _, clients, submitter, _ = pipeline
    cloud.faults.add("ci.create", count=2, status=status)
    out = submitter.process(upload_of(cos_client, "input/busy.mp4"))
    assert out.outcome == "submitted" and len(all_jobs(clients)) == 1


def test_permanent_rejection_is_recorded_as_failed(pipeline, cloud, cos_client):
    _, clients, submitter, store = pipeline
    up = upload_of(cos_client, "input/rejected.mp4")
    cloud.faults.add("ci.create", count=1, status=400)
    out = submitter.process(up)
    assert out.outcome == "failed:submit"
    record, _ = store.load(out.record_id)
    assert record.state == "Failed" and record.error["Code"] and record.retry == "after-fix"
    assert submitter.process(up).outcome == "duplicate"  # the SCF retry does not resubmit (cos-matting retry does)
    assert all_jobs(clients) == []


def test_crash_between_claim_and_submit_is_recovered(pipeline, cos_client):
    settings, clients, submitter, store = pipeline
    up = upload_of(cos_client, "input/crashed.mp4")
    version = clients.storage.version(up.bucket, up.key)
    # A previous invocation claimed and died before POST /jobs.
    store.claim(Record(id=version.record_id, source=Source.of(version, "ap-guangzhou")))
    assert submitter.process(up).outcome == "duplicate"  # within the lease: maybe still running
    later = Submitter(settings.model_copy(update={"claim_lease_seconds": 0}), clients, sleep=lambda s: None)
    assert later.process(up).outcome == "submitted"  # past the lease: taken over
    assert len(all_jobs(clients)) == 1
    assert later.process(up).outcome == "duplicate"


def test_crash_after_submit_before_record_does_not_submit_twice(pipeline, cos_client):
    settings, clients, submitter, store = pipeline
    up = upload_of(cos_client, "input/half.mp4")
    first = submitter.process(up)
    # Simulate the lost record: delete the Submitted stage, keep claim and job.
    cos_client.delete_object(Bucket=BUCKET, Key=f"{settings.records_prefix}{first.record_id}/001-1-submitted.json")
    later = Submitter(settings.model_copy(update={"claim_lease_seconds": 0}), clients, sleep=lambda s: None)
    again = later.process(up)
    assert again.outcome == "submitted" and again.job_id == first.job_id
    assert len(all_jobs(clients)) == 1


def test_loop_guard_skips_outputs_and_tagged_objects(pipeline, cos_client):
    _, clients, submitter, _ = pipeline
    out_up = upload_of(cos_client, "matting/team/x.mask.mp4")
    assert submitter.process(out_up).outcome == "skipped:loop-guard"
    copied = upload_of(cos_client, "input/copied-output.mp4")
    clients.storage.put_tags(BUCKET, copied.key, {tags.ROLE: "output"})
    assert submitter.process(copied).outcome == "skipped:loop-guard"
    assert all_jobs(clients) == []


def test_skips_and_failures_in_one_batch(pipeline, cloud, cos_client):
    _, clients, submitter, _ = pipeline
    good = upload_of(cos_client, "input/good.mp4")
    bad = upload_of(cos_client, "input/bad.mp4")
    image = upload_of(cos_client, "input/poster.jpg")
    gone = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/deleted.mp4",
                  etag="x", size=10, event_name="cos:ObjectCreated:Put")
    cloud.faults.add("ci.create", count=1, status=400)
    outcomes = handle([bad, good, image, gone], submitter)
    assert [o.outcome for o in outcomes] == ["failed:submit", "submitted", "skipped:suffix", "skipped:gone"]


def test_trigger_runs_the_real_handler_and_outputs_never_trigger(cloud, cos_client):
    env = function_env(cloud)
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="",
                      events=("cos:ObjectCreated:*",), retries=2, retry_delay=0.2)
    put(cos_client, "input/triggered.mp4")
    put(cos_client, "matting/triggered.mask.mp4")  # an output: the code guard must skip it
    cloud.wait_idle(timeout=30)
    settings = settings_for(cloud)
    clients = clients_for(cloud, settings)
    jobs = all_jobs(clients)
    assert [j.Input.Object for j in jobs] == ["input/triggered.mp4"]
    results = {o["key"]: o["outcome"] for inv in cloud.invocations if inv.ok for o in inv.result["outcomes"]}
    assert results.pop("input/triggered.mp4") == "submitted"
    assert results.pop("matting/triggered.mask.mp4") == "skipped:loop-guard"
    # The trigger covers the whole bucket here, so our own record writes arrive too: all skipped.
    assert results and all(k.startswith(".cos-matting/records/") and v == "skipped:loop-guard"
                           for k, v in results.items())


def test_handler_raises_after_processing_the_rest_and_the_retry_is_safe(cloud, cos_client):
    from shared.events import build_event

    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=function_env(cloud), prefix="nothing/")
    bad, good = upload_of(cos_client, "input/first-fails.mp4"), upload_of(cos_client, "input/second-fine.mp4")
    cloud.faults.add("ci.create", count=4, status=503)  # the first record exhausts its 4 attempts
    event = build_event([bad, good])
    first = cloud.invoke("submit", event)
    assert not first.ok and "input/first-fails.mp4: failed:submit" in first.error
    assert [j.Input.Object for j in cloud.list_jobs(BUCKET)] == ["input/second-fine.mp4"]
    settings = settings_for(cloud, COS_MATTING_CLAIM_LEASE_SECONDS="60")
    retry = cloud.invoke("submit", event)  # SCF's retry, a minute later in real life
    assert retry.ok and [o["outcome"] for o in retry.result["outcomes"]] == ["duplicate", "duplicate"]
    # within the lease the half-done upload waits for reconcile, which finishes it
    from shared.reconcile import reconcile
    summary = reconcile(settings.model_copy(update={"claim_lease_seconds": 0}), clients_for(cloud, settings),
                        older_than=3600)
    assert summary.resubmitted == 1
    assert sorted(j.Input.Object for j in cloud.list_jobs(BUCKET)) == ["input/first-fails.mp4", "input/second-fine.mp4"]
