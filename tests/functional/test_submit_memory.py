"""shared/submit driven through the in-memory cloud: every outcome of one upload, no sockets.

The same paths run over HTTP in tests/e2e/test_submit_pipeline.py; here they take milliseconds,
so the edge cases (lost answers, throttling, takeover, concurrency) are cheap to cover.
"""
import threading
import time

import pytest

from helpers import BUCKET
from shared import tags
from shared.events import Upload
from shared.records import Record, RecordStore, Source
from shared.submit import Submitter, handle

VIDEO = b"\x00\x00\x00\x18ftypmp42 video bytes"


@pytest.fixture
def pipe(memory_cloud, settings_of):
    settings = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb",
                           COS_MATTING_CLAIM_LEASE_SECONDS="60",
                           COS_MATTING_RULES='[{"prefix": "input/greenscreen/", "segment_type": "GreenScreenSeg"}]')
    clients = memory_cloud.clients(settings)
    store = RecordStore.of(settings, clients.storage)
    return settings, clients, Submitter(settings, clients, sleep=lambda s: None), store


def upload(cloud, key, body=VIDEO):
    etag = cloud.upload(BUCKET, key, body)
    return Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag, size=len(body),
                  event_name="cos:ObjectCreated:Put")


def test_one_upload_one_job_one_record_and_tags(pipe, memory_cloud):
    settings, clients, submitter, store = pipe
    up = upload(memory_cloud, "input/team/Interview One.MOV")
    out = submitter.process(up)
    assert out.outcome == "submitted"
    [job] = memory_cloud.list_jobs(BUCKET)
    rid = clients.storage.version(up.bucket, up.key).record_id
    assert (job.JobId, job.user_data, job.Input.Object) == (out.job_id, f"cm:{rid}.1", up.key)
    assert job.Operation.Output.Object == f"matting/.versions/{rid}-1.mp4"  # published on success, see progress.py
    record, _ = store.load(rid)
    assert (record.state, record.job_id) == ("Submitted", job.JobId) and "CallBack" not in record.request
    assert record.publish_as == "matting/input/team/Interview One.MOV.mask.mp4"
    assert memory_cloud.tags(BUCKET, up.key) == {tags.RECORD: rid, tags.JOB: job.JobId, tags.STATE: "Submitted",
                                                 tags.ATTEMPT: "1"}


def test_rules_pick_the_segment_type(pipe, memory_cloud):
    _, clients, submitter, _ = pipe
    out = submitter.process(upload(memory_cloud, "input/greenscreen/take1.mp4"))
    assert clients.ci.describe(out.job_id).Operation.SegmentVideoBody.SegmentType == "GreenScreenSeg"


def test_the_same_event_at_once_and_later_gives_one_job(pipe, memory_cloud):
    _, _, submitter, _ = pipe
    up = upload(memory_cloud, "input/race.mp4")
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(submitter.process(up).outcome)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes.append(submitter.process(up).outcome)  # SCF's retry, later
    assert sorted(outcomes) == ["duplicate"] * 8 + ["submitted"]
    assert len(memory_cloud.list_jobs(BUCKET)) == 1


def test_lost_answer_to_the_job_create_still_gives_one_job(pipe, memory_cloud):
    _, _, submitter, _ = pipe
    memory_cloud.faults.add("ci.create", drop=True, after=True)  # the job IS created, the answer is lost
    out = submitter.process(upload(memory_cloud, "input/slow.mp4"))
    assert out.outcome == "submitted"
    assert [j.JobId for j in memory_cloud.list_jobs(BUCKET)] == [out.job_id]


