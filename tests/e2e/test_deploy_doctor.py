"""`cos-matting doctor` failing where it should (with the fix), a layer change, and a restarted cloud
that still runs what was deployed."""
import json

import pytest

from cli.main import main
from helpers import sdk_client
from helpers import BUCKET, REGION, wait_for
from localcloud import LocalCloud
from .test_deploy_e2e import write_env


def start(data_dir):
    return LocalCloud(data_dir=str(data_dir), buckets=[BUCKET], region=REGION).start()


@pytest.fixture
def deployed(tmp_path, dist, capsys):
    cloud = start(tmp_path / "cloud")
    args = ["--local", cloud.url, "--env-file", str(write_env(tmp_path / ".env"))]
    deploy = ["deploy", "--dist", str(tmp_path / "dist"), "--yes"]
    assert main(deploy + args) == 0
    capsys.readouterr()
    yield cloud, args, deploy, tmp_path
    cloud.stop()


def rows(out):
    """CHECK -> (RESULT, DETAIL) from doctor's table (continuation lines joined)."""
    found, last = {}, None
    for line in out.splitlines()[2:]:
        if line.startswith(" ") and last:
            found[last] = (found[last][0], found[last][1] + " " + line.strip())
            continue
        for result in ("  ok  ", "  FAIL  "):
            if result in line:
                name, _, detail = line.partition(result)
                last = name.strip()
                found[last] = (result.strip(), detail.strip())
    return found


