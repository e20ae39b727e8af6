"""A job's end, through the callback handler and through reconcile, on the in-memory cloud.

Callbacks are recorded by the stand-in (never sent); `deliver` hands one to the callback
app through Flask's test client, as the Function URL would. Late, twice, out of order, for
another record, with the output gone, and never at all (reconcile) are all covered here.
"""
import json
import time
from urllib.parse import urlsplit

import pytest

from helpers import BUCKET
from shared import tags
from shared.callback import create_app
from shared.events import Upload
from shared.lifecycle import Lifecycle
from shared.reconcile import RECHECK_AFTER, reconcile
from shared.records import Record, RecordStore, Source
from shared.submit import Submitter, build_request


@pytest.fixture
def flow(memory_cloud, settings_of):
    settings = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb", COS_MATTING_CALLBACK_FORMAT="JSON")
    clients = memory_cloud.clients(settings)
    store = RecordStore.of(settings, clients.storage)
    app = create_app(lambda: settings, lambda s: clients).test_client()

    def submit(key="input/clip.mp4", body=b"video bytes"):
        etag = memory_cloud.upload(BUCKET, key, body)
        up = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag, size=len(body),
                    event_name="cos:ObjectCreated:Put")
        out = Submitter(settings, clients, sleep=lambda s: None).process(up)
        assert out.outcome == "submitted"
        return out.record_id, out.job_id

    def deliver(callback, body=None):
        url = urlsplit(callback.url)
        return app.post(f"{url.path}?{url.query}", data=callback.body if body is None else body,
                        content_type="application/json")

    return settings, clients, store, submit, deliver


def finish(cloud, job_id, state="Success", **kw):
    cloud.set_job_state(BUCKET, job_id, state, **kw)
    return next(c for c in reversed(cloud.callbacks) if c.job_id == job_id)


def test_success_callback_records_the_result_and_tags_both_objects(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit()
    answer = deliver(finish(memory_cloud, job_id))
    assert answer.status_code == 200 and answer.get_json()["results"][0]["result"] == "advanced"
    record, _ = store.load(rid)
    assert record.state == "Success" and record.output["key"] == "matting/input/clip.mp4.mask.mp4"
    assert record.media and "total_s" in record.timings
    out_tags = memory_cloud.tags(BUCKET, "matting/input/clip.mp4.mask.mp4")
    assert out_tags == {tags.ROLE: "output", tags.RECORD: rid, tags.JOB: job_id}
    assert memory_cloud.tags(BUCKET, "input/clip.mp4")[tags.STATE] == "Success"


def test_failed_job_keeps_code_and_message(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit("input/broken.mp4")
    assert deliver(finish(memory_cloud, job_id, "Failed", code="InputNotVideo", message="not a video")).status_code == 200
    record, _ = store.load(rid)
    assert record.state == "Failed" and record.error == {"Code": "InputNotVideo", "Message": "not a video"}


def test_twice_and_late_change_nothing(flow, memory_cloud):
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id)
    assert deliver(callback).status_code == 200
    stages = [s.key for s in store.stages(rid)]
    for _ in range(2):  # a duplicate, then a late one after reconcile ran too
        answer = deliver(callback)
        assert answer.status_code == 200 and answer.get_json()["results"][0]["result"] == "unchanged"
    assert reconcile(settings, clients, older_than=0).advanced == 0
    assert [s.key for s in store.stages(rid)] == stages


def test_the_body_is_only_a_hint_the_job_is_re_read(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id, "Failed", code="X", message="y")
    claims_success = json.dumps({"EventName": "TaskFinish",
                                 "JobsDetail": {"JobId": job_id, "State": "Success"}}).encode()
    assert deliver(callback, claims_success).status_code == 200
    assert store.load(rid)[0].state == "Failed"


def test_a_token_for_one_record_cannot_finish_another_job(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid_a, job_a = submit("input/a.mp4")
    rid_b, job_b = submit("input/b.mp4")
    callback_a = finish(memory_cloud, job_a)
    finish(memory_cloud, job_b)
    body_b = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_b}}).encode()
    assert deliver(callback_a, body_b).status_code == 403
    assert store.load(rid_b)[0].state == "Submitted"


