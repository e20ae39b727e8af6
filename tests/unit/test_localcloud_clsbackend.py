"""The local CLS's backend (localcloud/clsbackend.py) on its own: no HTTP, no LocalCloud. Its logs are the
lines of a real `Runtime`'s invocation records (filled in here as a finished invocation leaves them)."""
import json

import pytest

from localcloud.clsbackend import MAX_LIMIT, ClsBackend
from localcloud.faults import Faults
from localcloud.scf import Invocation, Runtime
from localcloud.tcapi import ApiError


@pytest.fixture
def runtime():
    runtime = Runtime(Faults())
    yield runtime
    runtime.close()


def _finished(runtime, function, started, logs, ok=True, attempt=1):
    inv = Invocation(function, "cos", {}, attempt=attempt, ok=ok, error="" if ok else "boom", logs=logs,
                     started=started, duration=1.0)
    runtime.invocations.append(inv)
    return inv


def test_each_finished_invocation_is_start_its_lines_and_report_until_one_still_runs(runtime, tmp_path):
    cls = ClsBackend(runtime, str(tmp_path))
    good = _finished(runtime, "submit", 1000.0, ["one", "two"])
    runtime.invocations.append(Invocation("submit", "cos", {}))  # still running (ok is None)
    _finished(runtime, "callback", 1003.0, [], ok=False, attempt=2)
    logs = [log for log, _ in cls.logs()]
    assert [log["SCF_Message"] for log in logs] == [f"START RequestId: {good.request_id}", "one", "two",
                                                    f"Report RequestId: {good.request_id} Duration: 1000ms"]
    assert [log["SCF_Type"] for log in logs] == ["Platform", "Custom", "Custom", "Platform"]
    assert [log["SCF_LogTime"] for log in logs] == sorted(log["SCF_LogTime"] for log in logs)
    assert logs[0]["SCF_LogTime"] == 1_000_000 and logs[-1]["SCF_LogTime"] == 1_001_000
    assert logs[-1]["SCF_Duration"] == 1000 and logs[-1]["SCF_StatusCode"] == 200
    runtime.invocations[1].ok, runtime.invocations[1].started = True, 1002.0  # it ends: the later ones follow
    failed = [log for log, _ in cls.logs() if log["SCF_FunctionName"] == "callback"]
    assert failed[-1]["SCF_Level"] == "ERROR" and failed[-1]["SCF_StatusCode"] == 500 and failed[-1]["SCF_RetryNum"] == 1
    assert failed[-1]["SCF_Message"].endswith("Error: boom")
    assert ClsBackend(runtime, str(tmp_path)).topic_id == cls.topic_id  # kept under data_dir


def test_a_search_pages_on_by_context_over_its_window_and_query(runtime, tmp_path):
    cls = ClsBackend(runtime, str(tmp_path))
    for i in range(5):
        _finished(runtime, "submit", 2000.0 + i * 10, [f"input/{i}.mp4"])
    _finished(runtime, "callback", 2003.0, ["input/0.mp4"])
    # [From, To): the SDK's SearchLogRequest From/To ("左闭右开区间"), here from the first "input/0.mp4" line
    # (2000.5 s) to the fourth's (2030.5 s)
    window = (2_000_500, 2_030_500)
    page = cls.search(*window, 'SCF_FunctionName:"submit" AND SCF_Type:"Custom"', descending=False, limit=2)
    seen = []
    while True:
        seen += [json.loads(text)["SCF_Message"] for _, text in page.logs]
        if page.over:
            break
        page = cls.search(*window, context=page.context)  # the same search, its query and order kept
    assert seen == [f"input/{i}.mp4" for i in range(3)] and page.context == ""
    newest = cls.search(*window, '"input/0.mp4"')
    assert [log["SCF_FunctionName"] for log, _ in newest.logs] == ["callback", "submit"] and newest.over
    with pytest.raises(ApiError) as stale:
        cls.search(*window, context="bm90LW1pbmU6Mg==")  # "not-mine:2"
    assert stale.value.code == "FailedOperation.InvalidContext"
    for limit in (-1, MAX_LIMIT + 1):
        with pytest.raises(ApiError) as refused:
            cls.search(*window, limit=limit)
        assert refused.value.code == "InvalidParameter"
    with pytest.raises(ApiError) as other:
        cls.check_topic("no-such-topic")
    assert other.value.code == "ResourceNotFound.TopicNotExist"
