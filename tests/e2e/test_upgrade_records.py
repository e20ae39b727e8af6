"""Upgrades keep every record. Each older release runs from git history, as SCF would run it, against
the local cloud: its submit handler makes records and jobs, its reconcile finishes one. Today's
callback, reconcile, `status` and `backfill` then run over them: the in-flight jobs finish, nothing
is submitted again. One release per older record format (shared/records.py), each with its own id
rule (shared/identity.py OLDER_IDS): a5737e5 (format 1: the ETag alone, no open index) and 279d89d
(format 2: the version id, else ETag + size + Last-Modified; the per-attempt layout)."""
import json
import os
import subprocess
import sys
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from helpers import BUCKET, REGION, ROOT, clients_for, function_env, put, sdk_client, settings_for
from shared.events import build_event, upload_from_listing
from shared.identity import ObjectVersion, id_format1, id_format2
from shared.records import FORMAT, RecordStore
from shared.reconcile import reconcile
from .cli_support import cli_env, run_json  # noqa: F401 (a fixture)

# `git log --oneline -- shared/records.py`: the last commit of each older format
PREVIOUS = {
    # format 1: the commit before 1763e44 (per-attempt layout)
    "a5737e5": dict(format=1, id=id_format1, marker="cm:{}", stage="{}.json", open_index=False),
    # format 2: the release before the content id (h22) and the format field (h20b)
    "279d89d": dict(format=2, id=id_format2, marker="cm:{}.1", stage="001-{}.json", open_index=True),
}
RECORDS = ".cos-matting/records/"
DEPLOYED = {"COS_MATTING_DEPLOYMENT": "cos-matting-dev"}  # today's deploy names the deployment; the old one did not


def release_code(tmp_path, commit):
    """A release's `shared` and `functions`, as its zip would have held them."""
    out = tmp_path / f"release-{commit}"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "shared", "functions"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.fail(f"git archive {commit} failed (a shallow clone?): {archive.stderr.decode()[:300]}")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


@pytest.fixture(params=sorted(PREVIOUS))
def previous_release(tmp_path, request):
    """An older release's code and what it wrote."""
    return release_code(tmp_path, request.param), PREVIOUS[request.param]


