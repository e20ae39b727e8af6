"""Issue 12: one object version, one job, one output, and a way back from every failure.

Every case runs against the local cloud through the real handlers (the submit
function invoked with a COS event shaped like a captured one, the callback behind
its Function URL, the reconcile function on its timer event) or, where a lease or a
budget must be bent, through the same plain function the handler calls.
"""
import json
import threading
import time

import pytest
import requests

from helpers import BUCKET, ROOT, clients_for, function_env, put, settings_for
from shared import tags, tokens
from shared.config import ConfigError, load_settings
from shared.events import Upload, build_event
from shared.reconcile import reconcile
from shared.records import RecordStore
from shared.submit import Submitter

TIMER = json.loads((ROOT / "events" / "timer" / "reconcile-every-10-minutes.json").read_text())
REGION = "ap-guangzhou"


class Flow:
    """The deployed trio on one local cloud: submit (no auto trigger), callback URL, reconcile."""

    def __init__(self, cloud, cos_client, **extra):
        self.cloud, self.cos = cloud, cos_client
        self.url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), function_env(cloud, **extra))
        extra = {"COS_MATTING_CLAIM_LEASE_SECONDS": "60", "COS_MATTING_RECONCILE_AFTER_SECONDS": "0", **extra}
        env = function_env(cloud, COS_MATTING_CALLBACK_URL=self.url, **extra)
        cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="never/")
        cloud.add_timer(str(ROOT / "functions" / "reconcile"), env=env, every_seconds=3600)
        self.settings = settings_for(cloud, COS_MATTING_CALLBACK_URL=self.url, **extra)
        self.clients = clients_for(cloud, self.settings)
        self.store = RecordStore.of(self.settings, self.clients.storage)

    def upload(self, key, body=b"video bytes"):
        put(self.cos, key, body)
        version = self.clients.storage.version(BUCKET, key)
        return Upload(bucket=BUCKET, appid="1250000000", region=REGION, key=key, etag=version.etag,
                      size=version.size, event_name="cos:ObjectCreated:Put", event_time=int(time.time()))

    def submit(self, *uploads, event=None):
        inv = self.cloud.invoke("submit", event or build_event(list(uploads)))
        lines = [json.loads(l) for l in inv.logs if "\"submit.outcome\"" in l]
        return inv, lines

    def reconcile_fn(self):
        inv = self.cloud.invoke("reconcile", TIMER)
        assert inv.ok, inv.error
        return inv.result

    def record(self, key):
        return self.store.load(self.clients.storage.version(BUCKET, key).record_id)[0]

    def jobs(self, key=None):
        return [j for j in self.cloud.list_jobs(BUCKET) if key is None or j.Input.Object == key]

    def tags(self, key):
        return self.clients.storage.get_tags(BUCKET, key) or {}

    def body(self, key):
        return self.cloud.bucket(BUCKET).read(key)


@pytest.fixture
def flow(cloud, cos_client):
    return Flow(cloud, cos_client)


def outcomes(inv):
    if inv.ok:
        return [o["outcome"] for o in inv.result["outcomes"]]
    return inv.error


# -- the newest version wins --------------------------------------------------------------------

def test_overwrite_while_the_first_job_runs_keeps_the_newest_result(flow, cloud):
    first = flow.upload("input/talk.mp4", b"version one")
    assert outcomes(flow.submit(first)[0]) == ["submitted"]
    [job_a] = flow.jobs()
    second = flow.upload("input/talk.mp4", b"version two")
    assert outcomes(flow.submit(second)[0]) == ["submitted"]
    job_b = next(j for j in flow.jobs() if j.JobId != job_a.JobId)
    cloud.set_job_state(BUCKET, job_b.JobId, "Success")  # the new job finishes first
    cloud.wait_idle(timeout=30)
    cloud.set_job_state(BUCKET, job_a.JobId, "Success")  # then the old one
    cloud.wait_idle(timeout=30)
    published = "matting/input/talk.mp4.mask.mp4"
    assert job_b.JobId.encode() in flow.body(published)  # the current version's result, not the old job's
    assert flow.tags(published)[tags.JOB] == job_b.JobId
    src = flow.tags("input/talk.mp4")
    assert (src[tags.JOB], src[tags.STATE]) == (job_b.JobId, "Success")
    new = flow.record("input/talk.mp4")
    assert new.state == "Success" and new.output["key"] == published
    old = flow.store.load(job_a.Operation.UserData[3:35])[0]
    assert old.state == "Success" and old.output["key"] != published
    assert any("not published" in n and "newer version" in n for n in old.notes)


