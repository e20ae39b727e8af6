"""shared/log.py: every log line is one JSON object through `logging` (fields at the top level,
secrets left out, non-ASCII as is, exceptions included), printed once on whatever stdout is."""
import io
import json
import logging
import sys
import time

import pytest

from shared import log as shared_log
from shared.log import JsonFormatter, StdoutHandler, configure, log, logger


class Out:
    """What the test printed on stdout so far (pytest's capture: it swaps sys.stdout per phase)."""

    def __init__(self, capsys):
        self.capsys, self.text = capsys, ""

    def getvalue(self):
        self.text += self.capsys.readouterr().out
        return self.text


@pytest.fixture
def fresh_logger(capsys):
    """The `cos_matting` logger as a cold start finds it (no handler), restored afterwards."""
    saved = [h for h in logger.handlers if getattr(h, "prints_lines", False)], logger.level, logger.propagate
    for handler in saved[0]:
        logger.removeHandler(handler)
    yield Out(capsys)
    for handler in [h for h in logger.handlers if getattr(h, "prints_lines", False)]:
        logger.removeHandler(handler)
    for handler in saved[0]:
        logger.addHandler(handler)
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def lines(out):
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_ts_level_event_and_the_fields_at_the_top_level(fresh_logger):
    before = time.time()
    log("submit.outcome", key="input/a.mp4", record_id="r" * 32, job_id=None, attempt=2, results=[{"a": 1}])
    [line] = lines(fresh_logger)
    assert set(line) == {"ts", "level", "event", "key", "record_id", "attempt", "results"}  # None left out
    assert line["level"] == "info" and line["event"] == "submit.outcome" and line["attempt"] == 2
    assert before - 0.01 <= line["ts"] <= time.time() + 0.01 and line["results"] == [{"a": 1}]
    log("tags.settle_failed", level="warning", error="x")
    log("record.write_failed", level="error", error="y")
    assert [line["level"] for line in lines(fresh_logger)] == ["info", "warning", "error"]


def test_secret_fields_never_reach_the_line_whatever_their_case(fresh_logger):
    log("callback.rejected", Authorization="q-sign-algorithm=sha1&SIG", token="TOK", t="T0KEN", Secret_Key="SK",
        callback_keys=["K" * 32], secretkey="SK2", secret="S", record_id="rid")
    text = fresh_logger.getvalue()
    for secret in ("SIG", "TOK", "T0KEN", "SK", "K" * 32, "SK2"):
        assert secret not in text
    assert json.loads(text)["record_id"] == "rid"


def test_non_ascii_is_written_as_is_and_odd_values_as_text(fresh_logger):
    log("submit.outcome", key="input/团队 a/视频 é.mp4", when=time.gmtime(0)[:3], path=shared_log)
    text = fresh_logger.getvalue()
    assert "input/团队 a/视频 é.mp4" in text and "\\u" not in text  # CLS shows the key as uploaded
    line = json.loads(text)
    assert line["when"] == [1970, 1, 1] and line["path"].startswith("<module 'shared.log'")


def test_an_exception_is_part_of_its_line(fresh_logger):
    configure()
    try:
        raise ValueError("bad header ü")
    except ValueError:
        logger.error("submit.crashed", exc_info=True, extra={shared_log.FIELDS: {"key": "k"}})
    [line] = lines(fresh_logger)
    assert line["exception_name"] == "ValueError" and line["key"] == "k"
    assert "Traceback (most recent call last)" in line["exception"] and "bad header ü" in line["exception"]


def test_stdlib_calls_on_child_loggers_are_json_lines_too(fresh_logger):
    configure()
    logging.getLogger("cos_matting.submit").warning("claim %s lost", "r1")
    [line] = lines(fresh_logger)
    assert line["event"] == "claim r1 lost" and line["level"] == "warning"


def test_printed_once_not_again_through_the_root_logger(fresh_logger):
    """SCF's Python runtime has a handler on the root logger (doc 583/40326's example logs with the
    root logger): the `cos_matting` logger must not propagate to it, or every line is printed twice."""
    seen = []

    class Root(logging.Handler):
        def emit(self, record):
            seen.append(record)

    root = Root()
    logging.getLogger().addHandler(root)
    try:
        log("first")  # configures on first use
        configure()  # and the cold start's call adds no second handler
        log("second")
    finally:
        logging.getLogger().removeHandler(root)
    assert [line["event"] for line in lines(fresh_logger)] == ["first", "second"] and seen == []
    [printer] = [h for h in logger.handlers if getattr(h, "prints_lines", False)]
    assert isinstance(printer, StdoutHandler)


def test_the_handler_writes_to_the_stdout_of_the_moment(fresh_logger, monkeypatch):
    """A runtime that swaps stdout per invocation (localcloud/worker.py, SCF's) gets each line."""
    log("one")
    assert [line["event"] for line in lines(fresh_logger)] == ["one"]
    later = io.StringIO()
    monkeypatch.setattr(sys, "stdout", later)
    log("two")
    monkeypatch.undo()
    assert [line["event"] for line in lines(later)] == ["two"]
    assert [line["event"] for line in lines(fresh_logger)] == ["one"]


def test_a_handler_installed_first_is_kept(fresh_logger):
    """A host that routes the lines itself (the CLI) installs its handler before the cold start;
    any other handler (a test runner's capture) does not stop the stdout one (test above)."""
    kept = logging.StreamHandler(io.StringIO())
    kept.setFormatter(JsonFormatter())
    kept.prints_lines = True
    logger.addHandler(kept)
    configure()
    log("routed")
    assert [h for h in logger.handlers if getattr(h, "prints_lines", False)] == [kept]
    assert fresh_logger.getvalue() == ""
    assert json.loads(kept.stream.getvalue())["event"] == "routed"
