"""A record's states and their order: the one home of the record ladder.

A record moves forward only, one rung at a time or more (records.py):

    Rank.CLAIM      Claimed                        (the claim; no job yet)
    Rank.SUBMITTED  Submitted                      (CI has the job, not started)
    Rank.RUNNING    Running, Pause                 (CI started it)
    Rank.FINAL      Success, Failed, Cancel        (CI's final states)
                    Gone, Superseded               (a claim closed without a job: the source was
                                                    deleted / overwritten)

The job states are CI's `State` values (DescribeMediaJob, CI API 436/47211; shared.jobs.JobState).
Members are named as their values, so a member and its plain string are equal and hash alike
(Enum hashes the name): `"Success" in FINAL` holds, as does `State.Success == "Success"`.
Every set of states the code asks about is defined here, once.
"""
from enum import Enum, IntEnum
from typing import Dict, Tuple


class Rank(IntEnum):
    """A rung of the ladder; its lower-case name is the stage object's name (`001-1-submitted.json`)."""

    CLAIM = 0
    SUBMITTED = 1
    RUNNING = 2
    FINAL = 3

    @property
    def stage(self) -> str:
        return self.name.lower()


class State(str, Enum):
    Claimed = "Claimed"
    Submitted = "Submitted"
    Running = "Running"
    Pause = "Pause"
    Success = "Success"
    Failed = "Failed"
    Cancel = "Cancel"
    Gone = "Gone"
    Superseded = "Superseded"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> Rank:
        return RANK[self]


RANK: Dict[str, Rank] = {
    State.Claimed: Rank.CLAIM, State.Submitted: Rank.SUBMITTED, State.Running: Rank.RUNNING,
    State.Pause: Rank.RUNNING, State.Success: Rank.FINAL, State.Failed: Rank.FINAL, State.Cancel: Rank.FINAL,
    State.Gone: Rank.FINAL, State.Superseded: Rank.FINAL,
}


def rank_of(state: str) -> Rank:
    """The rung of any state string; one this release does not know (a newer release's) counts as
    a claim, so it is never taken for final."""
    return RANK.get(state, Rank.CLAIM)


def _with(*ranks: Rank) -> Tuple[str, ...]:
    return tuple(s.value for s in State if RANK[s] in ranks)


ALL: Tuple[str, ...] = tuple(s.value for s in State)  # in ladder order
JOB: Tuple[str, ...] = ("Submitted", "Running", "Pause", "Success", "Failed", "Cancel")  # CI's job states
# not final: in progress (the open index also holds a final record until reconcile's recheck)
OPEN: Tuple[str, ...] = _with(Rank.CLAIM, Rank.SUBMITTED, Rank.RUNNING)
WITH_JOB: Tuple[str, ...] = _with(Rank.SUBMITTED, Rank.RUNNING)  # open with a job in CI
FINAL: Tuple[str, ...] = _with(Rank.FINAL)
JOB_FINAL: Tuple[str, ...] = tuple(s for s in FINAL if s in JOB)  # a job's end: what notify reports
CLOSED_WITHOUT_JOB: Tuple[str, ...] = tuple(s for s in FINAL if s not in JOB)
UNSUCCESSFUL: Tuple[str, ...] = tuple(s for s in FINAL if s != State.Success)  # final without a result
RETRYABLE: Tuple[str, ...] = UNSUCCESSFUL  # what `cos-matting retry` runs again
# CancelMediaJob (CI API 1045/49512; zh 1246/109264 "只有未执行的任务才可以被取消"): only a job that has
# not started. Pause is a job held in a paused queue, not started (unverified on CI; the local
# cloud answers so): it ranks with Running on the ladder, but it can be cancelled.
CANCELLABLE: Tuple[str, ...] = ("Submitted", "Pause")