def test_old_job_finishing_first_is_replaced_when_the_new_one_finishes(flow, cloud):
    flow.submit(flow.upload("input/swap.mp4", b"one"))
    [job_a] = flow.jobs()
    flow.submit(flow.upload("input/swap.mp4", b"two"))
    job_b = next(j for j in flow.jobs() if j.JobId != job_a.JobId)
    cloud.set_job_state(BUCKET, job_a.JobId, "Success")
    cloud.wait_idle(timeout=30)
    assert not cloud.bucket(BUCKET).exists("matting/input/swap.mp4.mask.mp4")  # old version: never published
    cloud.set_job_state(BUCKET, job_b.JobId, "Success")
    cloud.wait_idle(timeout=30)
    assert job_b.JobId.encode() in flow.body("matting/input/swap.mp4.mask.mp4")


# -- each source key has its own output --------------------------------------------------------------

def test_sources_that_differ_only_in_easy_to_lose_ways_get_their_own_outputs(cloud, cos_client):
    flow = Flow(cloud, cos_client, COS_MATTING_WATCH_PREFIXES="input/,camera/")
    keys = ["input/a.mp4", "input/a.MOV", "input/a.b.mp4", "input/a.b.mkv", "input/x//a.mp4", "input/x/./a.mp4",
            "input/x/a.mp4", "camera/a.mp4", "input/" + "長" * 280 + ".mp4"]  # the last one: 850 bytes
    assert len(keys[-1].encode()) == 850
    inv, _ = flow.submit(*[flow.upload(k, k.encode()) for k in keys])
    assert outcomes(inv) == ["submitted"] * len(keys)
    for job in flow.jobs():
        cloud.set_job_state(BUCKET, job.JobId, "Success")
    cloud.wait_idle(timeout=60)
    outputs = {k: flow.record(k).output["key"] for k in keys}
    assert len(set(outputs.values())) == len(keys), outputs
    assert all(len(o.encode()) <= 850 and o.startswith("matting/") for o in outputs.values())
    assert outputs[keys[-1]].endswith(".mp4") and "~" in outputs[keys[-1]]  # readable cut + hash
    for key, out in outputs.items():
        assert flow.tags(out)[tags.ROLE] == "output" and cloud.bucket(BUCKET).exists(out)


@pytest.mark.parametrize("var,value", [
    ("COS_MATTING_SUFFIXES", ","), ("COS_MATTING_TIMEOUT_SECONDS", "inf"), ("COS_MATTING_OUTPUT_PREFIX", "./"),
    ("COS_MATTING_OUTPUT_NAME", "{output_prefix}../{key}"), ("COS_MATTING_OUTPUT_NAME", "{output_prefix}{mode}.mp4"),
    ("COS_MATTING_OUTPUT_NAME", "{output_prefix}{key_dir}{stem}.{mode}.mp4"),  # a.mp4 and a.MOV collide
    ("COS_MATTING_RECORDS_PREFIX", "matting/"), ("COS_MATTING_CLAIM_LEASE_SECONDS", "20"),
])
def test_settings_that_break_uploads_later_are_refused_at_cold_start(cloud, var, value):
    env = function_env(cloud, **{var: value})
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert var in str(err.value)
    # and the real handler refuses every event with it: no job, the variable named
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="never/",
                      name="bad-submit")
    inv = cloud.invoke("bad-submit", build_event([Upload(bucket=BUCKET, appid="1250000000", region=REGION,
                                                         key="input/x.mp4", etag="e", size=1,
                                                         event_name="cos:ObjectCreated:Put")]))
    assert not inv.ok and "ConfigError" in inv.error + inv.traceback and cloud.list_jobs(BUCKET) == []
    assert var in "\n".join(inv.logs) + inv.traceback
    # while the health event (doctor's) is answered with what is wrong (shared/health.py)
    health = cloud.invoke("bad-submit", {"cos-matting": "health"})
    assert health.ok and health.result["ok"] is False and var in health.result["settings"]


# -- nothing final forever ----------------------------------------------------------------------

