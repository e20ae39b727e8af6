"""deploy/cam-policy.json (least privilege, rendered from the deployed settings) and .env.example."""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy import checks, policy  # noqa: E402
from deploy.files import env_references, read_yaml  # noqa: E402
from shared.config import known_variables  # noqa: E402

ALLOWED_ACTIONS = {
    "name/cos:GetObject", "name/cos:PutObject", "name/cos:HeadObject", "name/cos:GetObjectTagging",
    "name/cos:PutObjectTagging", "name/cos:GetBucket",
    "name/ci:CreateMediaJobs", "name/ci:DescribeMediaJob", "name/ci:DescribeMediaJobs", "name/ci:CancelMediaJob",
    "name/ci:CancelAiProcessJob", "name/ci:CreateBodyJointsDetectJob", "name/cam:PassRole",
}
# Resource formats (CAM "资源描述方式", cloud.tencent.com/document/product/215/8965): roles use uin/,
# COS uses uid/<appid>; CI's uid/ follows CI's API authorization guide.
RESOURCE_FORMATS = {
    "cam": re.compile(r"^qcs::cam::uin/\d+:roleName/[\w+=,.@-]+$"),
    "cos": re.compile(r"^qcs::cos:[a-z]+-[a-z0-9-]+:uid/\d+:[a-z0-9-]+-\d+/\S+$"),
    "ci": re.compile(r"^qcs::ci:[a-z]+-[a-z0-9-]+:uid/\d+:bucket/[a-z0-9-]+-\d+/\*$"),
}


@pytest.fixture(scope="module")
def rendered():
    return policy.render(policy.values_from(checks.example_environ()))


def test_template_is_valid_json_with_known_actions_only():
    tmpl = policy.template()
    assert tmpl["version"] == "2.0"
    actions = [a for s in tmpl["statement"] for a in s["action"]]
    assert set(actions) <= ALLOWED_ACTIONS, set(actions) - ALLOWED_ACTIONS
    assert not any("*" in a for a in actions)
    assert all(s["effect"] == "allow" for s in tmpl["statement"])
    # The job API and its sub-account requirements (SegmentVideoBody 460/83973, CI API authorization): both create actions the
    # docs name, the singular cancel action (and the newer AI-process one), describe/list, PassRole.
    assert {"name/ci:CreateBodyJointsDetectJob", "name/cam:PassRole", "name/ci:CreateMediaJobs",
            "name/ci:CancelMediaJob", "name/ci:CancelAiProcessJob", "name/ci:DescribeMediaJob",
            "name/ci:DescribeMediaJobs"} <= set(actions)
    assert "name/ci:CancelMediaJobs" not in actions  # not an action name (the singular is)


def test_every_rendered_resource_has_the_documented_format(rendered):
    for statement in rendered["statement"]:
        for res in statement["resource"]:
            service = res.split(":")[2]
            assert RESOURCE_FORMATS[service].match(res), res
            for action in statement["action"]:
                assert action.startswith(f"name/{service}:"), (action, res)


def test_rendered_resources_are_scoped(rendered):
    s = rendered["statement"]
    text = json.dumps(rendered)
    assert "${" not in text
    for statement in s:
        for res in statement["resource"]:
            assert res != "*" and not res.endswith(":*"), res
            if res.startswith("qcs::cos:") and "name/cos:GetBucket" not in statement["action"]:
                # object actions: always below a non-empty prefix
                assert re.fullmatch(r"qcs::cos:[a-z-]+:uid/\d+:[a-z0-9-]+-\d+/[^*]+/\*", res), res
    listings = [st for st in s if "name/cos:GetBucket" in st["action"]]
    assert all(st["action"] == ["name/cos:GetBucket"] for st in listings)
    # Listing is always restricted to a prefix: the records, and the watched prefix (reconcile sweep).
    assert sorted(st["condition"]["string_like"]["cos:prefix"] for st in listings) == [".cos-matting/records/*",
                                                                                      "input/*"]
    [passrole] = [st for st in s if "name/cam:PassRole" in st["action"]]
    assert passrole["resource"] == [f"qcs::cam::uin/{checks.PLACEHOLDERS['COS_MATTING_DEPLOY_OWNER_UIN']}:roleName/CI_QCSRole"]
    [ci] = [st for st in s if "name/ci:CreateMediaJobs" in st["action"]]
    assert ci["resource"] == ["qcs::ci:ap-guangzhou:uid/1250000000:bucket/videos-1250000000/*"]


def test_rendered_prefixes_follow_serverless_yml(rendered):
    resources = [r for st in rendered["statement"] for r in st["resource"]]
    assert "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/input/*" in resources
    assert "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/matting/*" in resources
    assert "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/.cos-matting/records/*" in resources
    # Outputs and sources are never writable as objects: only their tags.
    for st in rendered["statement"]:
        if "name/cos:PutObject" in st["action"]:
            assert all("/.cos-matting/records/" in r for r in st["resource"])


