"""Two deployments on one bucket, disjoint prefixes, one records store (the default prefix): a Mask
pipeline on input/people/ and a Foreground one on input/studio/, each its own submit function on the
local SCF (COS triggers), reconcile, callback and `cancel` through the real SDKs. Neither cancels
nor adopts the other's jobs; a job spelt the previous release's way (`cm:<record id>`) is still
recognised by the deployment whose record it is."""
import time

from helpers import BUCKET, KEYS, ROOT, clients_for, function_env, put, sdk_client, settings_for, wait_for
from shared import tokens
from shared.identity import Correlation
from shared.jobs import JobRequest
from shared.records import RecordStore
from shared.reconcile import reconcile

PEOPLE = {"COS_MATTING_DEPLOYMENT": "pipe-people", "COS_MATTING_WATCH_PREFIXES": "input/people/",
          "COS_MATTING_MODE": "Mask", "COS_MATTING_RECONCILE_AFTER_SECONDS": "0"}
STUDIO = {"COS_MATTING_DEPLOYMENT": "pipe-studio", "COS_MATTING_WATCH_PREFIXES": "input/studio/",
          "COS_MATTING_MODE": "Foreground", "COS_MATTING_RECONCILE_AFTER_SECONDS": "0"}


def _job_of(cloud, key):
    return wait_for(lambda: next((j for j in cloud.list_jobs() if j.Input.Object == key), None), timeout=30)


def _second_job(cloud, clients, job, user_data):
    """The same request again, as a slow create answered after a retry would leave it."""
    request = cloud.jobs.record(BUCKET, job.JobId).request.model_dump(exclude_none=True)
    request["Operation"]["UserData"] = user_data
    return clients.ci.create(JobRequest.model_validate(request, context={"bucket": BUCKET}))


def _state(cloud, job_id):
    return cloud.get_job(BUCKET, job_id).State


def test_two_deployments_on_one_bucket_never_touch_each_others_jobs(cloud):
    from cli.cancel import cancel_one, targets_in_state
    from shared.callback import handle

    for name, env, prefix in (("people-submit", PEOPLE, "input/people/"), ("studio-submit", STUDIO, "input/studio/")):
        cloud.add_trigger(BUCKET, str(ROOT / "functions" / "submit"), env=function_env(cloud, **env), prefix=prefix,
                          name=name)
    people, studio = settings_for(cloud, **PEOPLE), settings_for(cloud, **STUDIO)
    pc, sc = clients_for(cloud, people), clients_for(cloud, studio)
    cos = sdk_client(cloud)
    put(cos, "input/people/a.mp4")
    put(cos, "input/studio/b.mp4")
    a, b = _job_of(cloud, "input/people/a.mp4"), _job_of(cloud, "input/studio/b.mp4")
    ca, cb = Correlation.parse(a.Operation.UserData), Correlation.parse(b.Operation.UserData)
    assert (ca.deployment, cb.deployment) == ("pipe-people", "pipe-studio")
    assert a.Operation.UserData == f"cm:{ca.record_id}.1@pipe-people"
    assert cloud.jobs.record(BUCKET, b.JobId).request.Operation.SegmentVideoBody.Mode == "Foreground"
    store = RecordStore.of(people, pc.storage)
    wait_for(lambda: all(store.load(c.record_id)[0] and store.load(c.record_id)[0].job_id for c in (ca, cb)))
    assert store.load(cb.record_id)[0].deployment == "pipe-studio"  # the record says who made it

    # A second job for each record (a slow create answered after a retry), and one for people's
    # record spelt the previous release's way (no deployment id: the record decides whose it is).
    a2 = _second_job(cloud, pc, a, f"cm:{ca.record_id}.1@pipe-people")
    b2 = _second_job(cloud, sc, b, f"cm:{cb.record_id}.1@pipe-studio")
    a_old = _second_job(cloud, pc, a, f"cm:{ca.record_id}")
    cloud.set_job_state(BUCKET, b.JobId, "Success")  # studio's job ended; its callback never came

    # `cancel` acting as people: studio's job is not its to cancel; only people's records are targets.
    assert cancel_one(people, pc, b2.JobId)["outcome"] == "failed:not-ours"
    targets = targets_in_state(people, pc, "Submitted", progress=False)
    assert [t["job_id"] for t in targets] == [a.JobId]
    # A callback for studio's job reaching people's callback (the same keys, the same records store).
    query = tokens.callback_query((KEYS,), cb.record_id, 3600, time.time())
    body = ('{"EventName": "TaskFinish", "JobsDetail": {"JobId": "%s"}}' % b.JobId).encode()
    status, answer = handle(people, pc, query, body)
    assert status == 403 and "pipe-studio" in answer["error"]

    summary = reconcile(people, pc, older_than=0)
    assert _state(cloud, b2.JobId) == "Submitted", "people's reconcile cancelled studio's job"
    assert store.load(cb.record_id)[0].state == "Submitted", "people's reconcile adopted studio's record"
    assert _state(cloud, a2.JobId) == "Cancel" and _state(cloud, a_old.JobId) == "Cancel"
    assert summary.second_jobs == 2 and summary.others == 1  # studio's record: looked at, left to its reconcile
    assert _state(cloud, a.JobId) == "Submitted"

    summary = reconcile(studio, sc, older_than=0)
    assert _state(cloud, b2.JobId) == "Cancel" and summary.second_jobs == 1
    assert store.load(cb.record_id)[0].state == "Success"
    assert _state(cloud, a.JobId) == "Submitted" and store.load(ca.record_id)[0].state == "Submitted"
    # each keeps its own place: studio's sweep never resumed from people's listing
    keys = {o["Key"] for o in cos.list_objects(Bucket=BUCKET, Prefix=".cos-matting/records/state/")["Contents"]}
    assert {".cos-matting/records/state/reconcile-pipe-people.json",
            ".cos-matting/records/state/reconcile-pipe-studio.json"} <= keys