def test_lost_answer_to_our_own_claim_is_recognised(pipe, memory_cloud):
    """The claim was written, the answer lost, the SDK's retry got 409: that claim is ours."""
    _, _, submitter, store = pipe
    memory_cloud.faults.add("cos.put", drop=True, after=True)
    out = submitter.process(upload(memory_cloud, "input/claim.mp4"))
    assert out.outcome == "submitted" and len(memory_cloud.list_jobs(BUCKET)) == 1
    assert [s.key.rsplit("/", 1)[1] for s in store.stages(out.record_id)] == ["001-0-claim-1.json", "001-1-submitted.json"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(pipe, memory_cloud, status):
    _, _, submitter, _ = pipe
    memory_cloud.faults.add("ci.create", count=2, status=status)
    assert submitter.process(upload(memory_cloud, "input/busy.mp4")).outcome == "submitted"
    assert len(memory_cloud.list_jobs(BUCKET)) == 1 and memory_cloud.faults.injected["ci.create"] == 2


def test_retries_run_out_and_the_next_delivery_waits_for_the_lease(pipe, memory_cloud):
    settings, clients, submitter, _ = pipe
    up = upload(memory_cloud, "input/down.mp4")
    memory_cloud.faults.add("ci.create", count=settings.submit_attempts, status=503)
    assert submitter.process(up).outcome == "failed:submit"
    assert submitter.process(up).outcome == "duplicate"  # claimed and within the lease
    later = Submitter(settings.model_copy(update={"claim_lease_seconds": 0}), clients, sleep=lambda s: None)
    assert later.process(up).outcome == "submitted" and len(memory_cloud.list_jobs(BUCKET)) == 1


def test_a_permanent_rejection_is_recorded_and_never_resubmitted(pipe, memory_cloud):
    _, _, submitter, store = pipe
    up = upload(memory_cloud, "input/rejected.mp4")
    memory_cloud.faults.add("ci.create", status=400)
    out = submitter.process(up)
    assert out.outcome == "failed:submit"
    record, _ = store.load(out.record_id)
    assert record.state == "Failed" and record.error["Code"] == "InvalidArgument"
    assert submitter.process(up).outcome == "duplicate" and memory_cloud.list_jobs(BUCKET) == []


def test_a_stale_claim_is_taken_over_once(pipe, memory_cloud):
    settings, clients, submitter, store = pipe
    up = upload(memory_cloud, "input/crashed.mp4")
    version = clients.storage.version(up.bucket, up.key)
    rid = version.record_id
    store.claim(Record(id=rid, source=Source.of(version, "ap-guangzhou")))  # an invocation that died before POST /jobs
    assert submitter.process(up).outcome == "duplicate"
    later = Submitter(settings.model_copy(update={"claim_lease_seconds": 0}), clients, sleep=lambda s: None)
    assert later.process(up).outcome == "submitted"
    assert later.process(up).outcome == "duplicate" and len(memory_cloud.list_jobs(BUCKET)) == 1
    assert store.load(rid)[0].generation == 2  # a takeover within attempt 1


def test_a_lost_submitted_stage_finds_the_existing_job(pipe, memory_cloud):
    settings, clients, submitter, _ = pipe
    up = upload(memory_cloud, "input/half.mp4")
    first = submitter.process(up)
    memory_cloud.delete(BUCKET, f"{settings.records_prefix}{first.record_id}/001-1-submitted.json")
    later = Submitter(settings.model_copy(update={"claim_lease_seconds": 0}), clients, sleep=lambda s: None)
    again = later.process(up)
    assert (again.outcome, again.job_id) == ("submitted", first.job_id) and len(memory_cloud.list_jobs(BUCKET)) == 1


def test_skips_and_failures_in_one_batch(pipe, memory_cloud):
    _, clients, submitter, _ = pipe
    bad, good = upload(memory_cloud, "input/bad.mp4"), upload(memory_cloud, "input/good.mp4")
    image, output = upload(memory_cloud, "input/poster.jpg"), upload(memory_cloud, "matting/x.mask.mp4")
    copied = upload(memory_cloud, "input/copied-output.mp4")
    clients.storage.put_tags(BUCKET, copied.key, {tags.ROLE: "output"})
    gone = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/deleted.mp4", etag="x",
                  size=10, event_name="cos:ObjectCreated:Put")
    memory_cloud.faults.add("ci.create", status=400)
    outcomes = handle([bad, good, image, output, copied, gone], submitter)
    assert [o.outcome for o in outcomes] == ["failed:submit", "submitted", "skipped:suffix", "skipped:loop-guard",
                                             "skipped:loop-guard", "skipped:gone"]


