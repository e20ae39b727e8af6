"""Notifications end to end: the callback function (a Function URL on the local cloud) answers
at once whatever the webhook does; the event arrives signed; a refused one is sent again by
reconcile until a 2xx, and the record keeps a log of every attempt."""
import json
import time

import pytest
import requests

from helpers import clients_for, function_env, settings_for, wait_for
from shared import notify
from shared.records import RecordStore
from shared.reconcile import reconcile

from .test_callback_pipeline import finish_silently, make_flow
from .webhook import Webhook

SECRET = "whsec-e2e-0123456789abcdef"


@pytest.fixture
def hook():
    w = Webhook(SECRET)
    yield w
    w.close()


def _flow(cloud, cos_client, hook):
    return make_flow(cloud, cos_client, hook.env())


def _call_back(url, job_id):
    started = time.monotonic()
    answer = requests.post(url, data=json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}}),
                           headers={"Content-Type": "application/json"}, timeout=30)
    return answer, time.monotonic() - started


def test_a_slow_receiver_does_not_delay_the_callback(cloud, cos_client, hook):
    settings, clients, store, submit = _flow(cloud, cos_client, hook)
    rid, job_id, url = submit("input/warm.mp4")  # a first call warms the function up
    finish_silently(cloud, job_id)
    answer, _ = _call_back(url, job_id)
    assert answer.status_code == 200
    wait_for(lambda: notify.pending(store) == [], timeout=20)

    hook.delay = 4.0  # the receiver now takes 4 s per answer
    rid, job_id, url = submit("input/slow.mp4")
    finish_silently(cloud, job_id, "Failed", code="InputNotVideo", message="not a video")
    answer, elapsed = _call_back(url, job_id)
    assert answer.status_code == 200 and answer.json()["results"][0]["state"] == "Failed"
    assert elapsed < 2.0, f"the callback waited for the webhook: {elapsed:.2f}s"
    eid = notify.event_id(store.load(rid)[0])
    wait_for(lambda: eid in hook.accepted, timeout=20)
    event = hook.accepted[eid][1]
    assert event["record_id"] == rid and event["state"] == "Failed" and event["job_id"] == job_id
    assert event["error"]["Code"] == "InputNotVideo" and event["source"]["key"] == "input/slow.mp4"
    assert hook.bad_signatures == []
    wait_for(lambda: notify.pending(store) == [], timeout=10)
    log = notify.deliveries(store, rid)
    assert [(d["event_id"], d["status"], d["ok"]) for d in log] == [(eid, 200, True)]
    assert log[0]["answer"] == '{"ok": true}'


def test_refused_events_are_sent_again_by_reconcile_until_accepted(cloud, cos_client, hook):
    settings, clients, store, submit = _flow(cloud, cos_client, hook)
    hook.fail_rate = 1.0  # every answer is 500 for now
    rid, job_id, url = submit("input/retry.mp4")
    finish_silently(cloud, job_id)
    assert _call_back(url, job_id)[0].status_code == 200
    record = store.load(rid)[0]
    eid = notify.event_id(record)
    # the callback's own try, refused: logged, then its entry rescheduled (wait for both, as below: read
    # between the two, the entry still says attempt 0 and deliver_due would send attempt 1 again)
    wait_for(lambda: notify.deliveries(store, rid) and _attempts(store, eid) == 1, timeout=20)
    assert notify.pending(store) == [eid]

    summary = reconcile(settings, clients, sweep=False)
    assert summary.notified == {"sent": 0, "failed": 0, "waiting": 1}  # backing off: not due yet

    later = time.time() + notify.BACKOFF_CAP + 1
    assert notify.deliver_due(settings, store, lambda: False, now=later) == {"sent": 0, "failed": 1, "waiting": 0}
    hook.fail_rate = 0.0
    assert notify.deliver_due(settings, store, lambda: False, now=later) == {"sent": 1, "failed": 0, "waiting": 0}
    assert notify.pending(store) == [] and eid in hook.accepted
    assert notify.deliver_due(settings, store, lambda: False, now=later) == {"sent": 0, "failed": 0, "waiting": 0}
    log = notify.deliveries(store, rid)
    assert [(d["status"], d["attempt"]) for d in log] == [(500, 1), (500, 2), (200, 3)]
    assert hook.bad_signatures == [] and all(signed for _, _, signed, _ in hook.deliveries)


