"""Notifications on the in-memory cloud: the outbox entry a final record leaves, once, and the
crash window between the final stage and the outbox closed by reconcile. (Delivery itself needs
a socket: tests/e2e/test_notify.py and test_chaos.py.)"""
import json
import threading
import time
from urllib.parse import urlsplit

import pytest

from helpers import BUCKET
from shared import notify, tags
from shared.callback import create_app
from shared.events import Upload
from shared.lifecycle import Lifecycle
from shared.reconcile import reconcile
from shared.records import RecordStore
from shared.submit import Submitter

HOOK = {"COS_MATTING_NOTIFY_URL": "https://hooks.example.com/cos-matting",
        "COS_MATTING_NOTIFY_SECRET": "whsec-memory-0123456789"}


def _flow(memory_cloud, settings_of, **extra):
    settings = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb", **extra)
    clients = memory_cloud.clients(settings)
    store = RecordStore.of(settings, clients.storage)
    app = create_app(lambda: settings, lambda s: clients).test_client()

    def finish(key, state="Success", **kw):
        etag = memory_cloud.upload(BUCKET, key, b"video " + key.encode())
        up = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag,
                    size=len(b"video " + key.encode()), event_name="cos:ObjectCreated:Put")
        out = Submitter(settings, clients, sleep=lambda s: None).process(up)
        memory_cloud.set_job_state(BUCKET, out.job_id, state, **kw)
        callback = next(c for c in reversed(memory_cloud.callbacks) if c.job_id == out.job_id)
        url = urlsplit(callback.url)
        for _ in range(2):  # CI may call back twice: still one event
            answer = app.post(f"{url.path}?{url.query}", data=callback.body, content_type="application/json")
            assert answer.status_code == 200
        _join_senders()
        return out.record_id

    return settings, clients, store, finish


def _join_senders():
    """The head-start sender threads (they fail here: no sockets in this tier; reconcile is the net)."""
    for thread in threading.enumerate():
        if thread.name.startswith("notify-"):
            thread.join(timeout=5)


def _outbox(store):
    return {key: json.loads(store.storage.get(store.bucket, store.prefix + notify.OUTBOX + key + ".json"))
            for key in notify.pending(store)}


def test_no_outbox_when_notifications_are_off(memory_cloud, settings_of):
    _, _, store, finish = _flow(memory_cloud, settings_of)
    finish("input/quiet.mp4")
    assert notify.pending(store) == []


@pytest.mark.parametrize("state", ["Success", "Failed"])
def test_a_final_record_leaves_one_event_in_the_outbox(memory_cloud, settings_of, state):
    _, _, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    kw = {"code": "InputNotVideo", "message": "not a video"} if state == "Failed" else {}
    rid = finish("input/a.mp4", state, **kw)
    record, _ = store.load(rid)
    [(eid, entry)] = _outbox(store).items()
    assert eid == notify.event_id(record) and entry["attempts"] == 0
    event = entry["event"]
    assert (event["record_id"], event["state"], event["job_id"], event["source"]["key"]) == \
        (rid, state, record.job_id, "input/a.mp4")
    assert (event["output"] is None) == (state == "Failed") and (event["error"] is None) == (state == "Success")


def test_reconcile_enqueues_what_a_crash_after_the_final_stage_left_out(memory_cloud, settings_of):
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    rid = finish("input/crash.mp4")
    record, _ = store.load(rid)
    # As if the callback died right after writing the final stage: no outbox entry, the marker still open.
    store.storage.delete(store.bucket, store.prefix + notify.OUTBOX + notify.event_id(record) + ".json")
    store.mark_open(record)
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    _join_senders()
    assert summary.finished == 1 and store.open_page()[0] == []
    assert list(_outbox(store)) == [notify.event_id(record)]
    assert summary.notified == {"sent": 0, "failed": 0, "waiting": 1}  # fresh: the enqueuer's own try goes first
    later = time.time() + notify.HEAD_START + 1
    with pytest.raises(AssertionError, match="socket"):  # due now: reconcile would send it (no sockets here)
        notify.deliver_due(settings, store, lambda: False, now=later)


