"""`cos-matting deploy` and `doctor` end to end, offline, against the local cloud.

The real SDKs are the clients on both sides: tencentcloud-sdk-python (SCF, CAM) deploys,
cos-python-sdk-v5 uploads (multipart, `upload_file`). What runs is what was deployed:
the packaged zips, unpacked SCF-style (code dir + layer dir, isolated CPython 3.10).
"""
import json
import shutil
import time

import numpy as np
import pytest

from cli.main import main
from helpers import sdk_client
from helpers import BUCKET, REGION, wait_for
from localcloud import LocalCloud
from localcloud.matting import engine
from localcloud.matting.samples import green_screen_frames, write_clip
from localcloud.scfenv import find_python310
from localcloud.tcapi import check_params
from shared.records import RecordStore

STAGE_FUNCTIONS = ("cos-matting-dev-callback", "cos-matting-dev-reconcile", "cos-matting-dev-submit")
ENV = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
       "COS_MATTING_CALLBACK_KEYS": "deploy-test-key-0123456789abcdef",
       "COS_MATTING_SEGMENT_TYPE": "GreenScreenSeg", "COS_MATTING_TIMEOUT_SECONDS": "5"}


def big_video(path, minimum=5 << 20):
    """A real H.264 clip over 5 MB (noise keeps x264 from compressing it away), so upload_file goes multipart."""
    rng = np.random.default_rng(7)
    frames = (np.clip(rgb.astype(np.int16) + rng.integers(-80, 80, rgb.shape), 0, 255).astype(np.uint8)
              for rgb, _ in green_screen_frames(480, 270, 60, seed=7))
    write_clip(str(path), frames, 480, 270, crf="10")
    assert path.stat().st_size > minimum, path.stat().st_size
    return path


def write_env(path, **extra):
    path.write_text("".join(f"{k}={v}\n" for k, v in {**ENV, **extra}.items()))
    return path


@pytest.fixture
def site(tmp_path, dist):
    cloud = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET], region=REGION, engine=engine,
                       callback_backoff=(0.05, 0.1, 0.2), callback_timeout=30.0).start()  # a cold start: conftest `cloud`
    args = ["--local", cloud.url, "--env-file", str(write_env(tmp_path / ".env"))]
    deploy = ["deploy", "--dist", str(tmp_path / "dist"), "--yes"]
    yield cloud, args, deploy, tmp_path
    cloud.stop()


def _writes(cloud, since):
    return [(c.action, c.params.get("FunctionName") or c.params.get("LayerName") or c.params.get("RoleName")
             or c.params.get("PolicyName") or "") for c in cloud.api.writes(since)]


@pytest.mark.slow
def test_deploy_runs_the_pipeline_then_redeploys_nothing_then_destroys(site, capsys):
    cloud, args, deploy, tmp = site
    shutil.rmtree(tmp / "dist")  # a first deploy in a fresh clone builds its zips and the layer itself
    started = time.time()
    assert main(deploy + args) == 0
    took = time.time() - started
    url = _first_deploy_made_everything_once(cloud, capsys.readouterr().out)
    print(f"\n  first deploy into the local cloud: {took:.1f} s")
    _deployed_functions_run_scf_style(cloud)
    client = _big_multipart_upload_reaches_success(cloud, tmp, url)
    _doctor_green_redeploy_reads_only_one_setting_updates_one_function(cloud, args, deploy, tmp, capsys)
    _destroy_leaves_nothing_deploy_made_and_the_bucket_untouched(cloud, client, args, deploy)


