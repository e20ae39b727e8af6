"""SCF emulation: COS triggers, retries, warm subprocess workers, logs, Function URLs, the CLI."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from helpers import BUCKET, ROOT, sdk_client
from shared.events import parse_event, uploads

RECORDER = '''
import json, os, sys
from shared.events import parse_event, uploads   # PYTHONPATH has the repo root, like the layer on SCF

COUNT = {"n": 0}   # module state survives between invocations of a warm worker

def main_handler(event, context):
    COUNT["n"] += 1
    out = os.environ["OUT_DIR"]
    for up in uploads(parse_event(event)):
        print(f"got {up.key} etag={up.etag} warm={COUNT['n']}")
        name = f"{len(os.listdir(out)):03d}.json"
        with open(os.path.join(out, name), "w") as fh:
            json.dump({"key": up.key, "event": up.event_name, "pid": os.getpid(), "warm": COUNT["n"],
                       "request_id": context["request_id"]}, fh)
    print("to stderr", file=sys.stderr)
    return {"ok": True}
'''

FLAKY = '''
import os

def main_handler(event, context):
    marker = os.path.join(os.environ["OUT_DIR"], "attempts")
    n = int(open(marker).read()) + 1 if os.path.exists(marker) else 1
    open(marker, "w").write(str(n))
    print(f"attempt {n}")
    if n <= int(os.environ.get("FAIL_TIMES", "2")):
        raise RuntimeError(f"flaky failure {n}")
    return n
'''

USES_SDK = '''
import os
from qcloud_cos import CosConfig, CosS3Client
from shared.events import parse_event, uploads

def main_handler(event, context):
    host, port = os.environ["COS_MATTING_ENDPOINT"].split("//")[1].split(":")
    client = CosS3Client(CosConfig(Region=os.environ["TENCENTCLOUD_REGION"], SecretId=os.environ["TENCENTCLOUD_SECRETID"],
                                   SecretKey=os.environ["TENCENTCLOUD_SECRETKEY"],
                                   Token=os.environ["TENCENTCLOUD_SESSIONTOKEN"], IP=host, Port=int(port), Scheme="http"),
                         retry=0)
    for up in uploads(parse_event(event)):
        client.put_object(Bucket=up.bucket, Key="done/" + up.key, Body=b"seen")
        client.put_object_tagging(Bucket=up.bucket, Key=up.key, Tagging={"TagSet": {"Tag": [{"Key": "seen", "Value": "1"}]}})
'''

ECHO = '''
import base64, json

def main_handler(event, context):
    if event["path"] == "/boom":
        raise ValueError("boom")
    if event["path"] == "/binary":
        return {"statusCode": 201, "headers": {"Content-Type": "application/octet-stream"},
                "body": base64.b64encode(b"\\x00\\xff").decode(), "isBase64Encoded": True}
    print("echo", event["httpMethod"], event["path"])
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Echo": "1"},
            "body": json.dumps(event), "isBase64Encoded": False}
'''


def function_dir(tmp_path, name, code):
    path = tmp_path / name
    path.mkdir()
    (path / "index.py").write_text(textwrap.dedent(code))
    return str(path)


@pytest.fixture
def out_dir(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    return str(path)


def outputs(out_dir):
    return [json.load(open(os.path.join(out_dir, n))) for n in sorted(os.listdir(out_dir)) if n.endswith(".json")]


def test_trigger_fires_for_matching_uploads_only(cloud, cos_client, tmp_path, out_dir):
    fn = function_dir(tmp_path, "recorder", RECORDER)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir}, prefix="input/", suffix=".mp4", concurrency=1)
    cos_client.put_object(Bucket=BUCKET, Key="input/a b+c.mp4", Body=b"video")
    cos_client.put_object(Bucket=BUCKET, Key="input/skip.txt", Body=b"no")
    cos_client.put_object(Bucket=BUCKET, Key="matting/out.mp4", Body=b"no")
    cos_client.copy_object(Bucket=BUCKET, Key="input/copied.mp4",
                           CopySource={"Bucket": BUCKET, "Key": "input/a b+c.mp4", "Region": cloud.region})
    assert cloud.wait_idle(20)
    got = outputs(out_dir)
    assert sorted((o["key"], o["event"]) for o in got) == [("input/a b+c.mp4", "cos:ObjectCreated:Put"),
                                                           ("input/copied.mp4", "cos:ObjectCreated:Copy")]
    assert len({o["pid"] for o in got}) == 1 and sorted(o["warm"] for o in got) == [1, 2]  # one warm worker
    invs = cloud.invocations
    assert len(invs) == 2 and all(i.ok and i.kind == "cos" and i.attempt == 1 for i in invs)
    assert any(line.startswith("got input/a b+c.mp4") for line in invs[0].logs + invs[1].logs)
    assert all("to stderr" in i.logs for i in invs)
    [up] = uploads(parse_event(invs[0].event))
    assert up.bucket == BUCKET and up.size == 5 and up.etag


def test_failed_invocations_are_retried_like_scf(cloud, cos_client, tmp_path, out_dir):
    fn = function_dir(tmp_path, "flaky", FLAKY)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir, "FAIL_TIMES": "2"}, retries=2, retry_delay=0.05)
    cos_client.put_object(Bucket=BUCKET, Key="input/x.mp4", Body=b"x")
    assert cloud.wait_idle(20)
    invs = cloud.invocations
    assert [(i.attempt, i.ok) for i in invs] == [(1, False), (2, False), (3, True)]
    assert "RuntimeError: flaky failure 1" in invs[0].error
    assert "attempt 1" in invs[0].logs and any("Traceback" in line for line in invs[0].logs)
    assert invs[2].result == 3


def test_retries_give_up_after_two_more_attempts(cloud, cos_client, tmp_path, out_dir):
    fn = function_dir(tmp_path, "flaky", FLAKY)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir, "FAIL_TIMES": "99"}, retry_delay=0.01)
    cos_client.put_object(Bucket=BUCKET, Key="input/x.mp4", Body=b"x")
    assert cloud.wait_idle(20)
    assert [(i.attempt, i.ok) for i in cloud.invocations] == [(1, False), (2, False), (3, False)]


def test_killed_worker_is_retried_on_a_fresh_one(cloud, cos_client, tmp_path, out_dir):
    fn = function_dir(tmp_path, "recorder", RECORDER)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir}, retry_delay=0.01)
    cloud.faults.add("scf.invoke", drop=True)  # kill the worker during the first invocation
    cos_client.put_object(Bucket=BUCKET, Key="input/x.mp4", Body=b"x")
    assert cloud.wait_idle(20)
    first, second = cloud.invocations
    assert first.ok is False and "worker exited" in first.error
    assert second.ok is True and second.attempt == 2


def test_function_uses_the_sdk_with_env_credentials(cloud, cos_client, tmp_path):
    fn = function_dir(tmp_path, "sdkfn", USES_SDK)
    cloud.add_trigger(BUCKET, fn, prefix="input/")
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"x")
    assert cloud.wait_idle(20), cloud.invocations
    assert [i.ok for i in cloud.invocations] == [True], cloud.invocations[0].error
    assert cos_client.get_object(Bucket=BUCKET, Key="done/input/v.mp4")["Body"].get_raw_stream().read() == b"seen"
    assert cos_client.get_object_tagging(Bucket=BUCKET, Key="input/v.mp4")["TagSet"]["Tag"] == [
        {"Key": "seen", "Value": "1"}]


def test_job_outputs_fire_triggers_too(cloud, cos_client, tmp_path, out_dir):
    """CI writes outputs like any uploader: a trigger on the output prefix sees them (loop risk is real)."""
    fn = function_dir(tmp_path, "recorder", RECORDER)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir}, prefix="matting/")
    job = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs={
        "Tag": "SegmentVideoBody", "Input": {"Object": "input/v.mp4"},
        "Operation": {"Output": {"Region": cloud.region, "Bucket": BUCKET, "Object": "matting/v.mp4"}}})
    cloud.set_job_state(BUCKET, job["JobsDetail"][0]["JobId"], "Success")
    assert cloud.wait_idle(20)
    assert [o["key"] for o in outputs(out_dir)] == ["matting/v.mp4"]


def test_function_url_round_trip(cloud, tmp_path):
    url = cloud.add_function_url("echo", function_dir(tmp_path, "echo", ECHO))
    assert url == f"{cloud.url}/_fn/echo"
    resp = requests.post(f"{url}/cb/path?token=abc&x=1&x=2", json={"EventName": "TaskFinish"},
                         headers={"X-Custom": "v"})
    assert resp.status_code == 200 and resp.headers["X-Echo"] == "1"
    event = resp.json()
    assert event["httpMethod"] == "POST" and event["path"] == "/cb/path"
    assert event["queryString"] == {"token": "abc", "x": ["1", "2"]} and "queryStringParameters" not in event
    assert event["headers"]["x-custom"] == "v"
    # SCF doc 583/96099 (2025): no requestContext, no isBase64Encoded; the client in x-scf-remote-addr.
    assert json.loads(event["body"]) == {"EventName": "TaskFinish"}
    assert "isBase64Encoded" not in event and "requestContext" not in event
    assert event["headers"]["x-scf-remote-addr"] == "127.0.0.1"
    raw = requests.post(url + "/raw", data=b"\x00\x01\xfe", headers={"Content-Type": "application/octet-stream"})
    assert raw.json()["isBase64Encoded"] is True and raw.json()["body"] == "AAH+"
    binary = requests.get(url + "/binary")
    assert (binary.status_code, binary.content) == (201, b"\x00\xff")
    boom = requests.get(url + "/boom")
    assert boom.status_code == 502 and "ValueError: boom" in boom.json()["errorMessage"]
    assert requests.get(f"{cloud.url}/_fn/missing/x").status_code == 404
    assert any("echo POST /cb/path" in line for i in cloud.invocations for line in i.logs)
    assert all(i.kind == "http" for i in cloud.invocations)


def test_import_error_is_reported_per_invocation(cloud, cos_client, tmp_path):
    fn = function_dir(tmp_path, "broken", "import not_a_module\n")
    cloud.add_trigger(BUCKET, fn, retries=0)
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"x")
    assert cloud.wait_idle(20)
    [inv] = cloud.invocations
    assert inv.ok is False and "initialisation" in inv.error and "not_a_module" in inv.traceback


def test_invocation_timeout_kills_the_worker(cloud, tmp_path):
    url = cloud.add_function_url("slow", function_dir(tmp_path, "slow", "import time\n"
                                 "def main_handler(event, context):\n    time.sleep(30)\n"), timeout=0.5)
    started = time.time()
    assert requests.get(url).status_code == 502
    assert time.time() - started < 5
    assert "timed out" in cloud.invocations[0].error


def test_timer_invokes_periodically(cloud, tmp_path, out_dir):
    code = "import os, time\ndef main_handler(event, context):\n" \
           "    open(os.path.join(os.environ['OUT_DIR'], str(time.time())), 'w').write(event['Type'])\n"
    cloud.add_timer(function_dir(tmp_path, "tick", code), env={"OUT_DIR": out_dir}, every_seconds=0.2)
    deadline = time.time() + 15  # generous: a cold worker start is slow on a busy machine
    while len(os.listdir(out_dir)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(out_dir)) >= 3
    assert {open(os.path.join(out_dir, n)).read() for n in os.listdir(out_dir)} == {"Timer"}
    assert all(i.kind == "timer" and i.ok for i in cloud.invocations if i.ok is not None)


def test_cli_prints_one_line_serves_and_runs_triggers(tmp_path, out_dir):
    fn = function_dir(tmp_path, "recorder", RECORDER)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "localcloud", "--engine", "none", "--port", "0", "--data",
                             str(tmp_path / "d"), "--bucket", BUCKET, "--bucket", "more-1250000000",
                             "--trigger", fn, "--env", f"OUT_DIR={out_dir}"],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("localcloud listening on http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split()[3]
        assert requests.get(f"{url}/_localcloud/health").json()["buckets"] == sorted([BUCKET, "more-1250000000"])

        class Endpoint:  # what cos_config_kwargs() gives, for the CLI's cloud
            def cos_config_kwargs(self):
                return {"Region": "ap-guangzhou", "SecretId": "AKIDlocal", "SecretKey": "localsecretkey",
                        "IP": "127.0.0.1", "Port": int(url.rsplit(":", 1)[1]), "Scheme": "http"}

        sdk_client(Endpoint()).put_object(Bucket=BUCKET, Key="input/cli.mp4", Body=b"x")
        assert requests.get(f"{url}/_localcloud/idle", params={"timeout": 20}).json() == {"idle": True}
        [inv] = requests.get(f"{url}/_localcloud/invocations").json()
        assert inv["ok"] and any("got input/cli.mp4" in log for log in inv["logs"])
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert proc.stdout.read() == ""  # exactly one line on stdout
    stderr = proc.stderr.read()
    assert "[recorder cos attempt 1] ok" in stderr and "recorder| got input/cli.mp4" in stderr
    assert [o["key"] for o in outputs(out_dir)] == ["input/cli.mp4"]
    assert any((tmp_path / "d" / "cos" / BUCKET).rglob("*.data"))


def test_kill_the_worker_during_the_nth_invocation(cloud, cos_client, tmp_path, out_dir):
    fn = function_dir(tmp_path, "recorder", RECORDER)
    cloud.add_trigger(BUCKET, fn, env={"OUT_DIR": out_dir}, retry_delay=0.01, concurrency=1)
    cloud.faults.add("scf.invoke", drop=True, skip=2)  # the 3rd invocation dies
    for i in range(3):
        cos_client.put_object(Bucket=BUCKET, Key=f"input/{i}.mp4", Body=b"x")
        assert cloud.wait_idle(20)
    assert [(i.attempt, i.ok) for i in cloud.invocations] == [(1, True), (1, True), (1, False), (2, True)]
    assert sorted(o["key"] for o in outputs(out_dir)) == ["input/0.mp4", "input/1.mp4", "input/2.mp4"]
