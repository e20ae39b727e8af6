"""The record ladder (shared/states.py): one order, each set of states once, what commands offer."""
import re
import typing

import pytest

from cli.main import main
from shared import states
from shared.jobs import JobState
from shared.records import _STAGE
from shared.states import Rank, State


def run(capsys, *argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    return exc.value.code, capsys.readouterr().err


def test_the_ladder_orders_every_state_and_the_sets_partition_it():
    assert set(states.OPEN) | set(states.FINAL) == set(states.ALL) and not set(states.OPEN) & set(states.FINAL)
    assert [State(s).rank for s in states.ALL] == sorted(State(s).rank for s in states.ALL)  # ALL is in ladder order
    assert set(states.JOB) == set(typing.get_args(JobState))  # CI's job states, as the wire model spells them
    assert states.JOB_FINAL == ("Success", "Failed", "Cancel") and states.CLOSED_WITHOUT_JOB == ("Gone", "Superseded")
    assert "Success" not in states.RETRYABLE and set(states.RETRYABLE) < set(states.FINAL)
    assert set(states.CANCELLABLE) <= set(states.WITH_JOB) and "Running" not in states.CANCELLABLE
    assert states.rank_of("SomeNewerState") == Rank.CLAIM  # never taken for final
    # a member and its plain string are one key (sets of states hold either)
    assert "Success" in {State.Success} and State.Pause in set(states.WITH_JOB) and f"{State.Gone}" == "Gone"


@pytest.mark.parametrize("rank", list(Rank)[1:])
def test_every_stage_name_is_one_the_record_store_reads(rank):
    match = _STAGE.match(f"001-{rank:d}-{rank.stage}.json")
    assert match and int(match["rank"]) == rank


def test_cancel_state_offers_only_jobs_ci_can_cancel(capsys):
    # CancelMediaJob (CI API 1045/49512): only jobs that have not started can be cancelled
    code, err = run(capsys, "cancel", "--state", "Running")
    assert code == 2 and "--state" in err and "'Running'" in err
    assert re.search(r"choose from '?Submitted'?, '?Pause'?", err), err


def test_retry_state_offers_only_final_unsuccessful_states(capsys):
    code, err = run(capsys, "retry", "--state", "Success")
    assert code == 2 and "--state" in err and all(s in err for s in ("Failed", "Cancel", "Gone", "Superseded"))
