"""The CLI's capture of the handlers' log lines (cli/logcapture.py `captured`, `logs_aside`): through a
logging handler, per invocation, so two invocations in two threads at once keep their own lines,
and nothing swaps sys.stdout."""
import json
import sys
import threading

import pytest

from cli.logcapture import captured, logs_aside
from shared.log import log, logger


@pytest.fixture
def out(capsys):
    """(stdout, stderr) of the test so far, restoring the logger's handlers afterwards."""
    saved = [h for h in logger.handlers if getattr(h, "prints_lines", False)]
    yield lambda: capsys.readouterr()
    for handler in [h for h in logger.handlers if getattr(h, "prints_lines", False)]:
        logger.removeHandler(handler)
    for handler in saved:
        logger.addHandler(handler)


def events(lines):
    return [json.loads(line)["event"] for line in lines]


def test_two_invocations_in_two_threads_at_once_keep_their_own_lines(out):
    turns = threading.Barrier(2, timeout=10)
    got = {}

    def invocation(name):
        real = sys.stdout
        with captured() as lines:
            for i in range(50):
                log(f"{name}.{i}", record_id=name)
                if i % 10 == 0:
                    turns.wait()  # both are inside their capture at the same time
            assert sys.stdout is real  # never swapped
        got[name] = lines

    threads = [threading.Thread(target=invocation, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert events(got["a"]) == [f"a.{i}" for i in range(50)]
    assert events(got["b"]) == [f"b.{i}" for i in range(50)]
    assert out().out == ""  # nothing leaked to the command's output


def test_outside_a_capture_lines_go_to_stdout_as_a_deployed_function_prints_them(out):
    with captured() as lines:
        log("inside")
    log("outside")
    assert events(lines) == ["inside"] and events(out().out.splitlines()) == ["outside"]


def test_logs_aside_drops_or_sends_to_stderr_from_every_thread_and_a_capture_still_wins(out):

    def elsewhere(event):
        thread = threading.Thread(target=log, args=(event,))
        thread.start()
        thread.join(10)

    with logs_aside() as command_out:
        elsewhere("dropped")
        assert command_out is sys.stdout
    with logs_aside(verbose=True):
        elsewhere("to-stderr")
        with captured() as lines:
            log("captured")
    printed = out()
    assert printed.out == "" and events(printed.err.splitlines()) == ["to-stderr"]
    assert events(lines) == ["captured"]
