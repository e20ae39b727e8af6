"""`cos-matting replay`: files, folders and recorded streams in order, locally; and the remote path
(SCF Invoke) up to the request it would send: building and mapping are plain functions tested here,
the real call needs credentials (`-m cloud`)."""
import json
import os
import types

import pytest

from cli import cmd_replay
from cli.errors import UsageError
from cli.eventio import expand
from cli.remote import build_invoke_request, function_name, result_from_response
from helpers import put
from .cli_support import BUCKET, ROOT, all_jobs, cli_env, run_cli, run_json  # noqa: F401

EVENTS = ROOT / "events"


def cos_event(key, etag, size=10, name="cos:ObjectCreated:Put"):
    from cli.cmd_generate_event import cos_event as build

    return build(BUCKET, [key], size=size, etag=etag, event_name=name)


def test_a_recorded_stream_replays_in_order(cli_env, cos_client, capsys, tmp_path):
    etag = put(cos_client, "input/streamed.mp4")
    event = cos_event("input/streamed.mp4", etag)
    stream = tmp_path / "recorded.jsonl"
    stream.write_text("\n".join([
        json.dumps(event),
        "",
        json.dumps({"function": "submit", "event": event}),  # an envelope naming the function
        json.dumps(cos_event("input/streamed.mp4", etag, name="cos:ObjectRemove:Delete")),
        json.dumps({"Type": "Timer", "TriggerName": "reconcile", "Time": "2026-11-25T00:00:00Z", "Message": ""}),
    ]) + "\n")
    code, results = run_json(capsys, "replay", str(stream))
    assert code == 0
    assert [r["source"].rsplit(":", 1)[1] for r in results] == ["1", "3", "4", "5"]
    assert [r["function"] for r in results] == ["submit", "submit", "submit", "reconcile"]
    assert [r["outcomes"][0].get("outcome") for r in results[:3]] == ["submitted", "duplicate", "skipped:event-name"]
    assert results[3]["outcomes"][0]["scanned"] == 1
    assert len(all_jobs(cli_env)) == 1


def test_a_folder_replays_sorted_and_text_output(cli_env, capsys, tmp_path):
    tmp_path = tmp_path / "events"  # beside the local cloud's own data folder (tmp_path/cloud), not around it
    (tmp_path / "sub").mkdir(parents=True)
    for name in ("b.json", "a.json", "sub/c.json"):
        (tmp_path / name).write_text(json.dumps(cos_event(f"input/{name}.jpg", "e")))
    (tmp_path / "notes.txt").write_text("ignored")
    assert [os.path.relpath(i.source, tmp_path) for i in expand([str(tmp_path)])] == ["a.json", "b.json", "sub/c.json"]
    code, out, _ = run_cli(capsys, "replay", str(tmp_path), "-q")
    assert code == 0 and out.count("skipped:suffix") == 3
    assert "replayed 3 of 3 event(s): 3 ok, 0 failed" in out
    assert out.index("a.json") < out.index("b.json") < out.index("c.json")