def test_tampered_token_gets_401_and_writes_nothing(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id)
    callback.url = callback.url.replace("rid=", "rid=0")
    assert deliver(callback).status_code == 401
    assert store.load(rid)[0].state == "Submitted"


def test_ci_down_answers_503_and_the_sender_s_retry_succeeds(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id)
    memory_cloud.faults.add("ci.get", status=503)
    assert deliver(callback).status_code == 503 and store.load(rid)[0].state == "Submitted"
    assert deliver(callback).status_code == 200 and store.load(rid)[0].state == "Success"


def test_output_gone_before_the_callback_is_noted(flow, memory_cloud):
    _, _, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id)
    memory_cloud.delete(BUCKET, f"matting/.versions/{rid}-1.mp4")  # the job's own output
    assert deliver(callback).status_code == 200
    record, _ = store.load(rid)
    assert record.state == "Success"
    assert record.notes == [f"not published: the job's output matting/.versions/{rid}-1.mp4 is gone"]


def test_oversized_body_gets_413(flow, memory_cloud):
    _, _, _, submit, deliver = flow
    _, job_id = submit()
    assert deliver(finish(memory_cloud, job_id), b"{" + b" " * (300 * 1024) + b"}").status_code == 413


def test_reconcile_finishes_what_never_called_back(flow, memory_cloud):
    settings, clients, store, submit, _ = flow
    done_rid, done = submit("input/done.mp4")
    running_rid, running = submit("input/running.mp4")
    memory_cloud.set_job_state(BUCKET, done, "Success")  # its callback is never delivered
    memory_cloud.set_job_state(BUCKET, running, "Running")
    summary = reconcile(settings, clients, older_than=0)
    assert (summary.scanned, summary.advanced, summary.still_running, summary.failed) == (2, 2, 1, 0)
    assert store.load(done_rid)[0].state == "Success" and store.load(running_rid)[0].state == "Running"
    assert memory_cloud.tags(BUCKET, "matting/input/done.mp4.mask.mp4")[tags.ROLE] == "output"
    assert reconcile(settings, clients, older_than=0).advanced == 0  # idempotent


def test_reconcile_resubmits_stale_claims_and_sweeps_unrecorded_uploads(flow, memory_cloud):
    settings, clients, store, _, _ = flow
    memory_cloud.upload(BUCKET, "input/claimed.mp4", b"c")
    version = clients.storage.version(BUCKET, "input/claimed.mp4")
    store.claim(Record(id=version.record_id, source=Source.of(version, "ap-guangzhou")))
    memory_cloud.upload(BUCKET, "input/never-triggered.mp4", b"n")
    memory_cloud.upload(BUCKET, "input/notes.txt", b"not a video")
    stale = settings.model_copy(update={"claim_lease_seconds": 0})
    summary = reconcile(stale, clients, older_than=0)
    assert (summary.resubmitted, summary.swept, summary.failed) == (1, 1, 0)
    assert sorted(j.Input.Object for j in memory_cloud.list_jobs(BUCKET)) == ["input/claimed.mp4",
                                                                               "input/never-triggered.mp4"]
    again = reconcile(stale, clients, older_than=0)
    assert (again.resubmitted, again.swept) == (0, 0) and len(memory_cloud.list_jobs(BUCKET)) == 2


def test_reconcile_goes_on_past_an_unreadable_record(flow, memory_cloud):
    settings, clients, store, submit, _ = flow
    rid, job_id = submit("input/fine.mp4")
    memory_cloud.set_job_state(BUCKET, job_id, "Success")
    broken, _ = submit("input/broken-record.mp4")
    for name in ("001-0-claim-1.json", "001-1-submitted.json"):  # nothing of it readable
        memory_cloud.upload(BUCKET, f"{settings.records_prefix}{broken}/{name}", b"not json")
    summary = reconcile(settings, clients, older_than=0)
    assert (summary.failed, summary.advanced) == (0, 1) and store.load(rid)[0].state == "Success"
    assert [u.split(": ")[0] for u in summary.unreadable] == [f"{settings.records_prefix}{broken}/001-1-submitted.json"]


