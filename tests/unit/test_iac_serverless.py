"""serverless.yml and deploy/layer/serverless.yml as `cos-matting deploy` reads them.

deploy/components.py is the deployer's input schema (multi-scf's input names, read by deploy/files.py) and
deploy/rules.py the project rules (handlers, settings, recursion guard, triggers,
timeouts). That the resulting API calls are what SCF and CAM accept is tested against
the SDK's request models and the local cloud in tests/e2e/test_deploy_e2e.py.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy import checks, rules  # noqa: E402
from deploy.components import LayerFile, ServerlessFile, function_environment  # noqa: E402
from deploy.files import ConfigFileError, load_layer, load_serverless, read_yaml, resolve_variables, validate  # noqa: E402
from shared.config import known_variables, load_settings  # noqa: E402

SERVERLESS = ROOT / "serverless.yml"


@pytest.fixture(scope="module")
def environ():
    return checks.example_environ()


@pytest.fixture(scope="module")
def sf(environ):
    return load_serverless(SERVERLESS, environ)


def resolved_raw(environ):
    return resolve_variables(read_yaml(SERVERLESS), environ)


def expect_error(raw, *fragments):
    with pytest.raises(ConfigFileError) as info:
        validate(raw, ServerlessFile, "serverless.yml")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the real files ----------------------------------------------------------------------------


def test_serverless_yml_validates(sf):
    assert sf.component == "multi-scf"
    assert set(sf.inputs.functions) == {"submit", "callback", "reconcile"}
    assert sf.inputs.runtime == "Python3.10"
    for fn in sf.inputs.functions.values():
        assert fn.handler == "index.main_handler"
        assert (fn.memorySize or sf.inputs.memorySize) in (64, 128)


def test_project_rules_hold(sf):
    assert checks.problems(sf) == []


def test_layer_yml_validates_and_matches_app_and_stage(environ, sf):
    layer = load_layer(checks.LAYER, environ)
    assert isinstance(layer, LayerFile)
    assert layer.inputs.runtimes == ["Python3.10"]
    assert (layer.app, layer.stage) == (sf.app, sf.stage)  # ${output:...} resolves within one app/stage
    ref = f"${{output:{sf.stage}:{sf.app}:{layer.name}."
    assert [str(sf.inputs.layers[0].name).startswith(ref), str(sf.inputs.layers[0].version).startswith(ref)] == [True, True]
    src = layer.inputs.src if isinstance(layer.inputs.src, str) else layer.inputs.src.src
    assert (checks.LAYER.parent / src).resolve() == ROOT / "dist" / "layer"


def test_env_vars_are_known_and_required_ones_set(sf, environ):
    known = set(known_variables())
    for key in sf.inputs.functions:
        env = function_environment(sf, key)
        assert set(env) <= known, sorted(set(env) - known)
        assert env["COS_MATTING_BUCKET"] and env["COS_MATTING_REGION"]
        assert "COS_MATTING_ENDPOINT" not in env
    # Every known setting is wired (fixed literal or ${env:...}), except the local-cloud endpoint.
    assert set(function_environment(sf, "submit")) == known - {"COS_MATTING_ENDPOINT"}


def test_no_secret_in_the_file():
    raw = read_yaml(SERVERLESS)
    entries = {e["key"]: e["value"] for e in raw["inputs"]["environments"]}
    assert entries["COS_MATTING_CALLBACK_KEYS"] == "${env:COS_MATTING_CALLBACK_KEYS}"
    # Only structural literals are written in the file; everything else comes from .env.
    literals = {k for k, v in entries.items() if "${env:" not in v}
    assert literals == {"COS_MATTING_OUTPUT_PREFIX", "COS_MATTING_RECORDS_PREFIX", "COS_MATTING_DEPLOYMENT"}
    # the watched prefix is the stage's own, and the COS trigger's prefix is the same variable
    assert entries["COS_MATTING_WATCH_PREFIXES"] == "${env:COS_MATTING_WATCH_PREFIXES}"
    [cos] = [t for t in raw["inputs"]["triggers"] if t["type"] == "cos"]
    assert cos["parameters"]["filter"]["prefix"] == "${env:COS_MATTING_WATCH_PREFIXES}"
    assert entries["COS_MATTING_DEPLOYMENT"] == "${app}-${stage}"  # the deployment's id: its app and stage
    assert "TENCENT_SECRET" not in SERVERLESS.read_text()


def test_settings_build_from_the_yml_env(sf):
    for key in sf.inputs.functions:
        s = load_settings(function_environment(sf, key))
        assert s.bucket == checks.PLACEHOLDERS["COS_MATTING_BUCKET"]


def test_recursion_guard_static(sf):
    s = load_settings(function_environment(sf, "submit"))
    [cos] = [t for t in sf.inputs.triggers if t.type == "cos"]
    prefix = cos.parameters.filter.prefix
    assert prefix and prefix in s.watch_prefixes
    for guarded in (s.output_prefix, s.records_prefix):
        assert not prefix.startswith(guarded) and not guarded.startswith(prefix), (prefix, guarded)
    assert cos.parameters.bucket == f"{s.bucket}.cos.{s.region}.myqcloud.com"
    assert cos.parameters.enable is True and cos.parameters.events == "cos:ObjectCreated:*"
    # No trigger of any kind watches the output or records locations.
    assert [t.type for t in sf.inputs.triggers].count("cos") == 1


def test_function_url_and_timer(sf):
    [http] = [t for t in sf.inputs.triggers if t.type == "http"]
    assert http.function == "callback"
    assert http.parameters.authType == "NONE" and http.parameters.netConfig.enableExtranet
    [timer] = [t for t in sf.inputs.triggers if t.type == "timer"]
    assert timer.function == "reconcile" and timer.parameters.enable
    assert len(timer.parameters.cronExpression.split()) == 7  # seconds first


def test_timeouts_below_lease_and_period(sf):
    lease = load_settings(function_environment(sf, "submit")).claim_lease_seconds
    fns = sf.inputs.functions
    assert fns["submit"].timeout < lease and fns["reconcile"].timeout < lease  # both claim uploads
    assert fns["reconcile"].timeout < 600  # timer every 10 minutes


@pytest.mark.parametrize("function", ["submit", "callback", "reconcile"])
def test_handler_imports_and_is_callable(sf, function, monkeypatch):
    path = rules.handler_source(sf, function, checks.ROOT)
    assert path.is_file(), f"{path} missing (handlers are written by another engineer; rerun when they land)"
    for key, value in function_environment(sf, function).items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    spec = importlib.util.spec_from_file_location(f"_iac_handler_{function}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main_handler)


# --- the model rejects what the component would not do right --------------------------------


def test_unknown_key_fails_naming_the_path(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["functions"]["submit"]["memory"] = 128
    expect_error(raw, "inputs.functions.submit.memory", "unknown key")


def test_unknown_trigger_parameter_fails(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["triggers"][0]["parameters"]["filters"] = {"prefix": "x/"}
    expect_error(raw, "inputs.triggers[0].cos.parameters.filters", "unknown key")


def test_wrong_types_fail(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["functions"]["submit"]["timeout"] = "60"
    expect_error(raw, "inputs.functions.submit.timeout", "integer")
    raw = resolved_raw(environ)
    raw["inputs"]["environments"][0]["value"] = 300
    expect_error(raw, "inputs.environments[0].value", "string")
    raw = resolved_raw(environ)
    raw["inputs"]["memorySize"] = 100
    expect_error(raw, "inputs.memorySize", "multiple of 128")


@pytest.mark.parametrize("bucket", [
    "videos-1250000000",                                   # bare bucket name
    "videos.cos.ap-guangzhou.myqcloud.com",                # no APPID
    "https://videos-1250000000.cos.ap-guangzhou.myqcloud.com",
    "videos-1250000000.cos-website.ap-guangzhou.myqcloud.com",
])
def test_cos_bucket_must_be_full_domain(environ, bucket):
    raw = resolved_raw(environ)
    raw["inputs"]["triggers"][0]["parameters"]["bucket"] = bucket
    expect_error(raw, "inputs.triggers[0].cos.parameters.bucket", "<bucket>-<appid>.cos.<region>.myqcloud.com")


def test_disabled_cos_trigger_fails(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["triggers"][0]["parameters"]["enable"] = False
    expect_error(raw, "inputs.triggers[0].cos.parameters.enable", "disabled")
    raw = resolved_raw(environ)
    del raw["inputs"]["triggers"][0]["parameters"]["enable"]  # the component's default is false
    expect_error(raw, "inputs.triggers[0].cos.parameters.enable")


def test_disabled_timer_fails(environ):
    raw = resolved_raw(environ)
    timer = next(i for i, t in enumerate(raw["inputs"]["triggers"]) if t["type"] == "timer")
    raw["inputs"]["triggers"][timer]["parameters"]["enable"] = False
    expect_error(raw, f"inputs.triggers[{timer}].timer.parameters.enable", "never fire")


def test_cron_needs_seconds(environ):
    raw = resolved_raw(environ)
    timer = next(i for i, t in enumerate(raw["inputs"]["triggers"]) if t["type"] == "timer")
    raw["inputs"]["triggers"][timer]["parameters"]["cronExpression"] = "*/10 * * * *"
    expect_error(raw, "cronExpression", "7 fields")


def test_unknown_trigger_type_and_dangling_function(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["triggers"].append({"type": "apigw", "function": "callback", "parameters": {}})
    expect_error(raw, "inputs.triggers[3]", "unknown trigger type 'apigw'")
    raw = resolved_raw(environ)
    raw["inputs"]["triggers"][0]["function"] = "submitt"
    expect_error(raw, "triggers[0].function: 'submitt' is not a key of functions")


def test_async_retry_keys_need_async_run(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["functions"]["submit"]["retryNum"] = 2
    expect_error(raw, "inputs.functions.submit", "retryNum is only applied with asyncRunEnable")


def test_per_function_environments_would_shadow_the_shared_list(environ):
    raw = resolved_raw(environ)
    raw["inputs"]["functions"]["callback"]["environments"] = [{"key": "COS_MATTING_MODE", "value": "Mask"}]
    expect_error(raw, "functions.callback.environments: replaces the top-level environments list")


def test_missing_env_variable_is_named(environ):
    env = dict(environ)
    del env["COS_MATTING_BUCKET"]
    with pytest.raises(ConfigFileError, match=r"inputs\.environments\[0\]\.value: \$\{env:COS_MATTING_BUCKET\} is not set"):
        load_serverless(SERVERLESS, env)


# --- project rules catch a recursion-prone or inconsistent file ------------------------------


def _sf_with(environ, mutate):
    raw = resolved_raw(environ)
    mutate(raw)
    return validate(raw, ServerlessFile, "serverless.yml")


def _set_env(raw, key, value):
    for entry in raw["inputs"]["environments"]:
        if entry["key"] == key:
            entry["value"] = value
            return
    raw["inputs"]["environments"].append({"key": key, "value": value})


def test_output_prefix_under_trigger_prefix_is_caught(environ):
    def mutate(raw):
        _set_env(raw, "COS_MATTING_WATCH_PREFIXES", "input/")
        _set_env(raw, "COS_MATTING_OUTPUT_PREFIX", "input/matting/")
    found = checks.problems(_sf_with(environ, mutate))
    assert any("overlaps" in p or "would not load" in p for p in found), found


def test_trigger_prefix_covering_records_is_caught_even_if_settings_disagree(environ):
    # Settings alone would pass (watch prefix input/), but the trigger itself watches the bucket root.
    sf = _sf_with(environ, lambda raw: raw["inputs"]["triggers"][0]["parameters"]["filter"].update(prefix=""))
    found = checks.problems(sf)
    assert any("whole bucket" in p for p in found), found
    sf = _sf_with(environ, lambda raw: raw["inputs"]["triggers"][0]["parameters"]["filter"].update(prefix=".cos-matting/"))
    found = checks.problems(sf)
    assert any("overlaps the records prefix" in p for p in found), found


def test_a_watched_prefix_over_the_outputs_or_records_or_a_list_is_caught(environ):
    for prefix, problem in (("matting/", "overlaps"), (".cos-matting/", "overlaps"),
                            ("input/a/,input/b/", "a COS trigger has one prefix")):
        sf = _sf_with({**environ, "COS_MATTING_WATCH_PREFIXES": prefix}, lambda raw: None)
        found = checks.problems(sf)
        assert any(problem in p for p in found), (prefix, found)
    assert checks.problems(_sf_with({**environ, "COS_MATTING_WATCH_PREFIXES": "input/people/"}, lambda raw: None)) == []


def test_trigger_on_another_bucket_or_suffix_mismatch_is_caught(environ):
    sf = _sf_with(environ, lambda raw: raw["inputs"]["triggers"][0]["parameters"].update(
        bucket="other-1250000000.cos.ap-guangzhou.myqcloud.com"))
    assert any("is not COS_MATTING_BUCKET" in p for p in checks.problems(sf))
    sf = _sf_with(environ, lambda raw: raw["inputs"]["triggers"][0]["parameters"]["filter"].update(suffix=".jpg"))
    assert any("filter.suffix" in p for p in checks.problems(sf))
    sf = _sf_with(environ, lambda raw: raw["inputs"]["triggers"][0]["parameters"]["filter"].update(suffix=".mp4"))
    assert checks.problems(sf) == []


def test_endpoint_and_unknown_variables_are_caught(environ):
    sf = _sf_with(environ, lambda raw: _set_env(raw, "COS_MATTING_ENDPOINT", "http://127.0.0.1:9000"))
    assert any("local cloud" in p for p in checks.problems(sf))
    sf = _sf_with(environ, lambda raw: _set_env(raw, "COS_MATTING_BUCKETS", "x"))
    assert any("do not know: COS_MATTING_BUCKETS" in p for p in checks.problems(sf))


def test_timeout_rules_are_caught(environ):
    sf = _sf_with(environ, lambda raw: raw["inputs"]["functions"]["submit"].update(timeout=600))
    assert any("COS_MATTING_CLAIM_LEASE_SECONDS" in p for p in checks.problems(sf))
    sf = _sf_with(environ, lambda raw: raw["inputs"]["functions"]["reconcile"].update(timeout=900))
    found = checks.problems(sf)
    assert any("timer period" in p for p in found) and any("live reconcile run" in p for p in found), found


def test_checks_cli_passes_on_the_example(capsys):
    assert checks.main(["--example"]) == 0
    assert "ok" in capsys.readouterr().out


def test_submit_has_a_dead_letter_target(sf, environ):
    dl = sf.inputs.functions["submit"].deadLetter
    assert dl is not None and dl.name == environ["COS_MATTING_DEPLOY_DEAD_LETTER_NAME"] and dl.type
    raw = resolved_raw(environ)
    del raw["inputs"]["functions"]["submit"]["deadLetter"]
    assert any("submit.deadLetter: missing" in p for p in checks.problems(validate(raw, ServerlessFile, "serverless.yml")))
    bad = resolved_raw(environ)
    bad["inputs"]["functions"]["submit"]["deadLetter"]["queue"] = "x"
    expect_error(bad, "deadLetter", "queue")
    empty = resolved_raw(environ)
    empty["inputs"]["functions"]["submit"]["deadLetter"]["name"] = ""
    expect_error(empty, "deadLetter", "name")
    # the type is the SCF API's DeadLetterConfig.Type (583/39704): CMQ-QUEUE or CMQ-TOPIC, not "CMQ"
    assert dl.type == "CMQ-QUEUE"
    cmq = resolved_raw(environ)
    cmq["inputs"]["functions"]["submit"]["deadLetter"]["type"] = "CMQ"
    expect_error(cmq, "deadLetter.type", "CMQ-QUEUE", "CMQ-TOPIC")


@pytest.mark.parametrize("where", ["inputs", "function"])
def test_a_runtime_scf_does_not_offer_is_refused_offline_naming_the_allowed_ones(environ, where):
    """No Python3.8 on SCF (the SDK's CreateFunctionRequest.Runtime lists Python2.7, 3.6, 3.7, 3.9, 3.10)."""
    raw = resolved_raw(environ)
    (raw["inputs"] if where == "inputs" else raw["inputs"]["functions"]["submit"])["runtime"] = "Python3.8"
    message = expect_error(raw, "runtime", "Python3.10", "Python3.9")
    assert "'Python3.8'" in message  # names what it got


def test_async_retry_and_concurrency_settings_reach_the_deploy_spec(environ):
    from deploy import spec as specs

    spec = specs.build(environ)
    assert (spec.retry_num, spec.msg_ttl) == (2, 21600)
    assert spec.functions["submit"].reserved == int(environ["COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY"])
    assert spec.functions["callback"].reserved is None  # empty: the shared pool
    for key, value in (("COS_MATTING_DEPLOY_RETRY_NUM", "3"), ("COS_MATTING_DEPLOY_MSG_TTL", "10"),
                       ("COS_MATTING_DEPLOY_SUBMIT_CONCURRENCY", "-1")):
        with pytest.raises(specs.SpecError, match=key):
            specs.build({**environ, key: value})


def test_deploy_spec_leaves_empty_settings_out_and_fills_the_callback_url_itself(environ):
    from deploy import spec as specs

    spec = specs.build(environ)
    for fn in spec.functions.values():
        assert all(v != "" for v in fn.env.values()), fn.key
        assert "COS_MATTING_CALLBACK_URL" not in fn.env  # deploy sets it from the Function URL it creates
        assert "COS_MATTING_MODE" not in fn.env  # unset in .env.example: left out, the code's default applies
    assert [f.key for f in spec.ordered()][0] == "callback"
    [url] = [t for t in spec.triggers if t.type == "http"]
    assert json.loads(url.desc) == {"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}}
    [cos] = [t for t in spec.triggers if t.type == "cos"]
    assert cos.name == "videos-1250000000.cos.ap-guangzhou.myqcloud.com" and cos.enable
    assert json.loads(cos.desc) == {"event": "cos:ObjectCreated:*", "filter": {"Prefix": "input/", "Suffix": ""}}