def run_previous(code_dir, cloud, function, event, **env):
    """The previous release's handler in its own process, its code alone on the path (as SCF runs it)."""
    # then waits for the handler's own threads (a webhook's first try, shared/notify.py): killed at exit
    # half way (POSTed, not yet logged or out of the outbox), its event would rightly be sent again
    script = (f"import json, sys, threading; from functions.{function}.index import main_handler; "
              "print(json.dumps(main_handler(json.load(sys.stdin), None)), flush=True); "
              "[t.join(60) for t in threading.enumerate() if t is not threading.main_thread()]")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    environ.update(function_env(cloud, **env), PYTHONPATH=str(code_dir))
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(event), env=environ, cwd=str(code_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_todays_code_finishes_an_older_releases_records(cloud, previous_release, cli_env, capsys, tmp_path,
                                                        monkeypatch):
    from shared.callback import handle

    previous_release, old = previous_release

    cos = sdk_client(cloud)
    for name in ("a", "b", "c", "d"):
        put(cos, f"input/{name}.mp4", body=b"\x00\x00\x00\x18ftypmp42 video " + name.encode())
    listing = cos.list_objects(Bucket=BUCKET, Prefix="input/")["Contents"]
    event = build_event([upload_from_listing(BUCKET, REGION, obj) for obj in listing])
    old_env = {"COS_MATTING_CALLBACK_URL": "http://127.0.0.1:9/callback", "COS_MATTING_RECONCILE_AFTER_SECONDS": "0"}
    answer = run_previous(previous_release, cloud, "submit", event, **old_env)
    assert [o["outcome"] for o in answer["outcomes"]] == ["submitted"] * 4
    jobs = {j.Input.Object: j for j in cloud.list_jobs()}
    rid = {o["Key"]: old["id"](ObjectVersion.from_listing(BUCKET, o)) for o in listing}  # its own id rule
    assert all(r != ObjectVersion.from_listing(BUCKET, o).record_id for r, o in zip(rid.values(), listing))
    assert {jobs[k].Operation.UserData for k in jobs} == {old["marker"].format(rid[k]) for k in rid}  # its spelling
    # The previous release's own reconcile finishes d: a final record in format 1.
    cloud.set_job_state(BUCKET, jobs["input/d.mp4"].JobId, "Success")
    run_previous(previous_release, cloud, "reconcile", {"Type": "Timer"}, **old_env)
    names = {o["Key"][len(RECORDS):] for o in cos.list_objects(Bucket=BUCKET, Prefix=RECORDS)["Contents"]}
    assert f"{rid['input/a.mp4']}/{old['stage'].format('1-submitted')}" in names
    assert f"{rid['input/d.mp4']}/{old['stage'].format('3-final')}" in names
    assert any(n.startswith("open/") for n in names) == old["open_index"]  # format 1 had no open index
    assert "state/format.json" not in names
    cloud.set_job_state(BUCKET, jobs["input/c.mp4"].JobId, "Running")

    # Today's release, deployed over it.
    settings = settings_for(cloud, **DEPLOYED, COS_MATTING_CALLBACK_URL="http://127.0.0.1:9/callback")
    clients = clients_for(cloud, settings)
    store = RecordStore.of(settings, clients.storage)
    assert store.load(rid["input/a.mp4"])[0].state == "Submitted"

    # a: its job ends, and the callback the previous release signed reaches today's callback.
    job_a = cloud.set_job_state(BUCKET, jobs["input/a.mp4"].JobId, "Success")
    signed = cloud.jobs.record(BUCKET, job_a.JobId).request.CallBack
    body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_a.JobId}}).encode()
    status, result = handle(settings, clients, dict(parse_qsl(urlsplit(signed).query)), body)
    assert status == 200, result
    a = store.load(rid["input/a.mp4"])[0]
    # format 1's job wrote the output's name; format 2's a per-attempt key, published under publish_as
    assert a.state == "Success" and a.output["key"] == (a.publish_as or jobs["input/a.mp4"].Operation.Output.Object)
    assert clients.storage.head(BUCKET, a.output["key"]) is not None
    # the source is still the version the record belongs to: tagged
    assert clients.storage.get_tags(BUCKET, "input/a.mp4")["cos-matting:state"] == "Success"

    # b (its callback lost) and c (Running): today's reconcile finds them (format 1 had no open index).
    cloud.set_job_state(BUCKET, jobs["input/b.mp4"].JobId, "Success")
    summary = reconcile(settings, clients, older_than=0)
    assert summary.advanced == 2 and summary.still_running == 1, summary  # b to Success, c to Running
    assert summary.resubmitted == summary.swept == summary.second_jobs == summary.failed == 0, summary
    assert store.load(rid["input/b.mp4"])[0].state == "Success"
    cloud.set_job_state(BUCKET, jobs["input/c.mp4"].JobId, "Success")
    reconcile(settings, clients, older_than=0)
    assert [store.load(rid[k])[0].state for k in sorted(rid)] == ["Success"] * 4
    assert json.loads(cos.get_object(Bucket=BUCKET, Key=RECORDS + "state/format.json")["Body"].get_raw_stream()
                      .read()) == {"format": FORMAT, "older": {"1": 0, "2": 0, str(old["format"]): 4}, "done": True}

    # status and backfill (acting as the deployment) see every upload as recorded; nothing is submitted again.
    monkeypatch.setenv("COS_MATTING_DEPLOYMENT", DEPLOYED["COS_MATTING_DEPLOYMENT"])
    code, shown = run_json(capsys, "status", "--all")
    assert code == 0 and shown["never_became_a_job"] == 0, shown["missing"]
    assert sorted(r["state"] for r in shown["records"]) == ["Success"] * 4
    code, one = run_json(capsys, "status", "input/a.mp4")  # by key: the record is found by its own id
    assert code == 0 and [r["record_id"] for r in one["records"]] == [rid["input/a.mp4"]], one
    code, dry = run_json(capsys, "backfill", "--dry-run", "--checkpoint", str(tmp_path / "dry.json"))
    assert code == 0 and dry["totals"]["has-record"] == 4 and dry["totals"]["would-submit"] == 0, dry
    code, real = run_json(capsys, "backfill", "--checkpoint", str(tmp_path / "real.json"))
    assert code == 0 and real["totals"].get("duplicate") == 4 and not real["totals"].get("submitted"), real
    assert len(cloud.list_jobs()) == 4  # the older release's four jobs, no other


