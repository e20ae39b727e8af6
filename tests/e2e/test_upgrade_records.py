"""Upgrades keep every record. The previous release (the commit before the per-attempt stage layout,
shared/records.py format 1) runs from git history, as SCF would run it, against the local cloud: its
submit handler makes records and jobs, its reconcile finishes one. Today's callback, reconcile,
`status` and `backfill` then run over them: the in-flight jobs finish, nothing is submitted again."""
import json
import os
import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit

import pytest

from helpers import BUCKET, REGION, ROOT, clients_for, function_env, put, sdk_client, settings_for
from shared.events import build_event, upload_from_listing
from shared.identity import legacy_record_id
from shared.records import RecordStore
from shared.reconcile import reconcile
from .cli_support import cli_env, run_json  # noqa: F401 (a fixture)

PREVIOUS = "a5737e5"  # `git log --oneline -- shared/records.py`: the commit before 1763e44 (per-attempt layout)
RECORDS = ".cos-matting/records/"
DEPLOYED = {"COS_MATTING_DEPLOYMENT": "cos-matting-dev"}  # today's deploy names the deployment; the old one did not


@pytest.fixture
def previous_release(tmp_path):
    """The previous release's `shared` and `functions`, as its zip would have held them."""
    out = tmp_path / "previous"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS, "shared", "functions"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.fail(f"git archive {PREVIOUS} failed (a shallow clone?): {archive.stderr.decode()[:300]}")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def run_previous(code_dir, cloud, function, event, **env):
    """The previous release's handler in its own process, its code alone on the path (as SCF runs it)."""
    script = (f"import json, sys; from functions.{function}.index import main_handler; "
              "print(json.dumps(main_handler(json.load(sys.stdin), None)))")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    environ.update(function_env(cloud, **env), PYTHONPATH=str(code_dir))
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(event), env=environ, cwd=str(code_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_todays_code_finishes_the_previous_releases_records(cloud, previous_release, cli_env, capsys, tmp_path,
                                                            monkeypatch):
    from shared.callback import handle

    cos = sdk_client(cloud)
    for name in ("a", "b", "c", "d"):
        put(cos, f"input/{name}.mp4", body=b"\x00\x00\x00\x18ftypmp42 video " + name.encode())
    listing = cos.list_objects(Bucket=BUCKET, Prefix="input/")["Contents"]
    event = build_event([upload_from_listing(BUCKET, REGION, obj) for obj in listing])
    old_env = {"COS_MATTING_CALLBACK_URL": "http://127.0.0.1:9/callback", "COS_MATTING_RECONCILE_AFTER_SECONDS": "0"}
    answer = run_previous(previous_release, cloud, "submit", event, **old_env)
    assert [o["outcome"] for o in answer["outcomes"]] == ["submitted"] * 4
    jobs = {j.Input.Object: j for j in cloud.list_jobs()}
    rid = {o["Key"]: legacy_record_id(BUCKET, o["Key"], o["ETag"]) for o in listing}
    assert {jobs[k].Operation.UserData for k in jobs} == {f"cm:{rid[k]}" for k in rid}  # the old spelling
    # The previous release's own reconcile finishes d: a final record in format 1.
    cloud.set_job_state(BUCKET, jobs["input/d.mp4"].JobId, "Success")
    run_previous(previous_release, cloud, "reconcile", {"Type": "Timer"}, **old_env)
    names = {o["Key"][len(RECORDS):] for o in cos.list_objects(Bucket=BUCKET, Prefix=RECORDS)["Contents"]}
    assert f"{rid['input/a.mp4']}/1-submitted.json" in names and f"{rid['input/d.mp4']}/3-final.json" in names
    assert not any(n.startswith(("open/", "state/")) for n in names)  # format 1 had no open index
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
    assert a.state == "Success" and a.output["key"] == jobs["input/a.mp4"].Operation.Output.Object
    # the source is still the version the record belongs to: tagged
    assert clients.storage.get_tags(BUCKET, "input/a.mp4")["cos-matting:state"] == "Success"

    # b (its callback lost) and c (Running): today's reconcile finds them though format 1 had no open index.
    cloud.set_job_state(BUCKET, jobs["input/b.mp4"].JobId, "Success")
    summary = reconcile(settings, clients, older_than=0)
    assert summary.advanced == 2 and summary.still_running == 1, summary  # b to Success, c to Running
    assert summary.resubmitted == summary.swept == summary.second_jobs == summary.failed == 0, summary
    assert store.load(rid["input/b.mp4"])[0].state == "Success"
    cloud.set_job_state(BUCKET, jobs["input/c.mp4"].JobId, "Success")
    reconcile(settings, clients, older_than=0)
    assert [store.load(rid[k])[0].state for k in sorted(rid)] == ["Success"] * 4
    assert json.loads(cos.get_object(Bucket=BUCKET, Key=RECORDS + "state/format.json")["Body"].get_raw_stream()
                      .read()) == {"format": 2, "legacy": 4, "done": True}

    # status and backfill (acting as the deployment) see every upload as recorded; nothing is submitted again.
    monkeypatch.setenv("COS_MATTING_DEPLOYMENT", DEPLOYED["COS_MATTING_DEPLOYMENT"])
    code, shown = run_json(capsys, "status", "--all")
    assert code == 0 and shown["never_became_a_job"] == 0, shown["missing"]
    assert sorted(r["state"] for r in shown["records"]) == ["Success"] * 4
    code, one = run_json(capsys, "status", "input/a.mp4")  # by key: the record is found by its format 1 id
    assert code == 0 and [r["record_id"] for r in one["records"]] == [rid["input/a.mp4"]], one
    code, dry = run_json(capsys, "backfill", "--dry-run", "--checkpoint", str(tmp_path / "dry.json"))
    assert code == 0 and dry["totals"]["has-record"] == 4 and dry["totals"]["would-submit"] == 0, dry
    code, real = run_json(capsys, "backfill", "--checkpoint", str(tmp_path / "real.json"))
    assert code == 0 and real["totals"].get("duplicate") == 4 and not real["totals"].get("submitted"), real
    assert len(cloud.list_jobs()) == 4  # the previous release's four jobs, no other
