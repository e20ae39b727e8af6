"""Every mistake from the operator's day (issue 14) through the installed `cos-matting`: one
error line on stderr saying what, which input and what to do; exit 2 for a usage or
configuration mistake, 1 for a failure of the work; never a traceback (unless --debug)."""
import json
import socket
import subprocess
import time

import pytest

from helpers import BUCKET, ROOT, function_env
from .cli_support import SCRIPT, clean_environ, run_script


def env_for(cloud, **changes):
    env = {**clean_environ(), **function_env(cloud)}
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def one_error_line(result, code, *needles):
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_cloud_not_running_fails_fast_in_one_line(cloud):
    env = env_for(cloud, COS_MATTING_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    for argv in (["status"], ["replay", "events/cos/put-video.json"], ["logs"], ["cancel", "--state", "Submitted"]):
        started = time.monotonic()
        result = run_script(argv, env)
        assert time.monotonic() - started < 3.0  # no 3.5 s of SDK retries (interpreter start included)
        one_error_line(result, 1, "COS_MATTING_ENDPOINT=http://127.0.0.1:", "nothing answers there",
                       "cos-matting localcloud")


def test_unknown_bucket_and_wrong_keys_are_configuration_mistakes(cloud):
    one_error_line(run_script(["status"], env_for(cloud, COS_MATTING_BUCKET="nosuch-1250000000")), 2,
                   "NoSuchBucket", "the bucket does not exist", "COS_MATTING_BUCKET")
    one_error_line(run_script(["status"], env_for(cloud, TENCENTCLOUD_SECRETKEY="wrong")), 2,
                   "secret key was refused", "TENCENTCLOUD_SECRETKEY")
    one_error_line(run_script(["status"], env_for(cloud, TENCENTCLOUD_SECRETID="AKIDnobody")), 2,
                   "secret id is not known", "TENCENTCLOUD_SECRETID")


def test_no_endpoint_with_the_local_keys_says_what_to_set(cloud):
    result = run_script(["status"], env_for(cloud, COS_MATTING_ENDPOINT=None))
    one_error_line(result, 2, "COS_MATTING_ENDPOINT: not set", "--local")


@pytest.mark.parametrize("argv, needles", [
    (["localcloud", "--port", "99999"], ["--port", "'99999' is not a port", "0-65535"]),
    (["localcloud", "--bucket", "Videos_1"], ["--bucket", "NAME-APPID"]),
    (["localcloud", "--trigger", "functions/nosuch"], ["--trigger functions/nosuch", "no such function folder"]),
    (["localcloud", "--env", "COS_MATTING_MODE"], ["--env 'COS_MATTING_MODE'", "NAME=VALUE"]),
    (["localcloud", "--port", "0", "--trigger", "functions/submit", "--env", "COS_MATTING_BUCKET=videos-1250000000",
      "--env", "COS_MATTING_REGION=ap-guangzhou", "--env", "COS_MATTING_MODE=Bogus"],
     ["--trigger functions/submit", "settings check", "COS_MATTING_MODE", "'Mask', 'Foreground' or 'Combination'",
      "'Bogus'"]),
    (["localcloud", "--port", "0", "--function-url", "callback=functions/callback", "--env",
      "COS_MATTING_BUCKET=videos-1250000000", "--env", "COS_MATTING_REGION=ap-guangzhou"],
     ["COS_MATTING_CALLBACK_KEYS is not set"]),
    (["status", "--bogus"], ["unrecognized arguments: --bogus", "--help"]),
    (["demo", "--timeout"], ["--timeout", "expected one argument"]),
])
def test_usage_mistakes_exit_2_in_one_line(tmp_path, argv, needles):
    result = run_script(argv + (["--data", str(tmp_path / "d")] if argv[0] == "localcloud" else []), clean_environ(),
                        timeout=60)
    one_error_line(result, 2, *needles)


def test_port_in_use(cloud, tmp_path):
    result = run_script(["localcloud", "--engine", "none", "--port", str(cloud.port), "--data", str(tmp_path / "d")], clean_environ())
    one_error_line(result, 2, f"--port {cloud.port}", "in use", "another --port")


def test_a_bad_mode_is_refused_at_start_not_on_every_upload(tmp_path):
    """The bad setting never reaches an upload: localcloud exits 2 before it listens."""
    proc = subprocess.run([str(SCRIPT), "localcloud", "--port", "0", "--data", str(tmp_path / "d"), "--engine", "none",
                           "--trigger", "functions/submit", "--function-url", "callback=functions/callback",
                           "--env", "COS_MATTING_BUCKET=videos-1250000000", "--env", "COS_MATTING_REGION=ap-guangzhou",
                           "--env", "COS_MATTING_CALLBACK_KEYS=local-callback-key-0123456789",
                           "--env", "COS_MATTING_MODE=Bogus"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "listening" not in proc.stdout
    assert proc.stderr.count("\n") == 1 and "COS_MATTING_MODE" in proc.stderr


def test_status_of_an_unknown_id_exits_1_like_grep(cloud):
    result = run_script(["status", "snosuchjob000"], env_for(cloud))
    assert result.returncode == 1 and "no record matches 'snosuchjob000'" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_piped_into_head_is_quiet(cloud):
    env = env_for(cloud)
    keys = " ".join(f"--key input/{i}.mp4" for i in range(4000))  # megabytes: more than a pipe holds
    for command in (f"{SCRIPT} generate-event cos-put --bucket {BUCKET} {keys} | head -c 100 >/dev/null",
                    f"{SCRIPT} status | head -1 >/dev/null", f"{SCRIPT} --help | head -1 >/dev/null"):
        result = subprocess.run(["bash", "-c", command + "; echo ${PIPESTATUS[0]}"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.stderr == "", result.stderr
        assert result.stdout.strip() in ("0", "141")  # finished before head closed, or stopped quietly


def test_replay_says_which_file_is_empty_or_not_json_and_takes_paths_after_options(cloud, tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "a-empty.json").write_text("")
    (folder / "b-broken.json").write_text('{"Records": [\n  {"cos": \n')
    (folder / "c-notjson.json").write_text("Records: yes")
    put = folder / "d.json"
    put.write_text((ROOT / "events" / "cos" / "put-video.json").read_text())
    result = run_script(["replay", str(folder / "a-empty.json"), "--stop-on-failure", str(put), "--json"],
                        env_for(cloud))
    assert result.returncode == 1
    [first] = json.loads(result.stdout)  # accepted, and stopped at the first failure
    assert first["source"].endswith("a-empty.json") and first["error"] == "empty file: no event in it"
    result = run_script(["replay", str(folder), "--json"], env_for(cloud))
    errors = {r["source"].rsplit("/", 1)[1]: r.get("error") for r in json.loads(result.stdout)}
    assert errors["a-empty.json"].startswith("empty file")
    assert errors["b-broken.json"].startswith("not valid JSON (")
    assert errors["c-notjson.json"].startswith("not valid JSON (it starts with")
    assert "unknown event shape" not in result.stdout
    text = run_script(["replay", str(folder / "a-empty.json")], env_for(cloud)).stdout
    assert "not run: empty file" in text and "handler raised" not in text  # it never reached a handler


def test_replay_remote_without_credentials_says_so(tmp_path):
    env = {**clean_environ(), "HOME": str(tmp_path)}  # no ~/.tencentcloud/credentials either
    result = run_script(["replay", "--remote", "--function", "cos-matting-{kind}", "--region", "ap-guangzhou",
                         "events/cos/put-video.json"], env)
    one_error_line(result, 2, "no Tencent Cloud credentials", "TENCENTCLOUD_SECRETID")
    assert "handler raised" not in result.stdout


def test_misspelt_variable_is_reported_with_the_nearest_name(cloud):
    result = run_script(["status"], env_for(cloud, COS_MATTING_SEGMENTTYPE="GreenScreenSeg"))
    assert result.returncode == 0
    assert "warning: COS_MATTING_SEGMENTTYPE is not a cos-matting setting (ignored); did you mean " \
           "COS_MATTING_SEGMENT_TYPE?" in result.stderr


def test_bulk_cancel_needs_yes_without_a_terminal(cloud):
    env = env_for(cloud)
    event = run_script(["generate-event", "cos-put", "--bucket", BUCKET, "--key", "input/a.mp4"], env).stdout
    run_script(["replay", "-", "--seed"], env, stdin=event)
    result = run_script(["cancel", "--state", "Submitted"], env)
    one_error_line(result, 2, "cancel 1 job(s) in state Submitted: not confirmed", "--yes")
    assert {j.State for j in cloud.list_jobs(BUCKET)} == {"Submitted"}
    result = run_script(["cancel", "--state", "Submitted", "--yes"], env)
    assert result.returncode == 0 and "cancelled 1 of 1" in result.stdout


def test_debug_shows_the_traceback(cloud):
    result = run_script(["status", "--debug"], env_for(cloud, COS_MATTING_BUCKET="nosuch-1250000000"))
    assert result.returncode == 1 and "Traceback" in result.stderr and "NoSuchBucket" in result.stderr


def test_version():
    result = run_script(["--version"], clean_environ())
    assert result.returncode == 0 and result.stdout.startswith("cos-matting ")


def test_localcloud_warns_about_a_misspelt_env_once(tmp_path):
    proc = subprocess.Popen([str(SCRIPT), "localcloud", "--engine", "none", "--port", "0", "--data", str(tmp_path / "d"),
                             "--trigger", "functions/submit", "--function-url", "callback=functions/callback",
                             "--env", "COS_MATTING_BUCKET=videos-1250000000", "--env", "COS_MATTING_REGION=ap-guangzhou",
                             "--env", "COS_MATTING_CALLBACK_KEYS=local-callback-key-0123456789",
                             "--env", "COS_MATTING_MOD=Mask"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("localcloud listening on")
    finally:
        proc.terminate()
        proc.wait(20)
    err = proc.stderr.read()
    assert err.count("warning: COS_MATTING_MOD is not a cos-matting setting (ignored); did you mean "
                     "COS_MATTING_MODE?") == 1, err
