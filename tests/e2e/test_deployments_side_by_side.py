"""Two deployments on one bucket, disjoint prefixes, one records store (the default prefix): a Mask
pipeline on input/people/ and a Foreground one on input/studio/, each its own submit function on the
local SCF (COS triggers), reconcile, callback and `cancel` through the real SDKs. Neither cancels
nor adopts the other's jobs; a job spelt the previous release's way (`cm:<record id>`) is still
recognised by the deployment whose record it is."""
import json
import time

from helpers import BUCKET, KEYS, REGION, ROOT, clients_for, function_env, put, sdk_client, settings_for, wait_for
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



# -- retry by id or key: only the owning deployment may run a record again -------------------------

DEV = {"COS_MATTING_DEPLOYMENT": "cos-matting-dev", "COS_MATTING_WATCH_PREFIXES": "input/dev/"}
PROD = {"COS_MATTING_DEPLOYMENT": "cos-matting-prod", "COS_MATTING_WATCH_PREFIXES": "input/prod/"}


def _failed_record(cloud, cos, key, **env):
    """An upload `env`'s submit handled and CI refused (400): a Failed record (`retry: after-fix`)."""
    from shared.events import Upload
    from shared.submit import Submitter

    settings = settings_for(cloud, **env)
    etag = put(cos, key, key.encode())
    cloud.faults.add("ci.create", count=1, status=400)
    out = Submitter(settings, clients_for(cloud, settings)).process(
        Upload(bucket=BUCKET, appid=BUCKET.rsplit("-", 1)[1], region=REGION, key=key, etag=etag,
               size=len(key.encode()), event_name="cos:ObjectCreated:Put"))
    assert out.outcome == "failed:submit", out
    record = RecordStore.of(settings, clients_for(cloud, settings).storage).load(out.record_id)[0]
    assert record.state == "Failed"
    return record


def _everything(cloud, cos):
    """Every object of the bucket (records, markers, outbox, outputs) with its ETag and tags, and every job."""
    listed = cos.list_objects(Bucket=BUCKET, MaxKeys=1000)
    assert listed["IsTruncated"] == "false"

    def tags(key):
        found = (cos.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet") or {}).get("Tag") or []
        return tuple(sorted((t["Key"], t["Value"]) for t in ([found] if isinstance(found, dict) else found)))

    objects = {o["Key"]: (o["ETag"], tags(o["Key"])) for o in listed.get("Contents", [])}
    return objects, sorted(j.JobId for j in cloud.list_jobs(BUCKET))


def _cli(capsys, monkeypatch, cloud, env, *argv):
    from cli.main import main

    for name, value in function_env(cloud, **env).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_retry_by_id_or_key_refuses_another_deployments_record_and_writes_nothing(cloud, capsys, monkeypatch):
    """dev's operator names prod's Failed record (by id, by key, in a dry run, beside dev's own):
    refused on one line naming both deployments and the stage to use, exit 1, nothing written;
    prod retries it. A record of an older release (no deployment named) is the one watching its source's."""
    cos = sdk_client(cloud)
    theirs = _failed_record(cloud, cos, "input/prod/a.mp4", **PROD)
    mine = _failed_record(cloud, cos, "input/dev/b.mp4", **DEV)
    older = _failed_record(cloud, cos, "input/prod/old.mp4", COS_MATTING_WATCH_PREFIXES="input/prod/")
    assert (theirs.deployment, mine.deployment, older.deployment) == ("cos-matting-prod", "cos-matting-dev", "")
    before = _everything(cloud, cos)
    refusal = f"record {theirs.id} belongs to deployment cos-matting-prod, not cos-matting-dev: run retry with --stage prod"
    for argv in ([theirs.id], ["input/prod/a.mp4"], [theirs.id, "--dry-run"], [mine.id, theirs.id, "--yes"],
                 [theirs.id, "--json"]):
        code, out, err = _cli(capsys, monkeypatch, cloud, DEV, "retry", *argv, "--no-callback")
        assert (code, out, err) == (1, "", f"cos-matting: error: {refusal}\n"), argv
    code, out, err = _cli(capsys, monkeypatch, cloud, DEV, "retry", older.id, "--no-callback")
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert f"record {older.id} names no deployment" in err and "input/prod/old.mp4" in err
    # the bulk retry never saw prod's records
    code, out, err = _cli(capsys, monkeypatch, cloud, DEV, "retry", "--state", "Failed", "--dry-run", "--json")
    assert code == 0 and [r["record_id"] for r in json.loads(out)] == [mine.id], out
    assert _everything(cloud, cos) == before, "a refused retry wrote something"

    # prod runs both again: its settings, its deployment in the new job
    code, out, err = _cli(capsys, monkeypatch, cloud, PROD, "retry", theirs.id, older.id, "--no-callback", "--yes",
                          "--json")
    assert code == 0, err
    assert [(r["outcome"], r["attempt"]) for r in json.loads(out)] == [("submitted", 2), ("submitted", 2)]
    users = sorted(j.Operation.UserData for j in cloud.list_jobs(BUCKET))
    assert users == sorted([f"cm:{theirs.id}.2@cos-matting-prod", f"cm:{older.id}.2@cos-matting-prod"])
