"""shared/submit.py `answer`: the submit handler's return value, or one SubmitFailed carrying
every record's outcome (powertools' batch pattern: per-record results, one error after all)."""
import pytest

from shared.submit import Kind, Outcome, Skip, Step, SubmitFailed, answer

DONE = Outcome(key="input/a.mp4", kind=Kind.SUBMITTED, record_id="r" * 32, job_id="s1", attempt=1)
SKIPPED = Outcome(key="input/b.jpg", kind=Kind.SKIPPED, reason=Skip.SUFFIX)
FAILED = Outcome(key="input/视频.mp4", kind=Kind.FAILED, step=Step.SUBMIT, record_id="f" * 32, detail="503")


def test_all_ok_is_the_return_value_with_every_outcome():
    assert answer([DONE, SKIPPED]) == {"outcomes": [
        {"key": "input/a.mp4", "kind": Kind.SUBMITTED, "record_id": "r" * 32, "job_id": "s1", "attempt": 1,
         "outcome": "submitted"},
        {"key": "input/b.jpg", "kind": Kind.SKIPPED, "reason": Skip.SUFFIX, "outcome": "skipped:suffix"}]}


def test_any_failure_raises_one_error_carrying_all_outcomes_in_order():
    with pytest.raises(SubmitFailed) as raised:
        answer([DONE, FAILED, SKIPPED])
    assert raised.value.outcomes == [DONE, FAILED, SKIPPED]
    assert isinstance(raised.value, RuntimeError)  # SCF reports it as a failed invocation and retries
    # readable in the function log: how many, which key, which step
    assert str(raised.value) == "1 of 3 records failed: input/视频.mp4: failed:submit"
