"""`cos-matting invoke` in-process (cli/handlers.py Runner): outcomes come from what the handler
returned or the SubmitFailed it raised, never from its log lines; its lines are captured."""
import types

import pytest

from cli import handlers
from shared.log import log
from shared.submit import Kind, Outcome, Step, SubmitFailed, answer

DONE = Outcome(key="input/a.mp4", kind=Kind.SUBMITTED, record_id="r" * 32, job_id="s1", attempt=1)
FAILED = Outcome(key="input/b.mp4", kind=Kind.FAILED, step=Step.SUBMIT, record_id="f" * 32, detail="503")


@pytest.fixture
def runner(monkeypatch):
    """A Runner whose 'submit' module is `main_handler` below (no files, no cloud)."""
    def use(main_handler):
        monkeypatch.setattr(handlers, "_load", lambda name: types.SimpleNamespace(main_handler=main_handler))
        return handlers.Runner({"COS_MATTING_BUCKET": "videos-1250000000"})
    return use


def test_outcomes_are_the_return_value_not_the_log_lines(runner):
    def main_handler(event, context):
        log("submit.outcome", key="input/other.mp4", outcome="duplicate")  # a line that disagrees
        return answer([DONE])

    res = runner(main_handler).invoke("submit", {"Records": []})
    assert res.ok and res.outcomes == [{"key": "input/a.mp4", "outcome": "submitted", "record_id": "r" * 32,
                                        "job_id": "s1"}]
    assert len(res.logs) == 1 and '"input/other.mp4"' in res.logs[0]


def test_a_raised_submit_failed_gives_every_outcome(runner, capsys):
    def main_handler(event, context):
        raise SubmitFailed([DONE, FAILED])  # and logs nothing at all

    res = runner(main_handler).invoke("submit", {"Records": []})
    assert not res.ok and res.failed and res.logs == []
    assert res.error == "SubmitFailed: 1 of 2 records failed: input/b.mp4: failed:submit"
    assert [(o["key"], o["outcome"]) for o in res.outcomes] == [("input/a.mp4", "submitted"),
                                                                 ("input/b.mp4", "failed:submit")]
    assert res.outcomes[1]["detail"] == "503"
    assert capsys.readouterr().out == ""


def test_another_exception_has_no_outcomes(runner):
    def main_handler(event, context):
        raise ValueError("boom")

    res = runner(main_handler).invoke("submit", {"Records": []})
    assert res.failed and res.outcomes == [] and "ValueError: boom" in res.error
