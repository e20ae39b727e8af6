"""The day after deploy: a stage deployed into the local cloud with `cos-matting deploy --local`,
operated from the command line with `--stage` (status, logs, get, retry, cancel, reconcile, upload),
the real SDKs as clients (COS, SCF, CLS). Its functions run what was deployed: the COS trigger
invokes the deployed submit, CI calls the deployed callback's Function URL.
"""
import json
import os
import time
import urllib.request

import pytest

from cli.main import main
from helpers import BUCKET, REGION, sdk_client, wait_for
from localcloud import LocalCloud

STAGE_ENV = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_TIMEOUT_SECONDS": "5",
             "COS_MATTING_CALLBACK_KEYS": "stage-key-0123456789abcdef0123456789"}


def run(capsys, *argv):
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def stage(tmp_path, dist, monkeypatch):
    """Stage `dev` deployed into a fresh local cloud; the shell knows only where the cloud is."""
    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_", "TENCENT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # CI waits out the callback's cold start (tests/conftest.py `cloud`): a test below wants its callback ok
    cloud = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET], region=REGION, callback_timeout=30.0).start()
    env_file = tmp_path / "dev.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in STAGE_ENV.items()))
    assert main(["deploy", "--stage", "dev", "--yes", "--local", cloud.url, "--env-file", str(env_file),
                 "--state-dir", str(tmp_path / "state"), "--dist", str(dist)]) == 0
    monkeypatch.setenv("COS_MATTING_ENDPOINT", cloud.url)
    monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDlocal")
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", "localsecretkey")
    yield cloud
    cloud.stop()


