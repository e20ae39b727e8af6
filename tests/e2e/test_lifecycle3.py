"""Issue 22: lifecycle, third round, through the real handlers and the CLI on the local cloud.

Versioned sources, in-place edits, clock skew, starved sweeps, forgotten jobs, late tag
writes. `Flow` (tests/e2e/test_lifecycle.py) wires the deployed trio on one local cloud.
"""
import json
import time

import pytest

from e2e.test_lifecycle import Flow, outcomes
from helpers import BUCKET, OTHER_BUCKET, function_env
from shared import tags
from shared.events import Upload
from shared.reconcile import reconcile


def cli(cloud, monkeypatch, capsys, *argv, **env):
    from cli.main import main

    for k, v in function_env(cloud, **env).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture
def flow(cloud, cos_client):
    return Flow(cloud, cos_client)


@pytest.fixture
def versioned(cloud, cos_client):
    """A versioned source bucket; records in another bucket (create-only writes need one that
    never had versioning: 436/7749, checked by `deploy doctor`)."""
    cos_client.put_bucket_versioning(Bucket=BUCKET, Status="Enabled")
    return Flow(cloud, cos_client, COS_MATTING_RECORDS_BUCKET=OTHER_BUCKET)


def copy_onto_itself(cos_client, key, **kw):
    """An in-place edit: new metadata (or storage class), same bytes (COS PUT Object - Copy, 436/10881)."""
    cos_client.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Region": "ap-guangzhou", "Key": key},
                           CopyStatus="Replaced", Metadata={"x-cos-meta-note": "edited"}, **kw)


def event_for(flow, key, name="cos:ObjectCreated:Copy"):
    version = flow.clients.storage.version(BUCKET, key)
    return Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=version.etag,
                  size=version.size, event_name=name, event_time=int(time.time()))


# -- 1. one identity on versioned and unversioned buckets alike --------------------------------------

def test_a_versioned_upload_that_became_a_job_is_not_missing(versioned, cloud, monkeypatch, capsys):
    flow = versioned
    up = flow.upload("input/versioned.mp4", b"version one")
    assert flow.clients.storage.version(BUCKET, up.key).version_id  # the HEAD carries a version id
    assert outcomes(flow.submit(up)[0]) == ["submitted"]
    env = {"COS_MATTING_RECORDS_BUCKET": OTHER_BUCKET}
    code, out = cli(cloud, monkeypatch, capsys, "status", "--json", **env)
    assert code == 0 and json.loads(out)["never_became_a_job"] == 0
    code, out = cli(cloud, monkeypatch, capsys, "status", "--check", **env)
    assert code == 0, out
    code, out = cli(cloud, monkeypatch, capsys, "backfill", "--dry-run", "--json", **env)
    assert code == 0 and json.loads(out)["totals"]["would-submit"] == 0, out
    assert flow.reconcile_fn()["swept"] == 0 and len(flow.jobs()) == 1


# -- 2. an in-place edit is not a new version ---------------------------------------------------------

@pytest.mark.parametrize("bucket", ["unversioned", "versioned"])
def test_an_in_place_copy_is_not_matted_again(request, cloud, cos_client, bucket):
    flow = request.getfixturevalue("versioned") if bucket == "versioned" else Flow(cloud, cos_client)
    up = flow.upload("input/edited.mp4", b"the same bytes")
    flow.submit(up)
    [job] = flow.jobs()
    cloud.set_job_state(BUCKET, job.JobId, "Success")
    cloud.wait_idle(timeout=30)
    assert flow.tags(up.key)[tags.STATE] == "Success"
    time.sleep(1.1)  # Last-Modified has whole seconds
    copy_onto_itself(cos_client, up.key)
    copy_onto_itself(cos_client, up.key, StorageClass="STANDARD_IA")
    edited = flow.clients.storage.version(BUCKET, up.key)
    assert edited.etag == up.etag and edited.size == up.size
    assert outcomes(flow.submit(event_for(flow, up.key))[0]) == ["duplicate"]
    assert len(flow.jobs()) == 1
    assert flow.tags(up.key)[tags.STATE] == "Success"  # not moved back to Submitted
    assert flow.reconcile_fn()["swept"] == 0 and len(flow.jobs()) == 1


def test_the_same_bytes_again_after_an_overwrite_win_back_the_output(flow, cloud, cos_client):
    """A -> B -> A: the third upload is A's content again; its record is done, and the
    published output must be A's again (newest version wins), not B's."""
    key, published = "input/abba.mp4", "matting/input/abba.mp4.mask.mp4"
    flow.submit(flow.upload(key, b"content A"))
    [job_a] = flow.jobs()
    cloud.set_job_state(BUCKET, job_a.JobId, "Success")
    cloud.wait_idle(timeout=30)
    flow.submit(flow.upload(key, b"content B!"))
    job_b = next(j for j in flow.jobs() if j.JobId != job_a.JobId)
    cloud.set_job_state(BUCKET, job_b.JobId, "Success")
    cloud.wait_idle(timeout=30)
    assert flow.tags(published)[tags.JOB] == job_b.JobId
    again = flow.upload(key, b"content A")
    assert outcomes(flow.submit(again)[0]) == ["duplicate"] and len(flow.jobs()) == 2
    assert flow.tags(published)[tags.JOB] == job_a.JobId and job_a.JobId.encode() in flow.body(published)
    src = flow.tags(key)
    assert (src[tags.JOB], src[tags.STATE]) == (job_a.JobId, "Success")


