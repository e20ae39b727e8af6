"""A burst of uploads while the local cloud misbehaves at random: after reconcile,
every upload has exactly one job and one final record, every output is tagged,
and no output ever became a job. Seeded: CHAOS_SEED=<n> replays a run."""
import os
import random
import shutil
import time
from collections import Counter

import pytest

from helpers import BUCKET, ROOT, clients_for, function_env, settings_for
from shared import tags
from shared.records import RecordStore
from shared.reconcile import reconcile

UPLOADS = int(os.environ.get("CHAOS_UPLOADS", "500"))
SEED = int(os.environ.get("CHAOS_SEED", "20261125"))


def passthrough_engine(job, request, input_path, background_path, output_path):
    """The CI emulator's compute, reduced to a copy: this test is about delivery, not pixels."""
    shutil.copyfile(input_path, output_path)
    size = os.path.getsize(output_path)
    return {"Format": {"Duration": "1.0", "Size": str(size), "FormatName": "mov,mp4"},
            "Stream": {"Video": {"Width": "64", "Height": "36", "Fps": "25", "CodecName": "h264"}}}


@pytest.mark.slow
def test_every_upload_survives_random_faults(cloud, cos_client):
    rng = random.Random(SEED)
    env = function_env(cloud, COS_MATTING_CLAIM_LEASE_SECONDS="30", COS_MATTING_TIMEOUT_SECONDS="2")
    url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env, concurrency=3)
    env["COS_MATTING_CALLBACK_URL"] = url
    # Submit's SCF timeout is short so a stalled POST /jobs kills the handler between claim and submit.
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="",
                      retries=2, retry_delay=0.2, concurrency=3, timeout=1.5)
    cloud.set_engine(passthrough_engine)

    faults = cloud.faults
    faults.random(rate=0.04, seed=SEED, kinds=("status", "slowdown", "drop", "after_drop"),
                  routes=["cos.put", "cos.get", "cos.list", "cos.tagging.get", "cos.tagging.put",
                          "ci.create", "ci.get", "ci.list"])
    for kind in ("duplicate", "reorder", "drop"):
        faults.add("callback.send", count=UPLOADS // 20, **{kind: True})
    faults.add("callback.send", count=UPLOADS // 20, delay=0.3)
    faults.add("ci.create", count=max(3, UPLOADS // 100), delay=3.0, drop=True)  # handler killed mid-submit

    keys = [f"input/burst/{i:04d}-{rng.choice(['a', 'b b', 'c+c', '舞'])}.{rng.choice(['mp4', 'MOV', 'webm'])}"
            for i in range(UPLOADS)]
    started = time.time()
    for key in keys:
        cloud.upload(BUCKET, key, f"video {key} {rng.random()}".encode())
    cloud.wait_idle(timeout=600)
    injected = sum(faults.injected.values())
    killed = sum(1 for inv in cloud.invocations if inv.function == "submit" and "timed out" in (inv.error or ""))
    by_route = dict(faults.injected)
    faults.clear()

    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL=url, COS_MATTING_CLAIM_LEASE_SECONDS="30", COS_MATTING_TIMEOUT_SECONDS="2")
    clients = clients_for(cloud, settings)
    rounds = []
    for _ in range(6):  # reconcile until nothing is left to do (resubmitted jobs must run and call back)
        summary = reconcile(settings.model_copy(update={"claim_lease_seconds": 0}), clients, older_than=0)
        cloud.wait_idle(timeout=120)
        rounds.append(summary.model_dump())
        if summary.advanced == summary.resubmitted == summary.still_running == summary.failed == 0:
            break

    jobs = cloud.list_jobs(BUCKET)
    per_key = Counter(j.Input.Object for j in jobs)
    store = RecordStore(clients.storage, settings.rec_bucket, settings.records_prefix)
    finals, untagged = {}, []
    for key in keys:
        record, stages = store.load(clients.storage.version(BUCKET, key).record_id)
        finals[key] = record.state if record else None
        if record and record.state == "Success":
            out_tags = clients.storage.get_tags(BUCKET, record.output["key"]) or {}
            if out_tags.get(tags.ROLE) != "output" or out_tags.get(tags.JOB) != record.job_id:
                untagged.append(key)
    lost = [k for k in keys if finals[k] != "Success"]
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    output_jobs = [k for k in per_key if not k.startswith("input/")]
    print(f"\nchaos seed={SEED} uploads={UPLOADS} faults injected={injected} {by_route} "
          f"handlers killed={killed} jobs={len(jobs)} lost={len(lost)} duplicates={duplicates} untagged={len(untagged)} "
          f"output-jobs={len(output_jobs)} reconcile rounds={rounds} elapsed={time.time() - started:.1f}s")
    assert injected > UPLOADS // 10, "the faults did not fire: this run proves nothing"
    assert killed >= 1, "no handler was killed between claim and submit"
    assert lost == [] and duplicates == 0 and untagged == [] and output_jobs == []
    assert sorted(per_key) == sorted(keys)