def test_a_403_before_the_role_is_authorised_can_be_retried(flow, cloud, capsys, monkeypatch):
    up = flow.upload("input/early.mp4")
    cloud.faults.add("ci.create", count=1, status=403)
    inv, _ = flow.submit(up)
    assert "failed:submit" in outcomes(inv)
    record = flow.record(up.key)
    assert record.state == "Failed" and record.retry == "after-fix"
    assert outcomes(flow.submit(up)[0]) == ["duplicate"]  # redelivery: still done
    assert flow.reconcile_fn()["resubmitted"] == 0 and flow.jobs() == []  # reconcile: still done
    from cli.main import main

    for k, v in function_env(cloud).items():
        monkeypatch.setenv(k, v)
    assert main(["retry", "--no-callback", up.key, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["outcome"] == "submitted" and row["attempt"] == 2
    [job] = flow.jobs()
    assert job.Operation.UserData.endswith(".2")
    record, stages = flow.store.load(record.id)
    assert record.attempt == 2 and record.state == "Submitted"
    assert {s.key.rsplit("/", 1)[1] for s in stages} >= {"001-0-claim-1.json", "001-3-final.json",
                                                         "002-0-claim-1.json", "002-1-submitted.json"}
    assert main(["status", up.key, "--json", "--no-uploads"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"][0]["attempts"] == 2


def test_retry_by_state_asks_first_and_takes_yes(flow, cloud, capsys, monkeypatch):
    ups = [flow.upload(f"input/bulk-{i}.mp4", str(i).encode()) for i in range(3)]
    cloud.faults.add("ci.create", count=3, status=400)
    flow.submit(*ups)
    from cli.main import main

    for k, v in function_env(cloud).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["retry", "--no-callback", "--state", "Failed"]) == 2  # no terminal to ask on: refused, nothing done
    assert flow.jobs() == []
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))
    assert main(["retry", "--no-callback", "--state", "Failed", "--since", since, "--yes"]) == 0
    assert "retried 3 of 3" in capsys.readouterr().out and len(flow.jobs()) == 3


def test_a_delete_and_re_upload_of_the_same_bytes_is_a_new_upload(flow, cloud, cos_client):
    up = flow.upload("input/again.mp4", b"same bytes")
    cloud.faults.add("ci.create", count=1, status=400)
    flow.submit(up)
    assert flow.record(up.key).state == "Failed"
    cos_client.delete_object(Bucket=BUCKET, Key=up.key)
    time.sleep(1.1)  # Last-Modified has whole seconds
    again = flow.upload("input/again.mp4", b"same bytes")
    assert again.etag == up.etag
    assert outcomes(flow.submit(again)[0]) == ["submitted"]
    assert flow.record(up.key).state == "Submitted" and len(flow.jobs()) == 1


def test_a_claim_for_a_deleted_source_is_closed(flow, cloud, cos_client):
    up = flow.upload("input/vanishing.mp4")
    cloud.faults.add("ci.create", count=4, status=503)  # every attempt fails: the claim stays open
    flow.submit(up)
    rid = flow.record(up.key).id
    cos_client.delete_object(Bucket=BUCKET, Key=up.key)
    summary = reconcile(flow.settings.model_copy(update={"claim_lease_seconds": 0}), flow.clients, older_than=0)
    assert summary.closed == 1 and flow.jobs() == []
    record, _ = flow.store.load(rid)
    assert record.state == "Gone" and record.terminal
    assert flow.store.open_page()[0] == []  # nothing left pending


# -- identity from a HEAD -------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["", "UPPER"])
def test_identity_comes_from_the_object_not_the_event(flow, cloud, spelling, capsys, monkeypatch):
    up = flow.upload("input/etag.mp4")
    etag = "" if spelling == "" else f'"{up.etag.upper()}"'
    event = build_event([up])
    event["Records"][0]["cos"]["cosObject"]["meta"]["ETag"] = etag
    assert outcomes(flow.submit(event=event)[0]) == ["submitted"]
    from cli.main import main

    for k, v in function_env(cloud).items():
        monkeypatch.setenv(k, v)
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["never_became_a_job"] == 0
    summary = flow.reconcile_fn()
    assert summary["swept"] == 0 and len(flow.jobs()) == 1


def test_a_late_event_for_an_overwritten_version_is_stale(flow, cloud):
    old = flow.upload("input/late.mp4", b"old")
    flow.upload("input/late.mp4", b"new and longer")
    inv, _ = flow.submit(old)
    assert outcomes(inv) == ["skipped:stale"] and flow.jobs() == []


# -- at most one job per version -----------------------------------------------------------------

def test_a_create_answered_after_the_timeout_leaves_one_live_job(cloud, cos_client):
    flow = Flow(cloud, cos_client, COS_MATTING_TIMEOUT_SECONDS="1")
    up = flow.upload("input/slow-create.mp4")
    cloud.faults.add("ci.create", count=1, delay=2.5)  # CI creates it 2.5 s later, after our lookup
    inv, _ = flow.submit(up)
    assert outcomes(inv) == ["submitted"]
    recorded = flow.record(up.key).job_id
    deadline = time.time() + 10
    while len(flow.jobs()) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(flow.jobs()) == 2  # the slow request did create a second job
    summary = flow.reconcile_fn()
    assert summary["second_jobs"] == 1
    states = {j.JobId: cloud.get_job(BUCKET, j.JobId).State for j in flow.jobs()}
    assert states[recorded] == "Submitted" and sorted(states.values()) == ["Cancel", "Submitted"]
    cloud.wait_idle(timeout=20)  # the cancelled job's callback: ignored
    record = flow.record(up.key)
    assert record.state == "Submitted" and record.job_id == recorded
    assert any("second job" in n and "cancelled" in n for n in record.notes)


# -- unreadable records ---------------------------------------------------------------------------

def test_an_unreadable_stage_fails_alone(flow, cloud, cos_client):
    broken = flow.upload("input/broken.mp4")
    flow.submit(broken)
    rid = flow.record(broken.key).id
    [job] = flow.jobs()
    cos_client.put_object(Bucket=BUCKET, Key=f"{flow.settings.records_prefix}{rid}/001-1-submitted.json", Body=b"")
    # an event with the broken record's upload and a fresh one: the fresh one goes on
    fresh = flow.upload("input/fresh.mp4")
    inv, _ = flow.submit(broken, fresh)
    assert outcomes(inv) == ["duplicate", "submitted"]
    # the callback reads the older snapshot, says so, and finishes the record
    cloud.set_job_state(BUCKET, job.JobId, "Success")
    cloud.wait_idle(timeout=30)
    record, _ = flow.store.load(rid)
    assert record.state == "Success" and any("001-1-submitted.json" in n and "empty" in n for n in record.notes)


def test_a_record_with_nothing_readable_gets_a_clear_4xx_from_the_callback(flow, cloud, cos_client):
    up = flow.upload("input/all-broken.mp4")
    flow.submit(up)
    rid = flow.record(up.key).id
    [job] = flow.jobs()
    for name in ("001-0-claim-1.json", "001-1-submitted.json"):
        cos_client.put_object(Bucket=BUCKET, Key=f"{flow.settings.records_prefix}{rid}/{name}", Body=b"")
    url = tokens.callback_url(flow.url, flow.settings.callback_keys, rid, 600, time.time())
    answer = requests.post(url, json={"EventName": "TaskFinish", "JobsDetail": {"JobId": job.JobId}}, timeout=20)
    assert answer.status_code == 422 and "001-1-submitted.json" in answer.json()["error"]
    assert "empty" in answer.json()["error"]


def test_a_malformed_record_in_an_event_fails_alone(flow, cloud):
    good = flow.upload("input/good.mp4")
    event = build_event([good, good])
    del event["Records"][0]["cos"]["cosObject"]["key"]
    inv, _ = flow.submit(event=event)
    assert not inv.ok and "failed:parse" in inv.error
    assert [j.Input.Object for j in flow.jobs()] == ["input/good.mp4"]


# -- reconcile works from what is pending -----------------------------------------------------------

def test_reconcile_stops_at_its_budget_and_goes_on_next_tick(flow, cloud):
    ups = [flow.upload(f"input/many-{i:02d}.mp4", str(i).encode()) for i in range(12)]
    flow.submit(*ups)
    cloud.faults.add("callback.send", count=100, drop=True)
    for job in flow.jobs():
        cloud.set_job_state(BUCKET, job.JobId, "Success")
    cloud.wait_idle(timeout=30)
    cloud.faults.clear()
    ticks = iter(range(10 ** 6))
    clock = lambda: next(ticks) * 0.5  # noqa: E731 - a fake clock: every reading costs half a second
    summaries = []
    for _ in range(20):
        # a third of the budget is the open index's own share (reconcile.py): two readings of this clock
        summaries.append(reconcile(flow.settings, flow.clients, older_than=0, budget=6, clock=clock))
        if not summaries[-1].stopped_early:
            break
    assert summaries[0].stopped_early and 0 < summaries[0].advanced < 12
    assert sum(s.advanced for s in summaries) == 12 and not summaries[-1].stopped_early
    assert all(flow.record(u.key).state == "Success" for u in ups)
    # each final record is rechecked once (its tags read again) and only then leaves the open index
    assert reconcile(flow.settings, flow.clients, older_than=0).rechecked == 12
    assert flow.store.open_page()[0] == []
    assert reconcile(flow.settings, flow.clients, older_than=0).scanned == 0  # finished work is not read again


# -- tags ---------------------------------------------------------------------------------------------

def test_a_user_tag_added_during_submit_is_kept(flow, cloud, cos_client):
    up = flow.upload("input/tagged.mp4")
    cloud.faults.add("ci.create", count=1, delay=1.0)  # submit is slow: the user tags the source meanwhile

    def user_tags():
        time.sleep(0.4)
        cos_client.put_object_tagging(Bucket=BUCKET, Key=up.key,
                                      Tagging={"TagSet": {"Tag": [{"Key": "project", "Value": "launch"}]}})

    threading.Thread(target=user_tags).start()
    assert outcomes(flow.submit(up)[0]) == ["submitted"]
    got = flow.tags(up.key)
    assert got["project"] == "launch" and got[tags.STATE] == "Submitted"


def test_a_late_submitted_tag_never_moves_a_success_back(flow, cloud):
    from shared.lifecycle import Lifecycle

    up = flow.upload("input/order.mp4")
    flow.submit(up)
    submitted = flow.record(up.key)
    cloud.set_job_state(BUCKET, submitted.job_id, "Success")
    cloud.wait_idle(timeout=30)
    assert flow.tags(up.key)[tags.STATE] == "Success"
    Lifecycle.of(flow.settings, flow.clients).tag_source(submitted)  # submit's own tag write, arriving after the callback's
    assert flow.tags(up.key)[tags.STATE] == "Success"


# -- callback ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("exp", ["²", "9" * 5000, "-1", "1e9", " 1"])
def test_a_malformed_token_field_is_401(flow, exp):
    up = flow.upload("input/token.mp4")
    flow.submit(up)
    record = flow.record(up.key)
    url = tokens.callback_url(flow.url, flow.settings.callback_keys, record.id, 600, time.time())
    base, query = url.split("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params["exp"] = exp
    body = {"EventName": "TaskFinish", "JobsDetail": {"JobId": record.job_id}}
    assert requests.post(base, params=params, json=body, timeout=20).status_code == 401


def test_a_body_naming_a_foreign_job_writes_nothing(flow, cloud):
    a, b = flow.upload("input/mine.mp4", b"a"), flow.upload("input/theirs.mp4", b"b")
    flow.submit(a, b)
    ra, rb = flow.record(a.key), flow.record(b.key)
    cloud.faults.add("callback.send", count=10, drop=True)
    cloud.set_job_state(BUCKET, ra.job_id, "Success")
    cloud.set_job_state(BUCKET, rb.job_id, "Success")
    cloud.wait_idle(timeout=30)
    cloud.faults.clear()
    url = tokens.callback_url(flow.url, flow.settings.callback_keys, ra.id, 600, time.time())
    body = {"EventName": "TaskFinish", "JobsDetail": [{"JobId": ra.job_id}, {"JobId": rb.job_id}]}
    assert requests.post(url, json=body, timeout=20).status_code == 403
    assert flow.record(a.key).state == "Submitted" and flow.tags(a.key)[tags.STATE] == "Submitted"
    assert not cloud.bucket(BUCKET).exists("matting/input/mine.mp4.mask.mp4")


def test_a_claim_with_an_unreadable_newer_stage_is_still_resumed(flow, cloud, cos_client):
    up = flow.upload("input/claim-then-corrupt.mp4")
    cloud.faults.add("ci.create", count=4, status=503)  # the claim stays without a job
    flow.submit(up)
    rid = flow.record(up.key).id
    cos_client.put_object(Bucket=BUCKET, Key=f"{flow.settings.records_prefix}{rid}/001-2-running.json", Body=b"")
    summary = reconcile(flow.settings.model_copy(update={"claim_lease_seconds": 0}), flow.clients, older_than=0)
    assert summary.resubmitted == 1 and summary.failed == 0
    record = flow.record(up.key)
    assert record.job_id and [j.JobId for j in flow.jobs()] == [record.job_id]