def test_an_unreadable_delivery_log_is_shown_as_such_not_a_crash(memory_cloud, settings_of):
    """`status RECORD` reads the delivery log; an object there that is not a delivery (truncated, or
    written by hand) is listed as unreadable instead of ending the command with a traceback."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of)
    rid = finish("input/logged.mp4")
    for name, body in (("notify-evt_x-1-aaaaaa.json", b"not json"), ("notify-evt_x-2-bbbbbb.json", b"[1, 2]")):
        store.storage.put_json(store.bucket, f"{store.prefix}{rid}/{name}", body)
    log = notify.deliveries(store, rid)
    assert [d["ok"] for d in log] == [False, False]
    assert all(d["answer"].startswith("unreadable delivery log") for d in log)


def test_an_entry_delivered_by_another_sender_meanwhile_is_passed_over_quietly(memory_cloud, settings_of, capsys):
    """Listed, then gone before the read (the callback's head-start sender got a 2xx and deleted it):
    not an error, not a delivery; nothing to do."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    finish("input/raced.mp4")
    assert len(notify.pending(store)) == 1
    memory_cloud.faults.add("cos.get", status=404, code="NoSuchKey")  # the GET after the listing finds nothing
    capsys.readouterr()
    counts = notify.deliver_due(settings, store, lambda: False, now=time.time() + notify.BACKOFF_CAP + 1)
    assert counts == {"sent": 0, "failed": 0, "waiting": 0}
    assert "notify.unreadable" not in capsys.readouterr().out  # the log lines (shared/log.py: stdout)


def test_a_repeated_upload_event_leaves_an_unsettled_final_record_to_reconcile(memory_cloud, settings_of):
    """The callback wrote the final stage and died before settling (no outbox entry, the marker open);
    then the upload's event comes again (SCF retries it; a copy onto itself
    sends another). Submit finds the record final and must not close the marker it did not create:
    that marker is what brings reconcile back to settle it, enqueue its event and recheck its tags.
    (Seen in test_chaos: one final record never notified.)"""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    rid = finish("input/again.mp4")
    record, _ = store.load(rid)
    store.storage.delete(store.bucket, store.prefix + notify.OUTBOX + notify.event_id(record) + ".json")
    store.storage.delete(store.bucket, store.prefix + "recheck/" + rid)
    store.mark_open(record)
    again = Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/again.mp4",
                   etag=record.source.etag, size=record.source.size, event_name="cos:ObjectCreated:Put")
    out = Submitter(settings, clients, sleep=lambda s: None).process(again)
    assert out.kind.value == "duplicate"
    assert [r for r, _ in store.open_page()[0]] == [rid]  # still open: not settled yet
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    _join_senders()
    assert summary.finished == 1 and store.open_page()[0] == []
    assert list(_outbox(store)) == [notify.event_id(record)]
    assert summary.rechecked == 1  # its tags were read once more


def test_a_submit_that_ci_refuses_is_notified_as_failed(memory_cloud, settings_of):
    """CI answers POST /jobs with a 4xx (here 403, CI's role not authorised): the record ends Failed
    without a job, and like every Failed record (README "Notifications") its event is in the outbox
    and it leaves the open index after reconcile's recheck. It was closed without one."""
    settings = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb", **HOOK)
    clients = memory_cloud.clients(settings)
    store = RecordStore.of(settings, clients.storage)
    etag = memory_cloud.upload(BUCKET, "input/refused.mp4", b"video refused")
    memory_cloud.faults.add("ci.create", status=403)
    out = Submitter(settings, clients, sleep=lambda s: None).process(Upload(
        bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/refused.mp4", etag=etag,
        size=len(b"video refused"), event_name="cos:ObjectCreated:Put"))
    _join_senders()
    record, _ = store.load(out.record_id)
    assert (record.state, record.job_id, record.retry.value) == ("Failed", None, "after-fix")
    [(eid, entry)] = _outbox(store).items()
    assert eid == notify.event_id(record) and entry["event"]["state"] == "Failed"
    assert [r for r, _ in store.open_page()[0]] == [record.id]
    assert reconcile(settings, clients, older_than=0, sweep=False).finished == 1
    assert store.open_page()[0] == []


