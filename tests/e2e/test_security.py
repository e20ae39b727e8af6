"""Secrets stay secret, uploader credentials are never stored, keys cannot steer outputs."""
import json
import time
from pathlib import Path

import pytest
import requests

from helpers import BUCKET, KEYS, ROOT, clients_for, function_env, put, settings_for
from shared import tokens
from shared.events import Upload, build_event
from shared.records import RecordStore
from shared.submit import Submitter

UPLOADER_AUTH = "q-sign-algorithm=sha1&q-ak=AKIDuploader&q-signature=UPLOADER-SECRET-SIGNATURE"


def stored_bytes(cloud) -> bytes:
    return b"".join(p.read_bytes() for p in Path(cloud.data_dir).rglob("*") if p.is_file())


def test_secrets_never_logged_and_uploader_authorization_never_stored(cloud, cos_client):
    env = function_env(cloud)
    url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env)
    env["COS_MATTING_CALLBACK_URL"] = url
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env)
    etag = put(cos_client, "input/secret.mp4")
    event = build_event([Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key="input/secret.mp4",
                                etag=etag, size=10, event_name="cos:ObjectCreated:Put")])
    event["Records"][0]["event"]["requestParameters"]["requestHeaders"] = {"Authorization": UPLOADER_AUTH}
    assert cloud.invoke("submit", event).ok
    cloud.wait_idle(timeout=20)
    [job] = cloud.list_jobs(BUCKET)
    cloud.set_job_state(BUCKET, job.JobId, "Success")
    cloud.wait_idle(timeout=20)
    # a forged callback too: its token must not be echoed into the logs either
    requests.post(url, params={"rid": "r" * 32, "exp": str(int(time.time()) + 60), "t": "FORGED-TOKEN-VALUE"},
                  data=b"{}", timeout=10)

    logs = "\n".join(line for inv in cloud.invocations for line in inv.logs)
    assert '"event": "submit.outcome"' in logs and '"event": "callback.done"' in logs
    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL=url)
    record, _ = RecordStore.of(settings, clients_for(cloud, settings).storage).load(json.loads(
        next(l for l in logs.splitlines() if "submit.outcome" in l))["record_id"])
    live_token = tokens.callback_url(url, [KEYS], record.id, 600, time.time()).split("t=")[1]
    for secret in (KEYS, env["TENCENTCLOUD_SECRETKEY"], "FORGED-TOKEN-VALUE", live_token[:20], "UPLOADER-SECRET"):
        assert secret not in logs
    stored = stored_bytes(cloud)
    assert b"UPLOADER-SECRET-SIGNATURE" not in stored and KEYS.encode() not in stored
    assert record.request and "CallBack" not in record.request


@pytest.mark.parametrize("key", ["input/../../../etc/passwd.mp4", "input//leading.mp4", "input/a/./b/../c.mp4",
                                 "input/..mp4", "input/...../x.mp4"])
def test_key_tricks_cannot_move_outputs_out_of_the_prefix(cloud, cos_client, key):
    settings = settings_for(cloud)
    clients = clients_for(cloud, settings)
    etag = put(cos_client, key)
    out = Submitter(settings, clients, sleep=lambda s: None).process(
        Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag, size=10,
               event_name="cos:ObjectCreated:Put"))
    assert out.outcome == "submitted", out
    output = clients.ci.describe(out.job_id).Operation.Output.Object
    assert output.startswith("matting/") and ".." not in output.split("/") and "//" not in output
    assert all(ord(c) >= 32 for c in output)


def test_keys_with_control_characters_are_skipped_with_a_reason(cloud, cos_client):
    settings = settings_for(cloud)
    key = "input/ctl\x01\x1fchars.mp4"
    etag = put(cos_client, key)
    out = Submitter(settings, clients_for(cloud, settings)).process(
        Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=key, etag=etag, size=10,
               event_name="cos:ObjectCreated:Put"))
    assert out.outcome == "skipped:control-characters"


def test_a_configuration_that_would_loop_is_refused_at_start(cloud, cos_client):
    env = function_env(cloud, COS_MATTING_OUTPUT_PREFIX="input/matted/")
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, retries=0)
    put(cos_client, "input/loop.mp4")
    cloud.wait_idle(timeout=30)
    [inv] = cloud.invocations
    assert not inv.ok and "COS_MATTING_OUTPUT_PREFIX" in (inv.error + "\n".join(inv.logs))
    assert cloud.list_jobs(BUCKET) == []
