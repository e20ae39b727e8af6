"""`cos-matting backfill` against a LocalCloud (jobs are not executed): one job per object, a
second run submits nothing, an interrupted run resumes, bounded concurrency, failures exit 1."""
import json
from collections import Counter

import pytest

from cli import cmd_backfill
from cli.backfill import Frontier
from cli.sources import list_objects
from helpers import clients_for, settings_for
from .cli_support import BUCKET, all_jobs, cli_env, run_cli, run_json, run_script, script_env  # noqa: F401


def fill(cloud, n, prefix="input/bulk/", start=0):
    keys = [f"{prefix}clip-{i:05d}.mp4" for i in range(start, start + n)]
    bucket = cloud.bucket(BUCKET)
    for i, key in enumerate(keys):
        bucket.put_bytes(key, b"\x00\x00\x00\x18ftypmp42 %d" % (start + i))  # no trigger, no HTTP: fast
    return keys


def one_job_per_object(cloud, keys):
    jobs = all_jobs(cloud)
    inputs = Counter(j.Input.Object for j in jobs)
    assert set(inputs) == set(keys), "a job for every object, none for anything else"
    assert max(inputs.values()) == 1, f"duplicates: {[k for k, n in inputs.items() if n > 1][:5]}"
    return jobs


@pytest.mark.slow
def test_backfill_2000_objects_once_then_nothing(cloud):
    keys = fill(cloud, 2000)
    env = script_env(cloud)
    first = run_script(["backfill", "--no-callback", "--prefix", "input/bulk/", "--concurrency", "16", "--json"], env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["listed"] == 2000 and summary["totals"] == {"submitted": 2000, "duplicate": 0, "skipped": 0,
                                                               "failed": 0}
    one_job_per_object(cloud, keys)
    assert "[2000/2000]" in first.stderr  # the progress line (stderr is not a tty: plain lines)
    second = run_script(["backfill", "--no-callback", "--prefix", "input/bulk/", "--concurrency", "16", "--json"], env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["totals"] == {"submitted": 0, "duplicate": 2000, "skipped": 0, "failed": 0}
    one_job_per_object(cloud, keys)


def interrupt_after(monkeypatch, n):
    """Ctrl-C as soon as the progress line shows `n` objects done."""
    real = cmd_backfill.Progress.update
    fired = []

    def update(self, done, counts, force=False):
        real(self, done, counts, force)
        if done >= n and not fired:
            fired.append(done)
            raise KeyboardInterrupt

    monkeypatch.setattr(cmd_backfill.Progress, "update", update)


def test_interrupted_backfill_resumes_from_its_checkpoint(cli_env, capsys, monkeypatch, tmp_path):
    keys = fill(cli_env, 300)
    checkpoint = tmp_path / "backfill.checkpoint"
    interrupt_after(monkeypatch, 120)
    code, first = run_json(capsys, "backfill", "--no-callback", "--prefix", "input/", "-j", "8", "--checkpoint", str(checkpoint))
    assert code == 130 and first["interrupted"]
    done = first["totals"]["submitted"]
    assert 120 <= done < 300 and first["resume_after"] in keys
    assert json.loads(checkpoint.read_text())["start_after"] == first["resume_after"]
    assert len(all_jobs(cli_env)) == done  # in-flight objects finished; nothing half-done
    monkeypatch.undo()
    for name, value in __import__("helpers").function_env(cli_env).items():
        monkeypatch.setenv(name, value)
    code, second = run_json(capsys, "backfill", "--no-callback", "--prefix", "input/", "-j", "8", "--checkpoint", str(checkpoint))
    assert code == 0 and not second["interrupted"]
    assert second["totals"]["submitted"] + second["totals"]["duplicate"] == second["listed"]
    assert second["listed"] == 300 - keys.index(first["resume_after"]) - 1  # started after the checkpoint
    assert done + second["totals"]["submitted"] == 300
    one_job_per_object(cli_env, keys)
    assert not checkpoint.exists()  # completed: no checkpoint left behind


def test_interrupted_backfill_rerun_from_the_start_finishes_the_rest(cli_env, capsys, monkeypatch):
    keys = fill(cli_env, 150)
    interrupt_after(monkeypatch, 40)
    code, out, _ = run_cli(capsys, "backfill", "--no-callback", "-j", "4")
    assert code == 130 and "interrupted" in out and "resume with: --start-after" in out
    done = len(all_jobs(cli_env))
    monkeypatch.undo()
    for name, value in __import__("helpers").function_env(cli_env).items():
        monkeypatch.setenv(name, value)
    code, again = run_json(capsys, "backfill", "--no-callback", "-j", "4")
    assert code == 0 and again["totals"] == {"submitted": 150 - done, "duplicate": done, "skipped": 0, "failed": 0}
    one_job_per_object(cli_env, keys)


def test_dry_run_writes_nothing_and_counts_what_has_a_record(cli_env, capsys):
    keys = fill(cli_env, 30)
    code, data = run_json(capsys, "backfill", "--no-callback", "--prefix", "input/bulk/", "--dry-run")
    assert code == 0 and data["totals"] == {"would-submit": 30, "has-record": 0, "skipped": 0}
    assert all_jobs(cli_env) == []
    run_json(capsys, "backfill", "--no-callback", "--prefix", "input/bulk/", "--limit", "10")
    code, data = run_json(capsys, "backfill", "--no-callback", "--prefix", "input/bulk/", "--dry-run")
    assert data["totals"] == {"would-submit": 20, "has-record": 10, "skipped": 0}
    assert len(all_jobs(cli_env)) == 10 and keys


def test_filters_since_and_skip_reasons(cli_env, capsys):
    fill(cli_env, 5)
    bucket = cli_env.bucket(BUCKET)
    bucket.put_bytes("input/poster.jpg", b"jpg")
    bucket.put_bytes("input/empty.mp4", b"")
    bucket.put_bytes("matting/old.mask.mp4", b"output")
    code, data = run_json(capsys, "backfill", "--no-callback", "--since", "2999-01-01")
    assert code == 0 and data["outcomes"] == {"skipped:before-since": 7} and all_jobs(cli_env) == []
    code, data = run_json(capsys, "backfill", "--no-callback", "--since", "2000-01-01T00:00:00+08:00")
    assert code == 0 and data["outcomes"] == {"submitted": 5, "skipped:empty": 1, "skipped:suffix": 1}
    code, data = run_json(capsys, "backfill", "--no-callback", "--prefix", "matting/")  # the output prefix: never a job
    assert data["outcomes"] == {"skipped:loop-guard": 1}


def test_failures_exit_1_and_throttling_is_retried(cli_env, capsys, tmp_path):
    keys = fill(cli_env, 20)
    cli_env.faults.add("ci.create", count=3, status=429)  # throttled: the submitter backs off and retries
    code, data = run_json(capsys, "backfill", "--no-callback", "-j", "4")
    assert code == 0 and data["totals"]["submitted"] == 20
    more = fill(cli_env, 5, start=100)
    cli_env.faults.add("ci.create", count=1, status=400)  # a permanent rejection
    checkpoint = tmp_path / "cp"
    code, out, _ = run_cli(capsys, "backfill", "--no-callback", "-j", "1", "--checkpoint", str(checkpoint))
    assert code == 1 and "failed=1" in out and "FAILED input/bulk/clip-00100.mp4: failed:submit" in out
    assert json.loads(checkpoint.read_text())["start_after"] < "input/bulk/clip-00100.mp4"  # a resume retries it
    one_job_per_object(cli_env, keys + more[1:])


def test_listing_pages_and_start_after_across_prefixes(cli_env):
    settings = settings_for(cli_env)
    storage = clients_for(cli_env, settings).storage
    fill(cli_env, 1203, prefix="input/a/")
    fill(cli_env, 3, prefix="input/b/")
    keys = [o["Key"] for o in list_objects(storage, BUCKET, ["input/b/", "input/a/"])]
    assert len(keys) == 1206 and keys == sorted(keys)  # more than one 1000-key page
    after = [o["Key"] for o in list_objects(storage, BUCKET, ["input/a/", "input/b/"], "input/a/clip-01201.mp4")]
    assert after == ["input/a/clip-01202.mp4", "input/b/clip-00000.mp4", "input/b/clip-00001.mp4",
                     "input/b/clip-00002.mp4"]
    assert [o["Key"] for o in list_objects(storage, BUCKET, ["input/a/"], "input/b/")] == []


def test_frontier_stops_before_unfinished_keys():
    f = Frontier()
    idx = [f.add(k) for k in "abcde"]
    f.finish(idx[1])
    assert f.key == ""
    f.finish(idx[0])
    assert f.key == "b"
    f.finish(idx[3])
    assert f.key == "b"
    f.finish(idx[2])
    assert f.key == "d"


def test_bad_arguments_exit_2(cli_env, capsys, tmp_path):
    assert run_cli(capsys, "backfill", "--no-callback", "--concurrency", "0")[0] == 2
    assert run_cli(capsys, "backfill", "--no-callback", "--since", "yesterday")[0] == 2
    other = tmp_path / "cp"
    other.write_text(json.dumps({"bucket": "other-1250000000", "prefixes": ["x/"], "start_after": "x/1"}))
    code, _, err = run_cli(capsys, "backfill", "--no-callback", "--checkpoint", str(other))
    assert code == 2 and "belongs to" in err