def test_doctor_fails_each_broken_piece_with_its_fix(deployed, capsys):
    cloud, args, deploy, tmp = deployed
    cloud.ci_unbound.add(BUCKET)  # the bucket is no longer bound to Cloud Infinite
    sdk_client(cloud).put_bucket_versioning(Bucket=BUCKET, Status="Enabled")  # records bucket = source bucket
    from deploy.clients import Api

    scf = Api("scf", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                      "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    got = scf.call("GetFunction", {"FunctionName": "cos-matting-dev-submit"})
    variables = [v for v in got["Environment"]["Variables"] if v["Key"] != "COS_MATTING_CALLBACK_URL"]
    scf.call("UpdateFunctionConfiguration", {"FunctionName": "cos-matting-dev-submit", "Timeout": 9,
                                             "Environment": {"Variables": variables}})
    scf.call("UpdateTrigger", {"FunctionName": "cos-matting-dev-reconcile", "Type": "timer",
                               "TriggerName": "reconcile-every-10-minutes", "Enable": "CLOSE"})
    assert main(["doctor", "--dist", str(tmp / "dist")] + args) == 1
    table = rows(capsys.readouterr().out)
    assert table["bucket bound to CI"][0] == "FAIL" and "Bucket management" in table["bucket bound to CI"][1]
    assert table["records bucket not versioned"][0] == "FAIL" and "versioning Enabled" in \
        table["records bucket not versioned"][1]
    submit = table["function submit"]
    assert submit[0] == "FAIL" and "COS_MATTING_CALLBACK_URL unset" in submit[1]
    assert "fix: cos-matting deploy" in submit[1]
    assert table["timer"][0] == "FAIL"
    drift = table["matches serverless.yml"]
    assert drift[0] == "FAIL" and "UpdateFunctionConfiguration cos-matting-dev-submit" in drift[1]
    assert "Timeout: 9 -> 60" in drift[1] and "fix: cos-matting deploy --plan" in drift[1]
    for name in ("credentials", "role", "policy", "function callback", "COS trigger", "Function URL"):
        assert table[name][0] == "ok", (name, table[name])

    # deploy puts back what it owns (the function, the timer); the bucket settings stay the user's to fix.
    assert main(deploy + args) == 0
    capsys.readouterr()
    assert main(["doctor", "--dist", str(tmp / "dist")] + args) == 1
    table = rows(capsys.readouterr().out)
    # (an unbound bucket is in no CI list: AI content recognition fails with it)
    assert [n for n, (r, _) in table.items() if r == "FAIL"] == ["bucket bound to CI", "AI content recognition",
                                                                 "records bucket not versioned"]


def test_doctor_invokes_each_function_and_reads_what_segmentvideobody_needs(deployed, capsys):
    """A healthy stage passes every check, each function answering the health event through SCF Invoke;
    then a function whose settings cannot load (CALLBACK_URL without CALLBACK_KEYS), AI content
    recognition off on a bound bucket, and a records bucket whose versioning is Suspended each fail."""
    import json

    from deploy.clients import Api

    cloud, args, deploy, tmp = deployed
    code = main(["doctor", "--json"] + args)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["failed"] == 0, report
    checks = {c["name"]: c for c in report["checks"]}
    for kind in ("submit", "callback", "reconcile"):
        assert checks[f"{kind} answers"]["ok"] and "deployment cos-matting-dev" in checks[f"{kind} answers"]["detail"]
    health = [i for i in cloud.invocations if i.event == {"cos-matting": "health"}]
    assert sorted(i.function for i in health) == ["cos-matting-dev-callback", "cos-matting-dev-reconcile",
                                                  "cos-matting-dev-submit"]  # through SCF, no COS or CI call
    assert cloud.list_jobs() == []

    scf = Api("scf", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                      "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    got = scf.call("GetFunction", {"FunctionName": "cos-matting-dev-submit"})
    variables = [v for v in got["Environment"]["Variables"] if v["Key"] != "COS_MATTING_CALLBACK_KEYS"]
    scf.call("UpdateFunctionConfiguration", {"FunctionName": "cos-matting-dev-submit",
                                             "Environment": {"Variables": variables}})
    wait_for(lambda: scf.call("GetFunction", {"FunctionName": "cos-matting-dev-submit"})["Status"] == "Active")
    cloud.ci_ai_off.add(BUCKET)
    sdk_client(cloud).put_bucket_versioning(Bucket=BUCKET, Status="Enabled")
    sdk_client(cloud).put_bucket_versioning(Bucket=BUCKET, Status="Suspended")
    assert main(["doctor", "--json"] + args) == 1
    report = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in report["checks"]}
    failed = sorted(n for n, c in checks.items() if not c["ok"])
    # the variable removed outside deploy is drift too: deploy would put it back
    assert failed == ["AI content recognition", "function submit", "matches serverless.yml",
                      "records bucket not versioned", "submit answers"]
    assert "COS_MATTING_CALLBACK_KEYS" in checks["matches serverless.yml"]["detail"]
    assert "COS_MATTING_CALLBACK_URL is set but COS_MATTING_CALLBACK_KEYS is empty" in checks["submit answers"]["detail"]
    assert checks["bucket bound to CI"]["ok"]  # bound, only AI content recognition is off
    assert "versioning Suspended" in checks["records bucket not versioned"]["detail"]


def test_a_new_layer_is_published_only_when_its_bytes_change(deployed, capsys):
    from cli.env import deploy_env
    from cli.main import build_parser
    from deploy import spec as specs
    from deploy.apply import Executor, Planner
    from deploy.clients import Api
    from deploy.package import artefacts as zips
    from deploy.stage import layer_versions

    cloud, args, deploy, tmp = deployed
    environ = deploy_env(build_parser().parse_args(deploy + args))
    spec = specs.build(environ)
    artefacts = zips(tmp / "dist", lambda m: None)
    artefacts["layer"] = artefacts["layer"] + b"\0"  # other bytes (a zip with a trailing byte still reads)
    mark = len(cloud.api.calls)
    scf, cam = Api("scf", environ, REGION), Api("cam", environ)
    Executor(scf, cam, log=lambda m: None).run(Planner(spec, scf, cam, artefacts).plan())
    writes = [(c.action, c.params.get("FunctionName") or c.params.get("LayerName")) for c in cloud.api.writes(mark)]
    assert writes[0] == ("PublishLayerVersion", "cos-matting-dev-deps")
    assert sorted(writes[1:]) == [("UpdateFunctionConfiguration", f"cos-matting-dev-{f}")
                                  for f in ("callback", "reconcile", "submit")]
    assert all(c.params["Layers"] == [{"LayerName": "cos-matting-dev-deps", "LayerVersion": 2}]
               for c in cloud.api.writes(mark)[1:])
    # both versions carry deploy's mark: --destroy finds and removes both
    assert sorted(v["LayerVersion"] for v in layer_versions(scf, "cos-matting-dev-deps")) == [1, 2]


def test_a_restarted_cloud_runs_what_was_deployed(deployed, capsys):
    cloud, args, deploy, tmp = deployed
    cloud.stop()
    again = start(tmp / "cloud")
    try:
        assert sorted(again.scf.running) == ["default/cos-matting-dev-callback", "default/cos-matting-dev-reconcile",
                                             "default/cos-matting-dev-submit"]
        # The Function URL answers at the new address's path; deploy notices the port changed and
        # fixes submit's callback setting, and only that.
        mark = len(again.api.calls)
        args = ["--local", again.url] + args[2:]
        assert main(deploy + args) == 0
        assert sorted((c.action, c.params["FunctionName"]) for c in again.api.writes(mark)) == [
            ("UpdateFunctionConfiguration", "cos-matting-dev-reconcile"),
            ("UpdateFunctionConfiguration", "cos-matting-dev-submit")]
        sdk_client(again).put_object(Bucket=BUCKET, Key="input/after-restart.mp4", Body=b"\x00\x00\x00\x18ftypmp42")
        done = wait_for(lambda: [i for i in again.invocations if i.kind == "cos" and i.ok is not None], timeout=60)
        assert done[0].ok, done[0].summary()
    finally:
        again.stop()


def test_a_failed_deploy_says_what_failed_and_destroy_removes_what_it_had_made(tmp_path, dist, capsys):
    cloud = start(tmp_path / "cloud")  # serves videos-1250000000 only
    try:
        args = ["--local", cloud.url, "--env-file",
                str(write_env(tmp_path / ".env", COS_MATTING_BUCKET="elsewhere-1250000000"))]
        deploy = ["deploy", "--dist", str(tmp_path / "dist"), "--yes"]
        assert main(deploy + args) == 1
        err = capsys.readouterr().err
        assert "CreateTrigger: ResourceNotFound.Cos" in err and "--destroy to undo" in err
        made = sorted(cloud.scf.state["functions"])
        assert made == ["default/cos-matting-dev-callback", "default/cos-matting-dev-reconcile",
                        "default/cos-matting-dev-submit"]  # the COS trigger came last and failed
        assert main(deploy + args + ["--destroy"]) == 0
        assert cloud.scf.state["functions"] == {} and cloud.cam.state["roles"] == {}
        assert cloud.runtime.triggers == []
    finally:
        cloud.stop()


def test_replay_remote_invokes_the_deployed_function_through_the_scf_api(deployed, capsys):
    cloud, args, deploy, tmp = deployed
    from helpers import ROOT

    event = str(ROOT / "events" / "cos" / "put-video.json")
    assert main(["replay", event, "--remote", "--function", "cos-matting-dev-{kind}", "--region", REGION] + args) == 0
    printed = capsys.readouterr()
    # The event's object is not in the bucket: the deployed submit skips it (and says so through Invoke).
    assert "note: SCF request " in printed.out + printed.err and "input/interview.mp4  skipped:" in printed.out
    [invoke] = [c for c in cloud.api.calls if c.action == "Invoke"]
    assert invoke.params["FunctionName"] == "cos-matting-dev-submit" and not invoke.error
    assert [i.function for i in cloud.invocations if i.kind == "direct"] == ["cos-matting-dev-submit"]


def test_reserved_concurrency_zero_holds_events_until_it_is_lifted(deployed):
    """SCF's stop switch: COS events wait in the async queue (not lost), synchronous calls are refused."""
    import time as clock

    from deploy.clients import Api

    cloud, args, deploy, tmp = deployed
    scf = Api("scf", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                      "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    name = {"FunctionName": "cos-matting-dev-submit"}
    scf.call("PutReservedConcurrencyConfig", {**name, "ReservedConcurrencyMem": 0})
    sdk_client(cloud).put_object(Bucket=BUCKET, Key="input/while-stopped.mp4", Body=b"\x00\x00\x00\x18ftypmp42")
    clock.sleep(1.5)
    assert not [i for i in cloud.invocations if i.kind == "cos" and i.ok is not None]  # held, not run, not failed
    assert cloud.list_jobs(BUCKET) == []
    refused = scf.call("Invoke", {**name, "ClientContext": "{}"})["Result"]
    assert refused["InvokeResult"] != 0 and "reserved concurrency is 0" in refused["ErrMsg"]
    scf.call("PutReservedConcurrencyConfig", {**name, "ReservedConcurrencyMem": 10 * 128})
    done = wait_for(lambda: [i for i in cloud.invocations if i.kind == "cos" and i.ok is not None], timeout=60)
    assert done[0].ok, done[0].summary()
    assert len(cloud.list_jobs(BUCKET)) == 1


def test_alarm_policies_are_deployed_kept_in_line_checked_and_destroyed(deployed, capsys):
    """serverless.yml's alarms through the Monitor API (real SDK, local cloud): made once, a redeploy
    writes nothing, drift and a deleted one are reported by doctor and put right by deploy, a
    same-named policy someone else made is never touched."""
    from deploy.clients import Api

    cloud, args, deploy, tmp = deployed
    policies = {p["PolicyName"]: p for p in cloud.monitor.state["policies"].values()}
    assert sorted(policies) == ["cm-dev-dlq", "cm-dev-errors", "cm-dev-throttle"]
    assert all(p["Namespace"] == "scf_v2" and p["MonitorType"] == "MT_QCE" and p["Remark"] == "cos-matting-dev"
               for p in policies.values())
    [rule] = policies["cm-dev-errors"]["Condition"]["Rules"]
    assert (rule["MetricName"], rule["Period"], rule["Operator"], rule["Value"]) == ("Error", 300, "gt", "5")

    def watched(name):
        return sorted(json.loads(b["Dimensions"])["functionName"] for b in policies[name]["bound"])

    assert watched("cm-dev-throttle") == [f"cos-matting-dev-{f}" for f in ("callback", "reconcile", "submit")]
    assert watched("cm-dev-dlq") == ["cos-matting-dev-submit"]  # the one with a dead-letter queue

    mark = len(cloud.api.calls)
    assert main(deploy + args) == 0
    assert cloud.api.writes(mark) == []  # nothing changed: reads only

    monitor = Api("monitor", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                              "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)
    throttles = policies["cm-dev-throttle"]["PolicyId"]
    monitor.call("ModifyAlarmPolicyCondition", {"Module": "monitor", "PolicyId": throttles, "Condition": {
        "IsUnionRule": 0, "Rules": [{"MetricName": "Throttle", "Period": 60, "Operator": "gt", "Value": "10",
                                     "ContinuePeriod": 1, "NoticeFrequency": 3600}]}})
    monitor.call("DeleteAlarmPolicy", {"Module": "monitor",
                                       "PolicyIds": [policies["cm-dev-errors"]["PolicyId"]]})
    foreign = monitor.call("CreateAlarmPolicy", {
        "Module": "monitor", "PolicyName": "cm-dev-mine", "MonitorType": "MT_QCE", "Namespace": "scf_v2",
        "Remark": "someone-else", "Condition": {"Rules": [{"MetricName": "Duration", "Period": 60, "Operator": "gt",
                                                           "Value": "1000"}]}})["PolicyId"]
    capsys.readouterr()
    assert main(["doctor", "--dist", str(tmp / "dist")] + args) == 1
    table = rows(capsys.readouterr().out)
    assert table["alarm cm-dev-errors"] == ("FAIL", "missing -> fix: cos-matting deploy")
    assert table["alarm cm-dev-throttle"][0] == "FAIL" and "Value '10' -> '0'" in \
        table["alarm cm-dev-throttle"][1]
    assert table["alarm cm-dev-dlq"][0] == "ok"

    mark = len(cloud.api.calls)
    assert main(deploy + args) == 0
    assert sorted((c.action, c.params.get("PolicyName") or c.params.get("PolicyId"))
                  for c in cloud.api.writes(mark)) == sorted([
                      ("CreateAlarmPolicy", "cm-dev-errors"),
                      ("BindingPolicyObject", next(p for p in cloud.monitor.state["policies"].values()
                                                   if p["PolicyName"] == "cm-dev-errors")["PolicyId"]),
                      ("ModifyAlarmPolicyCondition", throttles)])
    capsys.readouterr()
    main(["doctor", "--dist", str(tmp / "dist")] + args)
    table = rows(capsys.readouterr().out)
    assert all(table[f"alarm cm-dev-{n}"][0] == "ok" for n in ("errors", "throttle", "dlq"))

    assert main(deploy + args + ["--destroy"]) == 0
    assert [p["PolicyId"] for p in cloud.monitor.state["policies"].values()] == [foreign]  # only ours went
