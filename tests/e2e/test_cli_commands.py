"""generate-event, invoke, status, cancel, reconcile and the shared CLI plumbing, through the real
entry point (`cli.main.main` in-process, or the installed `cos-matting` script) against a LocalCloud."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from helpers import clients_for, put, settings_for
from shared import tags, tokens
from shared.events import parse_event, uploads
from shared.identity import ObjectVersion
from shared.records import RecordStore
from .cli_support import (BUCKET, KEYS, ROOT, all_jobs, clean_environ, cli_env, run_cli, run_json,  # noqa: F401
                              run_script, script_env)

EVENTS = ROOT / "events"
COMMANDS = ["generate-event", "invoke", "replay", "backfill", "status", "cancel", "reconcile", "dashboard", "retry", "logs",
            "get", "upload"]


def shape(value):
    """The structure of a JSON value: keys and types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def generate(capsys, *argv):
    code, out, err = run_cli(capsys, "generate-event", *argv)
    assert code == 0, err
    return out


def submit_event(capsys, cos_client, key, body=b"\x00\x00\x00\x18ftypmp42 clip"):
    etag = put(cos_client, key, body)
    return generate(capsys, "cos-put", "--bucket", BUCKET, "--key", key, "--etag", etag, "--size", str(len(body)))


# -- help, usage, configuration -------------------------------------------------------------------

def test_every_command_has_help_through_the_installed_script():
    proc = run_script(["--help"], clean_environ())
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    proc = run_script(["backfill", "--help"], clean_environ())
    assert proc.returncode == 0 and "--concurrency" in proc.stdout and "--start-after" in proc.stdout


@pytest.mark.parametrize("command", COMMANDS + ["generate-event cos-put", "generate-event callback"])
def test_help_exits_0(capsys, command):
    code, out, _ = run_cli(capsys, *command.split(), "--help")
    assert code == 0 and "usage:" in out


@pytest.mark.parametrize("argv", [["status", "--bogus"], ["invoke", "nosuchfunction"], ["backfill", "--since", "soon"],
                                  ["generate-event"], ["status", "--state", "Sleeping"]])
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--help" in err and len(err.strip().splitlines()) == 1  # one line, and where to look


