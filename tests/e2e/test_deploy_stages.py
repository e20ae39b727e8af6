"""A stage lives in the cloud (issue 20, the deploy half), through the real SDK against the local
cloud's SCF and CAM APIs: stages found by tag and name from a fresh clone, each with its own role
and policy, destroy touching only its own stage, plan-then-execute with old -> new values (secrets
masked), writes waiting for Active, the final environment checked before the first write, the
Function URL read back from the trigger, drift noticed and put back, `cos-matting info`.
"""
import base64
import hashlib
import json
import time

import pytest

from cli.main import main
from deploy.clients import Api, ApiCallError
from helpers import BUCKET, OTHER_BUCKET, REGION, put, sdk_client, wait_for
from localcloud import LocalCloud

ENV = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_TIMEOUT_SECONDS": "5",
       "COS_MATTING_CALLBACK_KEYS": "stage-test-key-0123456789abcdef"}
SECRET = ENV["COS_MATTING_CALLBACK_KEYS"]
KEYS = {"COS_MATTING_ENDPOINT": "", "TENCENTCLOUD_SECRETID": "AKIDlocal", "TENCENTCLOUD_SECRETKEY": "localsecretkey"}


class Site:
    def __init__(self, cloud, tmp, dist, capsys):
        self.cloud, self.tmp, self.dist, self.capsys = cloud, tmp, dist, capsys
        env = {**KEYS, "COS_MATTING_ENDPOINT": cloud.url}
        self.scf, self.cam = Api("scf", env, REGION), Api("cam", env)

    def deploy(self, stage="dev", *flags, **extra):
        """`cos-matting deploy` as a user runs it from a checkout with no local state: (exit code, out, err)."""
        env_file = self.tmp / f"{stage}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**ENV, **extra}.items() if v is not None))
        self.capsys.readouterr()
        args = ["deploy", "--stage", stage, "--local", self.cloud.url, "--env-file", str(env_file),
                "--dist", str(self.dist)] + (["--yes"] if "--plan" not in flags else []) + list(flags)
        code = main(args)
        out, err = self.capsys.readouterr()
        return code, out, err

    def writes(self, since=0):
        return [(c.action, c.params.get("FunctionName") or c.params.get("LayerName") or c.params.get("RoleName")
                 or c.params.get("PolicyName") or c.params.get("AttachRoleName") or c.params.get("DetachRoleName")
                 or str(c.params.get("PolicyId")))
                for c in self.cloud.api.writes(since)]

    def env_of(self, name):
        got = self.scf.call("GetFunction", {"FunctionName": name})
        return {v["Key"]: v["Value"] for v in got["Environment"]["Variables"]}


@pytest.fixture
def site(tmp_path, dist, capsys, monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_", "TENCENT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # a fresh clone: no .env, no .cos-matting/ of the checkout's
    cloud = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET], region=REGION).start()
    yield Site(cloud, tmp_path, dist, capsys)
    cloud.stop()


def test_each_stage_has_its_own_role_and_destroy_from_a_fresh_clone_removes_only_its_own(site):
    assert site.deploy("dev")[0] == 0
    assert site.deploy("prod", COS_MATTING_MAX_SIZE_MB="900", COS_MATTING_WATCH_PREFIXES="prod/")[0] == 0
    roles = site.cloud.cam.state["roles"]
    assert sorted(roles) == ["cos-matting-dev-role", "cos-matting-prod-role"]
    policies = {p["PolicyName"]: p["PolicyId"] for p in site.cloud.cam.state["policies"].values()}
    assert sorted(policies) == ["cos-matting-dev-policy", "cos-matting-prod-policy"]
    assert roles["cos-matting-prod-role"]["Attached"] == [policies["cos-matting-prod-policy"]]
    assert site.scf.call("GetFunction", {"FunctionName": "cos-matting-prod-submit"})["Role"] == "cos-matting-prod-role"
    tags = {t["Key"]: t["Value"] for t in site.scf.call("GetFunction", {"FunctionName": "cos-matting-dev-submit"})["Tags"]}
    assert tags["app"] == "cos-matting" and tags["stage"] == "dev"
    # CAM answers GetPolicy reformatted (escapes, arrays, key order); still nothing to do on a redeploy.
    got = site.cam.call("GetPolicy", {"PolicyId": policies["cos-matting-dev-policy"]})["PolicyDocument"]
    assert "\\/" in got and got != site.cloud.cam.state["policies"][str(policies["cos-matting-dev-policy"])][
        "PolicyDocument"]
    mark = len(site.cloud.api.calls)
    code, out, _ = site.deploy("dev")
    assert code == 0 and site.writes(mark) == [] and "nothing to do" in out
    # Something the stage's names reach that deploy did not make: a layer version published by hand.
    site.scf.call("PublishLayerVersion", {"LayerName": "cos-matting-dev-deps", "CompatibleRuntimes": ["Python3.10"],
                                          "Content": {"ZipFile": base64.b64encode(_zip()).decode()},
                                          "Description": "someone else's"})

    mark = len(site.cloud.api.calls)
    code, out, _ = site.deploy("dev", "--destroy", "--plan")
    assert code == 0 and site.writes(mark) == []
    assert "- scf DeleteFunction cos-matting-dev-submit" in out and "- cam DeleteRole cos-matting-dev-role" in out
    assert "prod" not in out
    # destroy needs only the region (and credentials): no bucket, no keys, nothing local
    code, out, err = site.deploy("dev", "--destroy", COS_MATTING_CALLBACK_KEYS=None, COS_MATTING_BUCKET=None)
    assert code == 0, err
    assert sorted(site.cloud.scf.functions) == [f"default/cos-matting-prod-{k}"
                                                          for k in ("callback", "reconcile", "submit")]
    assert sorted(site.cloud.cam.state["roles"]) == ["cos-matting-prod-role"]
    assert sorted(p["PolicyName"] for p in site.cloud.cam.state["policies"].values()) == ["cos-matting-prod-policy"]
    left = [(v.version, v.description) for v in site.cloud.scf.layers["cos-matting-dev-deps"]
            if v.status == "Active"]
    assert left == [(2, "someone else's")]
    assert all(v.status == "Active" for v in site.cloud.scf.layers["cos-matting-prod-deps"])
    # nothing of dev is left to find; a second destroy has nothing to do
    code, out, _ = site.deploy("dev", "--destroy")
    assert code == 0 and "nothing of this stage was found" in out