def _first_deploy_made_everything_once(cloud, out):
    """Every resource created exactly once, submit after the callback URL it needs; returns that URL."""
    url = out.split("callback Function URL: ", 1)[1].split()[0]
    writes = [a for a, _ in _writes(cloud, 0)]
    assert sorted(writes) == sorted(["CreateRole", "CreatePolicy", "AttachRolePolicy", "PublishLayerVersion",
                                     "CreateFunction", "CreateFunction", "CreateFunction", "CreateTrigger",
                                     "CreateTrigger", "CreateTrigger", "PutReservedConcurrencyConfig",
                                     "PutReservedConcurrencyConfig", "UpdateFunctionEventInvokeConfig"]
                                  + ["CreateAlarmPolicy", "BindingPolicyObject"] * 3), writes
    # The Function URL exists before submit: submit is created with COS_MATTING_CALLBACK_URL already set.
    assert writes.index("CreateTrigger") < [i for i, a in enumerate(writes) if a == "CreateFunction"][1]
    created = {c.params["FunctionName"]: c.params for c in cloud.api.calls if c.action == "CreateFunction"}
    assert sorted(created) == list(STAGE_FUNCTIONS)
    for name, params in created.items():
        variables = params["Environment"]["Variables"]
        assert all(v["Value"] for v in variables), name  # never an empty value (SCF Variable.Value)
        keys = {v["Key"] for v in variables}
        assert "COS_MATTING_ENDPOINT" not in keys and "COS_MATTING_OUTPUT_BUCKET" not in keys  # unset: left out
        assert params["Runtime"] == "Python3.10" and params["Role"] == "cos-matting-dev-role"
        assert (dict((v["Key"], v["Value"]) for v in variables).get("COS_MATTING_CALLBACK_URL") == url) == \
            (not name.endswith("callback"))
    return url


def _deployed_functions_run_scf_style(cloud):
    """Isolated interpreter on the unpacked zips."""
    submit = cloud.scf.running["default/cos-matting-dev-submit"]
    assert submit.argv[1:3] == ["-I", "-S"] and "--layer" in submit.argv
    if find_python310():
        assert "3.10" in submit.argv[0]


def _big_multipart_upload_reaches_success(cloud, tmp, url):
    """A video over 5 MB, uploaded the way people do (multipart), through trigger -> job -> callback."""
    client = sdk_client(cloud, retry=1)
    video = big_video(tmp / "talk.mp4")
    client.upload_file(Bucket=BUCKET, Key="input/talks/big talk.mp4", LocalFilePath=str(video), PartSize=1,
                       MAXThread=2)
    from shared.cloud import Clients
    from shared.config import load_settings

    env = {**cloud.function_env(), **ENV}
    settings = load_settings(env)
    store = RecordStore.of(settings, Clients(settings, env).storage)

    def finished():
        records = list(store.newest_records())
        return records if records and all(r and r.terminal for r in records) else None

    [record] = wait_for(finished, timeout=240, interval=0.5)
    assert record.state == "Success", record
    # The callback writes Success before it answers CI: wait for the answer before reading its outcome.
    assert cloud.wait_idle(timeout=60)
    assert record.source.key == "input/talks/big talk.mp4"
    invocations = [i for i in cloud.invocations if i.function == "cos-matting-dev-callback" and i.kind == "http"]
    assert any(i.ok for i in invocations), [i.summary() for i in invocations]
    assert any(c.url.startswith(url) and c.ok for c in cloud.callbacks), [c.url for c in cloud.callbacks]
    cos_events = [i.event["Records"][0]["event"]["eventName"] for i in cloud.invocations if i.kind == "cos"]
    assert cos_events[0] == "cos:ObjectCreated:CompleteMultipartUpload", cos_events
    return client


def _doctor_green_redeploy_reads_only_one_setting_updates_one_function(cloud, args, deploy, tmp, capsys):
    capsys.readouterr()
    assert main(["doctor", "--dist", str(tmp / "dist")] + args) == 0, capsys.readouterr().out
    # 12, AI content recognition, each function answering its health invocation, no other stage overlapping,
    # serverless.yml's 3 alarm policies, and matches serverless.yml (no drift)
    assert "21/21 checks passed" in capsys.readouterr().out

    mark = len(cloud.api.calls)  # deploy again with no change: reads only
    assert main(deploy + args) == 0
    assert _writes(cloud, mark) == []
    assert "nothing to do" in capsys.readouterr().out

    mark = len(cloud.api.calls)  # one setting of one function changes: exactly that function is updated
    write_env(tmp / ".env", COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY="3")
    assert main(deploy + args) == 0
    assert _writes(cloud, mark) == [("PutReservedConcurrencyConfig", "cos-matting-dev-submit")]