def wait_record(capsys, key, state, timeout=60, stage="dev"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, out, err = run(capsys, "status", key, "--stage", stage, "--json")
        if code == 0 and json.loads(out)["records"] and json.loads(out)["records"][0]["state"] == state:
            return json.loads(out)["records"][0]
        time.sleep(0.3)
    raise AssertionError(f"{key} never reached {state}: {out} {err}")


@pytest.mark.slow
def test_the_day_after_deploy_status_logs_get_retry_cancel(stage, capsys, tmp_path):
    cloud, client = stage, sdk_client(stage)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 a clip")
    # upload with --stage: the stage's bucket and prefixes, the target named before the write
    code, out, err = run(capsys, "upload", str(clip), "input/ok.mp4", "--stage", "dev")
    assert code == 0, err
    assert "stage dev on the local cloud at" in err and f"upload on the local cloud at {cloud.url}" in err
    for key in ("input/bad.mp4", "input/slow.mp4"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"\x00\x00\x00\x18ftypmp42 more")
    ok = wait_record(capsys, "input/ok.mp4", "Submitted")
    bad = wait_record(capsys, "input/bad.mp4", "Submitted")
    slow = wait_record(capsys, "input/slow.mp4", "Submitted")
    # CI finishes two jobs and calls the deployed callback (the stage's own Function URL)
    cloud.set_job_state(BUCKET, ok["job_id"], "Success")
    cloud.set_job_state(BUCKET, bad["job_id"], "Failed", code="InvalidInput", message="not a video")
    wait_record(capsys, "input/ok.mp4", "Success")
    wait_record(capsys, "input/bad.mp4", "Failed")
    # the callbacks write the final stage before they end, and CLS shows an invocation's lines once it
    # has ended (localcloud/clsbackend.py): `logs` below wants them
    assert cloud.wait_idle(30)

    # status: the finished records are in the default view, failures too, with a summary; --check fails
    code, out, err = run(capsys, "status", "--stage", "dev", "--no-uploads")
    assert code == 0, err
    assert "input/ok.mp4" in out and "matting/input/ok.mp4" in out and "InvalidInput: not a video" in out
    assert "summary: 1 open; 2 finished in the last 24 h (1 Success, 1 Failed): FAILURES" in out
    assert "\x1b[" not in out  # piped: no colour
    code, _, _ = run(capsys, "status", "--stage", "dev", "--no-uploads", "--check")
    assert code == 1

    # logs: the deployed functions' lines from CLS SearchLog, by short name, wall-clock time, filtered
    code, out, err = run(capsys, "logs", "submit", "--stage", "dev", "--since", "10m")
    assert code == 0, err
    lines = out.splitlines()
    assert lines and all(line[:4].isdigit() and line[4] == "-" for line in lines)  # 2026-12-06 04:12:33.123
    assert all(line.split()[2] == "submit" for line in lines) and "input/ok.mp4" in out
    code, out, _ = run(capsys, "logs", "--stage", "dev", "--since", "10m", "--filter", "input/bad.mp4")
    assert code == 0 and "input/bad.mp4" in out and "input/ok.mp4" not in out
    assert {line.split()[2] for line in out.splitlines()} >= {"submit", "callback"}  # the whole requests
    code, out, _ = run(capsys, "logs", "callback", "--stage", "dev", "--since", "10m", "--json")
    assert code == 0 and {json.loads(line)["SCF_FunctionName"] for line in out.splitlines()} == \
        {"cos-matting-dev-callback"}
    code, _, err = run(capsys, "logs", "nosuch", "--stage", "dev")
    assert code == 2 and "submit" in err and "Traceback" not in err

    # get: the output downloaded, or a presigned URL that downloads it
    code, out, err = run(capsys, "get", "input/ok.mp4", str(tmp_path / "out"), "--stage", "dev", "--no-progress")
    assert code == 0, err
    [saved] = list((tmp_path / "out").iterdir())
    assert saved.read_bytes().startswith(b"localcloud fake output of job")
    code, out, _ = run(capsys, "get", ok["record_id"], "--url", "--stage", "dev")
    assert code == 0 and urllib.request.urlopen(out.strip(), timeout=10).read() == saved.read_bytes()
    code, _, err = run(capsys, "get", "input/bad.mp4", "--stage", "dev")
    assert code == 1 and "Failed" in err and "InvalidInput" in err

    # retry: the record says only a new input can help -> skipped, unless asked
    code, out, _ = run(capsys, "retry", "input/bad.mp4", "--stage", "dev")
    assert code == 0 and "skipped:new-input" in out and "HINT" in out and "new-input" in out
    code, out, err = run(capsys, "retry", "input/bad.mp4", "--stage", "dev", "--include-new-input", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["outcome"] == "submitted" and row["attempt"] == 2
    # the retried job carries the stage's callback URL: finishing it advances the record by callback
    cloud.set_job_state(BUCKET, row["job_id"], "Success")
    wait_record(capsys, "input/bad.mp4", "Success")

    # cancel by key; the OUTPUT column then says cancelled, never CI's "Success" code
    code, out, err = run(capsys, "cancel", "input/slow.mp4", "--stage", "dev", "--json")
    assert code == 0, err
    assert [r["outcome"] for r in json.loads(out)] == ["cancelled"]
    code, out, _ = run(capsys, "status", "input/slow.mp4", "--stage", "dev")
    row = next(line for line in out.splitlines() if line.startswith("input/slow.mp4"))
    assert "Cancel" in row and "Success" not in row and "cancelled" in row

    # reconcile says what it did and why it left records alone
    code, out, _ = run(capsys, "reconcile", "--stage", "dev", "--no-sweep")
    assert code == 0 and out.startswith("reconcile: ") and "  did: " in out
    assert "unreadable=[]" not in out and "Summary(" not in out


@pytest.mark.slow
def test_the_jobs_an_operator_command_makes_carry_the_stage_callback(stage, capsys):
    """backfill --via local with --stage submits with the stage's settings: the job's callback is the
    deployed callback's Function URL, so it finishes by callback, not after reconcile's 30 minutes."""
    cloud, client = stage, sdk_client(stage)
    cloud.scf.reserve(cloud.scf.function("default", "cos-matting-dev-submit"), 0)  # stopped: backfill submits, not the trigger
    client.put_object(Bucket=BUCKET, Key="input/missed.mp4", Body=b"\x00\x00\x00\x18ftypmp42 missed")
    code, out, err = run(capsys, "backfill", "--prefix", "input/", "--via", "local", "--stage", "dev", "--no-progress")
    assert code == 0, err
    assert "stage dev on the local cloud at" in err
    rec = wait_record(capsys, "input/missed.mp4", "Submitted")
    cloud.set_job_state(BUCKET, rec["job_id"], "Success")
    wait_record(capsys, "input/missed.mp4", "Success", timeout=30)  # by the callback: reconcile never ran
    # CI called it back: the callback writes Success before it answers CI, so wait for the answer (not
    # wait_idle: the stopped submit's upload event stays queued)
    wait_for(lambda: any(c.job_id == rec["job_id"] and c.ok for c in cloud.callbacks), timeout=30)


@pytest.mark.slow
def test_the_local_cls_answers_searchlog_like_the_sdk_expects(stage, capsys):
    """The local cloud's CLS API through the real tencentcloud-sdk-python-cls client: the topic GetFunction
    names, SCF_* fields in LogJson, Context paging, and a refusal (not a guess) for what it cannot search."""
    from tencentcloud.cls.v20201016 import cls_client, models
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    from deploy.stage import resolve

    cloud, client = stage, sdk_client(stage)
    client.put_object(Bucket=BUCKET, Key="input/one.mp4", Body=b"\x00\x00\x00\x18ftypmp42 one")
    wait_record(capsys, "input/one.mp4", "Submitted")
    assert cloud.wait_idle(30)  # submit writes Submitted, then tags and ends: CLS has its lines once it ended
    env = {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
           "TENCENTCLOUD_SECRETKEY": "localsecretkey"}
    submit = resolve(env, "dev").functions["submit"]
    assert submit.cls_topic_id and submit.cls_logset_id
    http = HttpProfile(protocol="http", endpoint=cloud.url.split("//", 1)[1])
    cls = cls_client.ClsClient(credential.Credential("AKIDlocal", "localsecretkey"), REGION,
                               ClientProfile(httpProfile=http))
    now = int(time.time() * 1000)

    def search(**params):
        req = models.SearchLogRequest()
        req.from_json_string(json.dumps({"TopicId": submit.cls_topic_id, "From": now - 600_000, "To": now + 60_000,
                                         **params}))
        return cls.SearchLog(req)

    first = search(QueryString=f'SCF_FunctionName:"{submit.name}"', Limit=2, Sort="asc")
    assert len(first.Results) == 2 and not first.ListOver and first.Context
    logs = [json.loads(r.LogJson) for r in first.Results]
    assert logs[0]["SCF_Type"] == "Platform" and logs[0]["SCF_Message"].startswith("START RequestId:")
    assert all(log["SCF_FunctionName"] == submit.name and log["SCF_Namespace"] == "default" for log in logs)
    assert first.Results[0].Time <= first.Results[1].Time <= now + 60_000
    rest, context = [], first.Context
    while context:
        page = search(QueryString=f'SCF_FunctionName:"{submit.name}"', Limit=2, Sort="asc", Context=context)
        rest += [json.loads(r.LogJson) for r in page.Results]
        context = None if page.ListOver else page.Context
    assert any("input/one.mp4" in log["SCF_Message"] for log in rest)
    assert rest[-1]["SCF_Message"].startswith("Report RequestId:") and "SCF_Duration" in rest[-1]
    with pytest.raises(TencentCloudSDKException) as refused:
        search(QueryString='SCF_FunctionName:"a" OR SCF_FunctionName:"b"')
    assert refused.value.get_code() == "FailedOperation.QueryError"
    with pytest.raises(TencentCloudSDKException) as missing:
        req = models.SearchLogRequest()
        req.from_json_string(json.dumps({"TopicId": "no-such-topic", "From": 0, "To": now}))
        cls.SearchLog(req)
    assert missing.value.get_code() == "ResourceNotFound.TopicNotExist"


@pytest.mark.slow
def test_retry_of_another_stages_record_is_refused_and_names_the_stage_to_use(stage, dist, capsys, tmp_path):
    """Two stages on one bucket and records store (prod on studio/): dev's operator naming prod's Failed
    record by key or id is refused on one line (no stage, job or tag written); `--stage prod`, as the
    line says, runs it with prod's settings, and prod's callback finishes it."""
    cloud, client = stage, sdk_client(stage)
    env_file = tmp_path / "prod.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in STAGE_ENV.items()) + "COS_MATTING_WATCH_PREFIXES=studio/\n")
    assert main(["deploy", "--stage", "prod", "--yes", "--local", cloud.url, "--env-file", str(env_file),
                 "--state-dir", str(tmp_path / "state"), "--dist", str(dist)]) == 0
    client.put_object(Bucket=BUCKET, Key="studio/take.mp4", Body=b"\x00\x00\x00\x18ftypmp42 take one")
    rec = wait_record(capsys, "studio/take.mp4", "Submitted", stage="prod")
    cloud.set_job_state(BUCKET, rec["job_id"], "Failed", code="InternalError", message="worker lost")
    wait_record(capsys, "studio/take.mp4", "Failed", stage="prod")
    records = client.list_objects(Bucket=BUCKET, Prefix=".cos-matting/records/")["Contents"]
    jobs, tags = len(cloud.list_jobs(BUCKET)), client.get_object_tagging(Bucket=BUCKET, Key="studio/take.mp4")

    line = (f"cos-matting: error: record {rec['record_id']} belongs to deployment cos-matting-prod, not "
            "cos-matting-dev: run retry with --stage prod\n")
    for target in ("studio/take.mp4", rec["record_id"]):
        code, out, err = run(capsys, "retry", target, "--stage", "dev", "--include-new-input")
        assert (code, out, err.splitlines(keepends=True)[-1]) == (1, "", line), err
        assert "retry 1 record(s)" not in err  # refused before the line that precedes a write
    assert client.list_objects(Bucket=BUCKET, Prefix=".cos-matting/records/")["Contents"] == records
    assert len(cloud.list_jobs(BUCKET)) == jobs
    assert client.get_object_tagging(Bucket=BUCKET, Key="studio/take.mp4") == tags

    code, out, err = run(capsys, "retry", rec["record_id"], "--stage", "prod", "--include-new-input", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["outcome"] == "submitted" and row["attempt"] == 2
    cloud.set_job_state(BUCKET, row["job_id"], "Success")
    wait_record(capsys, "studio/take.mp4", "Success", stage="prod")  # prod's callback took its job


@pytest.mark.slow
def test_one_configuration_rule_for_every_command(stage, capsys, tmp_path, monkeypatch):
    """README Deploy step 6 right after a deploy: `.env` in the working folder configures `upload` and
    `status` (no --env-file, no export); the exported endpoint wins over .env's empty line; the
    TENCENT_SECRET_ID names of step 3 work for the COS commands; a misspelt name is warned about
    by every command, deploy and doctor included."""
    cloud = stage
    monkeypatch.delenv("TENCENTCLOUD_SECRETID")
    monkeypatch.delenv("TENCENTCLOUD_SECRETKEY")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in STAGE_ENV.items())
                                   + "COS_MATTING_ENDPOINT=\nTENCENT_SECRET_ID=AKIDlocal\n"
                                   + "TENCENT_SECRET_KEY=localsecretkey\nCOS_MATTING_MAX_SIZE_MBB=5\n")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 step six")
    code, out, err = run(capsys, "upload", str(clip), "input/clip.mp4")  # README Deploy step 6, as written
    assert code == 0, err
    assert f"upload on the local cloud at {cloud.url}" in err  # the exported endpoint, not .env's empty one
    assert "COS_MATTING_MAX_SIZE_MBB is not a cos-matting setting" in err and "COS_MATTING_MAX_SIZE_MB?" in err
    rec = wait_record(capsys, "input/clip.mp4", "Submitted")
    cloud.set_job_state(BUCKET, rec["job_id"], "Success")
    wait_record(capsys, "input/clip.mp4", "Success")
    code, out, err = run(capsys, "status")  # shows the record, its job and the output
    assert code == 0 and rec["job_id"] in out and "matting/input/clip.mp4" in out, (out, err)
    for argv in (["doctor", "--local", cloud.url, "--stage", "dev"], ["deploy", "--plan", "--local", cloud.url]):
        code, out, err = run(capsys, *argv)
        assert "COS_MATTING_MAX_SIZE_MBB is not a cos-matting setting" in err, argv
    monkeypatch.setenv("COS_MATTING_REGION", "ap-shanghai")  # the shell wins over .env (python-dotenv's rule):
    code, out, err = run(capsys, "status", "--json", "--no-uploads")  # the bucket is not in that region
    assert code == 2 and ("NoSuchBucket" in err or "COS_MATTING_REGION" in err), err
    monkeypatch.setenv("COS_MATTING_REGION", "")  # an empty export is no value: .env's region applies
    code, out, err = run(capsys, "status", "--json", "--no-uploads")
    assert code == 0 and json.loads(out)["bucket"] == BUCKET, err


@pytest.mark.slow
def test_the_walkthroughs_localcloud_functions_are_stage_local(tmp_path, monkeypatch, capsys):
    """`cos-matting localcloud --trigger ... --function-url ...` (the README walkthrough's terminal 1) makes
    its functions visible through the local SCF API as stage `local`: `--stage local` finds their settings
    (the wired callback URL included) and their logs, like a deployed stage's."""
    import re
    import signal
    import subprocess
    import sys

    from helpers import ROOT

    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_", "TENCENT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "localcloud", "--engine", "none", "--port", "0",
                             "--data", str(tmp_path / "d"), "--trigger", "functions/submit",
                             "--function-url", "callback=functions/callback",
                             "--env", f"COS_MATTING_BUCKET={BUCKET}", "--env", f"COS_MATTING_REGION={REGION}",
                             "--env", f"COS_MATTING_CALLBACK_KEYS={STAGE_ENV['COS_MATTING_CALLBACK_KEYS']}"],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group(0)
        monkeypatch.setenv("COS_MATTING_ENDPOINT", url)
        monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDlocal")
        monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", "localsecretkey")
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 walk")
        code, out, err = run(capsys, "upload", str(clip), "input/walk.mp4", "--stage", "local")
        assert code == 0 and "stage local on the local cloud at" in err, err
        deadline = time.time() + 60
        while time.time() < deadline:
            code, out, err = run(capsys, "status", "input/walk.mp4", "--stage", "local", "--json")
            if code == 0 and json.loads(out)["records"] and json.loads(out)["records"][0]["state"] == "Submitted":
                break
            time.sleep(0.3)
        assert json.loads(out)["records"][0]["state"] == "Submitted", (out, err)
        code, out, err = run(capsys, "logs", "submit", "--stage", "local", "--since", "10m")
        assert code == 0 and "input/walk.mp4" in out and out.split()[2] == "submit", (out, err)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