def test_two_jobs_of_one_attempt_racing_leave_the_winners_tags(flow, memory_cloud):
    """Two jobs carry one attempt's correlation (a create answered after the client gave up,
    then a retry whose lookup missed it) and both finish. Both deliveries read the record
    before its Submitted stage existed, so neither knows which job is the record's. The
    first to write the final stage wins; the loser has already copied and tagged the
    output and the source with its own job id, and must put the winner's back."""
    settings, clients, store, submit, deliver = flow
    rid, first = submit()
    submitted, _ = store.load(rid)
    second = clients.ci.create(build_request(settings, submitted, time.time())).JobId
    unsure = submitted.model_copy(update={"state": "Claimed", "job_id": None})  # read before Submitted
    memory_cloud.set_job_state(BUCKET, first, "Success")
    memory_cloud.set_job_state(BUCKET, second, "Success")
    assert Lifecycle(clients, store).advance(unsure, clients.ci.describe(first))[0] == "advanced"
    assert Lifecycle(clients, store).advance(unsure, clients.ci.describe(second))[0] == "unchanged"  # lost the race
    record, _ = store.load(rid)
    assert record.job_id == first
    assert memory_cloud.tags(BUCKET, record.output["key"])[tags.JOB] == first
    assert memory_cloud.tags(BUCKET, "input/clip.mp4")[tags.JOB] == first


def test_a_final_record_stays_open_until_output_and_source_are_settled(flow, memory_cloud):
    """The settle reads after the final stage fail (COS down for a moment), and then a racing
    submit's late `Submitted` tag lands on the source. The callback must not answer 200 and
    close the record as if all were done: the record stays in the open index, and the next
    reconcile tick settles the source and only then closes it."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    callback = finish(memory_cloud, job_id)
    clients.storage.put_tags(BUCKET, "input/clip.mp4", {})  # submit's tag write still on its way: the settle reads again
    # tag reads before the settle: the published name (before the copy), the source
    memory_cloud.faults.add("cos.tagging.get", count=50, status=503, skip=2)
    assert deliver(callback).status_code == 503
    memory_cloud.faults.clear()
    record, _ = store.load(rid)
    assert record.state == "Success"
    assert rid in [r for r, _ in store.open_page()[0]]
    late = {tags.RECORD: rid, tags.JOB: job_id, tags.STATE: "Submitted", tags.ATTEMPT: "1"}
    clients.storage.put_tags(BUCKET, "input/clip.mp4", late)  # the racing submit's read-merge-write
    summary = reconcile(settings, clients, older_than=0)
    assert summary.finished == 1 and summary.failed == 0
    assert memory_cloud.tags(BUCKET, "input/clip.mp4")[tags.STATE] == "Success"
    assert rid not in [r for r, _ in store.open_page()[0]]


def test_a_submit_tag_landing_after_the_callback_is_put_right_by_the_recheck(flow, memory_cloud):
    """Submit tags `Submitted` after POST /jobs; if the job ends first, that write can land after the
    callback's final tags (and after its own second look). The callback leaves the record in the open
    index; reconcile rechecks it RECHECK_AFTER its final stage, puts the source's tags right, and only
    then closes it: not before (a write racing the final stage may still land)."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id)).status_code == 200
    assert rid in [r for r, _ in store.open_page()[0]]
    late = {tags.RECORD: rid, tags.JOB: job_id, tags.STATE: "Submitted", tags.ATTEMPT: "1"}
    clients.storage.put_tags(BUCKET, "input/clip.mp4", late)  # submit's tag write, landing after the callback's
    early = reconcile(settings, clients, older_than=600, sweep=False)  # too soon after the final stage
    assert (early.rechecked, early.finished) == (0, 0) and rid in [r for r, _ in store.open_page()[0]]
    assert memory_cloud.tags(BUCKET, "input/clip.mp4")[tags.STATE] == "Submitted"
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert (summary.rechecked, summary.finished, summary.failed) == (1, 1, 0)
    assert memory_cloud.tags(BUCKET, "input/clip.mp4")[tags.STATE] == "Success"
    assert rid not in [r for r, _ in store.open_page()[0]]


