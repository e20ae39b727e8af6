"""`cos-matting backfill --via scf` against the local cloud, with tencentcloud-sdk-python-scf as the
client of the local SCF API: batches of COS-trigger records under SCF's 128 KB async limit, one job
per object, resume from the checkpoint, a second run sends nothing, the rate bound holds."""
import json
import math
import time
from collections import Counter

import pytest

from cli import backfill_scf
from cli.backfill_scf import ASYNC_LIMIT, payload, payload_size, record_json
from helpers import function_env, settings_for
from .cli_support import BUCKET, all_jobs, run_cli, run_json  # noqa: F401

FUNCTION = "submit"


@pytest.fixture
def scf_env(cloud, monkeypatch):
    """The user's environment (pointed at the local cloud) and the submit function behind a trigger."""
    for name, value in function_env(cloud).items():
        monkeypatch.setenv(name, value)
    cloud.add_trigger(BUCKET, "functions/submit", function_env(cloud), prefix="input/", name=FUNCTION,
                      concurrency=2)
    return cloud


def fill(cloud, n, prefix="input/bulk/", start=0, pad=""):
    bucket = cloud.bucket(BUCKET)
    keys = [f"{prefix}{pad}clip-{i:05d}.mp4" for i in range(start, start + n)]
    for i, key in enumerate(keys):
        bucket.put_bytes(key, b"\x00\x00\x00\x18ftypmp42 %d" % (start + i))  # no trigger, no HTTP
    return keys


def direct_invocations(cloud):
    return [i for i in cloud.invocations if i.function == FUNCTION and i.kind == "direct" and i.attempt == 1]


def one_job_per_object(cloud, keys):
    inputs = Counter(j.Input.Object for j in all_jobs(cloud))
    assert set(inputs) == set(keys) and max(inputs.values()) == 1
    return inputs


def backfill(capsys, *args):
    return run_json(capsys, "backfill", "--via", "scf", "--function", FUNCTION, *args)


def test_inventory_backfill_one_job_each_then_nothing(scf_env, capsys, tmp_path):
    keys = fill(scf_env, 120)
    scf_env.bucket(BUCKET).put_bytes("input/poster.jpg", b"jpg")
    scf_env.bucket(BUCKET).put_bytes("matting/old.mask.mp4", b"out")
    manifest = scf_env.generate_inventory(BUCKET, inventory_id="bf")["manifest_key"]
    checkpoint = tmp_path / "cp.json"
    code, first = backfill(capsys, "--inventory", manifest, "--batch", "25", "--rate", "2000",
                           "--checkpoint", str(checkpoint))
    assert code == 0, first
    assert first["sent"] == 120 and first["invocations"] == math.ceil(120 / 25) and first["complete"]
    assert first["outcomes"]["skipped:suffix"] == 1 and first["outcomes"]["skipped:loop-guard"] == 1
    assert first["total"] == first["read"] == 122  # the report's own files did not exist when it was scanned
    assert scf_env.wait_idle(120)
    one_job_per_object(scf_env, keys)
    events = [i.event for i in direct_invocations(scf_env)]
    assert sorted(len(e["Records"]) for e in events) == [20] + [25] * 4
    for event in events:  # exactly the trigger's shape: the handler's own parser accepted every record
        size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        assert size <= ASYNC_LIMIT and event["Records"][0]["cos"]["cosBucket"]["appid"] == "1250000000"
    outcomes = Counter(o["outcome"] for i in direct_invocations(scf_env) for o in i.result["outcomes"])
    assert outcomes == {"submitted": 120}
    assert json.loads(checkpoint.read_text())["complete"] is True

    code, second = backfill(capsys, "--inventory", manifest, "--checkpoint", str(checkpoint))
    assert code == 0 and second["already_complete"] and second["sent"] == 0 and second["invocations"] == 0
    assert len(direct_invocations(scf_env)) == 5  # a second run sends nothing

    code, again = backfill(capsys, "--inventory", manifest, "--checkpoint", str(checkpoint), "--restart",
                           "--rate", "1500")
    assert code == 0 and again["sent"] == 120
    assert scf_env.wait_idle(120)
    outcomes = Counter(o["outcome"] for i in direct_invocations(scf_env)[5:] for o in i.result["outcomes"])
    assert outcomes == {"duplicate": 120}  # the same idempotent path as the trigger: no second job
    one_job_per_object(scf_env, keys)


