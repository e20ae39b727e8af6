"""The pure parts of a deploy plan: CAM documents compared by meaning, what a printed plan shows."""
import base64
import hashlib
import json

from deploy.apply import Call, Ref, printable
from deploy.stage import normalised, same_code
from localcloud.camapi import reformatted

DOC = {"version": "2.0", "statement": [
    {"effect": "allow", "action": "name/cos:GetObject", "resource": "qcs::cos:ap-guangzhou:uid/1250000000:b-1/input/*"},
    {"effect": "allow", "action": ["name/ci:CreateMediaJobs", "name/ci:DescribeMediaJob"], "resource": ["*"]}]}


def test_a_policy_cam_reformatted_compares_equal_and_a_real_change_does_not():
    text = reformatted(json.dumps(DOC))  # what the local CAM's GetPolicy answers
    assert text != json.dumps(DOC) and "\\/" in text
    assert normalised(json.loads(text)) == normalised(DOC)
    changed = json.loads(json.dumps(DOC))
    changed["statement"][1]["action"].append("name/ci:CancelMediaJob")
    assert normalised(json.loads(text)) != normalised(changed)


def test_a_printed_plan_masks_secrets_and_shows_zips_and_refs_by_what_they_are():
    code = b"PK\x03\x04 not really a zip"
    params = {"FunctionName": "f", "Code": {"ZipFile": base64.b64encode(code).decode()},
              "Environment": {"Variables": [{"Key": "COS_MATTING_CALLBACK_KEYS", "Value": "s3cret-value"},
                                            {"Key": "COS_MATTING_CALLBACK_URL", "Value": Ref("callback_url")},
                                            {"Key": "COS_MATTING_BUCKET", "Value": "b-1"}]}}
    shown = printable(params)
    text = json.dumps(shown)
    assert "s3cret-value" not in text
    assert shown["Environment"]["Variables"] == [{"Key": "COS_MATTING_CALLBACK_KEYS", "Value": "****"},
                                                 {"Key": "COS_MATTING_CALLBACK_URL", "Value": "${callback_url}"},
                                                 {"Key": "COS_MATTING_BUCKET", "Value": "b-1"}]
    assert shown["Code"]["ZipFile"] == f"<zip {len(code)} bytes, sha256:{hashlib.sha256(code).hexdigest()[:12]}>"
    call = Call("scf", "UpdateFunctionConfiguration", params, "update", "function", "f", "Environment",
                [("COS_MATTING_CALLBACK_KEYS", "****", "****")])
    assert call.lines() == ["~ scf UpdateFunctionConfiguration f: Environment",
                            "    COS_MATTING_CALLBACK_KEYS: **** -> ****"]
    assert "s3cret-value" not in json.dumps(call.to_json())


def test_the_code_hash_is_compared_in_either_encoding_and_never_matches_other_bytes():
    data = b"zip bytes"
    digest = hashlib.sha256(data).digest()
    assert same_code(digest.hex(), data) and same_code(digest.hex().upper(), data)
    assert same_code(base64.b64encode(digest).decode(), data)
    assert not same_code(hashlib.sha256(b"other").hexdigest(), data) and not same_code("", data)


def test_stages_overlap_only_where_one_watches_what_the_other_watches_or_writes_on_the_same_bucket():
    """`stage.overlaps` on the settings two stages run with: watched/watched and watched/output overlaps on one
    bucket and region count, either way round; two output prefixes, another bucket or a stage whose bucket does not
    load (it cannot act anywhere) do not; a stage whose other settings this release refuses still does."""
    from deploy.stage import DeployedFunction, DeployedStage, overlaps, places

    base = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou",
            "COS_MATTING_DEPLOYMENT": "cos-matting-x"}

    def stage(name, **env):
        fn = DeployedFunction.from_answer("submit", {"FunctionName": f"cos-matting-{name}-submit", "Environment": {
            "Variables": [{"Key": k, "Value": v} for k, v in {**base, **env}.items()]}})
        return DeployedStage("cos-matting", name, "ap-guangzhou", "default", "", {"submit": fn})

    def found(mine, *others):
        return [(o.other, o.mine[0], o.mine[3], o.theirs[0], o.theirs[3])
                for o in overlaps("me", places({**base, **mine}), list(others))]

    people = stage("people", COS_MATTING_WATCH_PREFIXES="input/people/")
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/"}, people) == [
        ("people", "COS_MATTING_WATCH_PREFIXES", "input/", "COS_MATTING_WATCH_PREFIXES", "input/people/")]
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/people/x/"}, people)  # under it
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/studio/"}, people) == []  # disjoint; both write matting/
    assert found({"COS_MATTING_WATCH_PREFIXES": "matting/p/", "COS_MATTING_OUTPUT_BUCKET": "out-1250000000"},
                 people) == [("people", "COS_MATTING_WATCH_PREFIXES", "matting/p/", "COS_MATTING_OUTPUT_PREFIX",
                              "matting/")]
    watcher = stage("w", COS_MATTING_WATCH_PREFIXES="matting/", COS_MATTING_OUTPUT_BUCKET="out-1250000000")
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/"}, watcher) == [
        ("w", "COS_MATTING_OUTPUT_PREFIX", "matting/", "COS_MATTING_WATCH_PREFIXES", "matting/")]
    elsewhere = stage("e", COS_MATTING_BUCKET="other-1250000000", COS_MATTING_WATCH_PREFIXES="input/")
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/"}, elsewhere) == []
    # settings this release refuses (an older release's stage runs its own check): where its variables say
    refused = stage("b", COS_MATTING_WATCH_PREFIXES="input/", COS_MATTING_MAX_SIZE_MB="none")
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/"}, refused) == [
        ("b", "COS_MATTING_WATCH_PREFIXES", "input/", "COS_MATTING_WATCH_PREFIXES", "input/")]
    nowhere = stage("n", COS_MATTING_BUCKET="no bucket", COS_MATTING_WATCH_PREFIXES="input/")  # cannot act at all
    assert found({"COS_MATTING_WATCH_PREFIXES": "input/"}, nowhere) == []