def test_the_recheck_does_not_send_a_delivered_event_again(memory_cloud, settings_of):
    """Reconcile rechecks every final record before it closes it, and enqueues its event if its writer
    never did (`notify.ensure`). An event already delivered (a log beside the record, the outbox entry
    deleted, as `notify.send` leaves them) is not enqueued again; one never delivered stays pending."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    delivered, waiting = finish("input/sent.mp4"), finish("input/unsent.mp4")
    record, _ = store.load(delivered)
    eid = notify.event_id(record)
    store.storage.put_json(store.bucket, f"{store.prefix}{delivered}/notify-{eid}-1-abcdef.json",
                           json.dumps({"event_id": eid, "ok": True, "status": 200, "sent_at": 1}).encode())
    store.storage.delete(store.bucket, store.prefix + notify.OUTBOX + eid + ".json")
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert summary.rechecked == 2 and summary.failed == 0 and store.open_page()[0] == []
    unsent, _ = store.load(waiting)
    assert list(_outbox(store)) == [notify.event_id(unsent)]


def _delivered(store, record):
    """As `notify.send` leaves a delivered event: its log beside the record, its outbox entry deleted."""
    eid = notify.event_id(record)
    store.storage.put_json(store.bucket, f"{store.prefix}{record.id}/notify-{eid}-1-abcdef.json",
                           json.dumps({"event_id": eid, "ok": True, "status": 200, "sent_at": 1}).encode())
    store.storage.delete(store.bucket, store.prefix + notify.OUTBOX + eid + ".json")


def test_the_loser_of_two_final_writers_does_not_send_a_delivered_event_again(memory_cloud, settings_of):
    """Reconcile and the callback (or two deliveries) both read the record Submitted and both finish
    it; the first writes the final stage and its event goes out at once. The loser then puts the
    winner's output and tags back: it must not enqueue the winner's event again (sent twice)."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    rid = finish("input/raced.mp4")
    record, stages = store.load(rid)
    _delivered(store, record)
    stale = store.read(next(s for s in stages if s.rank == 1))  # the loser read it before the final stage
    assert stale.state == "Submitted"
    assert Lifecycle(clients, store).advance(stale, clients.ci.describe(record.job_id))[0] == "unchanged"
    _join_senders()
    assert notify.pending(store) == []


def test_a_retry_ci_refuses_at_once_is_notified(memory_cloud, settings_of):
    """Attempt 1 failed with a job (its source tagged with it); `cos-matting retry` runs it again and CI
    refuses the submit (403): attempt 2 ends Failed with no job. Its source tags move to attempt 2 and
    its event is in the outbox at once. (The job tag was written empty, COS refused it, and the event
    was never enqueued: neither by the submit nor by any recheck, which failed the same way.)"""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    rid = finish("input/again.mp4", "Failed", code="InternalError", message="try again")
    first, _ = store.load(rid)
    _delivered(store, first)
    memory_cloud.faults.add("ci.create", status=403)
    out = Submitter(settings, clients, sleep=lambda s: None).retry(rid)
    _join_senders()
    record, _ = store.load(rid)
    assert out.outcome.startswith("failed") and (record.attempt, record.state, record.job_id) == (2, "Failed", None)
    assert list(_outbox(store)) == [notify.event_id(record)]
    source = memory_cloud.tags(BUCKET, "input/again.mp4")
    assert (source[tags.ATTEMPT], source[tags.STATE], source[tags.JOB]) == ("2", "Failed", tags.NO_JOB)
    summary = reconcile(settings, clients, older_than=0, sweep=False)
    assert (summary.rechecked, summary.finished, summary.failed) == (1, 1, 0) and store.open_page()[0] == []


def test_an_older_releases_recheck_entry_is_left_to_the_deployment_whose_record_it_is(memory_cloud, settings_of):
    """Two deployments share the records store (the default prefix); the release up to 750cb24 moved a
    settled record from the open index to `recheck/<id>`. The other deployment's reconcile (webhooks
    on) must not recheck it, enqueue its event under its own webhook, nor drop the entry: as in the
    open index (`owned`), the record's own deployment drains it."""
    mine = {"COS_MATTING_DEPLOYMENT": "pipe-people", "COS_MATTING_WATCH_PREFIXES": "input/people/"}
    theirs = {"COS_MATTING_DEPLOYMENT": "pipe-studio", "COS_MATTING_WATCH_PREFIXES": "input/studio/"}
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **theirs)
    rid = finish("input/studio/b.mp4")
    entry = store.prefix + "recheck/" + rid
    store.storage.put_json(store.bucket, entry, b"{}")  # what 750cb24's RecordStore.settled wrote
    store.close(rid)
    ours = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb", **mine, **HOOK)
    summary = reconcile(ours, memory_cloud.clients(ours), older_than=0, sweep=False)
    _join_senders()
    assert summary.rechecked == 0 and summary.failed == 0
    assert notify.pending(store) == [] and store.storage.get(store.bucket, entry) is not None
    assert reconcile(settings, clients, older_than=0, sweep=False).rechecked == 1
    assert store.storage.get(store.bucket, entry) is None


