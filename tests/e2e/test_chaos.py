"""A burst of uploads while the local cloud misbehaves at random: after reconcile,
every upload has exactly one job and one final record, every output is tagged,
and no output ever became a job. The webhook receiver is down for the first seconds and
answers 500 at random after: every final record is still notified, signed. Seeded:
CHAOS_SEED=<n> replays a run.

The world is hostile on purpose (issue 22): the source bucket is versioned (records in
another bucket, as `deploy doctor` demands), COS's clock runs 120 s behind the functions'
with a 30 s lease, some uploads are copied onto themselves (new metadata, same bytes), CI
forgets some jobs (the operator then runs `retry` on what ended `retry: now`), and some tag
writes stall 6 s and land after their client gave up."""
import os
import random
import shutil
import threading
import time
from collections import defaultdict

import pytest

from helpers import BUCKET, OTHER_BUCKET, ROOT, clients_for, function_env, settings_for
from shared import notify, tags
from shared.identity import ObjectVersion
from shared.records import RecordStore
from shared.reconcile import reconcile
from shared.submit import Submitter

from .webhook import Webhook

UPLOADS = int(os.environ.get("CHAOS_UPLOADS", "500"))
SEED = int(os.environ.get("CHAOS_SEED", "20261125"))
SKEW = 120.0  # COS's clock behind the functions'
# records live beside the versioned source bucket, never in it (create-only writes)
ENV = {"COS_MATTING_CLAIM_LEASE_SECONDS": "30", "COS_MATTING_TIMEOUT_SECONDS": "2",
       "COS_MATTING_RECORDS_BUCKET": OTHER_BUCKET}


def passthrough_engine(job, request, input_path, background_path, output_path):
    """The CI emulator's compute, reduced to a copy: this test is about delivery, not pixels."""
    shutil.copyfile(input_path, output_path)
    size = os.path.getsize(output_path)
    return {"Format": {"Duration": "1.0", "Size": str(size), "FormatName": "mov,mp4"},
            "Stream": {"Video": {"Width": "64", "Height": "36", "Fps": "25", "CodecName": "h264"}}}


@pytest.mark.slow
def test_every_upload_survives_random_faults(cloud, cos_client):
    rng = random.Random(SEED)
    cos_client.put_bucket_versioning(Bucket=BUCKET, Status="Enabled")
    cloud.store.clock.offset = -SKEW
    keys, groups = _plan_uploads(rng)
    forgotten_jobs = [0]
    hook = Webhook("whsec-chaos-0123456789abcdef", down_until=time.time() + 5, fail_rate=0.3, seed=SEED)
    url = _wire_functions(cloud, _forgetting_engine(cloud, {keys[j] for j in groups[5]}, forgotten_jobs),
                          **hook.env())
    faults = cloud.faults
    _inject_faults(faults)
    started = time.time()
    _upload_burst(cloud, rng, keys, groups)
    cloud.wait_idle(timeout=600)
    injected = sum(faults.injected.values())
    killed = sum(1 for inv in cloud.invocations if inv.function == "submit" and "timed out" in (inv.error or ""))
    by_route = dict(faults.injected)
    faults.clear()

    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL=url, **ENV, **hook.env())
    clients = clients_for(cloud, settings)
    assert faults.wait_stalled(30)  # every stalled tag write has landed (waited for, not slept for)
    rounds = _reconcile_until_quiet(cloud, settings, clients)
    store = RecordStore.of(settings, clients.storage)
    retried = _retry_forgotten(store, settings, clients, cloud.bucket(BUCKET), [keys[j] for j in groups[5]])
    if retried:
        cloud.wait_idle(timeout=120)
        rounds += _reconcile_until_quiet(cloud, settings, clients)
    jobs = cloud.list_jobs(BUCKET)
    found = _audit_outcomes(cloud, store, keys, groups)
    second, extra_jobs = _second_jobs(jobs, store)
    left_open = store.open_page()[0]
    unnotified, drains = _notified(settings, store, hook)
    hook.close()
    output_jobs = [j.Input.Object for j in jobs if not j.Input.Object.startswith("input/")]
    overwrite, delete, user_tagged, corrupt, copied, forgotten = groups
    print(f"\nchaos seed={SEED} uploads={UPLOADS} overwrites={len(overwrite)} deletes={len(delete)} "
          f"user-tag-edits={len(user_tagged)} corrupt-stages={len(corrupt)} in-place-copies={len(copied)} "
          f"jobs-forgotten={forgotten_jobs[0]} (retried: {retried}) clock-skew={SKEW:.0f}s versioned "
          f"faults injected={injected} {by_route} "
          f"handlers killed={killed} jobs={len(jobs)} second-jobs={second} "
          f"(noticed: {second - len(extra_jobs)}) lost={len(found['lost'])} duplicates={len(extra_jobs)} "
          f"stale={len(found['stale'])} untagged={len(found['untagged'])} moved-back={len(found['moved_back'])} "
          f"copies-matted-again={len(found['rematted'])} "
          f"user-tags-dropped={len(found['user_dropped'])} open={len(left_open)} output-jobs={len(output_jobs)} "
          f"reconcile rounds={rounds} elapsed={time.time() - started:.1f}s")
    refused = sum(1 for d in hook.deliveries if d[1] != 200)
    print(f"notifications: events={len(hook.accepted)} deliveries={len(hook.deliveries)} refused={refused} "
          f"unnotified={len(unnotified)} "
          f"bad-signatures={len(hook.bad_signatures)} outbox drains={drains}")
    assert injected > UPLOADS // 10, "the faults did not fire: this run proves nothing"
    assert killed >= 1, "no handler was killed between claim and submit"
    assert found["lost"] == [] and extra_jobs == [] and found["stale"] == [] and found["untagged"] == [] \
        and output_jobs == [] and found["moved_back"] == [] and found["rematted"] == []
    assert found["user_dropped"] == [] and left_open == []
    assert unnotified == [] and hook.bad_signatures == [] and refused > 0


