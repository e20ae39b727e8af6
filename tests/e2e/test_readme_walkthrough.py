"""The README's "step by step" walkthrough, run as written: its commands are read from
README.md itself (so they cannot drift), run in order in a fresh folder, and each step's
visible result is checked. Only the port is changed (to a free one), so that the test can run
next to anything else on the machine."""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Running the pipeline locally, step by step"


def walkthrough():
    """(terminal 1 command, [terminal 2 commands]) from the README, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the walkthrough is two shell blocks: terminal 1 and terminal 2"

    def commands(block):
        joined = block.replace("\\\n", " ")
        return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]

    [server] = commands(blocks[0])
    return server, commands(blocks[1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_samples(r, folder):
    assert "samples/person.mp4" in r.stdout and (folder / "samples" / "person.mp4").stat().st_size > 10_000


def check_upload(r, folder):
    assert "to videos-1250000000/input/person.mp4" in r.stdout and "upload [" in r.stderr


def check_watch(r, folder):
    last = r.stdout.split("(Ctrl-C to stop)")[-1]
    if "nothing in progress" in last:  # the job ended before status first looked (busy CI); check_status
        assert "no open record and no upload without one" in last  # asserts its Success
        return
    row = next(line for line in last.splitlines() if line.startswith("input/person.mp4"))
    assert "Success" in row and "matting/input/person.mp4.mask.mp4" in row, last
    assert "totals: 1 record(s): Success=1" in last


def check_logs(r, folder):
    assert "[submit cos attempt 1] ok" in r.stdout and '"outcome": "submitted"' in r.stdout


def check_generate(r, folder):
    event = json.loads((folder / "callback.json").read_text())
    assert event["httpMethod"] == "POST" and set(event["queryString"]) == {"rid", "exp", "t"}
    assert event["queryString"]["t"] not in ("TOKEN", "") and '"TaskFinish"' in event["body"]


def check_replay_callback(r, folder):
    assert "unchanged" in r.stdout and "Success" in r.stdout and "1 ok, 0 failed" in r.stdout


def check_replay_seed(r, folder):
    count = len(list((ROOT / "events" / "cos").glob("*.json")))
    assert f"replayed {count} of {count} event(s): {count} ok, 0 failed" in r.stdout


def check_status(r, folder):
    row = next(line for line in r.stdout.splitlines() if line.startswith("input/person.mp4"))
    assert "Success" in row and "never-became-a-job=0" in r.stdout
    assert re.search(r"totals: \d+ record\(s\): ", r.stdout)


def check_backfill(r, folder):
    assert "submitted=0" in r.stdout and "failed=0" in r.stdout and re.search(r"duplicate=[1-9]", r.stdout)


CHECKS = [  # (how the README's command starts, check of what it printed)
    ("export ", None),
    (".venv/bin/cos-matting samples ", check_samples),
    (".venv/bin/cos-matting upload ", check_upload),
    (".venv/bin/cos-matting status --watch", check_watch),
    (".venv/bin/cos-matting logs ", check_logs),
    (".venv/bin/cos-matting generate-event callback --record", check_generate),
    (".venv/bin/cos-matting replay callback.json", check_replay_callback),
    (".venv/bin/cos-matting replay --seed", check_replay_seed),
    (".venv/bin/cos-matting status --all", check_status),
    (".venv/bin/cos-matting backfill ", check_backfill),
]


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path):
    server, steps = walkthrough()
    assert [c[0] for c in CHECKS] == [next(p for p, _ in CHECKS if s.startswith(p)) for s in steps], \
        "every README step has its check, in this order (update CHECKS with the README)"
    port = str(free_port())
    for name in (".venv", "functions", "events"):  # the repository as the reader has it, in a fresh folder
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    cloud = subprocess.Popen(["bash", "-c", server.replace("9000", port)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = cloud.stdout.readline()
        assert line.startswith(f"localcloud listening on http://127.0.0.1:{port}"), (line, cloud.stderr.read())
        wired = [cloud.stderr.readline() for _ in range(4)]
        assert any(f"jobs call back to http://127.0.0.1:{port}/_fn/callback" in w for w in wired), wired
        # it says which HumanSeg engine runs (make test installs the rvm extra)
        assert wired[0].strip().startswith("HumanSeg engine: Robust Video Matting"), wired
        for step in steps:
            command = step.replace("9000", port)
            if command.startswith("export "):
                for pair in shlex.split(command[len("export "):], comments=True):
                    key, _, value = pair.partition("=")
                    env[key] = value
                continue
            check = next(c for p, c in CHECKS if step.startswith(p))
            started = time.monotonic()
            result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                    text=True, timeout=180)
            assert result.returncode == 0, (step, result.stdout[-2000:], result.stderr[-2000:])
            check(result, tmp_path)
            print(f"{time.monotonic() - started:6.2f} s  {step}", file=sys.stderr)
    finally:
        cloud.terminate()
        cloud.wait(20)