def test_a_deployment_never_delivers_another_deployments_events(memory_cloud, settings_of):
    """Two deployments (a dev and a prod stage, say) share the records store and so its outbox, each
    with its own webhook. One's event whose head-start delivery failed must wait for its own
    deployment's reconcile: the other's would POST it to the wrong receiver, signed with the wrong
    secret, and delete it once that receiver said 2xx (its own receiver never hearing of it)."""
    theirs = {"COS_MATTING_DEPLOYMENT": "pipe-studio", "COS_MATTING_WATCH_PREFIXES": "input/studio/", **HOOK}
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **theirs)
    rid = finish("input/studio/b.mp4")
    record, _ = store.load(rid)
    ours = settings_of(COS_MATTING_DEPLOYMENT="pipe-people", COS_MATTING_WATCH_PREFIXES="input/people/",
                       COS_MATTING_NOTIFY_URL="https://people.example.com/hook",
                       COS_MATTING_NOTIFY_SECRET="whsec-people-0123456789")
    later = time.time() + notify.BACKOFF_CAP + 1
    done = notify.deliver_due(ours, RecordStore.of(ours, memory_cloud.clients(ours).storage), lambda: False, now=later)
    assert done == {"sent": 0, "failed": 0, "waiting": 0}
    assert notify.pending(store) == [notify.event_id(record)]
    with pytest.raises(AssertionError, match="socket"):  # due: its own deployment sends it (no sockets here)
        notify.deliver_due(settings, store, lambda: False, now=later)


def test_an_event_naming_no_deployment_is_delivered_by_the_deployed_reconcile(memory_cloud, settings_of):
    """An entry enqueued with no COS_MATTING_DEPLOYMENT (an older release, or `cos-matting retry` run
    without --stage whose submit CI refused) names none: the deployed stage's reconcile sends it (its
    recheck would find the entry and enqueue nothing, so skipped it would wait forever)."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)  # no deployment named
    rid = finish("input/unnamed.mp4")
    assert json.loads(store.storage.get(store.bucket, store.prefix + notify.OUTBOX + notify.event_id(
        store.load(rid)[0]) + ".json"))["deployment"] == ""
    deployed = settings_of(COS_MATTING_DEPLOYMENT="cos-matting-dev", **HOOK)
    with pytest.raises(AssertionError, match="socket"):  # due: sent (no sockets here)
        notify.deliver_due(deployed, RecordStore.of(deployed, memory_cloud.clients(deployed).storage), lambda: False,
                           now=time.time() + notify.BACKOFF_CAP + 1)


def test_a_retry_before_the_recheck_does_not_lose_the_failed_attempts_event(memory_cloud, settings_of):
    """Attempt 1's callback wrote its Failed stage and died before enqueueing its event; the operator
    retries at once (status shows Failed), before reconcile's recheck of attempt 1, which would have
    enqueued it. From then on reconcile follows attempt 2 only: the retry enqueues attempt 1's event
    itself (unless it was sent), or it is never sent."""
    settings, clients, store, finish = _flow(memory_cloud, settings_of, **HOOK)
    rid = finish("input/retried.mp4", "Failed", code="InternalError", message="try again")
    first, _ = store.load(rid)
    store.storage.delete(store.bucket, store.prefix + notify.OUTBOX + notify.event_id(first) + ".json")
    assert Submitter(settings, clients, sleep=lambda s: None).retry(rid).outcome == "submitted"
    reconcile(settings, clients, older_than=0, sweep=False)
    _join_senders()
    record, _ = store.load(rid)
    assert (record.attempt, record.state) == (2, "Submitted")
    assert notify.event_id(first) in notify.pending(store)