def test_status_shows_a_records_delivery_log(cloud, cos_client, hook, capsys, monkeypatch):
    from .cli_support import run_json

    settings, clients, store, submit = _flow(cloud, cos_client, hook)
    hook.fail_rate = 1.0
    rid, job_id, url = submit("input/logged.mp4")
    finish_silently(cloud, job_id)
    assert _call_back(url, job_id)[0].status_code == 200
    eid = notify.event_id(store.load(rid)[0])
    # the head-start sender logs the refused try, then reschedules the entry: wait for both, or
    # deliver_due may read the entry before it is rescheduled and send attempt 1 again
    wait_for(lambda: notify.deliveries(store, rid) and _attempts(store, eid) == 1, timeout=20)
    hook.fail_rate = 0.0
    notify.deliver_due(settings, store, lambda: False, now=time.time() + notify.BACKOFF_CAP + 1)
    for name, value in {**function_env(cloud), **hook.env()}.items():
        monkeypatch.setenv(name, value)
    code, result = run_json(capsys, "status", rid)
    assert code == 0
    [row] = result["records"]
    assert [(n["attempt"], n["status"], n["ok"]) for n in row["notifications"]] == [(1, 500, False), (2, 200, True)]
    assert {n["event_id"] for n in row["notifications"]} == {notify.event_id(store.load(rid)[0])}


def _attempts(store, eid):
    body = store.storage.get(store.bucket, f"{store.prefix}{notify.OUTBOX}{eid}.json")
    return json.loads(body)["attempts"] if body else None


def test_notify_test_sends_a_signed_sample_and_prints_the_answer(cloud, capsys, monkeypatch, hook):
    from .cli_support import run_cli, run_json

    for name, value in {**function_env(cloud), **hook.env()}.items():
        monkeypatch.setenv(name, value)
    code, result = run_json(capsys, "notify", "--test")
    assert code == 0 and result["status"] == 200 and result["ok"] and result["answer"] == '{"ok": true}'
    eid = result["event_id"]
    assert eid in hook.accepted and hook.accepted[eid][1]["type"] == "test" and hook.bad_signatures == []

    hook.fail_rate = 1.0
    code, out, _ = run_cli(capsys, "notify", "--test")
    assert code == 1 and "HTTP 500" in out and "try later" in out

    monkeypatch.setenv("COS_MATTING_NOTIFY_SECRET", "a-different-secret-0123")  # the receiver refuses it
    hook.fail_rate = 0.0
    code, result = run_json(capsys, "notify", "--test")
    assert code == 1 and result["status"] == 500 and len(hook.bad_signatures) == 1

    code, _, err = run_cli(capsys, "notify", "--test", "--url", "http://127.0.0.1:9/nothing")
    assert code == 1 and "nothing answered" in err and "Traceback" not in err
    monkeypatch.delenv("COS_MATTING_NOTIFY_URL")
    code, _, err = run_cli(capsys, "notify", "--test")
    assert code == 2 and "COS_MATTING_NOTIFY_URL: not set" in err


def test_a_redirect_is_an_answer_not_a_new_target(hook):
    """urllib would follow a 302 with a bodiless GET; a webhook sender must not (nor count it delivered)."""
    hook.redirect = hook.url + "/elsewhere"
    status, _ = notify.post(hook.url, SECRET, b'{"id": "evt_r"}', "evt_r")
    assert status == 302 and hook.gets == 0 and hook.accepted == {}


def test_a_receiver_that_never_answers_costs_a_tick_only_a_few_tries(cloud):
    """A receiver down (nothing answers, up to SEND_TIMEOUT each): reconcile's tick stops after
    UNANSWERED_STOP tries and leaves the rest in the outbox, so the sweep after it still runs."""
    down = Webhook(SECRET, down_until=time.time() + 3600)
    try:
        settings = settings_for(cloud, **down.env())
        store = RecordStore.of(settings, clients_for(cloud, settings).storage)
        for n in range(notify.UNANSWERED_STOP + 3):
            eid = f"evt_{n:032d}"
            entry = {"event": {"id": eid, "record_id": f"{n:032x}"}, "attempts": 1, "next_at": 0.0}
            store.storage.put_json(store.bucket, f"{store.prefix}{notify.OUTBOX}{eid}.json", json.dumps(entry).encode())
        counts = notify.deliver_due(settings, store, lambda: False)
        assert counts == {"sent": 0, "failed": notify.UNANSWERED_STOP, "waiting": 0}
        assert len(notify.pending(store)) == notify.UNANSWERED_STOP + 3  # none lost: the next tick tries again
        down.down_until = 0.0
        assert notify.deliver_due(settings, store, lambda: False, now=time.time() + notify.BACKOFF_CAP + 1) == \
            {"sent": notify.UNANSWERED_STOP + 3, "failed": 0, "waiting": 0}
        assert notify.pending(store) == []
    finally:
        down.close()