# -- 3. leases allow for clock skew --------------------------------------------------------------

def test_a_live_claim_survives_a_clock_two_minutes_off(cloud, cos_client):
    """The functions' clock runs 120 s ahead of COS's; the lease is the lowest the settings
    accept. A redelivery and a reconcile tick both find a claim written a moment ago."""
    from shared.config import max_submit_seconds
    from shared.records import Record, Source

    probe = Flow(cloud, cos_client)
    lease = int(max_submit_seconds(probe.settings)) + 1
    assert lease < 120
    flow = Flow(cloud, cos_client, COS_MATTING_CLAIM_LEASE_SECONDS=str(lease))
    cloud.store.clock.offset = -120.0
    up = flow.upload("input/skewed.mp4")
    version = flow.clients.storage.version(BUCKET, up.key)
    live = Record(id=version.record_id, source=Source.of(version, "ap-guangzhou"))
    assert flow.store.claim(live)  # another invocation's claim, its POST /jobs still on the way
    assert outcomes(flow.submit(up)[0]) == ["duplicate"]
    assert flow.reconcile_fn()["resubmitted"] == 0
    assert flow.jobs() == []


# -- 5. a job CI forgot ------------------------------------------------------------------------

def test_a_job_ci_forgot_ends_failed_and_can_be_retried(flow, cloud, monkeypatch, capsys):
    up = flow.upload("input/forgotten.mp4")
    flow.submit(up)
    [job] = flow.jobs()
    cloud.forget_job(BUCKET, job.JobId)
    summary = flow.reconcile_fn()
    assert summary["failed"] == 0
    record = flow.record(up.key)
    assert record.state == "Failed" and record.retry == "now", record
    assert "NonExistJobIds" in record.error["Message"]
    assert [r for r, _ in flow.store.open_page()[0]] == [record.id]  # final, until reconcile's recheck
    assert reconcile(flow.settings, flow.clients, older_than=0, sweep=False).rechecked == 1
    assert flow.store.open_page()[0] == []  # final and rechecked: nothing left pending
    # no callback URL in this shell: said explicitly (retry refuses to make a job without one otherwise)
    code, out = cli(cloud, monkeypatch, capsys, "retry", up.key, "--no-callback", "--json")
    assert code == 0, out
    [row] = json.loads(out)
    assert row["outcome"] == "submitted" and row["attempt"] == 2
    [again] = flow.jobs()
    assert again.JobId != job.JobId and flow.record(up.key).state == "Submitted"


# -- 4. no reconcile phase starves another ---------------------------------------------------------

def fill_job_list(cloud, count):
    """`count` jobs of no record of ours (another tool's), created straight in the local CI."""
    from e2e.ci_support import job_dict
    from shared.jobs import JobRequest

    cloud.jobs.set_engine(None)  # they stay queued: only the list's length matters here
    request = JobRequest.model_validate(job_dict(user_data="someone else's"), context={"bucket": BUCKET})
    for _ in range(count):
        cloud.jobs.create(BUCKET, request)


def test_the_sweep_advances_every_tick_however_long_the_job_list(cloud, cos_client):
    from helpers import put
    from shared.reconcile import load_place

    # A part may overrun its share by the one request it started in time, so a page must take well under
    # a share (0.2 s of 0.4 s) for the parts after it to keep theirs, as at full scale (180 s, 36 s each).
    # (0.5 s pages with 0.3 s shares: a page started just before the second-job scan's deadline ended
    # after the sweep's, and a busy machine's tick swept nothing.)
    flow = Flow(cloud, cos_client, COS_MATTING_RECONCILE_BUDGET_SECONDS="2")
    fill_job_list(cloud, 1200)  # 12 pages of 100
    cloud.faults.add("ci.list", count=10 ** 6, delay=0.2)  # 2.4 s to read it all, the budget is 2 s
    put(cos_client, "input/trigger-lost.mp4")  # its trigger never fired
    first = flow.reconcile_fn()
    assert first["swept"] == 1 and first["stopped_early"]
    assert [j.Input.Object for j in flow.jobs() if j.Input.Object == "input/trigger-lost.mp4"]
    assert load_place(flow.store).jobs.token  # the job list's pass resumes from here
    # Every tick reads a page or more, and at most 10 (2 s / 0.2 s): a pass that began again each tick
    # would never end, one that resumes ends within 12 ticks, however busy the machine.
    ticks = 1
    while not load_place(flow.store).jobs_since and ticks < 12:
        flow.reconcile_fn()
        ticks += 1
    assert load_place(flow.store).jobs_since, "the second-job scan never completed a pass"


# -- 6. a tag write COS applies after its client gave up -----------------------------------------------