def _forgetting_engine(cloud, keys, count):
    """The passthrough engine, except that CI forgets the first job of each of `keys` as it runs
    (describe then answers NonExistJobIds); `count[0]` counts them."""
    left, lock = set(keys), threading.Lock()

    def engine(job, request, input_path, background_path, output_path):
        with lock:
            forget = request.Input.Object in left
            left.discard(request.Input.Object)
        if forget:
            cloud.forget_job(BUCKET, job.JobId)
            count[0] += 1
        return passthrough_engine(job, request, input_path, background_path, output_path)

    return engine


def _notified(settings, store, hook):
    """(final records whose event never got a 2xx, drain rounds): the outbox is emptied as later
    reconcile ticks would, its back-off skipped by asking for what is due an hour from now."""
    drains = 0
    while notify.pending(store) and drains < 10:
        notify.deliver_due(settings, store, lambda: False, now=time.time() + notify.BACKOFF_CAP + 1)
        drains += 1
    finals = [r for r in store.newest_records() if r.state in notify.NOTIFIED_STATES]
    return [r.id for r in finals if notify.event_id(r) not in hook.accepted], drains


def _wire_functions(cloud, engine, **extra):
    """Callback as a Function URL, submit on every upload; returns the callback URL."""
    env = function_env(cloud, **ENV, **extra)
    url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env, concurrency=3)
    env["COS_MATTING_CALLBACK_URL"] = url
    # Submit's SCF timeout (4 s) is two client timeouts: stalled POST /jobs kill the handler
    # between claim and submit, while one slow create (2.5 s) is outlived and retried.
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="",
                      retries=2, retry_delay=0.2, concurrency=3, timeout=4.0)
    cloud.set_engine(engine)
    return url