def test_a_job_whose_submitted_stage_was_lost_is_still_published_under_its_name(flow, memory_cloud, settings_of):
    """The handler dies (here: COS fails) after POST /jobs but before the Submitted stage:
    the record has only its claim. When the job's callback comes, the output must still be
    published under the predictable name, not left at the per-attempt key, which a second
    job of the same attempt would overwrite (untagged)."""
    settings, clients, store, submit, deliver = flow
    etag = memory_cloud.upload(BUCKET, "input/clip.mp4", b"video bytes")
    up = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/clip.mp4", etag=etag,
                size=len(b"video bytes"), event_name="cos:ObjectCreated:Put")
    memory_cloud.faults.add("cos.put", count=50, status=503, skip=2)  # open marker and claim pass; Submitted fails
    out = Submitter(settings, clients, sleep=lambda s: None).process(up)
    memory_cloud.faults.clear()
    assert out.outcome.startswith("failed")
    (job,) = memory_cloud.list_jobs(BUCKET)
    assert deliver(finish(memory_cloud, job.JobId)).status_code == 200
    record, _ = store.load(out.record_id)
    assert record.state == "Success" and record.output["key"] == "matting/input/clip.mp4.mask.mp4"
    assert memory_cloud.tags(BUCKET, record.output["key"])[tags.JOB] == job.JobId


def test_closing_a_final_record_keeps_the_marker_of_a_newer_attempt(flow, memory_cloud):
    """Reconcile closes a final record only after its recheck; a new attempt claimed meanwhile (here:
    its claim lands between reconcile's read and its delete, the marker it wrote in vain being the old
    one) must stay in the open index, or nothing would ever reconcile it."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id, state="Failed")).status_code == 200
    failed, _ = store.load(rid)
    retry = failed.model_copy(update={"attempt": 2, "state": "Claimed", "job_id": None})
    assert store.claim(retry, marked=True)  # the retry's claim; its create-only marker write found the old marker
    store.close_final(failed)  # reconcile read the record before the claim landed
    assert rid in [r for r, _ in store.open_page()[0]]
    store.close(rid)
    assert rid not in [r for r, _ in store.open_page()[0]]  # (without the check, the marker is gone)


def _just_before_deleting(monkeypatch, clients, key, race):
    """Run `race` (a concurrent writer's requests) right before the first delete of `key` reaches the cloud."""
    client, raced = clients.storage.client, []
    delete = client.delete_object

    def racing(Bucket, Key, **kw):
        if Key == key and not raced:
            raced.append(race())
        return delete(Bucket=Bucket, Key=Key, **kw)

    monkeypatch.setattr(client, "delete_object", racing)
    return raced


def test_closing_a_final_record_keeps_a_newer_attempt_that_ended_at_once(flow, memory_cloud, monkeypatch):
    """`cos-matting retry` runs while reconcile rechecks the failed attempt, and CI refuses the new
    submit at once (403: the role is still not authorised), so attempt 2 is final before reconcile's
    delete of the marker. Its marker must stay: attempt 2's own recheck (its source tags, its event
    if its writer died) is still to come, and only the open index brings reconcile to it."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id, state="Failed")).status_code == 200
    submitter = Submitter(settings, clients, sleep=lambda s: None)

    def retry_refused():
        memory_cloud.faults.add("ci.create", status=403)
        return submitter.retry(rid)

    raced = _just_before_deleting(monkeypatch, clients, store.open_key(rid), retry_refused)
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert summary.rechecked == 1 and raced and raced[0].outcome.startswith("failed")
    record, _ = store.load(rid)
    assert (record.attempt, record.state, record.job_id) == (2, "Failed", None)
    source = memory_cloud.tags(BUCKET, "input/clip.mp4")  # no job: its job tag says so (COS refuses "")
    assert (source[tags.STATE], source[tags.ATTEMPT], source[tags.JOB]) == ("Failed", "2", tags.NO_JOB)
    assert rid in [r for r, _ in store.open_page()[0]]  # attempt 2's recheck is still to come
    again = reconcile(settings, clients, older_than=0, sweep=False)
    assert (again.rechecked, again.finished, again.failed) == (1, 1, 0)
    assert rid not in [r for r, _ in store.open_page()[0]]


def test_a_repeated_upload_event_keeps_the_marker_of_a_retry_claimed_meanwhile(flow, memory_cloud, monkeypatch):
    """A failed record reconcile has closed; a late repeat of its upload event (SCF retries it) re-creates
    the marker with its claim attempt and, finding the record final, deletes that marker again. If
    `cos-matting retry` claims attempt 2 in between (its marker write found ours), the delete must not
    take attempt 2 out of the open index: its callback may never come, and only reconcile would see."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id, state="Failed")).status_code == 200
    assert reconcile(settings, clients, older_than=0, sweep=False).finished == 1
    assert rid not in [r for r, _ in store.open_page()[0]]
    submitter = Submitter(settings, clients, sleep=lambda s: None)
    raced = _just_before_deleting(monkeypatch, clients, store.open_key(rid), lambda: submitter.retry(rid))
    version = clients.storage.version(BUCKET, "input/clip.mp4")
    late = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/clip.mp4", etag=version.etag,
                  size=version.size, event_name="cos:ObjectCreated:Put")  # the original event, sent again
    assert submitter.process(late).outcome == "duplicate"
    assert raced and raced[0].outcome == "submitted" and raced[0].attempt == 2
    assert rid in [r for r, _ in store.open_page()[0]]  # attempt 2, Submitted: reconcile follows it
    record, _ = store.load(rid)
    assert (record.attempt, record.state) == (2, "Submitted")