def test_format_2_records_of_a_versioned_bucket_are_found_by_their_version_id(cloud, tmp_path, cli_env, capsys,
                                                                              monkeypatch):
    """279d89d took the record id from the version id where versioning is on; no listing carries one
    (GET Bucket, 436/7734). Today's sweep, `status`, `backfill` and submit still find those records
    (RecordStore.find_older: one HEAD), and reconcile finishes their jobs."""
    from helpers import OTHER_BUCKET

    cos = sdk_client(cloud)
    cos.put_bucket_versioning(Bucket=BUCKET, Status="Enabled")
    records = {"COS_MATTING_RECORDS_BUCKET": OTHER_BUCKET}  # create-only writes need a never-versioned bucket
    for name in ("a", "b"):
        put(cos, f"input/{name}.mp4", body=b"\x00\x00\x00\x18ftypmp42 video " + name.encode())
    listing = cos.list_objects(Bucket=BUCKET, Prefix="input/")["Contents"]
    event = build_event([upload_from_listing(BUCKET, REGION, obj) for obj in listing])
    old_env = {"COS_MATTING_CALLBACK_URL": "http://127.0.0.1:9/callback", **records}
    answer = run_previous(release_code(tmp_path, "279d89d"), cloud, "submit", event, **old_env)
    assert [o["outcome"] for o in answer["outcomes"]] == ["submitted"] * 2
    heads = {o["Key"]: cos.head_object(Bucket=BUCKET, Key=o["Key"]) for o in listing}
    rid = {k: id_format2(ObjectVersion.from_head(BUCKET, k, h)) for k, h in heads.items()}
    assert all(h.get("x-cos-version-id") for h in heads.values())
    assert {j.Operation.UserData for j in cloud.list_jobs()} == {f"cm:{r}.1" for r in rid.values()}
    assert all(r != id_format2(ObjectVersion.from_listing(BUCKET, o)) for r, o in zip(rid.values(), listing))

    settings = settings_for(cloud, **DEPLOYED, **records, COS_MATTING_CALLBACK_URL="http://127.0.0.1:9/callback")
    clients = clients_for(cloud, settings)
    store = RecordStore.of(settings, clients.storage)
    for job in cloud.list_jobs():
        cloud.set_job_state(BUCKET, job.JobId, "Success")
    summary = reconcile(settings, clients, older_than=0)  # the open index (format 2 had one), then the sweep
    assert summary.advanced == 2 and summary.swept == summary.resubmitted == summary.failed == 0, summary
    assert [store.load(rid[k])[0].state for k in sorted(rid)] == ["Success"] * 2
    assert store.older_formats() == {2}

    monkeypatch.setenv("COS_MATTING_DEPLOYMENT", DEPLOYED["COS_MATTING_DEPLOYMENT"])
    monkeypatch.setenv("COS_MATTING_RECORDS_BUCKET", OTHER_BUCKET)
    code, shown = run_json(capsys, "status", "--all")
    assert code == 0 and shown["never_became_a_job"] == 0, shown["missing"]
    code, dry = run_json(capsys, "backfill", "--dry-run", "--checkpoint", str(tmp_path / "dry.json"))
    assert code == 0 and dry["totals"]["has-record"] == 2 and dry["totals"]["would-submit"] == 0, dry
    code, real = run_json(capsys, "backfill", "--checkpoint", str(tmp_path / "real.json"))
    assert code == 0 and real["totals"].get("duplicate") == 2 and not real["totals"].get("submitted"), real
    assert len(cloud.list_jobs()) == 2  # the older release's jobs, no other