def warm(flow, cloud):
    """One record end to end: the functions' cold starts (seconds) are behind us."""
    flow.submit(flow.upload("input/warm-up.mp4", b"warm up"))
    cloud.set_job_state(BUCKET, flow.record("input/warm-up.mp4").job_id, "Success")
    cloud.wait_idle(timeout=30)


def test_a_late_submitted_tag_write_is_repaired_by_reconcile(flow, cloud):
    warm(flow, cloud)
    up = flow.upload("input/late-tag.mp4")
    # submit's Submitted tag write: COS sits on it 6 s (the client gives up after 3 s and its retry
    # goes through), then applies it
    cloud.faults.add("cos.tagging.put", count=1, delay=6.0)
    assert outcomes(flow.submit(up)[0]) == ["submitted"]
    record = flow.record(up.key)
    cloud.set_job_state(BUCKET, record.job_id, "Success")
    cloud.wait_idle(timeout=30)
    assert flow.record(up.key).state == "Success"
    # the stalled write has landed: waited for, not slept for (a sleep to 6.5 s after submit began
    # left 0.5 s for submit's own requests before the write, too little on a busy machine)
    assert cloud.faults.wait_stalled(30)
    assert cloud.faults.injected["cos.tagging.put"] == 1
    assert flow.tags(up.key)[tags.STATE] == "Submitted"  # moved back under our feet
    flow.reconcile_fn()
    src = flow.tags(up.key)
    assert (src[tags.STATE], src[tags.JOB]) == ("Success", record.job_id)
    published = flow.record(up.key).output["key"]
    assert flow.tags(published)[tags.RECORD] == record.id


# -- 7. the local CI speaks the documented forms -----------------------------------------------------

@pytest.mark.parametrize("form", ["jobs", "response"])
def test_the_documented_json_callbacks_reach_the_real_callback(cloud, cos_client, form):
    """Job APIs: {"EventName", "JobsDetail": [...]}; AI recognition: {"Response": {...}} (intl CI
    docs "Callback content"). Both are sent by the local CI and both finish the record."""
    flow = Flow(cloud, cos_client, COS_MATTING_CALLBACK_FORMAT="JSON")
    cloud.callback_sender.json_form = form
    up = flow.upload(f"input/callback-{form}.mp4")
    flow.submit(up)
    job_id = flow.record(up.key).job_id
    cloud.set_job_state(BUCKET, job_id, "Success")
    cloud.wait_idle(timeout=30)
    [sent] = [c for c in cloud.callbacks if c.job_id == job_id]
    body = json.loads(sent.body)
    notice = body["Response"] if form == "response" else body
    assert set(body) == ({"Response"} if form == "response" else {"EventName", "JobsDetail"})
    assert notice["EventName"] == "TaskFinish" and [d["JobId"] for d in notice["JobsDetail"]] == [job_id]
    assert sent.ok and flow.record(up.key).state == "Success"


def test_a_ci_error_has_the_documented_error_root(cloud, cos_client):
    """CI's job error codes page: <Error><Code/><Message/><RequestId/><TraceId/></Error>."""
    from qcloud_cos.cos_exception import CosServiceError
    from shared import xmlcodec

    with pytest.raises(CosServiceError) as err:
        cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs="")  # no job id: refused
    root, content = xmlcodec.parse(err.value.get_origin_msg().encode())
    assert root == "Error" and content["Code"] and content["RequestId"] and content["TraceId"]


def test_the_lookup_before_a_retry_never_sends_queue_type_with_queue_id(cloud, cos_client):
    """DescribeMediaJobs (1045/50356): queueType must not come with queueId. The local CI refuses
    both (what CI does is undocumented); the lookup finds a slow create's job either way."""
    flow = Flow(cloud, cos_client, COS_MATTING_TIMEOUT_SECONDS="1")
    up = flow.upload("input/lookup.mp4")
    cloud.faults.add("ci.create", count=1, delay=1.5, after=True)  # created, the answer comes too late
    assert outcomes(flow.submit(up)[0]) == ["submitted"]
    assert len(flow.jobs(up.key)) == 1  # the lookup found it: no second job
    assert flow.record(up.key).job_id == flow.jobs(up.key)[0].JobId


def test_an_appended_video_becomes_one_job_once_it_stops_growing(flow, cloud, cos_client):
    """APPEND Object (436/7741) sends no trigger event (583/9707 lists none); should one come,
    it is skipped: the sweep gives the whole file one job once it stops growing."""
    key = "input/growing.mp4"
    cos_client.append_object(Bucket=BUCKET, Key=key, Position=0, Data=b"part one ")
    ev = event_for(flow, key, name="cos:ObjectCreated:Append")
    cos_client.append_object(Bucket=BUCKET, Key=key, Position=9, Data=b"part two")
    assert cos_client.head_object(Bucket=BUCKET, Key=key)["x-cos-object-type"] == "appendable"
    assert outcomes(flow.submit(ev)[0]) == ["skipped:appending"] and flow.jobs() == []
    assert flow.reconcile_fn()["swept"] == 1  # older_than is 0 here: it has stopped growing
    [job] = flow.jobs()
    record = flow.record(key)
    assert record.job_id == job.JobId and record.source.size == len(b"part one part two")