def test_missing_setting_is_one_line_naming_the_variable(capsys, monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    code, out, err = run_cli(capsys, "status")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "COS_MATTING_BUCKET" in err


def test_missing_credentials_exit_2(capsys, monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COS_MATTING_BUCKET", BUCKET)
    monkeypatch.setenv("COS_MATTING_REGION", "ap-guangzhou")
    code, _, err = run_cli(capsys, "status")
    assert code == 2 and "TENCENTCLOUD_SECRETID" in err


def test_env_file_configures_a_command(cloud, tmp_path, capsys, monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text(f"""# a comment
export COS_MATTING_BUCKET={BUCKET}
COS_MATTING_REGION="ap-guangzhou"
COS_MATTING_ENDPOINT='{cloud.url}'
TENCENTCLOUD_SECRETID=AKIDlocal  # inline comment
TENCENTCLOUD_SECRETKEY=localsecretkey
""")
    code, data = run_json(capsys, "status", "--env-file", str(env_file))
    assert code == 0 and data["bucket"] == BUCKET and data["records"] == []
    bad = tmp_path / "bad.env"
    bad.write_text("this is not a setting\n")
    code, _, err = run_cli(capsys, "status", "--env-file", str(bad))
    assert code == 2 and "bad.env:1" in err
    code, _, err = run_cli(capsys, "status", "--env-file", str(tmp_path / "absent.env"))
    assert code == 2 and "absent.env" in err


def test_local_flag_sets_endpoint_and_default_keys(cloud, capsys, monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COS_MATTING_BUCKET", BUCKET)
    monkeypatch.setenv("COS_MATTING_REGION", "ap-guangzhou")
    code, data = run_json(capsys, "status", "--local", cloud.url)
    assert code == 0 and data["records"] == []
    code, _, err = run_cli(capsys, "status", "--local", "not-a-url")
    assert code == 2 and "--local" in err


def test_table_progress_and_age_helpers():
    from cli import progress as progress_mod, ui

    text = ui.table(["A", "LONG"], [["x", "y" * 5 + " " + "z" * 5], ["longer", None]], {1: 6})
    lines = text.splitlines()
    assert lines[0].startswith("A       LONG") and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["x", "yyyyy"] and lines[3].split() == ["zzzzz"]  # wrapped, nothing cut
    assert [ui.age(s) for s in (None, 5, 90, 7200, 200000)] == ["-", "5s", "1m", "2h", "2d"]
    import io

    stream = io.StringIO()
    progress = progress_mod.Progress(total=10, stream=stream, interval=0)
    progress.update(5, {"submitted": 5})
    progress.finish(10, {"submitted": 10})
    assert stream.getvalue().count("\n") == 2 and "\r" not in stream.getvalue()  # not a tty: plain lines
    assert "ETA" in stream.getvalue().splitlines()[0] and "50%" in stream.getvalue()

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    progress = progress_mod.Progress(total=10, stream=tty, interval=0)
    progress.update(5, {"submitted": 5})
    progress.finish(10, {"submitted": 10})
    assert tty.getvalue().startswith("\r") and "[10/10]" in tty.getvalue() and tty.getvalue().endswith("\n")
    assert "|##########          |" in tty.getvalue()  # the bar, half full at 5/10


# -- generate-event -------------------------------------------------------------------------------

def test_generated_cos_event_has_the_real_shape_and_decodes(capsys):
    out = generate(capsys, "cos-put", "--bucket", BUCKET, "--key", "input/team a/a+b 视频.MOV", "--size", "42",
                   "--etag", "abc123")
    event = json.loads(out)
    real = json.loads((EVENTS / "cos" / "put-video.json").read_text())
    assert shape(event) == shape(real)
    assert event["Records"][0]["cos"]["cosBucket"]["region"] == "gz"  # COS sends the short region name
    [up] = uploads(parse_event(event))
    assert (up.bucket, up.key, up.etag, up.size, up.event_name) == (BUCKET, "input/team a/a+b 视频.MOV", "abc123", 42,
                                                                     "cos:ObjectCreated:Put")
    assert "Authorization" not in out


def test_generated_batch_and_remove_events(capsys):
    event = json.loads(generate(capsys, "cos-put", "--bucket", BUCKET, "--key", "input/a.mp4", "--key", "input/b.mp4",
                                "--event-name", "cos:ObjectRemove:Delete"))
    assert [(u.key, u.created) for u in uploads(parse_event(event))] == [("input/a.mp4", False), ("input/b.mp4", False)]
    code, _, err = run_cli(capsys, "generate-event", "cos-put", "--bucket", "nobucketappid", "--key", "a")
    assert code == 2 and "NAME-APPID" in err
    code, _, err = run_cli(capsys, "generate-event", "cos-put", "--bucket", BUCKET, "--key", "a", "--event-name", "x")
    assert code == 2


@pytest.mark.parametrize("state,fmt,array,library", [
    ("Success", "json", False, "json-object-success.json"), ("Failed", "json", False, "json-object-failed.json"),
    ("Cancel", "json", False, "json-object-cancel.json"), ("Success", "json", True, "json-array-success.json"),
    ("Success", "xml", False, "xml-success.xml"), ("Failed", "xml", False, "xml-failed.xml"),
    ("Cancel", "xml", False, "xml-cancel.xml")])
def test_generated_callbacks_match_the_library(capsys, state, fmt, array, library):
    argv = ["callback", "--state", state, "--format", fmt] + (["--array"] if array else [])
    out = generate(capsys, *argv)
    expected = (EVENTS / "callbacks" / library).read_text()
    if fmt == "json":
        assert json.loads(out) == json.loads(expected)
    else:
        assert out.strip() == expected.strip()


def test_generated_function_url_callback_carries_a_valid_token(capsys, monkeypatch):
    monkeypatch.setenv("COS_MATTING_CALLBACK_KEYS", KEYS)
    event = json.loads(generate(capsys, "callback", "--job-id", "sabc", "--record-id", "0123456789abcdef" * 2, "--funcurl"))
    real = json.loads((EVENTS / "funcurl" / "post-json-callback.json").read_text())
    assert set(event) == set(real) and event["httpMethod"] == "POST"
    q = event["queryString"]
    assert tokens.verify([KEYS], q["rid"], q["exp"], q["t"], now=__import__("time").time())
    assert json.loads(event["body"])["JobsDetail"]["JobId"] == "sabc"
    monkeypatch.delenv("COS_MATTING_CALLBACK_KEYS")
    code, _, err = run_cli(capsys, "generate-event", "callback", "--record-id", "0123456789abcdef" * 2, "--funcurl")
    assert code == 2 and "COS_MATTING_CALLBACK_KEYS" in err


# -- invoke ---------------------------------------------------------------------------------------

def test_invoke_submit_through_the_installed_script(cloud, cos_client, capsys, tmp_path):
    event = submit_event(capsys, cos_client, "input/scripted clip.mp4")
    proc = run_script(["invoke", "submit", "--event", "-"], script_env(cloud), stdin=event)
    assert proc.returncode == 0, proc.stderr
    assert "input/scripted clip.mp4" in proc.stdout and "submitted" in proc.stdout
    assert '"event": "submit.outcome"' in proc.stderr  # the handler's log lines
    [job] = all_jobs(cloud)
    assert job.Input.Object == "input/scripted clip.mp4"


def test_invoke_submit_in_a_cold_subprocess_reports_outcomes_as_json(cli_env, cos_client, capsys, tmp_path):
    path = tmp_path / "event.json"
    path.write_text(submit_event(capsys, cos_client, "input/cold.mp4"))
    code, data = run_json(capsys, "invoke", "submit", "--event", str(path), "--subprocess")
    assert code == 0 and data["ok"] and not data["failed"]
    assert [(o["key"], o["outcome"]) for o in data["outcomes"]] == [("input/cold.mp4", "submitted")]
    code, data = run_json(capsys, "invoke", "submit", "--event", str(path))  # warm, in-process: same path
    assert [o["outcome"] for o in data["outcomes"]] == ["duplicate"]


def test_invoke_exits_1_when_the_handler_raises(cli_env, cos_client, capsys, tmp_path):
    path = tmp_path / "event.json"
    path.write_text(submit_event(capsys, cos_client, "input/rejected.mp4"))
    cli_env.faults.add("ci.create", count=1, status=400)
    code, out, err = run_cli(capsys, "invoke", "submit", "--event", str(path))
    assert code == 1
    # the handler's one typed error (shared.submit.SubmitFailed, a RuntimeError) names the key and step
    assert "failed:submit" in out and "FAILED" in out
    assert "handler raised: SubmitFailed: 1 of 1 records failed: input/rejected.mp4: failed:submit" in out


def test_a_raised_submit_reports_its_outcomes_in_process_and_from_a_cold_child(cli_env, cos_client, capsys, tmp_path):
    """The outcomes of a failed submit come from SubmitFailed (in-process) or the child's reply
    (--subprocess); the log lines are captured apart and never reach the JSON on stdout."""
    for key, mode in (("input/refused.mp4", []), ("input/refused cold.mp4", ["--subprocess"])):
        path = tmp_path / "event.json"
        path.write_text(submit_event(capsys, cos_client, key))
        cli_env.faults.add("ci.create", count=1, status=400)
        code, data = run_json(capsys, "invoke", "submit", "--event", str(path), *mode)  # stdout is only the JSON
        assert code == 1 and not data["ok"] and data["error"].startswith("SubmitFailed: 1 of 1 records failed")
        [outcome] = data["outcomes"]
        assert (outcome["key"], outcome["outcome"]) == (key, "failed:submit") and outcome["detail"]
        logged = [json.loads(line) for line in data["logs"] if line.startswith("{")]
        assert [line["outcome"] for line in logged if line["event"] == "submit.outcome"] == ["failed:submit"]


def test_invoke_without_an_endpoint_says_what_to_set(cloud, capsys, monkeypatch, tmp_path):
    for name in [n for n in __import__("os").environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COS_MATTING_BUCKET", BUCKET)
    monkeypatch.setenv("COS_MATTING_REGION", "ap-guangzhou")
    event = str(EVENTS / "cos" / "non-video-jpg.json")
    code, _, err = run_cli(capsys, "invoke", "submit", "--event", event)
    assert code == 2 and "COS_MATTING_ENDPOINT" in err and "--local" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(capsys, "invoke", "submit", "--event", event, "--local", cloud.url)
    assert code == 0 and "skipped:suffix" in out
    monkeypatch.delenv("COS_MATTING_REGION")  # the handler could not start: a usage error, not a crash
    code, out, err = run_cli(capsys, "invoke", "submit", "--event", event, "--local", cloud.url)
    assert code == 2 and out == "" and "COS_MATTING_REGION" in err and len(err.strip().splitlines()) == 1


def test_invoke_callback_wraps_a_bare_body_and_signs_the_token(cli_env, cos_client, capsys, tmp_path):
    settings = settings_for(cli_env)
    clients = clients_for(cli_env, settings)
    path = tmp_path / "event.json"
    path.write_text(submit_event(capsys, cos_client, "input/called.mp4"))
    _, data = run_json(capsys, "invoke", "submit", "--event", str(path))
    [outcome] = data["outcomes"]
    cli_env.set_job_state(BUCKET, outcome["job_id"], "Success")  # no callback URL configured: none is sent
    code, data = run_json(capsys, "invoke", "callback", "--event", str(EVENTS / "callbacks" / "xml-success.xml"),
                          "--job-id", outcome["job_id"])
    assert code == 0, data
    assert data["outcomes"] == [{"status": 200, "record_id": outcome["record_id"], "job_id": outcome["job_id"],
                                 "result": "advanced", "state": "Success"}]
    assert any("UserData" in n for n in data["notes"])  # the record id came from the job
    record, _ = RecordStore.of(settings, clients.storage).load(outcome["record_id"])
    assert record.state == "Success" and record.output["key"] == "matting/input/called.mp4.mask.mp4"
    # A Function URL event from the library, placeholders and all; the replay is a no-op.
    code, data = run_json(capsys, "invoke", "callback", "--event", str(EVENTS / "funcurl" / "post-base64-xml-callback.json"),
                          "--job-id", outcome["job_id"], "--subprocess")
    assert code == 0 and data["outcomes"][0]["result"] == "unchanged"


def test_invoke_callback_with_a_bad_token_exits_1(cli_env, capsys):
    code, out, err = run_cli(capsys, "invoke", "callback", "--event", str(EVENTS / "funcurl" / "post-json-callback.json"))
    assert code == 1 and "401" in out and "placeholder" in err


def test_invoke_health_and_reconcile(cli_env, capsys):
    code, data = run_json(capsys, "invoke", "callback", "--event", str(EVENTS / "funcurl" / "get-health.json"))
    assert code == 0 and data["outcomes"][0]["status"] == 200
    code, data = run_json(capsys, "invoke", "reconcile")
    assert code == 0 and data["outcomes"][0]["scanned"] == 0
    code, _, err = run_cli(capsys, "invoke", "submit")
    assert code == 2 and "--event" in err
    code, _, err = run_cli(capsys, "invoke", "submit", "--event", str(EVENTS / "callbacks" / "xml-success.xml"))
    assert code == 2 and "Records" in err


# -- status, cancel, reconcile --------------------------------------------------------------------

@pytest.fixture
def submitted(cli_env, cos_client, capsys, tmp_path):
    """Three uploads through the real submit handler, one upload that never became a job, one image."""
    keys = ["input/a.mp4", "input/b.mp4", "input/c.mp4"]
    jobs = {}
    for key in keys:
        path = tmp_path / "event.json"
        path.write_text(submit_event(capsys, cos_client, key))
        _, data = run_json(capsys, "invoke", "submit", "--event", str(path))
        jobs[key] = data["outcomes"][0]["job_id"]
    put(cos_client, "input/never.mp4")  # the trigger "missed" it
    put(cos_client, "input/poster.jpg")  # not a video: not expected to become a job
    put(cos_client, "elsewhere/x.mp4")  # outside the watched prefix
    return jobs


def test_status_table_totals_and_uploads_that_never_became_a_job(submitted, cli_env, capsys):
    cli_env.set_job_state(BUCKET, submitted["input/a.mp4"], "Success")
    run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")
    code, out, _ = run_cli(capsys, "status", "--all", "--grace", "0")  # finished records are history: --all pages through it
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["SOURCE", "JOB", "STATE", "ATTEMPTS", "AGE", "OUTPUT"]
    row_a = next(l for l in lines if l.startswith("input/a.mp4"))
    assert "Success" in row_a and "matting/input/a.mp4.mask.mp4" in row_a
    assert "1 upload(s) in input/ never became a job" in out and "input/never.mp4" in out
    assert "poster.jpg" not in out and "elsewhere" not in out
    assert "totals: 3 record(s): Submitted=2  Success=1  never-became-a-job=1" in out
    code, _, _ = run_cli(capsys, "status", "--check", "--grace", "0")
    assert code == 1  # an upload never became a job
    code, out, _ = run_cli(capsys, "reconcile", "--older-than", "0")  # its sweep submits it
    assert code == 0 and "swept=1" in out
    code, out, _ = run_cli(capsys, "status", "--check", "--grace", "0")
    assert code == 0 and "never-became-a-job=0" in out


def test_status_json_filters_and_single_record(submitted, cli_env, capsys):
    code, data = run_json(capsys, "status", "--grace", "0")
    assert code == 0 and data["totals"] == {"Submitted": 3} and data["never_became_a_job"] == 1
    assert [r["key"] for r in data["records"]] == ["input/a.mp4", "input/b.mp4", "input/c.mp4"]
    [missing] = data["missing"]
    meta = cli_env.bucket(BUCKET).head("input/never.mp4")  # the record id is the object version's
    version = ObjectVersion(BUCKET, meta.key, meta.etag, meta.size, int(meta.last_modified))
    assert missing["key"] == "input/never.mp4" and missing["record_id"] == version.record_id
    _, data = run_json(capsys, "status", submitted["input/b.mp4"])
    assert [r["key"] for r in data["records"]] == ["input/b.mp4"]
    _, data = run_json(capsys, "status", "--state", "missing", "--grace", "0")
    assert data["records"] == [] and [r["key"] for r in data["missing"]] == ["input/never.mp4"]
    code, out, _ = run_cli(capsys, "status", "input/c.mp4")
    assert '"job_id": "%s"' % submitted["input/c.mp4"] in out  # one match: its record is printed


def test_a_final_record_awaiting_its_recheck_shows_once_as_finished(submitted, cli_env, capsys):
    """Two jobs end; reconcile advances them, and they wait in the open index for their recheck. `status`
    lists each once with its final state (not open, not again among the recent ones), `--state
    Submitted` leaves them out, and the dashboard's open view shows only what is still running."""
    from cli.clients import ThreadClients
    from cli.dashboard import Dashboard
    from helpers import function_env

    cli_env.set_job_state(BUCKET, submitted["input/a.mp4"], "Success")
    cli_env.set_job_state(BUCKET, submitted["input/b.mp4"], "Failed")
    run_cli(capsys, "reconcile", "--older-than", "600", "--no-sweep")  # nothing old enough: callbacks do it
    code, data = run_json(capsys, "status", "--grace", "0")
    for key in ("input/a.mp4", "input/b.mp4"):  # the callbacks never came: reconcile advances them
        assert code == 0 and [r["state"] for r in data["records"] if r["key"] == key] == ["Submitted"]
    run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")
    settings = settings_for(cli_env)
    store = RecordStore.of(settings, clients_for(cli_env, settings).storage)
    assert len(store.open_page()[0]) == 3  # a and b final, waiting for their recheck
    code, data = run_json(capsys, "status", "--grace", "0")
    assert sorted((r["key"], r["state"]) for r in data["records"]) == [
        ("input/a.mp4", "Success"), ("input/b.mp4", "Failed"), ("input/c.mp4", "Submitted")]
    assert data["totals"] == {"Failed": 1, "Submitted": 1, "Success": 1}
    assert data["summary"].startswith("summary: 1 open; 2 finished in the last 24 h (1 Success, 1 Failed)")
    _, data = run_json(capsys, "status", "--state", "Submitted", "--grace", "0")
    assert [r["key"] for r in data["records"]] == ["input/c.mp4"]
    later = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()  # both ended before it
    _, data = run_json(capsys, "status", "--since", later, "--no-uploads")  # not "finished since" by being open
    assert [(r["key"], r["state"]) for r in data["records"]] == [("input/c.mp4", "Submitted")], data["records"]
    board = Dashboard(settings, function_env(cli_env), ThreadClients(settings, function_env(cli_env)))
    assert [r["key"] for r in board.view("open")["rows"] if r["state"] != "NoRecord"] == ["input/c.mp4"]
    assert sorted(r["key"] for r in board.view("finished", since="all")["rows"]) == ["input/a.mp4", "input/b.mp4"]


def test_cancel_one_job_records_it(submitted, cli_env, capsys):
    settings = settings_for(cli_env)
    clients = clients_for(cli_env, settings)
    job_id = submitted["input/a.mp4"]
    code, out, _ = run_cli(capsys, "cancel", job_id)
    assert code == 0 and "cancelled 1 of 1" in out
    assert cli_env.get_job(BUCKET, job_id).State == "Cancel"
    _, data = run_json(capsys, "status", "input/a.mp4")
    assert data["records"][0]["state"] == "Cancel"
    assert clients.storage.get_tags(BUCKET, "input/a.mp4")[tags.STATE] == "Cancel"
    store = RecordStore.of(settings, clients.storage)
    rid = data["records"][0]["record_id"]
    stages = [s.key for s in store.stages(rid)]
    assert rid in [r for r, _ in store.open_page()[0]]  # final, waiting for reconcile's recheck
    code, data = run_json(capsys, "cancel", job_id)  # again: nothing to do, not an error
    assert code == 0 and data[0]["outcome"] == "skipped:Cancel" and data[0]["recorded"] == "unchanged"
    # a cancel of a finished record still in the open index writes nothing and leaves it to its recheck
    assert [s.key for s in store.stages(rid)] == stages and rid in [r for r, _ in store.open_page()[0]]
    code, data = run_json(capsys, "cancel", "snosuchjob")
    assert code == 1 and data[0]["outcome"] == "failed:describe"


def test_cancel_by_state_and_dry_run(submitted, cli_env, capsys):
    code, data = run_json(capsys, "cancel", "--state", "Submitted", "--dry-run")
    assert code == 0 and sorted(r["key"] for r in data) == sorted(submitted) and \
        {r["outcome"] for r in data} == {"would-cancel"}
    assert {j.State for j in all_jobs(cli_env)} == {"Submitted"}
    code, data = run_json(capsys, "cancel", "--state", "Submitted", "--yes")
    assert code == 0 and {r["outcome"] for r in data} == {"cancelled"}
    assert {j.State for j in all_jobs(cli_env)} == {"Cancel"}
    _, status = run_json(capsys, "status", "--all", "--no-uploads")
    assert status["totals"] == {"Cancel": 3}
    _, status = run_json(capsys, "status", "--no-uploads")  # the default view: open, and finished in 24 h
    assert status["totals"] == {"Cancel": 3} and status["summary"].startswith("summary: 0 open; 3 finished")
    assert all(r["output"] is None or "Success" not in r["output"] for r in status["records"])
    code, out, _ = run_cli(capsys, "status", "--no-uploads")
    assert "Success" not in out and out.count("cancelled") >= 3  # OUTPUT says what happened, not CI's code
    code, _, err = run_cli(capsys, "cancel")
    assert code == 2 and "JOB_ID" in err


def test_reconcile_command_advances_a_silent_job(submitted, cli_env, capsys):
    cli_env.set_job_state(BUCKET, submitted["input/b.mp4"], "Failed", code="InputNotVideo", message="not a video")
    code, data = run_json(capsys, "reconcile", "--older-than", "3600")
    assert code == 0 and data["advanced"] == 0 and data["scanned"] == 3 and data["swept"] == 0
    code, out, err = run_cli(capsys, "reconcile", "--older-than", "0")
    assert code == 0 and "advanced=1" in out and err.startswith("reconcile videos-1250000000 on the local cloud at ") \
        and "{" not in err  # log lines stay out of the output (stderr says only where it works)
    code, out, _ = run_cli(capsys, "status", "--state", "Failed")
    assert "input/b.mp4" in out and "InputNotVideo: not a video" in out
    code, _, err = run_cli(capsys, "reconcile", "--older-than", "0", "--verbose")
    assert code == 0 and "reconcile.summary" in err


def test_a_command_that_would_make_jobs_without_a_callback_refuses_and_says_why(submitted, cli_env, capsys):
    """No COS_MATTING_CALLBACK_URL (and no --stage): jobs would sit Submitted until reconcile. backfill refuses
    only when it has something to submit; retry when it has a record to run again."""
    code, out, err = run_cli(capsys, "backfill", "--prefix", "input/", "--no-progress")
    assert code == 2 and "COS_MATTING_CALLBACK_URL: not set" in err and "here: 1" in err and "--stage" in err
    assert "Traceback" not in err
    code, out, err = run_cli(capsys, "backfill", "--prefix", "input/", "--no-progress", "--no-callback")
    assert code == 0 and "submitted=1" in out, err
    code, out, err = run_cli(capsys, "backfill", "--prefix", "input/", "--no-progress")  # nothing left to submit
    assert code == 0 and "submitted=0" in out and "duplicate=" in out, err
    cli_env.set_job_state(BUCKET, submitted["input/a.mp4"], "Cancel")
    run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")
    code, _, err = run_cli(capsys, "retry", "input/a.mp4", "--include-new-input")
    assert code == 2 and "COS_MATTING_CALLBACK_URL" in err
    code, out, err = run_cli(capsys, "retry", "input/a.mp4", "--include-new-input", "--no-callback")
    assert code == 0 and "submitted" in out and "retry 1 record(s) in videos-1250000000 on the local cloud" in err


def test_every_command_that_prints_a_result_has_json(capsys, tmp_path):
    """--json on every command that prints a result (deploy --plan and doctor: their own modules), each
    answer one valid JSON document on stdout."""
    from cli.main import build_parser

    sub = next(a for a in build_parser()._actions if getattr(a, "choices", None) and "status" in a.choices)
    without = sorted(name for name, p in sub.choices.items()
                     if not any("--json" in a.option_strings for a in p._actions))
    # localcloud, dashboard and demo serve until stopped; generate-event prints the event (JSON) itself; deploy and
    # doctor are their own issue's (deploy --plan --json, doctor --json)
    assert set(without) <= {"localcloud", "dashboard", "demo", "generate-event", "deploy", "doctor"}, without
    code, out, err = run_cli(capsys, "package", "--out", str(tmp_path / "dist"), "--skip-layer", "--function",
                             "submit", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [a["file"] for a in data["artefacts"]] == ["cos-matting-submit.zip"] and data["artefacts"][0]["bytes"] > 0


def test_status_json_stays_one_document_when_a_record_cannot_be_read(submitted, cli_env, capsys, cos_client):
    settings = settings_for(cli_env)
    rid = next(r["record_id"] for r in run_json(capsys, "status", "--no-uploads")[1]["records"]
               if r["key"] == "input/a.mp4")
    for name in ("001-0-claim-1.json", "001-1-submitted.json"):  # every snapshot of it unreadable
        cos_client.put_object(Bucket=BUCKET, Key=f"{settings.records_prefix}{rid}/{name}", Body=b"")
    for argv in (["status", "--json", "--no-uploads"], ["status", "--all", "--json", "--no-uploads"]):
        code, out, err = run_cli(capsys, *argv)
        data = json.loads(out)  # the whole of stdout: no log line before or after the document
        row = next(r for r in data["records"] if r["record_id"] == rid)
        assert code == 0 and row["error"]["Code"] == "Unreadable", err
    code, data = run_json(capsys, "status", "--all", "--no-uploads")
    ages = [r["age_s"] for r in data["records"]]
    assert ages == sorted(ages)  # --all: newest first
