"""Golden replay: every file of events/ replayed through `cos-matting replay` against a
LocalCloud, outcomes compared with tests/golden/*.json.

A change in any outcome fails with a diff. To accept new outcomes on purpose:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/e2e/test_cli_replay_golden.py

COS events: `--seed` uploads a placeholder for every object an event names and
rewrites the event's ETag to the object's real one (the submit path reads the
source object's tags, so a missing object would only ever say skipped:missing).
Outcomes are normalised: no record ids, job ids, timestamps or durations.
"""
import difflib
import json
import os
from pathlib import Path

import pytest

from cli.main import main
from helpers import BUCKET, ROOT, clients_for, function_env, put, settings_for
from shared.events import Upload
from shared.submit import Submitter

EVENTS = ROOT / "events"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture
def local_env(cloud, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    for name, value in function_env(cloud).items():
        monkeypatch.setenv(name, value)
    return cloud


def replay_json(capsys, *argv):
    capsys.readouterr()
    code = main(["replay", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def normalise(results):
    out = {}
    for r in results:
        source = Path(r["source"]).resolve().relative_to(EVENTS).as_posix()
        rows = []
        for o in r["outcomes"]:
            row = {k: o[k] for k in ("key", "outcome", "status", "result", "state", "error") if k in o}
            if "error" in row:  # messages that name a record or job id are normalised
                row["error"] = row["error"].replace(o.get("record_id") or "\0", "<record>")
            rows.append(row)
        out[source] = {"function": r["function"], "raised": not r["ok"], "failed": r["failed"], "outcomes": rows}
    return out


def check_golden(name, actual):
    path = GOLDEN / name
    text = json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        if not path.exists() and os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"{path} is missing: run with UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    if expected != text:
        old = json.loads(expected)
        parts = []
        for source in sorted(set(old) | set(actual)):  # one diff per event file, named
            if old.get(source) == actual.get(source):
                continue
            a, b = (json.dumps(d.get(source), indent=2, ensure_ascii=False, sort_keys=True).splitlines(True)
                    for d in (old, actual))
            parts.append("".join(difflib.unified_diff(a, b, f"events/{source} (expected, {path.name})",
                                                      f"events/{source} (replayed)")))
        pytest.fail("replay outcomes changed (UPDATE_GOLDEN=1 to accept):\n" + "\n".join(parts), pytrace=False)


def test_every_cos_event_replays_to_the_stored_outcome(local_env, capsys):
    files = sorted((EVENTS / "cos").glob("*.json"))
    code, results = replay_json(capsys, str(EVENTS / "cos"), "--seed")
    assert [Path(r["source"]).name for r in results] == [f.name for f in files]  # every file, sorted
    check_golden("replay-cos.json", normalise(results))
    assert code == 0


def test_replaying_the_library_again_submits_nothing_new(local_env, capsys):
    _, first = replay_json(capsys, str(EVENTS / "cos"), "--seed")
    _, second = replay_json(capsys, str(EVENTS / "cos"), "--seed")
    submitted = [o for r in first for o in r["outcomes"] if o["outcome"] == "submitted"]
    assert submitted
    again = {o["key"]: o["outcome"] for r in second for o in r["outcomes"] if not o["outcome"].startswith("skipped")}
    assert all(again[o["key"]] == "duplicate" for o in submitted)
    jobs = local_env.list_jobs(BUCKET)
    assert len(jobs) == len({o["key"] for o in submitted})


def test_every_callback_and_function_url_event_replays_to_the_stored_outcome(local_env, cos_client, capsys):
    settings = settings_for(local_env)
    clients = clients_for(local_env, settings)
    etag = put(cos_client, "input/interview.mp4")
    out = Submitter(settings, clients, sleep=lambda s: None).process(
        Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/interview.mp4", etag=etag,
               size=10, event_name="cos:ObjectCreated:Put"))
    local_env.set_job_state(BUCKET, out.job_id, "Success")  # no callback URL configured: nothing is sent
    code, results = replay_json(capsys, str(EVENTS / "callbacks"), str(EVENTS / "funcurl"),
                                "--job-id", out.job_id, "--record-id", out.record_id)
    check_golden("replay-callbacks.json", normalise(results))
    assert code == 1  # the invalid-* bodies answer 400
    record = clients.storage.get(BUCKET, f"{settings.records_prefix}{out.record_id}/001-3-final.json")
    assert record and json.loads(record)["state"] == "Success"