def test_render_expands_watch_prefixes_and_separate_buckets():
    values = policy.values_from(checks.example_environ())
    values.update(WATCH_PREFIX=["input/", "uploads/"], OUTPUT_BUCKET="out-1250000000", OUTPUT_REGION="ap-shanghai")
    rendered = policy.render(values)
    resources = [r for st in rendered["statement"] for r in st["resource"]]
    assert "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/uploads/*" in resources
    conditions = [st["condition"]["string_like"]["cos:prefix"] for st in rendered["statement"] if "condition" in st]
    assert ["input/*", "uploads/*"] in conditions
    assert "qcs::cos:ap-shanghai:uid/1250000000:out-1250000000/matting/*" in resources


def test_jobs_may_read_the_watched_prefix_and_every_background_key():
    values = policy.values_from(checks.example_environ())
    assert values["BACKGROUND_KEY"] == []  # .env.example: no Combination default, no rules
    reads = [r for st in policy.render(values)["statement"] if "name/cos:GetObject" in st["action"]
             for r in st["resource"]]
    assert "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/input/*" in reads
    env = checks.example_environ()
    env.update(COS_MATTING_BACKGROUND_KEY="bg/default.png", COS_MATTING_MODE="Combination",
               COS_MATTING_RULES='[{"prefix": "input/gs/", "mode": "Combination", "background_key": "bg/s.png"}]')
    values = policy.values_from(env)
    assert values["BACKGROUND_KEY"] == ["bg/default.png", "bg/s.png"]
    [background] = [st for st in policy.render(values)["statement"] if st["action"] == ["name/cos:GetObject"]]
    assert background["resource"] == ["qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/bg/default.png",
                                      "qcs::cos:ap-guangzhou:uid/1250000000:videos-1250000000/bg/s.png"]


def test_policy_needs_owner_uin():
    env = checks.example_environ()
    env["COS_MATTING_DEPLOY_OWNER_UIN"] = ""
    with pytest.raises(policy.PolicyError, match="UIN"):
        policy.values_from(env)


def test_policy_cli(capsys):
    assert policy.main(["--example"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2.0"


# --- .env.example ------------------------------------------------------------------------------


def _example_lines():
    return (ROOT / ".env.example").read_text().splitlines()


def test_env_example_lists_every_variable():
    listed = checks.read_dotenv(ROOT / ".env.example")
    missing = [v for v in known_variables() if v not in listed]
    assert not missing, f".env.example lacks {missing}"
    for yml in (checks.SERVERLESS, checks.LAYER):
        refs = env_references(read_yaml(yml))
        assert not [r for r in refs if r not in listed], f"{yml.name} references variables missing from .env.example"
    text = (ROOT / ".env.example").read_text()
    for name in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN",
                 "TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "COS_MATTING_DEPLOY_OWNER_UIN"):
        assert name in text


def test_env_example_comments_every_variable_and_holds_no_secret():
    lines = _example_lines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            j = i - 1
            while j >= 0 and re.match(r"^[A-Z][A-Z0-9_]*=", lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"{line.split('=')[0]} has no comment above it"
    values = checks.read_dotenv(ROOT / ".env.example")
    for secret in ("COS_MATTING_CALLBACK_KEYS", "TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_TOKEN"):
        assert values[secret] == "", f"{secret} must be empty in the example"
    # Variables SCF injects must not be set by the deployer.
    assert not any(k.startswith("TENCENTCLOUD_") for k in values)


# --- reserved concurrency (applied with the SCF API; offline here) -------------------------------


def test_concurrency_plan_from_env():
    from deploy import concurrency

    env = checks.example_environ()
    functions = concurrency.plan(env)
    assert functions["submit"]["name"] == "cos-matting-dev-submit"
    assert functions["submit"]["instances"] == int(env["COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY"])
    assert functions["callback"]["instances"] is None
    env["COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY"] = "0"
    assert concurrency.plan(env)["submit"]["instances"] == 0  # the stop switch

    from tencentcloud.scf.v20180416 import models

    from deploy.clients import Api

    class FakeClient:
        def __init__(self):
            self.calls = []

        def PutReservedConcurrencyConfig(self, req):
            self.calls.append(("put", req.FunctionName, req.ReservedConcurrencyMem))
            return models.PutReservedConcurrencyConfigResponse()

        def DeleteReservedConcurrencyConfig(self, req):
            self.calls.append(("delete", req.FunctionName))
            return models.DeleteReservedConcurrencyConfigResponse()

    client = FakeClient()
    scf = Api("scf", {}, sdk_client=client)
    assert "STOPPED" in concurrency.apply_one(scf, functions["submit"], 0)
    concurrency.apply_one(scf, functions["submit"], 10)
    concurrency.apply_one(scf, functions["callback"], None)
    assert client.calls == [("put", "cos-matting-dev-submit", 0), ("put", "cos-matting-dev-submit", 1280),
                            ("delete", "cos-matting-dev-callback")]
