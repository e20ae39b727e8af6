"""The three SCF handlers (functions/*/index.py) as SCF loads them, on the in-memory cloud.

Each index.py is executed from its file like SCF's runtime imports it, with settings read from
the environment at cold start; `shared.cloud.Clients` is swapped for the memory cloud's before
the import, so the handlers run unchanged. Events are the captured shapes in events/.
"""
import importlib.util
import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from helpers import BUCKET, ROOT
from shared import tokens

EVENTS = ROOT / "events"


@pytest.fixture
def load(memory_cloud, monkeypatch, settings_of):
    """load(name, **env) -> the module functions/<name>/index.py, cold-started on memory_cloud."""
    def load_handler(name, **extra):
        env = {k: v for k, v in settings_of.env.items()}
        env.update(extra)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr("shared.cloud.Clients", lambda settings, environ=None: memory_cloud.clients(settings))
        spec = importlib.util.spec_from_file_location(f"scf_{name}_index", ROOT / "functions" / name / "index.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load_handler


def cos_event(name, key, etag, size):
    event = json.loads((EVENTS / "cos" / name).read_text())
    obj = event["Records"][0]["cos"]["cosObject"]
    obj["key"] = f"/1250000000/videos/{key}"
    obj["url"] = f"http://{BUCKET}.cos.ap-guangzhou.myqcloud.com/{key}"
    obj["meta"]["ETag"] = f'"{etag}"'
    obj["size"] = size
    return event


def test_submit_handler_returns_outcomes_and_raises_after_the_rest(load, memory_cloud):
    submit = load("submit")
    etag = memory_cloud.upload(BUCKET, "input/interview.mp4", b"v" * 100)
    answer = submit.main_handler(cos_event("put-video.json", "input/interview.mp4", etag, 100), None)
    [outcome] = answer["outcomes"]
    assert outcome["outcome"] == "submitted" and [j.JobId for j in memory_cloud.list_jobs(BUCKET)] == [outcome["job_id"]]
    etag = memory_cloud.upload(BUCKET, "input/second.mp4", b"w" * 100)
    memory_cloud.faults.add("ci.create", count=submit.SETTINGS.submit_attempts, status=503)
    with pytest.raises(RuntimeError, match="1 of 1 records failed: input/second.mp4: failed:submit"):
        submit.main_handler(cos_event("put-video.json", "input/second.mp4", etag, 100), None)


def test_callback_handler_behind_a_function_url(load, memory_cloud):
    submit = load("submit", COS_MATTING_CALLBACK_URL="https://1250000000-abcdefgh-gz.scf.tencentcs.com/")
    etag = memory_cloud.upload(BUCKET, "input/interview.mp4", b"v" * 100)
    [outcome] = submit.main_handler(cos_event("put-video.json", "input/interview.mp4", etag, 100), None)["outcomes"]
    memory_cloud.set_job_state(BUCKET, outcome["job_id"], "Success")
    [sent] = memory_cloud.callbacks
    callback = load("callback")
    event = json.loads((EVENTS / "funcurl" / "post-json-callback.json").read_text())  # the Function URL shape
    event["queryString"] = dict(parse_qsl(urlsplit(sent.url).query))
    event["body"] = sent.body.decode()
    event["headers"]["content-type"] = "application/xml" if sent.fmt == "XML" else "application/json"
    answer = callback.main_handler(event, None)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["results"] == [{"job_id": outcome["job_id"], "result": "advanced",
                                                      "state": "Success"}]
    event["queryString"]["t"] = tokens.callback_url("https://x/", callback.SETTINGS.callback_keys, "other", 600,
                                                    time.time()).rsplit("t=", 1)[1]
    assert callback.main_handler(event, None)["statusCode"] == 401


def test_reconcile_handler_on_the_timer_event(load, memory_cloud):
    memory_cloud.upload(BUCKET, "input/never-triggered.mp4", b"n" * 10)
    reconcile = load("reconcile", COS_MATTING_RECONCILE_AFTER_SECONDS="0")
    summary = reconcile.main_handler(json.loads((EVENTS / "timer" / "reconcile-every-10-minutes.json").read_text()),
                                     None)
    assert summary["swept"] == 1 and summary["failed"] == 0
    assert [j.Input.Object for j in memory_cloud.list_jobs(BUCKET)] == ["input/never-triggered.mp4"]


def test_submit_raises_one_typed_error_carrying_every_outcome_after_the_rest(load, memory_cloud):
    """One SubmitFailed after the whole batch (a failed record does not stop the ones after it),
    carrying every record's outcome: what `cos-matting invoke` reports instead of reading logs."""
    from shared.submit import SubmitFailed

    submit = load("submit")
    bad = memory_cloud.upload(BUCKET, "input/second.mp4", b"w" * 100)
    good = memory_cloud.upload(BUCKET, "input/third.mp4", b"t" * 100)
    event = cos_event("put-video.json", "input/second.mp4", bad, 100)
    for key, etag in (("input/poster.jpg", "0" * 32), ("input/third.mp4", good)):
        event["Records"].append(cos_event("put-video.json", key, etag, 100)["Records"][0])
    memory_cloud.faults.add("ci.create", count=submit.SETTINGS.submit_attempts, status=503)
    with pytest.raises(SubmitFailed) as raised:
        submit.main_handler(event, None)
    assert [(o.key, o.outcome) for o in raised.value.outcomes] == [
        ("input/second.mp4", "failed:submit"), ("input/poster.jpg", "skipped:suffix"), ("input/third.mp4", "submitted")]
    assert str(raised.value) == "1 of 3 records failed: input/second.mp4: failed:submit"
    assert [j.JobId for j in memory_cloud.list_jobs(BUCKET)] == [raised.value.outcomes[2].job_id]


@pytest.mark.parametrize("name", ["submit", "callback", "reconcile"])
def test_each_handler_answers_the_health_event_without_a_cloud_call(load, memory_cloud, name):
    """doctor's health invocation (shared/health.py): the settings check, never COS or CI."""
    from shared.config import ConfigError
    from shared.health import EVENT

    def no_cloud(*_a, **_k):
        raise AssertionError("the health event must not build cloud clients")

    handler = load(name)
    handler.Clients = no_cloud  # submit and reconcile build theirs on the first real event
    before = dict(memory_cloud.bucket(BUCKET))
    answer = handler.main_handler(dict(EVENT), None)
    assert answer["ok"] is True and answer["function"] == name and answer["settings"] == "ok"
    assert dict(memory_cloud.bucket(BUCKET)) == before and memory_cloud.list_jobs(BUCKET) == []

    broken = load(name, COS_MATTING_CALLBACK_URL="https://x.example/cb", COS_MATTING_CALLBACK_KEYS="")
    answer = broken.main_handler(dict(EVENT), None)
    assert answer["ok"] is False
    assert "COS_MATTING_CALLBACK_URL is set but COS_MATTING_CALLBACK_KEYS is empty" in answer["settings"]
    with pytest.raises(ConfigError, match="COS_MATTING_CALLBACK_KEYS"):  # a real event fails loudly, as before
        broken.main_handler({"Records": []} if name == "submit" else {"Type": "Timer"}, None)