def test_reconcile_tells_the_finished_records_it_rechecked_and_closed(flow, memory_cloud):
    """A finished record waits in the open index for its recheck: `cos-matting reconcile` says it was
    rechecked and closed, not that it was "re-read from CI" with nothing done."""
    from cli.cmd_reconcile import explain

    settings, clients, store, submit, deliver = flow
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id)).status_code == 200
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    text = "\n".join(explain({**summary.model_dump(), "open_before": 1, "too_young": 0, "older_than_s": 0}, True))
    assert "did: 1 finished records rechecked and out of the open index" in text, text
    assert "1 record(s) in the open index" in text and "re-read from CI" not in text


def test_reconcile_says_why_it_left_each_open_record_alone(flow, memory_cloud):
    """Many finished records wait in the open index for their recheck: every tick reads and skips them.
    The summary counts each record left alone once, for its reason (finished and waiting, changed too
    recently, a claim within its lease), and `cos-matting reconcile` says so instead of "did: nothing"
    with nothing left alone."""
    from cli.cmd_reconcile import explain

    settings, clients, store, submit, deliver = flow
    for n in range(3):
        _, job_id = submit(f"input/done-{n}.mp4")
        assert deliver(finish(memory_cloud, job_id)).status_code == 200
    running_rid, running = submit("input/running.mp4")
    memory_cloud.set_job_state(BUCKET, running, "Running")  # its callback is never delivered
    memory_cloud.upload(BUCKET, "input/claimed.mp4", b"c")
    version = clients.storage.version(BUCKET, "input/claimed.mp4")
    store.claim(Record(id=version.record_id, source=Source.of(version, "ap-guangzhou")))
    summary = reconcile(settings, clients, older_than=60, sweep=False)
    assert (summary.scanned, summary.waiting_recheck, summary.too_young, summary.leased) == (5, 3, 1, 1), summary
    assert (summary.finished, summary.rechecked, summary.still_running, summary.advanced) == (0, 0, 0, 0)
    assert len(store.open_page()[0]) == 5
    data = {**summary.model_dump(), "open_before": 5, "older_than_s": 60, "recheck_after_s": 60}
    text = "\n".join(explain(data, True))
    assert "did: nothing" in text and "3 finished less than 60 s ago, waiting in the open index" in text, text
    assert "1 changed less than 60 s ago" in text and "1 claim(s) within their lease" in text, text
    summary = reconcile(settings, clients, older_than=0, sweep=False)  # now past the recheck wait
    assert (summary.finished, summary.rechecked, summary.waiting_recheck, summary.still_running) == (3, 3, 0, 1)
    assert {rid for rid, _ in store.open_page()[0]} == {version.record_id, running_rid}