def _zip():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.txt", "x")
    return buf.getvalue()


def test_a_role_the_user_names_is_used_as_it_is_and_never_deleted(site):
    trust = {"version": "2.0", "statement": [{"action": "name/sts:AssumeRole", "effect": "allow",
                                              "principal": {"service": ["scf.qcloud.com"]}}]}
    code, _, err = site.deploy("dev", COS_MATTING_DEPLOY_ROLE="team-role")
    assert code == 2 and "COS_MATTING_DEPLOY_ROLE=team-role: no such CAM role" in err
    assert site.writes() == []
    site.cam.call("CreateRole", {"RoleName": "team-role", "PolicyDocument": json.dumps(trust)})
    extra = site.cam.call("CreatePolicy", {"PolicyName": "team-extra", "PolicyDocument": json.dumps(
        {"version": "2.0", "statement": [{"effect": "allow", "action": ["name/cos:HeadBucket"], "resource": ["*"]}]})})
    site.cam.call("AttachRolePolicy", {"PolicyId": extra["PolicyId"], "AttachRoleName": "team-role"})
    mark = len(site.cloud.api.calls)
    assert site.deploy("dev", COS_MATTING_DEPLOY_ROLE="team-role")[0] == 0
    made = [a for a, _ in site.writes(mark)]
    assert "CreateRole" not in made and "UpdateAssumeRolePolicy" not in made and "AttachRolePolicy" in made
    assert site.scf.call("GetFunction", {"FunctionName": "cos-matting-dev-submit"})["Role"] == "team-role"
    code, out, _ = site.deploy("dev", "--destroy", COS_MATTING_DEPLOY_ROLE="team-role")
    assert code == 0 and "left role team-role" in out
    role = site.cloud.cam.state["roles"]["team-role"]
    assert role["Attached"] == [extra["PolicyId"]] and json.loads(role["PolicyDocument"]) == trust
    assert [p["PolicyName"] for p in site.cloud.cam.state["policies"].values()] == ["team-extra"]


def test_deploy_refuses_a_stage_whose_functions_would_not_start_naming_the_variable(site):
    code, _, err = site.deploy("dev", COS_MATTING_CALLBACK_KEYS=None)
    assert code == 2 and "COS_MATTING_CALLBACK_KEYS" in err and "Traceback" not in err
    assert site.writes() == []  # refused before any write
    assert site.cloud.scf.functions == {}