def _destroy_leaves_nothing_deploy_made_and_the_bucket_untouched(cloud, client, args, deploy):
    objects_before = sorted(o["Key"] for o in client.list_objects(Bucket=BUCKET, MaxKeys=1000).get("Contents", []))
    assert main(deploy + args + ["--destroy"]) == 0
    assert cloud.scf.functions == {}
    assert all(v.status == "Deleted" for versions in cloud.scf.layers.values() for v in versions)
    assert cloud.cam.state["roles"] == {} and cloud.cam.state["policies"] == {}
    assert cloud.monitor.state["policies"] == {}
    assert cloud.runtime.triggers == []
    objects_after = sorted(o["Key"] for o in client.list_objects(Bucket=BUCKET, MaxKeys=1000).get("Contents", []))
    assert objects_after == objects_before and "input/talks/big talk.mp4" in objects_after
    assert main(["doctor", "--dist", deploy[deploy.index("--dist") + 1]] + args) == 1


def test_every_request_deploy_sends_fits_the_sdk_request_models(site):
    """Fields exist and types are right, checked on what deploy hands the SDK (the SDK itself drops unknown
    fields with only a warning, so the server could never notice)."""
    from cli.env import deploy_env
    from deploy import spec as specs
    from deploy.apply import Executor, Planner
    from deploy.clients import Api
    from deploy.package import artefacts as zips
    from cli.main import build_parser

    cloud, args, deploy, tmp = site
    parsed = build_parser().parse_args(deploy + args)
    environ = deploy_env(parsed)
    spec = specs.build(environ)
    artefacts = zips(tmp / "dist", lambda m: None)
    scf, cam = Api("scf", environ, spec.region), Api("cam", environ)
    planner, undo = Planner(spec, scf, cam, artefacts), Planner(spec, scf, cam, artefacts)
    Executor(scf, cam, log=lambda m: None).run(planner.plan())
    Executor(scf, cam, log=lambda m: None).run(undo.destroy())  # and back
    monitors = [kind.monitor for kind in planner.kinds + undo.kinds]  # the alarm policies' client
    sent = [("scf", c) for c in scf.sent] + [("cam", c) for c in cam.sent] + \
        [("monitor", c) for m in monitors for c in m.sent]
    modules = {"scf": "tencentcloud.scf.v20180416.models", "cam": "tencentcloud.cam.v20190116.models",
               "monitor": "tencentcloud.monitor.v20180724.models"}
    problems = [(product, c["action"], p) for product, c in sent
                for p in check_params(modules[product], f"{c['action']}Request", c["params"])]
    assert problems == []
    assert {c["action"] for c in scf.sent} >= {"CreateFunction", "CreateTrigger", "PublishLayerVersion",
                                               "PutReservedConcurrencyConfig", "UpdateFunctionEventInvokeConfig",
                                               "GetFunction", "ListTriggers", "ListLayerVersions", "ListFunctions",
                                               "DeleteTrigger", "DeleteFunction",
                                               "DeleteLayerVersion"}
    assert {c["action"] for c in cam.sent} >= {"CreateRole", "CreatePolicy", "AttachRolePolicy", "DetachRolePolicy",
                                               "DeletePolicy", "DeleteRole", "GetPolicy", "ListPolicies"}
    # The checker itself catches what a typo or a wrong type would send.
    assert check_params(modules["scf"], "CreateFunctionRequest", {"FunctionName": "x", "MemorySise": 128}) == \
        ["MemorySise: unknown parameter (not in CreateFunctionRequest)"]
    assert check_params(modules["scf"], "CreateFunctionRequest", {"Timeout": "60"})[0].startswith("Timeout: expected int")
    assert check_params(modules["scf"], "CreateFunctionRequest", {"Environment": {"Variables": [{"Key": "A",
                                                                                                  "Value": 1}]}}) == \
        ["Environment.Variables[0].Value: expected str, got int 1"]