def test_the_recheck_wait_is_judged_on_coss_clock(flow, memory_cloud):
    """COS's clock runs 5 minutes behind the functions' (the lease tests' skew, test_lifecycle3): a final
    stage written a moment ago carries a Last-Modified 5 minutes back by our clock. Reconcile still waits
    RECHECK_AFTER on COS's clock (a HEAD's Date, as claim leases are judged), so a write racing the final
    stage can still land before the recheck, and the record stays open until then."""
    settings, clients, store, submit, deliver = flow
    memory_cloud.store.clock.offset = -300.0
    rid, job_id = submit()
    assert deliver(finish(memory_cloud, job_id)).status_code == 200
    summary = reconcile(settings, clients, older_than=1800, sweep=False)
    assert (summary.waiting_recheck, summary.finished) == (1, 0), summary
    assert rid in [r for r, _ in store.open_page()[0]]
    memory_cloud.store.clock.offset = -300.0 + RECHECK_AFTER  # COS's clock moves on past the wait
    summary = reconcile(settings, clients, older_than=1800, sweep=False)
    assert (summary.waiting_recheck, summary.finished, summary.rechecked) == (0, 1, 1), summary
    assert rid not in [r for r, _ in store.open_page()[0]]


def test_an_older_versions_copy_landing_over_the_newer_result_is_undone_by_the_newer_ones_recheck(flow, memory_cloud):
    """v1's job ends, and its publish reads the source (still v1) and copies; v2 is uploaded, and its
    job ends and publishes first; v1's copy (a stalled request) lands over it afterwards. v1's own
    check after its copy ran before v2's final stage existed, and the callback no longer reads the
    name after the final stage: v2's recheck (reconcile, before the record leaves the open index)
    finds v1's result under the name and publishes v2's again."""
    settings, clients, store, submit, deliver = flow
    old_rid, old_job = submit(body=b"version one")
    new_rid, new_job = submit(body=b"version two")  # the same key overwritten while v1's job runs
    memory_cloud.set_job_state(BUCKET, old_job, "Success")
    assert deliver(finish(memory_cloud, new_job)).status_code == 200
    new, _ = store.load(new_rid)
    name = new.output["key"]
    assert memory_cloud.tags(BUCKET, name)[tags.RECORD] == new_rid
    stale = clients.ci.describe(old_job).Operation.Output.Object  # v1's job's own key
    clients.out_storage.copy(BUCKET, name, BUCKET, "ap-guangzhou", stale,  # v1's stalled copy, landing now
                             tags={tags.ROLE: "output", tags.RECORD: old_rid, tags.JOB: old_job})
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert summary.rechecked == 1 and summary.failed == 0
    assert memory_cloud.tags(BUCKET, name) == {tags.ROLE: "output", tags.RECORD: new_rid, tags.JOB: new_job}
    body = clients.out_storage.client.get_object(Bucket=BUCKET, Key=name)["Body"].get_raw_stream().read()
    assert new_job.encode() in body and old_job.encode() not in body