def test_plan_prints_the_calls_it_makes_with_old_and_new_values_and_the_url_is_read_back(site):
    assert site.deploy("dev")[0] == 0
    url = [t for t in site.scf.call("ListTriggers", {"FunctionName": "cos-matting-dev-callback"})["Triggers"]
           if t["Type"] == "http"][0]
    url = json.loads(url["TriggerDesc"])["NetConfig"]["ExtranetUrl"]
    assert url.startswith(site.cloud.url + "/_url/")
    for kind in ("submit", "reconcile"):  # the URL read back from the trigger, never a placeholder
        assert site.env_of(f"cos-matting-dev-{kind}")["COS_MATTING_CALLBACK_URL"] == url
    assert "COS_MATTING_CALLBACK_URL" not in site.env_of("cos-matting-dev-callback")

    # Two settings change, one a secret: the plan shows old -> new, the secret masked.
    changed = {"COS_MATTING_MAX_SIZE_MB": "250", "COS_MATTING_CALLBACK_KEYS": "other-key-0123456789abcdef0"}
    mark = len(site.cloud.api.calls)
    code, out, _ = site.deploy("dev", "--plan", **changed)
    assert code == 0 and site.writes(mark) == []
    assert "~ scf UpdateFunctionConfiguration cos-matting-dev-submit: Environment" in out
    assert "COS_MATTING_MAX_SIZE_MB: (unset) -> 250" in out
    assert "COS_MATTING_CALLBACK_KEYS: **** -> ****" in out
    assert SECRET not in out and changed["COS_MATTING_CALLBACK_KEYS"] not in out
    code, out, _ = site.deploy("dev", "--plan", "--json", **changed)
    plan = json.loads(out)
    assert plan["applied"] is False and SECRET not in out and changed["COS_MATTING_CALLBACK_KEYS"] not in out
    planned = [(c["action"], c["name"]) for c in plan["calls"]]
    assert planned == [("UpdateFunctionConfiguration", f"cos-matting-dev-{k}") for k in ("callback", "reconcile",
                                                                                         "submit")]
    mark = len(site.cloud.api.calls)
    code, out, _ = site.deploy("dev", "--json", **changed)
    assert code == 0 and [(c["action"], c["name"]) for c in json.loads(out)["calls"]] == planned
    assert site.writes(mark) == [(a, n) for a, n in planned]  # exactly the planned calls were made
    assert site.env_of("cos-matting-dev-submit")["COS_MATTING_MAX_SIZE_MB"] == "250"

    # The Function URL replaced outside deploy: the new one is read back from ListTriggers, CreateTrigger's
    # answer not carrying it (the SDK's CreateTriggerResponse; the local SCF answers without it).
    http = {"FunctionName": "cos-matting-dev-callback", "Type": "http", "TriggerName": "callback-url"}
    site.scf.call("DeleteTrigger", http)
    made = site.scf.call("CreateTrigger", {**http, "TriggerDesc": json.dumps(
        {"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}})})
    assert "ExtranetUrl" not in made["TriggerInfo"]["TriggerDesc"]
    # and deleted again, so deploy creates it and must read the URL back after its own CreateTrigger
    site.scf.call("DeleteTrigger", http)
    code, out, _ = site.deploy("dev", **changed)
    assert code == 0
    new = site.env_of("cos-matting-dev-submit")["COS_MATTING_CALLBACK_URL"]
    assert new != url and new.startswith(site.cloud.url + "/_url/") and "<" not in new
    assert f"callback Function URL: {new}" in out


def test_a_refused_secret_setting_is_named_never_printed(site):
    """A callback key list with one short key: deploy refuses naming the variable, without echoing the keys
    (the long one is a real signing key); doctor's health check of a function set so in the console too."""
    keys = "a-real-signing-key-0123456789abcdef,short"
    code, out, err = site.deploy("dev", "--plan", COS_MATTING_CALLBACK_KEYS=keys)
    assert code == 2 and "COS_MATTING_CALLBACK_KEYS: each key must be at least 16 characters" in err
    assert "a-real-signing-key" not in out + err and site.writes() == []
    assert site.deploy("dev")[0] == 0
    name = {"FunctionName": "cos-matting-dev-callback"}
    env = {**site.env_of(name["FunctionName"]), "COS_MATTING_CALLBACK_KEYS": keys}
    site.scf.call("UpdateFunctionConfiguration", {**name, "Environment": {"Variables": [
        {"Key": k, "Value": v} for k, v in env.items()]}})
    wait_for(lambda: site.scf.call("GetFunction", name)["Status"] == "Active", timeout=10, interval=0.1)
    site.capsys.readouterr()
    code = main(["doctor", "--local", site.cloud.url, "--env-file", str(site.tmp / "dev.env"), "--dist",
                 str(site.dist)])
    out, err = site.capsys.readouterr()
    assert code == 1 and "COS_MATTING_CALLBACK_KEYS" in out[out.index("callback answers"):]
    assert "a-real-signing-key" not in out + err


def test_two_stages_on_one_bucket_watch_their_own_prefixes(site):
    """README: a Mask pipeline on input/people/ and a Foreground one on input/studio/, each deployed as its
    own stage. Each stage's COS trigger and settings take its prefix; an upload becomes one job, its own
    stage's (the trigger prefix was fixed at input/: both stages took every upload, the first claim won)."""
    assert site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/", COS_MATTING_MODE="Mask")[0] == 0
    assert site.deploy("studio", COS_MATTING_WATCH_PREFIXES="input/studio/", COS_MATTING_MODE="Foreground")[0] == 0
    for stage in ("people", "studio"):
        [cos] = [t for t in site.scf.call("ListTriggers", {"FunctionName": f"cos-matting-{stage}-submit"})["Triggers"]
                 if t["Type"] == "cos"]
        assert json.loads(cos["TriggerDesc"])["filter"]["Prefix"] == f"input/{stage}/"
        assert site.env_of(f"cos-matting-{stage}-reconcile")["COS_MATTING_WATCH_PREFIXES"] == f"input/{stage}/"
    cos = sdk_client(site.cloud)
    for stage in ("studio", "people"):
        put(cos, f"input/{stage}/clip.mp4")
    jobs = wait_for(lambda: len(site.cloud.list_jobs(BUCKET)) >= 2 and site.cloud.list_jobs(BUCKET), timeout=30)
    time.sleep(1.0)  # a second stage's submit would have made its job by now
    made = sorted((j.Input.Object, j.Operation.UserData.rsplit("@", 1)[-1],
                   site.cloud.jobs.record(BUCKET, j.JobId).request.Operation.SegmentVideoBody.Mode)
                  for j in site.cloud.list_jobs(BUCKET))
    assert len(jobs) >= 2 and made == [("input/people/clip.mp4", "cos-matting-people", "Mask"),
                                       ("input/studio/clip.mp4", "cos-matting-studio", "Foreground")]
    # one list of prefixes cannot be one trigger: refused before any write, naming the variable
    code, _, err = site.deploy("both", "--plan", COS_MATTING_WATCH_PREFIXES="input/a/,input/b/")
    assert code == 2 and "COS_MATTING_WATCH_PREFIXES to one prefix" in err


def _footprint(site):
    """The functions and each one's triggers, as the local SCF holds them."""
    return {key: sorted((t.type, t.name, t.desc) for t in fn.triggers) for key, fn in site.cloud.scf.functions.items()}


def _refusal(stage, doing, prefix, other, their_doing, theirs, why, change, bucket=BUCKET):
    return (f"cos-matting: error: stage {stage} {doing} {prefix!r} and stage {other} {their_doing} {theirs!r} on "
            f"bucket {bucket} ({REGION}): the prefixes overlap, {why}; nothing was written: set {change}, or remove "
            f"stage {other} with `cos-matting deploy --destroy --stage {other}`\n")


def test_a_stage_watching_or_writing_where_another_stage_does_is_refused_before_any_write(site):
    """Two stages of one app on one bucket whose watched prefixes overlap both take each upload (both submits
    race for one record; a stale claim can be submitted with the other's settings), and a stage watching
    another's output prefix mattes its outputs again: deploy and --plan refuse that on one line naming both
    stages, the bucket, both prefixes and the fix, reading the other stage from the cloud, and write nothing.
    Disjoint prefixes deploy; redeploying a stage is no conflict with itself."""
    assert site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/")[0] == 0
    before, mark = _footprint(site), len(site.cloud.api.calls)
    refused = [  # (stage, its settings, the line)
        ("all", {"COS_MATTING_WATCH_PREFIXES": "input/"},  # people's prefix is under it
         _refusal("all", "watches", "input/", "people", "watches", "input/people/",
                  "both would matte each upload there",
                  "COS_MATTING_WATCH_PREFIXES of stage all to a prefix outside 'input/people/'")),
        ("again", {"COS_MATTING_WATCH_PREFIXES": "input/people/", "COS_MATTING_MODE": "Foreground"},  # the same
         _refusal("again", "watches", "input/people/", "people", "watches", "input/people/",
                  "both would matte each upload there",
                  "COS_MATTING_WATCH_PREFIXES of stage again to a prefix outside 'input/people/'")),
        ("remat", {"COS_MATTING_WATCH_PREFIXES": "matting/people/", "COS_MATTING_OUTPUT_BUCKET": OTHER_BUCKET},
         _refusal("remat", "watches", "matting/people/", "people", "writes its outputs to", "matting/",
                  "stage remat would matte stage people's outputs again",
                  "COS_MATTING_WATCH_PREFIXES of stage remat to a prefix outside 'matting/'")),
    ]
    for stage, extra, line in refused:
        for flags in (("--plan",), ()):
            code, out, err = site.deploy(stage, *flags, **extra)
            assert (code, err.splitlines(keepends=True)[-1]) == (2, line), (stage, flags, err)
            assert out == ""
    assert site.writes(mark) == [] and _footprint(site) == before
    # disjoint prefixes deploy (its outputs under matting/ as people's: no upload comes of that); people again is
    # no conflict with itself and makes no write
    assert site.deploy("studio", COS_MATTING_WATCH_PREFIXES="input/studio/")[0] == 0
    mark = len(site.cloud.api.calls)
    code, out, err = site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/")
    assert code == 0 and "nothing to do" in out and site.writes(mark) == [], err
    # what the guard costs a deploy: one listing of the app's functions, one GetFunction of each other stage
    reads = [(c.action, c.params.get("FunctionName")) for c in site.cloud.api.calls[mark:] if c.service == "scf"]
    assert reads.count(("ListFunctions", None)) == 1
    assert [n for a, n in reads if a == "GetFunction" and "people" not in n] == ["cos-matting-studio-submit"]


def test_doctor_fails_when_another_stage_comes_to_overlap_after_deploy(site):
    """A conflict can arise after a stage's deploy (another stage changed in the console, or deployed later):
    `doctor` of either stage fails its `other stages` check naming the other one, and a redeploy is refused."""
    from .test_deploy_doctor import rows

    assert site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/")[0] == 0
    assert site.deploy("studio", COS_MATTING_WATCH_PREFIXES="input/studio/")[0] == 0

    def doctor(stage):
        site.capsys.readouterr()
        code = main(["doctor", "--stage", stage, "--local", site.cloud.url, "--env-file",
                     str(site.tmp / f"{stage}.env"), "--dist", str(site.dist)])
        return code, rows(site.capsys.readouterr().out)["other stages"]

    assert doctor("people") == (0, ("ok", "none of 1 other stage(s) of cos-matting (studio) watches or writes where "
                                          "this one does, nor writes where it watches"))
    # studio changed outside deploy: it now watches matting/ (people's outputs), its own outputs elsewhere
    name = {"FunctionName": "cos-matting-studio-submit"}
    env = {**site.env_of("cos-matting-studio-submit"), "COS_MATTING_WATCH_PREFIXES": "matting/",
           "COS_MATTING_OUTPUT_BUCKET": OTHER_BUCKET}
    site.scf.call("UpdateFunctionConfiguration", {**name, "Environment": {"Variables": [
        {"Key": k, "Value": v} for k, v in env.items()]}})
    wait_for(lambda: site.scf.call("GetFunction", name)["Status"] == "Active", timeout=10, interval=0.1)
    problem = (f"stage people writes its outputs to 'matting/' and stage studio watches 'matting/' on bucket {BUCKET} "
               f"({REGION}): the prefixes overlap, stage studio would matte stage people's outputs again")
    fix = ("set COS_MATTING_OUTPUT_BUCKET of stage people to another bucket, or remove stage studio with "
           "`cos-matting deploy --destroy --stage studio`")
    assert doctor("people") == (1, ("FAIL", f"{problem} -> fix: {fix}"))
    code, status = doctor("studio")
    assert code == 1 and status[0] == "FAIL" and status[1].startswith(
        f"stage studio watches 'matting/' and stage people writes its outputs to 'matting/' on bucket {BUCKET}")
    mark = len(site.cloud.api.calls)
    code, out, err = site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/")
    assert (code, err.splitlines()[-1]) == (2, f"cos-matting: error: {problem}; nothing was written: {fix}")
    assert site.writes(mark) == []


def test_a_stage_whose_settings_this_release_refuses_still_counts_where_it_watches(site):
    """A stage deployed by an older release runs its own settings check, not this one's: a rule outside every
    watched prefix was taken until this release refused it (shared/config.py). That stage still watches its
    prefix, so a stage deployed on an overlapping prefix is refused, and doctor fails, as for any stage."""
    assert site.deploy("people", COS_MATTING_WATCH_PREFIXES="input/people/")[0] == 0
    name = {"FunctionName": "cos-matting-people-submit"}
    env = {**site.env_of(name["FunctionName"]),
           "COS_MATTING_RULES": '[{"prefix": "archive/", "segment_type": "GreenScreenSeg"}]'}
    site.scf.call("UpdateFunctionConfiguration", {**name, "Environment": {"Variables": [
        {"Key": k, "Value": v} for k, v in env.items()]}})
    wait_for(lambda: site.scf.call("GetFunction", name)["Status"] == "Active", timeout=10, interval=0.1)
    mark = len(site.cloud.api.calls)
    code, out, err = site.deploy("all", COS_MATTING_WATCH_PREFIXES="input/")
    assert (code, err.splitlines(keepends=True)[-1]) == (2, _refusal(
        "all", "watches", "input/", "people", "watches", "input/people/", "both would matte each upload there",
        "COS_MATTING_WATCH_PREFIXES of stage all to a prefix outside 'input/people/'")), err
    assert site.writes(mark) == []


def test_the_apps_listing_pages_past_100_functions_and_groups_them_by_stage_tag_else_name(site):
    """`stage.listed`: ListFunctions by the app tag, 100 a page until TotalCount; a function is put under its
    `stage` tag, else under the stage its name `<app>-<stage>-<kind>` gives (dashes in a stage included); another
    app's function named `cos-matting-...` is not the app's. What `resolve` and the overlap guard read."""
    from deploy import stage as st

    base = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION}
    for i in range(101):  # a stage deployed before the stage tag: the app tag only
        site.cloud.scf.expose(f"cos-matting-s{i:03d}-submit", {**base, "COS_MATTING_WATCH_PREFIXES": f"s{i}/"},
                              {"app": "cos-matting"})
    site.cloud.scf.expose("cos-matting-my-dev-submit", base, {"app": "cos-matting"})
    site.cloud.scf.expose("cos-matting-my-dev-callback", base, {"app": "cos-matting", "stage": "my-dev"})
    site.cloud.scf.expose("renamed-callback", base, {"app": "cos-matting", "stage": "my"})
    site.cloud.scf.expose("cos-matting-extra-dev-submit", base, {"app": "cos-matting-extra"})  # another app
    mark = len(site.cloud.api.calls)
    found = st.listed(site.scf, "cos-matting", "default")
    assert [c.action for c in site.cloud.api.calls[mark:]] == ["ListFunctions", "ListFunctions"]  # 104: two pages
    assert sorted(found) == sorted([f"s{i:03d}" for i in range(101)] + ["my-dev", "my"])
    assert found["my-dev"] == {"submit": "cos-matting-my-dev-submit", "callback": "cos-matting-my-dev-callback"}
    assert found["my"] == {"callback": "renamed-callback"} and found["s100"] == {"submit": "cos-matting-s100-submit"}
    # the guard reads the second page too: a stage on s100/ overlaps exactly s100 (the others: s<i>/, input/)
    code, out, err = site.deploy("new", "--plan", COS_MATTING_WATCH_PREFIXES="s100/")
    assert code == 2 and "stage new watches 's100/' and stage s100 watches 's100/'" in err and "more" not in err, err


def test_an_overlap_with_the_stage_localcloud_wired_says_to_stop_it_not_to_destroy_it(site):
    """`cos-matting localcloud --trigger ... --function-url ...` (the walkthrough's terminal 1) wires stage `local`
    (cli/cmd_localcloud.py `_wire`: tagged app and stage, read-only through the SCF API). A stage deployed into
    that local cloud on its prefix is refused, and the fix names what removes stage local: stopping that
    localcloud. `deploy --destroy --stage local` cannot: it finds the functions, its deletes answer
    ResourceNotFound ("already gone") and the next deploy was refused the same way."""
    base = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_CALLBACK_KEYS": SECRET}
    tags = {"app": "cos-matting", "stage": "local"}  # as _wire tags them
    site.cloud.scf.expose("callback", base, tags, url=f"{site.cloud.url}/_fn/callback")
    site.cloud.scf.expose("submit", base, tags, cos=BUCKET)
    line = (f"cos-matting: error: stage dev watches 'input/' and stage local watches 'input/' on bucket {BUCKET} "
            f"({REGION}): the prefixes overlap, both would matte each upload there; nothing was written: set "
            "COS_MATTING_WATCH_PREFIXES of stage dev to a prefix outside 'input/', or stop the `cos-matting "
            "localcloud` that wired stage local (deploy did not make it: `deploy --destroy` cannot remove it)\n")
    code, out, err = site.deploy("dev")
    assert (code, err.splitlines(keepends=True)[-1]) == (2, line), err
    assert site.deploy("local", "--destroy")[0] == 0  # "already gone": nothing removed
    code, out, err = site.deploy("dev")
    assert (code, err.splitlines(keepends=True)[-1]) == (2, line), err
    assert site.deploy("dev", COS_MATTING_WATCH_PREFIXES="dev/")[0] == 0  # as the line says


def test_stage_names_up_to_scfs_limit_deploy_and_others_are_refused_naming_the_setting(site):
    """`production` (10 characters) made alarm names over Cloud Monitor's 20 (cm-production-throttle) and was
    refused by the schema with three alarm errors; a stage up to SCF's function-name limit now deploys, its
    alarm policy names fitted, and a name no resource can take is refused in one line naming --stage."""
    longest = "s" * 12 + "-production-2026-x" + "Y" * 8  # 38: cos-matting-<stage>-reconcile is 60
    for stage in ("production", longest):
        code, out, err = site.deploy(stage, COS_MATTING_WATCH_PREFIXES=f"{stage}/")  # two stages: their own prefixes
        assert code == 0, err
        names = sorted(p["PolicyName"] for p in site.cloud.monitor.state["policies"].values()
                       if p["Remark"] == f"cos-matting-{stage}")
        assert len(names) == 3 and all(len(n) <= 20 for n in names), names
        assert len(site.scf.call("GetFunction", {"FunctionName": f"cos-matting-{stage}-reconcile"})
                   ["FunctionName"]) <= 60
        mark = len(site.cloud.api.calls)
        code, _, _ = site.deploy(stage, COS_MATTING_WATCH_PREFIXES=f"{stage}/")
        assert code == 0 and site.writes(mark) == []  # found again by the fitted names
    code, out, err = site.deploy("production", "--destroy")
    assert code == 0, err
    assert not [p for p in site.cloud.monitor.state["policies"].values() if p["Remark"] == "cos-matting-production"]
    for bad in ("my.stage", longest + "z", "dev_1"):
        code, out, err = site.deploy(bad, "--plan")
        assert code == 2 and err.count("\n") == 1, err
        assert f"stage {bad!r} (--stage or COS_MATTING_DEPLOY_STAGE): letters, digits and -, 1-38 characters" in err


def test_another_apps_function_or_policy_with_the_stages_name_is_never_rewritten(site):
    """A function `cos-matting-qa-submit` another app made (tagged app=other-app), then a CAM policy
    `cos-matting-qa-policy` another team made: deploy of stage qa refuses before any write, naming it (it
    planned UpdateFunctionConfiguration + UpdateFunctionCode of the one and UpdatePolicy of the other)."""
    theirs = {"FunctionName": "cos-matting-qa-submit"}
    site.scf.call("CreateFunction", {**theirs, "Code": {"ZipFile": base64.b64encode(_zip()).decode()},
                                     "Handler": "index.main_handler", "Runtime": "Python3.10",
                                     "Tags": [{"Key": "app", "Value": "other-app"}]})
    wait_for(lambda: site.scf.call("GetFunction", theirs)["Status"] == "Active", timeout=10, interval=0.1)
    code, out, err = site.deploy("qa", "--plan")
    assert code == 2 and "function cos-matting-qa-submit exists but was not made by cos-matting deploy" in err, err
    assert "app=other-app" in err and "UpdateFunction" not in out
    code, _, err = site.deploy("qa")
    assert code == 2 and site.writes() == [("CreateFunction", "cos-matting-qa-submit")]  # theirs only
    site.scf.call("DeleteFunction", theirs)
    doc = {"version": "2.0", "statement": [{"action": ["name/cos:GetObject"], "effect": "allow", "resource": ["*"]}]}
    site.cam.call("CreatePolicy", {"PolicyName": "cos-matting-qa-policy", "PolicyDocument": json.dumps(doc),
                                   "Description": "another team's"})
    mark = len(site.cloud.api.calls)
    code, out, err = site.deploy("qa")
    assert code == 2 and "CAM policy cos-matting-qa-policy exists but was not made by cos-matting deploy" in err
    assert site.writes(mark) == []
    assert [p["Description"] for p in site.cloud.cam.state["policies"].values()] == ["another team's"]


def test_a_webhook_url_carrying_its_key_is_masked_in_plan_and_info(site):
    """A WeCom-style webhook (the key is in the query) as COS_MATTING_NOTIFY_URL: --plan (text and JSON) and
    info (text and JSON) show the host and path, never the key (is_secret matched names, not URL queries)."""
    hook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=hook-key-0123456789"
    extra = {"COS_MATTING_NOTIFY_URL": hook, "COS_MATTING_NOTIFY_SECRET": "notify-secret-0123456789"}
    assert site.deploy("dev")[0] == 0  # then the webhook is a change: old -> new of each function's setting
    for flags in (("--plan",), ("--plan", "--json")):
        code, out, err = site.deploy("dev", *flags, **extra)
        assert code == 0 and "qyapi.weixin.qq.com/cgi-bin/webhook/send?****" in out, err
        assert "hook-key" not in out + err and "notify-secret" not in out + err
    assert site.deploy("dev", **extra)[0] == 0
    for flags in ((), ("--json",)):
        site.capsys.readouterr()
        assert main(["info", "--stage", "dev", "--local", site.cloud.url, "--env-file", str(site.tmp / "dev.env"),
                     *flags]) == 0
        out, err = site.capsys.readouterr()
        assert "webhook/send?****" in out and "hook-key" not in out + err and "notify-secret" not in out + err


def test_drift_is_noticed_by_doctor_and_deploy_puts_it_back_waiting_for_active(site):
    assert site.deploy("dev")[0] == 0
    scf, name = site.scf, {"FunctionName": "cos-matting-dev-submit"}
    site.cloud.scf.settle_seconds = 1.0  # SCF applies writes asynchronously: Updating for a while
    # the console changes the code and a setting of submit
    other = base64.b64encode((site.dist / "cos-matting-callback.zip").read_bytes()).decode()
    scf.call("UpdateFunctionCode", {**name, "ZipFile": other, "Handler": "index.main_handler"})
    assert scf.call("GetFunction", name)["Status"] == "Updating"
    with pytest.raises(ApiCallError) as busy:  # a write while Updating is refused (583/37883)
        scf.call("UpdateFunctionConfiguration", {**name, "Timeout": 30})
    assert busy.value.code == "FailedOperation.UpdateFunctionConfiguration"
    with pytest.raises(ApiCallError) as busy:
        scf.call("UpdateFunctionCode", {**name, "ZipFile": other})
    assert busy.value.code == "FailedOperation.UpdateFunctionCode"
    wait_for(lambda: scf.call("GetFunction", name)["Status"] == "Active", timeout=10, interval=0.1)
    # what SCF does not offer is refused (the SDK's error codes): no Python3.8, dead letter CMQ-QUEUE / CMQ-TOPIC
    # and a runtime is set at creation (the SDK: UpdateFunctionConfigurationRequest.Runtime cannot be changed)
    for bad, code in (({"Runtime": "Python3.8"}, "InvalidParameterValue.Runtime"),
                      ({"Runtime": "Python3.9"}, "InvalidParameterValue.Runtime"),
                      ({"DeadLetterConfig": {"Type": "CMQ", "Name": "q"}}, "InvalidParameterValue.DeadLetterConfig")):
        with pytest.raises(ApiCallError) as refused:
            scf.call("UpdateFunctionConfiguration", {**name, **bad})
        assert refused.value.code == code
    assert scf.call("GetFunction", name)["DeadLetterConfig"]["Type"] == "CMQ-QUEUE"  # what deploy set
    env = site.env_of("cos-matting-dev-submit")
    env["COS_MATTING_MAX_SIZE_MB"] = "7"
    scf.call("UpdateFunctionConfiguration", {**name, "Timeout": 30, "Environment": {"Variables": [
        {"Key": k, "Value": v} for k, v in env.items()]}})
    wait_for(lambda: scf.call("GetFunction", name)["Status"] == "Active", timeout=10, interval=0.1)

    env_file = site.tmp / "dev.env"
    site.capsys.readouterr()
    code = main(["doctor", "--local", site.cloud.url, "--env-file", str(env_file), "--dist", str(site.dist)])
    out = site.capsys.readouterr().out
    assert code == 1
    line = out[out.index("matches serverless.yml"):]
    assert "FAIL" in line[:40] and "UpdateFunctionCode cos-matting-dev-submit" in line
    assert "COS_MATTING_MAX_SIZE_MB: 7 -> (unset)" in line

    code, out, _ = site.deploy("dev", "--plan")
    assert "~ scf UpdateFunctionConfiguration cos-matting-dev-submit" in out and "Timeout: 30 -> 60" in out
    sha = hashlib.sha256((site.dist / "cos-matting-submit.zip").read_bytes()).hexdigest()
    assert "~ scf UpdateFunctionCode cos-matting-dev-submit" in out and f"-> {sha[:12]}" in out
    # one more console write just before deploy: submit is Updating when deploy reads it, so deploy waits
    # for Active before its first write too
    site.cloud.scf.settle_seconds = 3.0  # longer than deploy takes to package and plan
    scf.call("UpdateFunctionConfiguration", {**name, "Description": "edited in the console"})
    mark = len(site.cloud.api.calls)
    code, out, err = site.deploy("dev")  # configuration then code: the second waits for Active after the first
    assert code == 0, err
    assert site.writes(mark) == [("UpdateFunctionConfiguration", "cos-matting-dev-submit"),
                                 ("UpdateFunctionCode", "cos-matting-dev-submit")]
    statuses = [c for c in site.cloud.api.calls[mark:] if c.action == "GetFunction"]
    assert len(statuses) >= 2  # it polled Status between the writes
    assert not [c for c in site.cloud.api.calls[mark:] if c.error.startswith("FailedOperation")]
    assert scf.call("GetFunctionAddress", name)["CodeSha256"] == sha
    assert "COS_MATTING_MAX_SIZE_MB" not in site.env_of("cos-matting-dev-submit")
    mark = len(site.cloud.api.calls)
    assert site.deploy("dev")[0] == 0 and site.writes(mark) == []
    # a function made with another runtime (by hand): deploy says what to do instead of sending a change
    site.cloud.scf.functions["default/cos-matting-dev-reconcile"].runtime = "Python3.9"
    code, out, _ = site.deploy("dev", "--plan")
    assert code == 0 and "no call to make (see the notes above)" in out
    assert "note: cos-matting-dev-reconcile runs Python3.9, serverless.yml says Python3.10" in out


def test_a_trigger_added_in_the_console_is_drift_that_deploy_removes(site):
    """A timer firing every second added to reconcile in the console: doctor fails "matches serverless.yml",
    --plan shows its DeleteTrigger, deploy removes it and keeps the declared ones (it was left running)."""
    assert site.deploy("dev")[0] == 0
    name = {"FunctionName": "cos-matting-dev-reconcile"}
    site.scf.call("CreateTrigger", {**name, "TriggerName": "every-second", "Type": "timer",
                                    "TriggerDesc": "* * * * * * *", "Enable": "OPEN"})
    site.capsys.readouterr()
    code = main(["doctor", "--local", site.cloud.url, "--env-file", str(site.tmp / "dev.env"), "--dist",
                 str(site.dist)])
    out = site.capsys.readouterr().out
    line = out[out.index("matches serverless.yml"):]
    assert code == 1 and "FAIL" in line[:40] and "DeleteTrigger cos-matting-dev-reconcile timer every-second" in line
    code, out, _ = site.deploy("dev", "--plan")
    assert "- scf DeleteTrigger cos-matting-dev-reconcile timer every-second: not in serverless.yml" in out
    mark = len(site.cloud.api.calls)
    assert site.deploy("dev")[0] == 0
    assert site.writes(mark) == [("DeleteTrigger", "cos-matting-dev-reconcile")]
    left = [t["TriggerName"] for t in site.scf.call("ListTriggers", name)["Triggers"]]
    assert left == ["reconcile-every-10-minutes"]
    mark = len(site.cloud.api.calls)
    assert site.deploy("dev")[0] == 0 and site.writes(mark) == []


def test_info_describes_a_stage_from_the_cloud(site):
    assert site.deploy("dev")[0] == 0
    site.capsys.readouterr()
    assert main(["info", "--stage", "dev", "--local", site.cloud.url, "--json"]) == 0
    info = json.loads(site.capsys.readouterr().out)
    submit = info["functions"]["submit"]
    assert submit["runtime"] == "Python3.10" and submit["status"] == "Active" and submit["last_change"]
    assert submit["code_sha256"] == hashlib.sha256((site.dist / "cos-matting-submit.zip").read_bytes()).hexdigest()
    assert submit["layers"] == ["cos-matting-dev-deps:1"] and submit["role"] == "cos-matting-dev-role"
    assert [t["type"] for t in submit["triggers"]] == ["cos"] and submit["triggers"][0]["enabled"]
    assert info["function_url"] == submit["settings"]["COS_MATTING_CALLBACK_URL"]
    assert submit["settings"]["COS_MATTING_CALLBACK_KEYS"] == "****"
    assert info["where"]["source bucket"] == BUCKET and info["where"]["watched prefixes"] == "input/"
    assert info["roles"] == {"cos-matting-dev-role": ["cos-matting-dev-policy"]} and info["region"] == REGION
    assert main(["info", "--stage", "dev", "--local", site.cloud.url]) == 0
    out = site.capsys.readouterr().out
    assert info["function_url"] in out and "cos-matting-dev-reconcile" in out and SECRET not in out
    assert "COS_MATTING_CALLBACK_KEYS=****" in out
    assert main(["info", "--stage", "qa", "--local", site.cloud.url]) == 2
    assert "stage 'qa'" in site.capsys.readouterr().err