def test_tags_read_failure_is_a_failed_step_not_a_job(pipe, memory_cloud):
    _, _, submitter, _ = pipe
    memory_cloud.faults.add("cos.tagging.get", count=3, status=503)  # outlasts the SDK's two retries
    out = submitter.process(upload(memory_cloud, "input/tags-down.mp4"))
    assert out.outcome == "failed:tags" and memory_cloud.list_jobs(BUCKET) == []


def test_a_retry_of_another_deployments_record_is_refused_before_any_write(memory_cloud, settings_of):
    """Submitter.retry (under `cos-matting retry` and the dashboard's retry): another deployment's record
    (one records store) is theirs to run again; this one's own record is retried."""
    prod, dev = (settings_of(COS_MATTING_DEPLOYMENT=name, COS_MATTING_CALLBACK_URL=f"https://{name}.example.com/cb")
                 for name in ("cos-matting-prod", "cos-matting-dev"))
    memory_cloud.faults.add("ci.create", status=400)
    failed = Submitter(prod, memory_cloud.clients(prod), sleep=lambda s: None).process(upload(memory_cloud, "input/p.mp4"))
    assert failed.outcome == "failed:submit"
    listing = memory_cloud.client().list_objects
    before = sorted(o["Key"] for o in listing(Bucket=BUCKET).get("Contents", []))
    out = Submitter(dev, memory_cloud.clients(dev), sleep=lambda s: None).retry(failed.record_id)
    assert (out.outcome, out.detail) == ("failed:claim", f"record {failed.record_id} belongs to deployment "
                                                         "cos-matting-prod, not cos-matting-dev")
    assert sorted(o["Key"] for o in listing(Bucket=BUCKET).get("Contents", [])) == before  # no stage, marker, event
    assert memory_cloud.list_jobs(BUCKET) == []
    out = Submitter(prod, memory_cloud.clients(prod), sleep=lambda s: None).retry(failed.record_id)
    assert out.outcome == "submitted" and out.attempt == 2
    [job] = memory_cloud.list_jobs(BUCKET)
    assert job.user_data == f"cm:{failed.record_id}.2@cos-matting-prod"


def test_the_same_bytes_uploaded_again_after_a_failure_are_rerun_by_the_records_own_deployment(memory_cloud, settings_of):
    """Two deployments watching one prefix both get the new upload's event: only the one whose record
    failed claims attempt 2 (the other's event is a duplicate), so they never race for it."""
    prod, dev = (settings_of(COS_MATTING_DEPLOYMENT=name) for name in ("cos-matting-prod", "cos-matting-dev"))
    memory_cloud.faults.add("ci.create", status=400)
    failed = Submitter(prod, memory_cloud.clients(prod), sleep=lambda s: None).process(upload(memory_cloud, "input/q.mp4"))
    assert failed.outcome == "failed:submit"
    again = upload(memory_cloud, "input/q.mp4").model_copy(update={"event_time": int(time.time()) + 5})
    assert Submitter(dev, memory_cloud.clients(dev), sleep=lambda s: None).process(again).outcome == "duplicate"
    assert memory_cloud.list_jobs(BUCKET) == []
    out = Submitter(prod, memory_cloud.clients(prod), sleep=lambda s: None).process(again)
    assert (out.outcome, out.attempt) == ("submitted", 2)
    [job] = memory_cloud.list_jobs(BUCKET)
    assert job.user_data == f"cm:{failed.record_id}.2@cos-matting-prod"