def test_batches_are_cut_by_measured_size_under_128_kb(scf_env, capsys, tmp_path):
    pad = "long-name-" * 78  # ~780-byte keys: about 2.5 KB per record
    keys = fill(scf_env, 130, prefix="input/", pad=pad)
    code, data = backfill(capsys, "--prefix", "input/", "--batch", "1000", "--rate", "100000",
                          "--checkpoint", str(tmp_path / "cp"))
    assert code == 0 and data["sent"] == 130
    assert ASYNC_LIMIT - 3000 < data["payload_bytes"]["max"] <= ASYNC_LIMIT  # full, never over
    assert scf_env.wait_idle(180)
    events = [i.event for i in direct_invocations(scf_env)]
    assert len(events) == data["invocations"] >= 3
    sizes = [len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()) for event in events]
    assert max(sizes) == data["payload_bytes"]["max"] <= ASYNC_LIMIT  # the size counted is the size received
    one_job_per_object(scf_env, keys)


def test_payload_size_is_the_bytes_sent():
    from shared.events import Upload

    ups = [Upload(bucket=BUCKET, appid="1250000000", region="ap-guangzhou", key=f"input/视频 {i}+%.mp4",
                  etag="d41d8cd98f00b204e9800998ecf8427e", size=10, event_name="cos:ObjectCreated:Backfill")
           for i in range(3)]
    records = [record_json(u) for u in ups]
    body = payload(records)
    assert payload_size(records) == len(body.encode("utf-8"))
    assert [r["cos"]["cosObject"]["key"] for r in json.loads(body)["Records"]] == [
        f"/1250000000/videos/input/视频 {i}+%.mp4" for i in range(3)]


def test_interrupted_run_resumes_from_the_checkpoint(scf_env, capsys, tmp_path, monkeypatch):
    keys = fill(scf_env, 90)
    manifest = scf_env.generate_inventory(BUCKET, inventory_id="rs", rows_per_file=40)["manifest_key"]
    checkpoint = tmp_path / "cp.json"
    real = backfill_scf.Invoker.send
    calls = []

    def send_then_stop(self, body):
        out = real(self, body)
        calls.append(body)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C right after the third accepted invocation
        return out

    monkeypatch.setattr(backfill_scf.Invoker, "send", send_then_stop)
    code, first = backfill(capsys, "--inventory", manifest, "--batch", "10", "--rate", "900",
                           "--checkpoint", str(checkpoint))
    assert code == 130 and first["interrupted"]
    saved = json.loads(checkpoint.read_text())
    assert saved["complete"] is False and saved["sent"] == 20  # the third send's batch is not counted as saved
    monkeypatch.setattr(backfill_scf.Invoker, "send", real)
    code, second = backfill(capsys, "--inventory", manifest, "--batch", "10", "--rate", "900",
                            "--checkpoint", str(checkpoint))
    assert code == 0 and second["complete"]
    assert second["sent"] == 70  # from row 21 on: the third batch was accepted but not saved, so it goes again
    assert scf_env.wait_idle(120)
    one_job_per_object(scf_env, keys)  # the re-sent batch met the idempotent path: no second job


def test_rate_bound_and_usage_errors(scf_env, capsys, tmp_path):
    fill(scf_env, 60)
    started = time.monotonic()
    code, data = backfill(capsys, "--batch", "5", "--rate", "100", "--checkpoint", str(tmp_path / "a"))
    elapsed = time.monotonic() - started
    assert code == 0 and data["sent"] == 60
    assert elapsed >= (60 - 5) / 100 * 0.95  # never faster than --rate (one batch may go at once)
    assert run_cli(capsys, "backfill", "--via", "scf", "--function", FUNCTION, "--rate", "5000", "--batch", "10",
                   "--checkpoint", str(tmp_path / "b"))[0] == 2  # 500 Invoke/s: over the API's 100/s
    assert run_cli(capsys, "backfill", "--via", "scf", "--function", FUNCTION, "--dry-run")[0] == 2
    code, out, err = run_cli(capsys, "backfill", "--via", "scf", "--inventory", "no/manifest.json",
                             "--function", FUNCTION)
    assert code == 2 and "no such object" in err


def test_unknown_function_fails_with_the_api_error(scf_env, capsys, tmp_path):
    fill(scf_env, 3)
    code, data = run_json(capsys, "backfill", "--via", "scf", "--function", "nope", "--checkpoint",
                          str(tmp_path / "cp"))
    assert code == 1 and "ResourceNotFound" in data["error"] and data["sent"] == 0


def test_a_throttled_invoke_is_retried_by_backfill_alone_and_counted(scf_env, capsys, tmp_path):
    """Backfill retries a throttled Invoke itself (its jittered back-off, counted in invoke_retries); the
    SDK's throttling retryer (deploy/clients.py) is not stacked under it, which would wait 1 + 2 s per
    call unseen and report no retry."""
    keys = fill(scf_env, 10)
    scf_env.faults.add("api.scf", count=2, status=429)  # RequestLimitExceeded twice, then the call goes through
    code, data = backfill(capsys, "--batch", "10", "--checkpoint", str(tmp_path / "cp"))
    assert code == 0 and data["sent"] == 10 and data["invocations"] == 1
    assert data["invoke_retries"] == 2
    assert scf_env.wait_idle(60)
    one_job_per_object(scf_env, keys)
