"""The commands people reach for (issue 14): upload, logs, status as a person reads it, the
terminal prompt, progress with totals, display-width tables."""
import io
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from cli import progress as progress_mod, ui
from helpers import BUCKET, ROOT, function_env, put, sdk_client
from .cli_support import SCRIPT, cli_env, clean_environ, run_cli, run_json  # noqa: F401 (fixture)


# -- tables, prompt, progress -------------------------------------------------------------------

def from_column(line, column):
    """The part of `line` from display column `column` on."""
    at = 0
    for i, ch in enumerate(line):
        if at >= column:
            return line[i:]
        at += ui.width(ch)
    return ""


def test_tables_align_wide_characters_and_wrap_whole_text():
    rows = [["input/视频/舞蹈 练习.mp4", "Failed", "InvalidInput: the input is not a readable media file at all"],
            ["input/a.mp4", "Success", "matting/a.mask.mp4"], ["input/café.mp4", "Running", ""]]
    lines = ui.table(["SOURCE", "STATE", "OUTPUT"], rows, wrap_at={2: 30}).splitlines()
    state_col, output_col = lines[0].index("STATE"), lines[0].index("OUTPUT")
    for line, state in ((lines[2], "Failed"), (lines[-2], "Success"), (lines[-1], "Running")):
        assert from_column(line, state_col).startswith(state), line  # aligned in display columns
    first_row = [from_column(line, output_col).strip() for line in lines[2:-2]]
    assert len(first_row) == 2 and " ".join(first_row) == rows[0][2]  # wrapped at a space, nothing cut
    assert all(ui.width(line) <= ui.width(lines[1]) for line in lines)
    assert ui.width("舞蹈") == 4 and ui.width("café") == 4
    assert ui.wrap("视频视频视频", 5) == ["视频", "视频", "视频"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_confirm_asks_on_a_terminal_and_needs_yes_otherwise():
    import argparse

    import pytest

    from cli.errors import UsageError

    args = argparse.Namespace(yes=False)
    asked = io.StringIO()
    assert ui.confirm(args, "cancel 3 job(s)?", 3, stdin=Terminal("y\n"), stream=asked)
    assert asked.getvalue() == "cancel 3 job(s)? [y/N] "
    assert not ui.confirm(args, "cancel 3 job(s)?", 3, stdin=Terminal("\n"), stream=io.StringIO())
    assert ui.confirm(argparse.Namespace(yes=True), "cancel 3 job(s)?", 3, stdin=io.StringIO())
    with pytest.raises(UsageError, match="pass --yes"):
        ui.confirm(args, "cancel 3 job(s)?", 3, stdin=io.StringIO("y\n"))


def test_progress_shows_total_eta_and_stays_quiet_for_short_work():
    stream = io.StringIO()
    bar = progress_mod.Progress(total=3000, stream=stream, interval=0, label="cancel")
    bar.started -= 2.0  # two seconds in
    bar.update(1000, {"failed": 0})
    assert stream.getvalue().startswith("cancel [1000/3000]  33% ") and "ETA 4 s" in stream.getvalue()
    quiet = io.StringIO()
    short = progress_mod.Progress(total=10, stream=quiet, interval=0, delay=5.0)
    short.update(5)
    short.finish(10)
    assert quiet.getvalue() == ""  # work that ended within `delay` shows nothing
    assert progress_mod.duration(3725) == "1 h 02 min" and progress_mod.duration(75) == "1 min 15 s"


# -- status ---------------------------------------------------------------------------------------

def records(cli_env, capsys, keys):
    for key in keys:
        put_key = put(sdk_client(cli_env), key)
        assert put_key
    code, out, err = run_cli(capsys, "backfill", "--no-callback", "--prefix", "input/", "--no-progress")
    assert code == 0, err


def test_status_reads_like_a_person_would(cli_env, capsys, monkeypatch):
    keys = ["input/a.mp4", "input/视频/舞蹈 练习.mp4", "input/c.mp4"]
    records(cli_env, capsys, keys)
    long = "the input could not be decoded: moov atom not found after reading 1048576 bytes of the file"
    jobs = {j.Input.Object: j.JobId for j in cli_env.list_jobs(BUCKET)}
    cli_env.set_job_state(BUCKET, jobs["input/c.mp4"], "Failed", code="InvalidInput", message=long)
    run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")

    class Immediate(progress_mod.Progress):  # show the reading progress even though it is quick here
        def __init__(self, *a, **kw):
            super().__init__(*a, **{**kw, "delay": 0.0, "interval": 0.0})

    monkeypatch.setattr("cli.cmd_status.Progress", Immediate)
    code, out, err = run_cli(capsys, "status", "--all")  # a Failed record is history: --all reads it
    assert code == 0 and "reading records [3/3] 100%" in err
    lines = out.splitlines()
    header = lines[0]
    rows = lines[2:lines.index("")]
    at = next(i for i, line in enumerate(rows) if line.startswith("input/c.mp4"))
    message = [from_column(rows[at], header.index("OUTPUT")).strip()]
    message += [line.strip() for line in rows[at + 1:] if line.startswith(" ")]
    assert " ".join(message) == f"InvalidInput: {long}"  # whole, wrapped at spaces
    for key in keys:
        row = next(line for line in rows if line.startswith(key))
        assert from_column(row, header.index("JOB")).startswith(jobs[key])  # wide characters aligned
    assert "totals: 3 record(s): Submitted=2  Failed=1  never-became-a-job=0" in out
    code, out, _ = run_cli(capsys, "status", "--state", "Failed")
    assert "totals: 1 record(s) of 3: Failed=1" in out  # what is shown, and of how many
    code, out, _ = run_cli(capsys, "status", "--help")
    assert "AGE     time since the record last changed" in out and "s seconds, m minutes" in out


# -- upload ---------------------------------------------------------------------------------------

def test_upload_is_multipart_above_the_part_size_with_progress(cli_env, capsys, tmp_path):
    big = tmp_path / "big clip.mp4"
    big.write_bytes(os.urandom(2 * 1024 * 1024 + 12345))
    code, out, err = run_cli(capsys, "upload", str(big), "input/big clip.mp4", "--part-size", "1")
    assert code == 0, err
    assert "multipart, 3 parts of 1 MiB" in out and "to videos-1250000000/input/big clip.mp4" in out
    assert "upload [" in err and "100%" in err
    meta = cli_env.bucket(BUCKET).head("input/big clip.mp4")
    assert meta.size == big.stat().st_size and meta.etag.endswith("-3")  # COS's multipart ETag
    small = tmp_path / "small.mp4"
    small.write_bytes(b"\x00\x00\x00\x18ftypmp42 small")
    code, out, _ = run_cli(capsys, "upload", str(small))
    assert code == 0 and "to videos-1250000000/input/small.mp4" in out and "one PUT" in out
    code, out, err = run_cli(capsys, "upload", str(small), "elsewhere/")
    assert code == 0 and "no job will be made" in err and "elsewhere/small.mp4" in out
    assert "upload on the local cloud at " in err  # the target, before the write
    code, data = run_json(capsys, "upload", str(small), "input/again.mp4")
    assert code == 0 and data["key"] == "input/again.mp4" and data["bytes"] == small.stat().st_size
    code, _, err = run_cli(capsys, "upload", str(tmp_path / "nope.mp4"))
    assert code == 2 and "no such file" in err


def test_upload_ctrl_c_stops_within_a_second_and_aborts_the_multipart_upload(cli_env, tmp_path):
    big = tmp_path / "long.mp4"
    big.write_bytes(os.urandom(16 * 1024 * 1024))
    cli_env.faults.add("cos.multipart.part", count=1000, delay=1.0)  # each 1 MiB part takes 1 s: 8 s in all
    env = {**clean_environ(), **function_env(cli_env)}
    # Ctrl-C as in a terminal (SIGINT at its default: see the logs --follow test below)
    proc = subprocess.Popen([str(SCRIPT), "upload", str(big), "input/long.mp4", "--part-size", "1",
                             "--threads", "2", "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    client = sdk_client(cli_env)
    deadline = time.time() + 60
    while time.time() < deadline and not client.list_multipart_uploads(Bucket=BUCKET, Prefix="input/long.mp4").get("Upload"):
        time.sleep(0.05)
    time.sleep(1.0)  # parts in flight
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("upload still running 10 s after Ctrl-C")
    took = time.monotonic() - sent
    err = proc.stderr.read()
    assert code == 130 and took < 1.0, (code, took, err)
    assert "aborted multipart upload" in err and "Traceback" not in err
    cli_env.faults.clear()
    assert not client.list_multipart_uploads(Bucket=BUCKET, Prefix="input/long.mp4").get("Upload")
    assert "input/long.mp4" not in [o["Key"] for o in client.list_objects(Bucket=BUCKET, Prefix="input/").get("Contents", [])]


# -- logs -----------------------------------------------------------------------------------------

def test_logs_show_and_follow_the_functions_invocations(cloud, tmp_path, monkeypatch):
    env = {**clean_environ(), **function_env(cloud)}
    cloud.add_trigger(BUCKET, str(ROOT / "functions" / "submit"), env=function_env(cloud), prefix="input/")
    client = sdk_client(cloud)
    put(client, "input/first.mp4")
    assert cloud.wait_idle(30)
    result = subprocess.run([str(SCRIPT), "logs", "submit"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "[submit cos attempt 1] ok" in result.stdout
    assert '"key": "input/first.mp4"' in result.stdout
    # Upload only once `--follow` has read what was there (its first GET of the invocations): a fixed
    # sleep lost that race under load (start-up > 2 s), and the read below then blocked forever.
    read = threading.Event()
    served = type(cloud).invocations
    monkeypatch.setattr(type(cloud), "invocations",
                        property(lambda self: (lambda items: (read.set(), items)[1])(served.fget(self))))
    # Ctrl-C as in a terminal: a run started in the background (`make test &`, some CI runners)
    # hands its children SIGINT ignored, and Python then never installs its KeyboardInterrupt.
    follow = subprocess.Popen([str(SCRIPT), "logs", "--follow", "--tail", "0"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True).start()
    try:
        assert read.wait(60), "logs --follow never read the invocations"
        put(client, "input/second.mp4")
        deadline, seen = time.time() + 30, ""
        while '"key": "input/second.mp4"' not in seen and time.time() < deadline:
            try:
                seen += lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
        assert '"key": "input/second.mp4"' in seen and "input/first.mp4" not in seen
    finally:
        follow.send_signal(signal.SIGINT)
        try:  # Ctrl-C ends it with 0
            code = follow.wait(30)
        except subprocess.TimeoutExpired:
            follow.kill()
            pytest.fail(f"logs --follow still running 30 s after Ctrl-C: {follow.stderr.read()[-2000:]}")
        assert code == 0, follow.stderr.read()[-2000:]
    result = subprocess.run([str(SCRIPT), "logs", "nosuch"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "functions seen: submit" in result.stderr


def test_cancel_by_state_under_a_prefix_only(cli_env, capsys):
    records(cli_env, capsys, ["input/a/1.mp4", "input/b/2.mp4"])
    code, out, _ = run_cli(capsys, "cancel", "--state", "Submitted", "--prefix", "input/a/", "--yes")
    assert code == 0 and "cancelled 1 of 1" in out
    assert {j.Input.Object: j.State for j in cli_env.list_jobs(BUCKET)} == {"input/a/1.mp4": "Cancel",
                                                                            "input/b/2.mp4": "Submitted"}
    code, _, err = run_cli(capsys, "cancel", "sjob", "--prefix", "input/")
    assert code == 2 and "--prefix goes with --state" in err


def test_watch_until_done_says_so_when_everything_had_finished_already(cli_env, capsys, monkeypatch, tmp_path):
    """`status --watch 1 --until-done` started after the job ended (a short clip, a fast machine):
    a second look (a trigger may be between an upload and its claim), then a frame that says nothing is
    in progress and where the finished records are, exit 0."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the uploads scan's saved state: this test's own
    code, out, _ = run_cli(capsys, "status", "--watch", "1", "--until-done")
    assert code == 0 and out.count("(Ctrl-C to stop)") == 2 and out.count("nothing in progress") == 1
    assert "nothing in progress: no open record and no upload without one" in out and "status --all" in out
