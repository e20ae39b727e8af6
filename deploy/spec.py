"""What `cos-matting deploy` wants to exist, read from serverless.yml (the one declaration).

serverless.yml is resolved with the deploy environment (.env over the process
environment; a setting nobody set is empty), checked by deploy/checks.py, and turned
into plain typed values shaped like the SCF and CAM API fields they become:

* functions: name, handler, runtime, memory, timeout, description, role, layer, the
  environment with every empty value left out (SCF: a variable's value is never empty,
  the SDK's Variable model, tencentcloud/scf/v20180416/models.py), dead letter, reserved concurrency, tags;
* triggers in the toolkit's CreateTrigger shapes (tencent-component-toolkit 2.27.6
  `lib/modules/triggers/{cos,timer,http}.js`);
* the function role (trust scf.qcloud.com) and its policy (deploy/cam-policy.json
  rendered by deploy/policy.py), the layer (deploy/layer/serverless.yml's name).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from . import checks
from .alarms import wanted as wanted_alarms
from .components import CosTrigger, HttpTrigger, ServerlessFile, TimerTrigger, function_environment
from .files import load_layer, load_serverless
from .stage import TAG_APP, TAG_STAGE, policy_name, role_name

CALLBACK_URL = "COS_MATTING_CALLBACK_URL"
# What the settings check puts in COS_MATTING_CALLBACK_URL while the Function URL does not exist yet
# (first deploy): a URL of the same form, so the check judges the environment the functions will get.
URL_STAND_IN = "https://function-url.invalid/"
# Functions that start jobs and so sign callback URLs; the callback function itself does not need its own URL.
NEEDS_CALLBACK_URL = ("submit", "reconcile")
CONCURRENCY = "COS_MATTING_DEPLOY_{}_CONCURRENCY"
TRUST = {"version": "2.0", "statement": [{"action": "name/sts:AssumeRole", "effect": "allow",
                                          "principal": {"service": ["scf.qcloud.com"]}}]}


class SpecError(ValueError):
    """serverless.yml or the environment cannot be deployed as they are; the message says why."""


@dataclass
class TriggerSpec:
    function: str  # key in functions
    type: str  # cos | timer | http
    name: str
    desc: str  # TriggerDesc as CreateTrigger takes it
    enable: bool = True
    qualifier: str = "$DEFAULT"


@dataclass
class FunctionSpec:
    key: str
    name: str
    handler: str
    runtime: str
    memory: int
    timeout: int
    description: str
    role: str
    env: Dict[str, str]
    dead_letter: Optional[Dict[str, str]] = None
    reserved: Optional[int] = None  # instances; None = the account's shared pool
    public_access: bool = True
    tags: List[Dict[str, str]] = field(default_factory=list)


@dataclass
class Spec:
    app: str
    stage: str
    region: str
    namespace: str
    role: str
    own_role: bool  # deploy made it (named from app and stage): deploy may rewrite and delete it
    policy_name: str
    policy: Dict[str, Any]  # rendered without the owner UIN when it has to be looked up (see owner_uin)
    owner_uin: str  # "" = ask CAM (GetUserAppId) at deploy time
    layer_name: str
    layer_runtimes: List[str]
    functions: Dict[str, FunctionSpec]
    triggers: List[TriggerSpec]
    retry_num: int = 2
    msg_ttl: int = 21600
    environ: Dict[str, str] = field(default_factory=dict)
    alarms: List[Any] = field(default_factory=list)  # deploy/alarms.py AlarmSpec, from serverless.yml's alarms

    def final_env(self, key: str, callback_url: Optional[str]) -> Dict[str, str]:
        """The environment function `key` gets: serverless.yml + .env without empty values, plus what deploy
        adds itself (the callback's Function URL for the functions that start jobs)."""
        env = dict(self.functions[key].env)
        if key in NEEDS_CALLBACK_URL and callback_url:
            env[CALLBACK_URL] = callback_url
        return env

    def check_env(self, key: str, callback_url: Optional[str]) -> None:
        """The check the function runs at cold start (shared/config.py `load_settings`) on its final
        environment; SpecError naming the variable if it would not start."""
        from shared.config import ConfigError, load_settings

        try:
            load_settings(self.final_env(key, callback_url))
        except ConfigError as exc:
            raise SpecError(f"function {self.functions[key].name}: {exc} (its cold start would fail: "
                            "fix .env and deploy again; nothing was written)") from None

    def ordered(self) -> List[FunctionSpec]:
        """callback first: its Function URL goes into the others' settings."""
        return sorted(self.functions.values(), key=lambda f: (f.key != "callback", f.key))


def deploy_environ(base: Mapping[str, str], stage: Optional[str] = None) -> Dict[str, str]:
    """.env.example's values (its defaults; empty ones stay unset) under `base` (the process environment
    with the user's .env over it, as the CLI reads them)."""
    environ = dict(checks.read_dotenv(checks.ENV_EXAMPLE))
    environ.update(base)
    if stage:
        environ["COS_MATTING_DEPLOY_STAGE"] = stage
    if not environ.get("COS_MATTING_DEPLOY_STAGE"):
        environ["COS_MATTING_DEPLOY_STAGE"] = "dev"
    return environ


def _trigger(t: Any) -> TriggerSpec:
    p = t.parameters
    if isinstance(t, CosTrigger):
        desc = json.dumps({"event": p.events, "filter": {"Prefix": p.filter.prefix, "Suffix": p.filter.suffix}})
        return TriggerSpec(t.function, "cos", p.bucket, desc, p.enable, p.qualifier)
    if isinstance(t, TimerTrigger):
        return TriggerSpec(t.function, "timer", p.name, p.cronExpression, p.enable, p.qualifier)
    assert isinstance(t, HttpTrigger)
    desc = json.dumps({"AuthType": p.authType, "NetConfig": {"EnableIntranet": p.netConfig.enableIntranet,
                                                              "EnableExtranet": p.netConfig.enableExtranet}})
    return TriggerSpec(t.function, "http", p.name or "url-trigger", desc, True, p.qualifier)


def _int(environ: Mapping[str, str], name: str, default: Optional[int], low: int, high: int) -> Optional[int]:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SpecError(f"{name} must be a whole number from {low} to {high} (got {raw!r})")
    return int(raw)


def build(environ: Mapping[str, str], serverless: Path = checks.SERVERLESS, layer_file: Path = checks.LAYER,
          strict: bool = True) -> Spec:
    """The desired deployment; SpecError names the first setting that makes it impossible. `strict=False`
    (what `--destroy` and `info` need: names, not settings) skips the checks of the settings."""
    from shared.config import ConfigError, known_variables

    from .files import ConfigFileError
    from .policy import PolicyError, render, values_from

    from .stage import stage_problem

    problem = stage_problem(environ.get("COS_MATTING_DEPLOY_STAGE") or "")
    if problem:  # one clear line before serverless.yml's schema lists every name the stage breaks
        raise SpecError(problem)
    if not strict:  # finding a stage needs its region and names, not the bucket it works on
        if not (environ.get("COS_MATTING_REGION") or "").strip():
            raise SpecError("COS_MATTING_REGION is required: the region the stage is deployed in (in .env or the "
                            "environment)")
        if not (environ.get("COS_MATTING_BUCKET") or "").strip():
            environ = {**environ, "COS_MATTING_BUCKET": checks.PLACEHOLDERS["COS_MATTING_BUCKET"]}
    try:
        sf: ServerlessFile = load_serverless(serverless, environ)
        layer = load_layer(layer_file, environ)
    except ConfigFileError as exc:
        raise SpecError(str(exc)) from None
    problems = checks.problems(sf) if strict else []
    if problems:
        raise SpecError("serverless.yml: " + "\nserverless.yml: ".join(problems))
    inputs = sf.inputs
    known = set(known_variables())
    functions: Dict[str, FunctionSpec] = {}
    for key, fn in inputs.functions.items():
        env = {k: v for k, v in function_environment(sf, key).items() if v != "" and k in known}
        env.pop(CALLBACK_URL, None)  # deploy sets it from the callback's Function URL (NEEDS_CALLBACK_URL)
        raw_tags = inputs.tags or []
        tags = ([{"Key": k, "Value": v} for k, v in raw_tags.items()] if isinstance(raw_tags, dict)
                else [{"Key": t.key, "Value": t.value} for t in raw_tags])
        # app and stage on every function: how `deploy/stage.py` finds the stage (ListFunctions by tag)
        tags = [t for t in tags if t["Key"] not in (TAG_APP, TAG_STAGE)] + \
            [{"Key": TAG_APP, "Value": sf.app}, {"Key": TAG_STAGE, "Value": sf.stage}]
        dead = fn.deadLetter
        functions[key] = FunctionSpec(
            key=key, name=fn.name or f"{sf.app}-{sf.stage}-{key}", handler=fn.handler or "index.main_handler",
            runtime=fn.runtime or inputs.runtime or "Python3.10", memory=fn.memorySize or inputs.memorySize or 128,
            timeout=fn.timeout or inputs.timeout or 3, description=fn.description or inputs.description or "",
            role=fn.role or role_name(sf.app, sf.stage), env=env,
            dead_letter={"Type": dead.type, "Name": dead.name, **({"FilterType": dead.filterType}
                                                                  if dead.filterType else {})}
            if dead and dead.type and dead.name else None,
            reserved=_int(environ, CONCURRENCY.format(key.upper()), None, 0, 1000),
            public_access=inputs.publicAccess is not False, tags=tags)
    roles = {f.role for f in functions.values()}
    if len(roles) != 1:
        raise SpecError("every function needs the same role (COS_MATTING_DEPLOY_ROLE, or empty: deploy creates "
                        f"{role_name(sf.app, sf.stage)})")
    role = roles.pop()
    owner = environ.get("COS_MATTING_DEPLOY_OWNER_UIN", "")
    try:
        policy = render(values_from({**environ, "COS_MATTING_DEPLOY_OWNER_UIN": owner or "0"}))
    except (PolicyError, ConfigError, ConfigFileError) as exc:
        if strict:
            raise SpecError(f"the role's policy: {exc}") from None
        policy = {}  # not needed to find or remove a stage
    spec = Spec(app=sf.app, stage=sf.stage, region=inputs.region, namespace=inputs.namespace or "default", role=role,
                own_role=role == role_name(sf.app, sf.stage), policy_name=policy_name(sf.app, sf.stage),
                policy=policy, owner_uin=owner, layer_name=layer.inputs.name,
                layer_runtimes=list(layer.inputs.runtimes), functions=functions,
                triggers=[_trigger(t) for t in inputs.triggers],
                retry_num=_int(environ, "COS_MATTING_DEPLOY_RETRY_NUM", 2, 0, 2) or 0,
                msg_ttl=_int(environ, "COS_MATTING_DEPLOY_MSG_TTL", 21600, 60, 21600) or 21600,
                environ=dict(environ), alarms=wanted_alarms(sf.alarms, functions))
    if strict:  # the callback URL is checked again with its real value before the first write (apply.py)
        for key in spec.functions:
            spec.check_env(key, URL_STAND_IN)
    return spec


def policy_for(spec: Spec, owner_uin: str) -> Dict[str, Any]:
    """The policy with the owner UIN (known only once CAM has answered GetUserAppId, if not configured)."""
    text = json.dumps(spec.policy).replace("qcs::cam::uin/0:", f"qcs::cam::uin/{owner_uin}:")
    return json.loads(text)