def test_the_users_tags_on_the_published_name_survive_a_newer_versions_publish_and_the_limit_is_noted(
        flow, memory_cloud):
    """The user tags the published output (9 tags of their own); a newer version's result is copied
    over it with its tags in the copy request: the user's 9 stay, ours fill the 10th slot (the loop
    guard's role first), the rest is skipped and noted on the record, and its recheck changes nothing
    the user set."""
    settings, clients, store, submit, deliver = flow
    rid, job_id = submit(body=b"version one")
    assert deliver(finish(memory_cloud, job_id)).status_code == 200
    name = store.load(rid)[0].output["key"]
    mine = {f"team-{n}": f"value {n}" for n in range(9)}
    clients.out_storage.put_tags(BUCKET, name, {tags.ROLE: "output", **mine})
    new_rid, new_job = submit(body=b"version two")
    assert deliver(finish(memory_cloud, new_job)).status_code == 200
    record, _ = store.load(new_rid)
    assert memory_cloud.tags(BUCKET, name) == {**mine, tags.ROLE: "output"}
    assert any(n.startswith(f"tag limit reached on {name}") and tags.RECORD in n for n in record.notes), record.notes
    reconcile(settings, clients, older_than=0, sweep=False)
    assert {k: v for k, v in memory_cloud.tags(BUCKET, name).items() if not k.startswith(tags.PREFIX)} == mine


def test_a_claim_closed_as_gone_keeps_the_marker_of_the_same_bytes_uploaded_again(flow, memory_cloud, monkeypatch):
    """A claim outlived its lease and its source is gone: reconcile closes it Gone (final stage, then the
    marker's delete). The user uploads the same bytes again right then: the new event finds the record
    final and claims attempt 2 before that delete lands. Attempt 2 must stay in the open index."""
    settings, clients, store, _, _ = flow
    memory_cloud.upload(BUCKET, "input/gone.mp4", b"the same bytes")
    version = clients.storage.version(BUCKET, "input/gone.mp4")
    store.claim(Record(id=version.record_id, source=Source.of(version, "ap-guangzhou")))
    clients.storage.delete(BUCKET, "input/gone.mp4")
    submitter = Submitter(settings, clients, sleep=lambda s: None)

    def uploaded_again():
        etag = memory_cloud.upload(BUCKET, "input/gone.mp4", b"the same bytes")
        return submitter.process(Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/gone.mp4",
                                        etag=etag, size=14, event_name="cos:ObjectCreated:Put",
                                        event_time=int(time.time()) + 5))

    raced = _just_before_deleting(monkeypatch, clients, store.open_key(version.record_id), uploaded_again)
    summary = reconcile(settings.model_copy(update={"claim_lease_seconds": 0}), clients, older_than=0, sweep=False)
    assert summary.closed == 1 and raced and (raced[0].outcome, raced[0].attempt) == ("submitted", 2)
    record, _ = store.load(version.record_id)
    assert (record.attempt, record.state) == (2, "Submitted")
    assert version.record_id in [r for r, _ in store.open_page()[0]]


def test_the_recheck_never_brings_back_a_deleted_output_or_overwrites_the_users_object(flow, memory_cloud):
    """Between the callback and reconcile's recheck (RECHECK_AFTER later) the user deletes one published
    output and puts an object of their own under another's name: the recheck copies over neither (it
    only puts right a name that holds another record's output)."""
    settings, clients, store, submit, deliver = flow
    names = {}
    for key in ("input/deleted.mp4", "input/replaced.mp4"):
        rid, job_id = submit(key=key)
        assert deliver(finish(memory_cloud, job_id)).status_code == 200
        names[key] = store.load(rid)[0].output["key"]
    clients.storage.delete(BUCKET, names["input/deleted.mp4"])
    clients.storage.put_json(BUCKET, names["input/replaced.mp4"], b"the user's own")
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert summary.rechecked == 2 and summary.failed == 0
    assert clients.storage.head(BUCKET, names["input/deleted.mp4"]) is None
    assert clients.storage.get(BUCKET, names["input/replaced.mp4"]) == b"the user's own"