def test_one_function_setting_in_serverless_yml_updates_only_that_function(site, tmp_path):
    from cli.env import deploy_env
    from cli.main import build_parser
    from deploy import checks
    from deploy import spec as specs
    from deploy.apply import Executor, Planner
    from deploy.clients import Api
    from deploy.package import artefacts as zips

    cloud, args, deploy, tmp = site
    environ = deploy_env(build_parser().parse_args(deploy + args))
    artefacts = zips(tmp / "dist", lambda m: None)

    def apply(spec):
        mark = len(cloud.api.calls)
        scf, cam = Api("scf", environ, spec.region), Api("cam", environ)
        Executor(scf, cam, log=lambda m: None).run(Planner(spec, scf, cam, artefacts).plan())
        return _writes(cloud, mark)

    assert apply(specs.build(environ))
    changed = tmp_path / "serverless.yml"
    changed.write_text(checks.SERVERLESS.read_text().replace("      timeout: 240", "      timeout: 200"))
    assert apply(specs.build(environ, serverless=changed)) == [("UpdateFunctionConfiguration",
                                                               "cos-matting-dev-reconcile")]
    [update] = [c for c in cloud.api.calls if c.action == "UpdateFunctionConfiguration"]
    assert update.params == {"FunctionName": "cos-matting-dev-reconcile", "Namespace": "default", "Timeout": 200}


def test_plan_writes_nothing_and_prints_every_call(site, capsys):
    cloud, args, deploy, tmp = site
    assert main([a for a in deploy if a != "--yes"] + args + ["--plan"]) == 0
    out = capsys.readouterr().out
    assert cloud.api.writes() == []
    assert "19 call(s)" in out and "+ scf CreateFunction cos-matting-dev-submit" in out
    assert "+ monitor CreateAlarmPolicy cm-dev-throttle: Throttle gt 0 per 60 s" in out
    assert "+ scf CreateTrigger cos-matting-dev-callback http callback-url" in out


def test_timer_trigger_created_through_the_api_fires(site):
    """The deployed 10-minute timer is too slow for a test: a per-second cron on the deployed function shows the
    timer machinery invoking it with SCF's timer event."""
    from deploy.clients import Api

    cloud, args, deploy, tmp = site
    assert main(deploy + args) == 0
    scf = Api("scf", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                      "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    scf.call("CreateTrigger", {"FunctionName": "cos-matting-dev-reconcile", "TriggerName": "every-second",
                               "Type": "timer", "TriggerDesc": "* * * * * * *", "Enable": "OPEN"})
    fired = wait_for(lambda: [i for i in cloud.invocations if i.kind == "timer"], timeout=20)
    assert fired[0].function == "cos-matting-dev-reconcile"
    assert fired[0].event["Type"] == "Timer" and fired[0].event["TriggerName"] == "every-second"
    assert wait_for(lambda: any(i.ok for i in cloud.invocations if i.kind == "timer"), timeout=60)