def test_unknown_shapes_fail_and_stop_on_failure(cli_env, capsys, tmp_path):
    (tmp_path / "1.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "2.json").write_text((EVENTS / "cos" / "non-video-jpg.json").read_text())
    code, results = run_json(capsys, "replay", str(tmp_path))
    assert code == 1 and results[0]["failed"] and "unknown event shape" in results[0]["error"]
    assert results[1]["outcomes"][0]["outcome"] == "skipped:suffix"
    code, results = run_json(capsys, "replay", str(tmp_path), "--stop-on-failure")
    assert code == 1 and len(results) == 1


def test_seed_only_against_a_local_cloud_and_never_in_pipeline_prefixes(cli_env, capsys, monkeypatch):
    code, results = run_json(capsys, "replay", str(EVENTS / "cos" / "records-prefix-loop.json"), "--seed")
    assert code == 0 and results[0]["outcomes"][0]["outcome"] == "skipped:loop-guard"
    assert cli_env.bucket(BUCKET).list(".cos-matting/")[0] == []  # nothing written into the records prefix
    monkeypatch.delenv("COS_MATTING_ENDPOINT")
    code, _, err = run_cli(capsys, "replay", str(EVENTS / "cos"), "--seed", "--real-cloud")
    assert code == 2 and "local cloud" in err


def test_replay_usage_errors(capsys, tmp_path):
    assert run_cli(capsys, "replay", str(tmp_path / "absent.json"))[0] == 2
    assert run_cli(capsys, "replay", str(tmp_path))[0] == 2  # an empty folder
    code, _, err = run_cli(capsys, "replay", str(EVENTS / "cos"), "--remote")
    assert code == 2 and "--function" in err
    code, _, err = run_cli(capsys, "replay", str(EVENTS / "cos"), "--function", "x")
    assert code == 2 and "--remote" in err


# -- remote (SCF Invoke) --------------------------------------------------------------------------

def test_invoke_request_is_a_synchronous_invoke_of_the_event():
    event = json.loads((EVENTS / "cos" / "key-unicode.json").read_text())
    request = build_invoke_request("cos-matting-prod-submit", event, "ns", "live")
    assert request.FunctionName == "cos-matting-prod-submit"
    assert request.InvocationType == "RequestResponse"
    assert request.Namespace == "ns" and request.Qualifier == "live" and request.LogType == "Tail"
    assert json.loads(request.ClientContext) == event
    assert json.loads(request.to_json_string())["ClientContext"] == request.ClientContext  # serialisable as sent
    assert function_name("cos-matting-prod-{kind}", "callback") == "cos-matting-prod-callback"
    with pytest.raises(UsageError, match="6 MB"):
        build_invoke_request("f", {"big": "x" * (6 * 1024 * 1024)})


def fake_result(**fields):
    base = {"InvokeResult": 0, "RetMsg": "", "ErrMsg": "", "Log": "", "Duration": 12.5, "FunctionRequestId": "req-1"}
    base.update(fields)
    return types.SimpleNamespace(Result=types.SimpleNamespace(**base))


def test_invoke_responses_map_to_the_same_results_as_local_runs():
    outcome = {"ts": 1, "level": "info", "event": "submit.outcome", "key": "input/a.mp4", "outcome": "submitted",
               "record_id": "r", "job_id": "s1"}
    ok = result_from_response("submit", fake_result(
        RetMsg=json.dumps({"outcomes": [{"key": "input/a.mp4", "outcome": "submitted"}]}),
        Log="START RequestId: req-1\n2026-11-25 10:00:00 " + json.dumps(outcome) + "\nEND RequestId: req-1"))
    assert ok.ok and not ok.failed and ok.outcomes == [{k: outcome[k] for k in ("key", "outcome", "record_id", "job_id")}]
    assert ok.duration == pytest.approx(0.0125) and "SCF request req-1" in ok.notes
    cut = result_from_response("submit", fake_result(RetMsg=json.dumps({"outcomes": [{"key": "k", "outcome": "duplicate"}]})))
    assert cut.outcomes == [{"key": "k", "outcome": "duplicate"}]  # no log tail: the return value says it
    raised = result_from_response("submit", fake_result(InvokeResult=1, ErrMsg="RuntimeError: 1 of 1 records failed"))
    assert raised.failed and "RuntimeError" in raised.error
    http = result_from_response("callback", fake_result(RetMsg=json.dumps(
        {"statusCode": 401, "headers": {}, "body": json.dumps({"error": "bad token"}), "isBase64Encoded": False})))
    assert http.failed and http.outcomes == [{"status": 401, "error": "bad token"}]


class FakeScf:
    def __init__(self):
        self.requests = []

    def Invoke(self, request):
        self.requests.append(request)
        event = json.loads(request.ClientContext)
        key = event["Records"][0]["cos"]["cosObject"]["key"].split("/", 3)[3]
        return fake_result(RetMsg=json.dumps({"outcomes": [{"key": key, "outcome": "skipped:suffix"}]}))


def test_remote_replay_sends_each_event_to_the_named_function(capsys, monkeypatch, tmp_path):
    fake = FakeScf()
    seen = {}

    def client(env, region):
        seen["region"], seen["secret"] = region, env.get("TENCENTCLOUD_SECRETID")
        return fake

    monkeypatch.setattr(cmd_replay, "scf_client", client)
    monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDexample")
    code, results = run_json(capsys, "replay", str(EVENTS / "cos" / "non-video-jpg.json"),
                             str(EVENTS / "cos" / "put-video.json"), "--remote", "--function", "cos-matting-prod-{kind}",
                             "--region", "ap-shanghai")
    assert code == 0 and seen == {"region": "ap-shanghai", "secret": "AKIDexample"}
    assert [r.FunctionName for r in fake.requests] == ["cos-matting-prod-submit"] * 2
    assert [r["outcomes"][0]["key"] for r in results] == ["input/poster.jpg", "input/interview.mp4"]


def test_credentials_from_scf_style_variables():
    from deploy.clients import credential  # the one credential chain of the SCF/CAM API clients

    cred = credential({"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENTCLOUD_SECRETKEY": "k",
                       "TENCENTCLOUD_SESSIONTOKEN": "tok"})
    assert (cred.secret_id, cred.secret_key, cred.token) == ("AKIDx", "k", "tok")
    cred = credential({"TENCENTCLOUD_SECRET_ID": "AKIDy", "TENCENTCLOUD_SECRET_KEY": "k2"})  # the SDK's own names
    assert (cred.secret_id, cred.secret_key) == ("AKIDy", "k2")


@pytest.mark.cloud
@pytest.mark.skipif(not (os.environ.get("TENCENTCLOUD_SECRETID") and os.environ.get("COS_MATTING_TEST_FUNCTION")),
                    reason="needs Tencent Cloud credentials (TENCENTCLOUD_SECRETID/SECRETKEY) and a deployed submit "
                           "function named in COS_MATTING_TEST_FUNCTION (region: TENCENTCLOUD_REGION)")
def test_remote_replay_against_the_deployed_function(capsys):
    code, results = run_json(capsys, "replay", str(EVENTS / "cos" / "non-video-jpg.json"), "--remote",
                             "--function", os.environ["COS_MATTING_TEST_FUNCTION"],
                             "--region", os.environ.get("TENCENTCLOUD_REGION", "ap-guangzhou"))
    assert code == 0 and results[0]["outcomes"][0]["outcome"] == "skipped:suffix"


def test_the_library_timer_event_runs_reconcile(cli_env, capsys):
    code, results = run_json(capsys, "replay", str(EVENTS / "timer"))
    assert code == 0 and [r["function"] for r in results] == ["reconcile"]
    assert results[0]["outcomes"][0]["scanned"] == 0