# The last release that moved a settled final record from the open index to `recheck/<id>`
# (`git log -- shared/records.py`: 55155ae stopped writing it; today's reconcile drains it).
RECHECK_RELEASE = "750cb24"


def test_the_previous_releases_recheck_entries_are_drained_and_their_events_sent_once(cloud, tmp_path):
    """The release before today's settles a finished record into its recheck index (its own reconcile
    here, the job's callback lost), and a submit's `Submitted` tag write lands late on the source.
    Today's reconcile rechecks the entry (the source's state put right) and drops it, and the record's
    webhook event reaches the receiver exactly once (the older release enqueued it; no re-send)."""
    from shared import notify, tags

    from .webhook import Webhook

    code = release_code(tmp_path, RECHECK_RELEASE)
    hook = Webhook("whsec-upgrade-0123456789")
    try:
        cos = sdk_client(cloud)
        put(cos, "input/r.mp4", body=b"\x00\x00\x00\x18ftypmp42 video r")
        listing = cos.list_objects(Bucket=BUCKET, Prefix="input/")["Contents"]
        env = {"COS_MATTING_CALLBACK_URL": "http://127.0.0.1:9/callback", **hook.env(),
               "COS_MATTING_RECONCILE_AFTER_SECONDS": "1"}  # > 0: its own tick leaves the entry it wrote
        answer = run_previous(code, cloud, "submit", build_event([upload_from_listing(BUCKET, REGION, listing[0])]),
                              **env)
        assert [o["outcome"] for o in answer["outcomes"]] == ["submitted"]
        rid = answer["outcomes"][0]["record_id"]
        (job,) = cloud.list_jobs()
        cloud.set_job_state(BUCKET, job.JobId, "Success")
        time.sleep(1.1)  # its Submitted stage older than RECONCILE_AFTER_SECONDS
        tick = run_previous(code, cloud, "reconcile", {"Type": "Timer"}, **env)
        assert tick["advanced"] == 1 and tick["rechecked"] == 0, tick
        names = {o["Key"][len(RECORDS):] for o in cos.list_objects(Bucket=BUCKET, Prefix=RECORDS)["Contents"]}
        assert f"recheck/{rid}" in names and f"open/{rid}" not in names
        late = {tags.RECORD: rid, tags.JOB: job.JobId, tags.STATE: "Submitted", tags.ATTEMPT: "1"}
        cos.put_object_tagging(Bucket=BUCKET, Key="input/r.mp4", Tagging=tags.to_sdk(late))

        settings = settings_for(cloud, **hook.env())
        clients = clients_for(cloud, settings)
        store = RecordStore.of(settings, clients.storage)
        summary = reconcile(settings, clients, older_than=0, sweep=False)
        assert (summary.rechecked, summary.failed) == (1, 0), summary
        assert clients.storage.get_tags(BUCKET, "input/r.mp4")[tags.STATE] == "Success"
        assert store.recheck_page()[0] == [] and store.open_page()[0] == []
        record, _ = store.load(rid)
        notify.deliver_due(settings, store, lambda: False, now=time.time() + notify.HEAD_START + 1)  # what is left
        eid = notify.event_id(record)
        assert [d[1] for d in hook.deliveries if d[0] == eid] == [200] and notify.pending(store) == []
    finally:
        hook.close()