def _inject_faults(faults):
    faults.random(rate=0.04, seed=SEED, kinds=("status", "slowdown", "drop", "after_drop"),
                  routes=["cos.put", "cos.get", "cos.head", "cos.list", "cos.copy", "cos.tagging.get",
                          "cos.tagging.put", "ci.create", "ci.get", "ci.list"])
    for kind in ("duplicate", "reorder", "drop"):
        faults.add("callback.send", count=UPLOADS // 20, **{kind: True})
    faults.add("callback.send", count=UPLOADS // 20, delay=0.3)
    faults.add("ci.create", count=2 * max(3, UPLOADS // 100), delay=6.0, drop=True)  # handler killed mid-submit
    faults.add("ci.create", count=max(3, UPLOADS // 100), delay=2.5)  # created after the client gave up
    # tag writes COS applies 6 s late, after their client (2 s timeout) retried and went on
    faults.add("cos.tagging.put", count=max(3, UPLOADS // 100), delay=6.0, skip=UPLOADS // 10)


def _plan_uploads(rng):
    """The keys, and which uploads get overwritten, deleted, user-tagged, a corrupt stage, copied onto
    themselves, or their job forgotten by CI (disjoint sets)."""
    keys = [f"input/burst/{i:04d}-{rng.choice(['a', 'b b', 'c+c', '舞'])}.{rng.choice(['mp4', 'MOV', 'webm'])}"
            for i in range(UPLOADS)]
    picks = rng.sample(range(UPLOADS), UPLOADS // 20 * 6)
    n = UPLOADS // 20
    return keys, tuple(set(picks[i * n:(i + 1) * n]) for i in range(6))


def _upload_burst(cloud, rng, keys, groups):
    overwrite, delete, user_tagged, corrupt, copied, forgotten = groups
    bucket = cloud.bucket(BUCKET)
    records = cloud.bucket(OTHER_BUCKET)
    records_prefix = settings_for(cloud, **ENV).records_prefix

    def act(j):  # on an upload a moment old: its job may be anywhere in flight
        if j in overwrite:
            cloud.upload(BUCKET, keys[j], f"video {keys[j]} overwritten {rng.random()}".encode())
        if j in delete:
            bucket.delete(keys[j])
        if j in user_tagged and bucket.exists(keys[j]):  # a user's own tag edit, read-modify-write
            bucket.set_tags(keys[j], {**bucket.head(keys[j]).tags, "owner": "editor"})
        if j in corrupt and bucket.exists(keys[j]):  # a 0-byte stage object in the record
            records.put_bytes(f"{records_prefix}{_version(bucket, keys[j]).record_id}/001-2-running.json", b"")
        if j in copied and bucket.exists(keys[j]):  # new metadata, same bytes: a copy onto itself
            obj = bucket.copy_from(bucket, keys[j], keys[j], ("video/mp4", {"x-cos-meta-edited": "yes"}))
            cloud.object_created(BUCKET, obj, "cos:ObjectCreated:Copy")

    for i, key in enumerate(keys):
        cloud.upload(BUCKET, key, f"video {key} {rng.random()}".encode())
        if i >= 8:
            act(i - 8)
    for j in range(max(0, UPLOADS - 8), UPLOADS):
        act(j)


def _retry_forgotten(store, settings, clients, bucket, keys):
    """The operator's `cos-matting retry` for what ended Failed with `retry: now` (a job CI forgot)."""
    submitter, retried = Submitter(settings, clients), 0
    for key in keys:
        if not bucket.exists(key):
            continue
        record, _ = store.load(_version(bucket, key).record_id)
        if record is not None and record.state == "Failed" and record.retry == "now":
            retried += submitter.retry(record.id).kind.value == "submitted"
    return retried


def _reconcile_until_quiet(cloud, settings, clients):
    rounds = []
    for _ in range(8):  # reconcile until nothing is left to do (resubmitted jobs must run and call back)
        summary = reconcile(settings.model_copy(update={"claim_lease_seconds": 0}), clients, older_than=0)
        cloud.wait_idle(timeout=120)
        rounds.append({k: v for k, v in summary.model_dump().items() if v and k != "elapsed_s"})
        if not (summary.advanced or summary.resubmitted or summary.still_running or summary.failed
                or summary.closed or summary.swept or summary.second_jobs):
            break
    return rounds


def _audit_outcomes(cloud, store, keys, groups):
    """Per surviving upload: a Success record, its output current and tagged, the user's tag kept."""
    overwrite, delete, user_tagged, corrupt, copied, forgotten = groups
    bucket = cloud.bucket(BUCKET)
    copied_keys = {keys[j] for j in copied}
    found = {"lost": [], "stale": [], "untagged": [], "user_dropped": [], "moved_back": [], "rematted": []}
    for key in keys:
        if not bucket.exists(key):
            continue
        record, _ = store.load(_version(bucket, key).record_id)
        if record is None or record.state != "Success":
            found["lost"].append((key, record.state if record else None))
            continue
        if bucket.read(record.output["key"]) != bucket.read(key):  # passthrough: the output is the input
            found["stale"].append(key)
        out_tags = bucket.head(record.output["key"]).tags
        if out_tags.get(tags.ROLE) != "output" or out_tags.get(tags.JOB) != record.job_id:
            found["untagged"].append(key)
        src_tags = bucket.head(key).tags
        if src_tags.get(tags.STATE) in ("Submitted", "Running") and src_tags.get(tags.RECORD) == record.id:
            found["moved_back"].append((key, src_tags))
        elif src_tags.get(tags.STATE) != "Success" or src_tags.get(tags.JOB) != record.job_id:
            found["untagged"].append((key, src_tags, record.job_id))
        if key in copied_keys:  # a job under another record for these same bytes: the copy was matted again
            others = {j.Operation.UserData[3:35] for j in cloud.list_jobs(BUCKET) if j.Input.Object == key} - {record.id}
            for rid in others:
                other, _ = store.load(rid)
                if other is not None and (other.source.etag, other.source.size) == (record.source.etag,
                                                                                    record.source.size):
                    found["rematted"].append((key, rid))
        if key in {keys[j] for j in user_tagged} and src_tags.get("owner") != "editor":
            found["user_dropped"].append((key, src_tags, [n for n, group in zip("odtcpf", groups)
                                                          if keys.index(key) in group]))
    return found


def _second_jobs(jobs, store):
    """(how many second jobs were made for one attempt, those nobody cancelled or noted: their result might count)."""
    by_attempt = defaultdict(list)
    for job in jobs:
        by_attempt[job.Operation.UserData.split("|")[0]].append(job)
    second, extra_jobs = 0, []
    for marker, group in by_attempt.items():
        if len(group) < 2:
            continue
        record, _ = store.load(marker[3:35])
        for job in group:
            if job.JobId == record.job_id:
                continue
            second += 1
            if job.State != "Cancel" and not any(job.JobId in note for note in record.notes):
                extra_jobs.append(job.JobId)
    return second, extra_jobs


def _version(bucket, key):
    meta = bucket.head(key)
    return ObjectVersion(BUCKET, key, meta.etag, meta.size, int(meta.last_modified))
