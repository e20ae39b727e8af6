"""A stage resolves to its deployed functions and the settings they run with (deploy/stage.py),
found in the cloud through the SCF API with the real SDK: no state file, no shell settings.

Two stages are deployed into one local cloud with `cos-matting deploy --local`; each resolves to
its own functions and settings, and an operator command run with `--stage` uses the stage's
settings (its callback URL included) whatever the shell says.
"""
import os

import pytest

from cli.main import main
from deploy.clients import Api
from deploy.stage import StageNotFound, masked, operator_env, resolve
from helpers import BUCKET, REGION
from localcloud import LocalCloud

ENV = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_TIMEOUT_SECONDS": "5"}


@pytest.fixture
def two_stages(tmp_path, dist, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("COS_MATTING_", "TENCENTCLOUD_", "TENCENT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    cloud = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET], region=REGION).start()
    for stage, extra in (("dev", {"COS_MATTING_MAX_SIZE_MB": "100", "COS_MATTING_CALLBACK_KEYS": "dev-key-0123456789abcdef"}),
                         ("prod", {"COS_MATTING_MAX_SIZE_MB": "900", "COS_MATTING_CALLBACK_KEYS": "prod-key-0123456789abcdef",
                                  "COS_MATTING_WATCH_PREFIXES": "prod/"})):
        env_file = tmp_path / f"{stage}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**ENV, **extra}.items()))
        code = main(["deploy", "--stage", stage, "--yes", "--local", cloud.url, "--env-file", str(env_file),
                     "--dist", str(dist)])
        assert code == 0, stage
    yield cloud, tmp_path
    cloud.stop()


@pytest.mark.slow
def test_each_stage_resolves_to_its_own_functions_and_settings(two_stages, capsys):
    cloud, tmp = two_stages
    env = {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
           "TENCENTCLOUD_SECRETKEY": "localsecretkey"}
    dev, prod = resolve(env, "dev"), resolve(env, "prod")
    assert sorted(dev.functions) == sorted(prod.functions) == ["callback", "reconcile", "submit"]
    assert dev.functions["submit"].name == "cos-matting-dev-submit"
    assert dev.settings_env()["COS_MATTING_MAX_SIZE_MB"] == "100"
    assert prod.settings_env()["COS_MATTING_MAX_SIZE_MB"] == "900"
    # the callback URL each stage's submit runs with is its own callback function's Function URL
    assert dev.settings_env()["COS_MATTING_CALLBACK_URL"] == dev.function_url
    assert prod.function_url and prod.function_url != dev.function_url
    assert dev.functions["submit"].status == "Active" and dev.functions["submit"].modified
    assert masked(prod.settings_env())["COS_MATTING_CALLBACK_KEYS"] == "****"
    # the operator's environment: the stage's settings, only credentials and the endpoint from the user
    op = operator_env(prod, {**env, "COS_MATTING_MAX_SIZE_MB": "5"})
    assert op["COS_MATTING_MAX_SIZE_MB"] == "900" and op["COS_MATTING_ENDPOINT"] == cloud.url
    # nothing of a stage that was never deployed
    with pytest.raises(StageNotFound, match="cos-matting deploy --stage qa"):
        resolve(env, "qa")
    # found by the SCF API alone: every read went through GetFunction / ListFunctions, no state file used
    api = Api("scf", env, REGION)
    resolve(env, "dev", scf=api)
    assert {c["action"] for c in api.sent} <= {"ListFunctions", "GetFunction"}


@pytest.mark.slow
def test_an_operator_command_with_stage_uses_the_stage_settings_not_the_shell(two_stages, capsys, monkeypatch):
    cloud, tmp = two_stages
    monkeypatch.setenv("COS_MATTING_BUCKET", BUCKET)
    monkeypatch.setenv("COS_MATTING_REGION", REGION)
    monkeypatch.setenv("COS_MATTING_MAX_SIZE_MB", "5")  # the shell disagrees with the stage
    monkeypatch.setenv("COS_MATTING_CALLBACK_KEYS", "shell-key-0123456789abcdef")  # a secret too
    code = main(["status", "--stage", "prod", "--local", cloud.url, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "stage prod on the local cloud at" in err and "cos-matting-prod-submit" in err
    assert "COS_MATTING_MAX_SIZE_MB" in err and "the stage's is used" in err
    assert "COS_MATTING_CALLBACK_KEYS" in err  # named, never printed: neither the stage's nor the shell's
    assert "prod-key-0123456789abcdef" not in err and "shell-key-0123456789abcdef" not in err
    code = main(["status", "--stage", "qa", "--local", cloud.url])
    out, err = capsys.readouterr()
    assert code == 2 and "stage 'qa'" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_refused_tag_filter_falls_back_to_names_and_any_other_refusal_is_said(two_stages):
    """ListFunctions' `tag-<key>` filter (SCF API 876/18582): refused as `InvalidParameterValue.Filters`
    (the SDK's errorcodes.py), the stage is still found by its functions' names; any other refusal of the
    listing is raised, not read as "no other stage" (which would switch deploy's overlap check off)."""
    from deploy.clients import ApiCallError

    cloud, _ = two_stages
    env = {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
           "TENCENTCLOUD_SECRETKEY": "localsecretkey"}
    cloud.faults.add("api.scf", code="InvalidParameterValue.Filters")  # the listing, the first SCF call
    dev = resolve(env, "dev")
    assert dev.functions["submit"].name == "cos-matting-dev-submit" and dev.others == {}
    assert cloud.faults.injected["api.scf"] == 1
    cloud.faults.add("api.scf", code="InvalidParameterValue.Limit")
    with pytest.raises(ApiCallError) as refused:
        resolve(env, "dev")
    assert refused.value.code == "InvalidParameterValue.Limit"
    assert resolve(env, "dev").others.keys() == {"prod"}