def test_the_api_refuses_bad_signatures_empty_variables_and_roles_it_does_not_know(site):
    from deploy.clients import Api, ApiCallError

    cloud, *_ = site
    env = {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "nope"}
    with pytest.raises(ApiCallError) as bad:
        Api("scf", env, REGION).call("ListFunctions", {})
    assert bad.value.code == "AuthFailure.SignatureFailure"
    scf = Api("scf", {**env, "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    import base64
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "import os\ndef main_handler(event, context):\n"
                                "    return {'id': os.environ.get('TENCENTCLOUD_SECRETID')}\n")
    code = {"ZipFile": base64.b64encode(buf.getvalue()).decode()}
    with pytest.raises(ApiCallError) as empty:
        scf.call("CreateFunction", {"FunctionName": "probe", "Handler": "index.main_handler", "Runtime": "Python3.10",
                                    "Code": code, "Environment": {"Variables": [{"Key": "A", "Value": ""}]}})
    assert empty.value.code == "InvalidParameterValue.Environment"
    # The typed SDK drops an unknown field with a warning; the SDK's CommonClient sends it as is, and the API
    # refuses it like the real one does.
    from tencentcloud.common.common_client import CommonClient
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    common = CommonClient("scf", "2018-04-16", scf.sdk.credential, REGION, scf.sdk.profile)
    with pytest.raises(TencentCloudSDKException) as unknown:
        common.call_json("ListFunctions", {"Namespace": "default", "Limt": 10})
    assert unknown.value.get_code() == "UnknownParameter" and "Limt" in unknown.value.get_message()
    # No role (or one that does not trust SCF): the function gets no credentials, as on SCF.
    scf.call("CreateFunction", {"FunctionName": "probe", "Handler": "index.main_handler", "Runtime": "Python3.10",
                                "Code": code, "Role": "not-a-role"})
    result = scf.call("Invoke", {"FunctionName": "probe", "ClientContext": "{}"})["Result"]
    assert result["InvokeResult"] == 0 and json.loads(result["RetMsg"]) == {"id": None}
    with pytest.raises(ApiCallError) as cam_uid:
        Api("cam", {**env, "TENCENTCLOUD_SECRETKEY": "localsecretkey"}).call("CreatePolicy", {
            "PolicyName": "p", "PolicyDocument": json.dumps({"version": "2.0", "statement": [
                {"effect": "allow", "action": ["name/cam:PassRole"],
                 "resource": ["qcs::cam::uid/100000000001:roleName/CI_QCSRole"]}]})})
    assert cam_uid.value.code == "InvalidParameter.ResourceError"  # role resources use uin/ (CAM 215/8965)


def test_a_deployed_function_runs_the_handler_its_configuration_names(site):
    # SCF's `Handler` is `<file>.<function>` (CreateFunction, api 583/18586); the local SCF passes the
    # function name to the worker as an argument, so the function's environment holds only what SCF sets.
    import base64
    import io
    import zipfile

    from deploy.clients import Api

    cloud, *_ = site
    scf = Api("scf", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                      "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "import os\ndef main_handler(event, context):\n    return {'handler': 'main'}\n"
                                "def other(event, context):\n"
                                "    return {'handler': 'other', 'local': sorted(k for k in os.environ if 'LOCALCLOUD' in k)}\n")
    zipped = base64.b64encode(buf.getvalue()).decode()
    scf.call("CreateFunction", {"FunctionName": "named", "Handler": "index.other", "Runtime": "Python3.10",
                                "Code": {"ZipFile": zipped}})
    result = scf.call("Invoke", {"FunctionName": "named", "ClientContext": "{}"})["Result"]
    assert result["InvokeResult"] == 0 and json.loads(result["RetMsg"]) == {"handler": "other", "local": []}
    # a write waits for Active, as on SCF (Creating first: 583/37883)
    wait_for(lambda: scf.call("GetFunction", {"FunctionName": "named"})["Status"] == "Active", timeout=10,
             interval=0.1)
    scf.call("UpdateFunctionCode", {"FunctionName": "named", "ZipFile": zipped, "Handler": "index.main_handler"})
    result = scf.call("Invoke", {"FunctionName": "named", "ClientContext": "{}"})["Result"]
    assert json.loads(result["RetMsg"]) == {"handler": "main"}


def test_the_concurrency_switch_stops_and_restarts_a_deployed_function(site, capsys):
    # python -m deploy.concurrency through tencentcloud-sdk-python-scf against the local SCF API
    # (Put/Get/DeleteReservedConcurrencyConfig; ReservedConcurrencyMem = instances x memorySize).
    from cli.env import deploy_env
    from cli.main import build_parser
    from deploy import concurrency

    cloud, args, deploy, tmp = site
    assert main(deploy + args) == 0
    environ = deploy_env(build_parser().parse_args(deploy + args))  # what deploy resolved serverless.yml with
    env = tmp / "switch.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in environ.items() if k.startswith(("COS_MATTING_", "TENCENT"))))
    capsys.readouterr()
    assert concurrency.main(["--env", str(env), "set", "submit", "0"]) == 0
    assert concurrency.main(["--env", str(env), "show"]) == 0
    out = capsys.readouterr().out
    assert "STOPPED" in out and "cos-matting-dev-submit: 0 instances (0 MB)" in out
    assert concurrency.main(["--env", str(env), "unset", "submit"]) == 0
    assert concurrency.main(["--env", str(env), "show"]) == 0
    assert "cos-matting-dev-submit: shared pool" in capsys.readouterr().out
