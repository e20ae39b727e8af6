"""A stage as it lives in the cloud: its deployed functions and the settings they run with.

The one home of "which stage is this acting on, and where did its settings come from?".
`deploy`, `doctor`, `info` and every operator command (`status`, `retry`, `logs`, ...) resolve a
stage here, through the SCF API (the real tencentcloud SDK; `COS_MATTING_ENDPOINT` points it at
the local cloud, which serves the same API). The deployed functions are the truth about a stage:
the shell and `.env` are only input to `deploy`, never a picture of what runs.

How a stage is found (no local state file involved, so it works from a fresh clone):
- by tag: `ListFunctions` with `Filters: [{"Name": "tag-<key>", "Values": [...]}]` (the SDK's
  tencentcloud/scf/v20180416/models.py, ListFunctionsRequest.Filters docstring: "如果通过标签进行过滤：
  Filter 中 Name 字段需要以 `tag-` 起始，`-` 后跟着标签名称"), on the tags deploy puts on every
  function (`TAG_APP`, `TAG_STAGE`): one listing of the app's functions finds the stage and the
  app's other stages (`DeployedStage.others`, what `neighbours` reads for `overlaps`);
- else by the names serverless.yml gives (`${app}-${stage}-<kind>`), so a stage deployed before
  the stage tag existed is still found.
Each function is then read with `GetFunction` (SCF API GetFunction, 583/18584): `Environment.Variables` are the
settings it runs with (SCF returns them as written), `ModTime`, `Status`, `Runtime`, `Role`,
`ClsLogsetId` / `ClsTopicId` (where its logs go) and `Triggers` (the Function URL in
`TriggerDesc.NetConfig.ExtranetUrl`, SCF "Function URL" 583/100227).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .clients import Api, ApiCallError

WATCH, OUTPUT = "COS_MATTING_WATCH_PREFIXES", "COS_MATTING_OUTPUT_PREFIX"
OUTPUT_BUCKET = "COS_MATTING_OUTPUT_BUCKET"

KINDS = ("submit", "callback", "reconcile")
APP = "cos-matting"  # serverless.yml `app:` (a literal there, so a fresh clone knows it)
TAG_APP, TAG_STAGE = "app", "stage"
FN_MISSING = ("ResourceNotFound.Function", "ResourceNotFound.FunctionName")
ENDPOINT = "COS_MATTING_ENDPOINT"
# Settings a deployed function has that must never be printed (values masked in `info`, plans, logs).
SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD")


class StageNotFound(LookupError):
    """No function of the stage exists where we looked; the message says where and how to deploy it."""


def is_secret(name: str) -> bool:
    return any(part in name.upper() for part in SECRET_NAMES)


def shown(name: str, value: str) -> str:
    """A setting as printed: a secret masked; in a URL (COS_MATTING_NOTIFY_URL) the query and any user:password,
    where a webhook's own key rides (https://.../send?key=...), masked too."""
    if is_secret(name) and value:
        return "****"
    if name.endswith("_URL") and value and ("?" in value or "@" in value.split("?")[0]):
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        host = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{'****@' if '@' in parts.netloc else ''}{host}{parts.path}" + \
            ("?****" if parts.query else "")
    return value


def masked(env: Mapping[str, str]) -> Dict[str, str]:
    return {k: shown(k, v) for k, v in env.items()}


def function_name(app: str, stage: str, kind: str) -> str:
    return f"{app}-{stage}-{kind}"


# The longest name made from a stage is its function `<app>-<stage>-reconcile`: SCF's FunctionName is 2-60
# letters, digits, - and _, starting with a letter (SCF API CreateFunction, 583/18586). The role
# `<app>-<stage>-role` (CAM API CreateRole, 598/36225: 1-128 of letters, digits and +=,.@-_), the layer
# (1-64) and COS_MATTING_DEPLOYMENT `<app>-<stage>` (1-64, shared/identity.py) fit whenever it does.
STAGE_CHARS = "letters, digits and -"


def stage_problem(stage: str, app: str = APP) -> Optional[str]:
    """Why `stage` cannot name a stage (None when it can), naming the setting and the allowed values."""
    import re

    longest = max(len(function_name(app, "", k)) for k in KINDS)
    if re.fullmatch(r"[A-Za-z0-9-]+", stage or "") and len(stage) <= 60 - longest:
        return None
    return (f"stage {stage!r} (--stage or COS_MATTING_DEPLOY_STAGE): {STAGE_CHARS}, 1-{60 - longest} characters "
            f"(its function {function_name(app, '<stage>', 'reconcile')} must fit SCF's 60)")


# Per-stage CAM names: each stage has its own role and policy, so deploying or destroying one stage never
# touches another's grants. What deploy made carries MADE_BY in its description (how destroy recognises it).
def role_name(app: str, stage: str) -> str:
    return f"{app}-{stage}-role"


def policy_name(app: str, stage: str) -> str:
    return f"{app}-{stage}-policy"


MADE_BY = "(made by cos-matting deploy)"
# The Description `cos-matting localcloud --trigger/--function-url` gives the functions it wires as stage `local`
# (localcloud/scfbackend.py `expose`): tagged like a stage, but deploy did not make them and cannot remove them.
WIRED_BY_LOCALCLOUD = "wired by cos-matting localcloud"
LAYER_MARK = "cos-matting dependencies sha256:"  # a layer version deploy published: its bytes' hash follows


def region_of(env: Mapping[str, str]) -> str:
    """The region a command acts in when none is given: the pipeline's setting, else the one SCF sets."""
    return env.get("COS_MATTING_REGION") or env.get("TENCENTCLOUD_REGION") or ""


def target_label(env: Mapping[str, str], region: Optional[str] = None) -> str:
    """Where a command acts, for the line it prints on stderr before any write."""
    region = region or region_of(env)
    endpoint = (env.get(ENDPOINT) or "").strip()
    return f"the local cloud at {endpoint}" if endpoint else f"Tencent Cloud, region {region or '(unset)'}"


@dataclass(frozen=True)
class DeployedFunction:
    kind: str
    name: str
    namespace: str
    runtime: str
    handler: str
    status: str
    modified: str  # GetFunction.ModTime, "2026-12-06 12:00:00"
    role: str
    env: Dict[str, str]  # Environment.Variables: the settings the function runs with
    tags: Dict[str, str]
    triggers: List[Dict[str, Any]]
    cls_logset_id: str = ""
    cls_topic_id: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_answer(cls, kind: str, got: Mapping[str, Any]) -> "DeployedFunction":
        variables = ((got.get("Environment") or {}).get("Variables")) or []
        return cls(kind=kind, name=got.get("FunctionName") or "", namespace=got.get("Namespace") or "default",
                   runtime=got.get("Runtime") or "", handler=got.get("Handler") or "", status=got.get("Status") or "",
                   modified=got.get("ModTime") or "", role=got.get("Role") or "",
                   env={v["Key"]: v.get("Value") or "" for v in variables if v.get("Key")},
                   tags={t["Key"]: t.get("Value") or "" for t in got.get("Tags") or [] if t.get("Key")},
                   triggers=list(got.get("Triggers") or []), cls_logset_id=got.get("ClsLogsetId") or "",
                   cls_topic_id=got.get("ClsTopicId") or "", raw=dict(got))

    def function_url(self) -> Optional[str]:
        for trig in self.triggers:
            if trig.get("Type") == "http":
                url = trigger_url(trig.get("TriggerDesc") or "")
                if url:
                    return url
        return None


def trigger_url(desc: str) -> Optional[str]:
    """The Function URL of an http trigger's TriggerDesc (`NetConfig.ExtranetUrl`, else the intranet one)."""
    try:
        net = (json.loads(desc or "{}") or {}).get("NetConfig") or {}
    except ValueError:
        return None
    return net.get("ExtranetUrl") or net.get("IntranetUrl") or None


@dataclass(frozen=True)
class DeployedStage:
    app: str
    stage: str
    region: str
    namespace: str
    target: str  # target_label(): the local cloud's URL, or Tencent Cloud and the region
    functions: Dict[str, DeployedFunction]
    # the app's other stages in the namespace, {stage: {kind: function name}}, from the same listing
    others: Dict[str, Dict[str, str]] = field(default_factory=dict)

    @property
    def function_url(self) -> Optional[str]:
        fn = self.functions.get("callback")
        return fn.function_url() if fn else None

    def settings_env(self, kind: str = "submit") -> Dict[str, str]:
        """The environment `kind` runs with (its deployed variables). submit's by default: it is the
        function that makes jobs, so it holds the callback URL and keys a job needs."""
        fn = self.functions.get(kind) or next(iter(self.functions.values()))
        return dict(fn.env)

    def missing(self) -> List[str]:
        return [k for k in KINDS if k not in self.functions]

    def removal(self) -> str:
        """How to remove this stage, for a line that names it as the one in the way."""
        if any(fn.raw.get("Description") == WIRED_BY_LOCALCLOUD for fn in self.functions.values()):
            return (f"stop the `cos-matting localcloud` that wired stage {self.stage} (deploy did not make it: "
                    "`deploy --destroy` cannot remove it)")
        return f"remove stage {self.stage} with `cos-matting deploy --destroy --stage {self.stage}`"


def listed(scf: Api, app: str, namespace: str) -> Dict[str, Dict[str, str]]:
    """{stage: {kind: function name}} of the app's functions in the namespace: one ListFunctions (a page per
    100 functions) filtered by the app tag, each put under its `stage` tag (the SDK's Function model, the
    ListFunctions answer, carries `Tags`), else under the stage its name `<app>-<stage>-<kind>` gives."""
    filters = [{"Name": f"tag-{TAG_APP}", "Values": [app]}]
    found: Dict[str, Dict[str, str]] = {}
    offset = 0
    while True:
        try:
            page = scf.call("ListFunctions", {"Namespace": namespace, "Filters": filters, "Offset": offset,
                                              "Limit": 100})
        except ApiCallError as exc:
            # tag filters refused (the SDK's errorcodes.py: InvalidParameterValue.Filters, "Filters参数错误"):
            # `locate` still finds a stage by name. Any other refusal is raised: an empty listing would also
            # switch the overlap check off without a word (876/18582 documents `tag-<key>` filters)
            if exc.code != "InvalidParameterValue.Filters":
                raise
            return found
        for fn in page.get("Functions") or []:
            name = fn.get("FunctionName") or ""
            kind = name.rsplit("-", 1)[-1]
            tags = {t.get("Key"): t.get("Value") for t in fn.get("Tags") or []}
            stage = tags.get(TAG_STAGE) or (name[len(app) + 1:-len(kind) - 1] if name.startswith(app + "-") else "")
            if kind in KINDS and stage:  # tagged as ours: a function named otherwise in serverless.yml still counts
                found.setdefault(stage, {}).setdefault(kind, name)
        offset += 100
        if offset >= int(page.get("TotalCount") or 0):
            return found


def _read(scf: Api, names: Mapping[str, str], namespace: str) -> Dict[str, Dict[str, Any]]:
    """{kind: GetFunction answer} of the named functions that exist."""
    found: Dict[str, Dict[str, Any]] = {}
    for kind, name in names.items():
        got = scf.get("GetFunction", {"FunctionName": name, "Namespace": namespace}, FN_MISSING)
        if got is not None:
            found[kind] = got
    return found


def locate(scf: Api, app: str, stage: str, namespace: str = "default",
           stages: Optional[Mapping[str, Dict[str, str]]] = None) -> Dict[str, Dict[str, Any]]:
    """{kind: GetFunction answer} of every function of the stage that exists (by tag, then by name); `stages`:
    the app's listing (`listed`) when it was read already."""
    stages = listed(scf, app, namespace) if stages is None else stages
    return _read(scf, {**{k: function_name(app, stage, k) for k in KINDS}, **stages.get(stage, {})}, namespace)


def resolve(env: Mapping[str, str], stage: str, *, app: str = APP, region: Optional[str] = None,
            namespace: str = "default", scf: Optional[Api] = None,
            only: Optional[Mapping[str, str]] = None) -> DeployedStage:
    """The stage as deployed; StageNotFound when none of its functions exists. `only` ({kind: name}, from a
    listing already made) reads just those functions, with no listing of its own."""
    region = region or region_of(env)
    target = target_label(env, region)
    scf = scf or Api("scf", env, region)
    stages = {} if only is not None else listed(scf, app, namespace)
    found = _read(scf, only, namespace) if only is not None else locate(scf, app, stage, namespace, stages)
    if not found:
        raise StageNotFound(f"stage {stage!r}: no function {function_name(app, stage, '{submit,callback,reconcile}')} "
                            f"in namespace {namespace} on {target}; deploy it with `cos-matting deploy --stage {stage}`")
    functions = {k: DeployedFunction.from_answer(k, got) for k, got in found.items()}
    return DeployedStage(app=app, stage=stage, region=region, namespace=namespace, target=target,
                         functions=functions, others={s: n for s, n in stages.items() if s != stage})


def operator_env(deployed: DeployedStage, user_env: Mapping[str, str], kind: str = "submit") -> Dict[str, str]:
    """The environment an operator command runs with against `deployed`: the function's own settings,
    plus only what SCF would add and the user must supply (credentials, the endpoint, the region)."""
    env = deployed.settings_env(kind)
    for name, value in user_env.items():
        if (name.startswith(("TENCENTCLOUD_", "TENCENT_")) or name == ENDPOINT) and value:
            env.setdefault(name, value)
    if deployed.region:
        env.setdefault("TENCENTCLOUD_REGION", deployed.region)
    return env


def differing(deployed_env: Mapping[str, str], shell_env: Mapping[str, str]) -> List[Tuple[str, str, str]]:
    """(name, deployed value, shell value) of COS_MATTING_* settings where the shell says otherwise than
    the deployed function: worth a warning, since the deployed value is the one used. Values as printed
    (`shown`): a secret is never repeated, not even the user's own."""
    out = []
    for name, value in sorted(shell_env.items()):
        if name.startswith("COS_MATTING_") and name != ENDPOINT and not name.startswith("COS_MATTING_DEPLOY_") \
                and value and name in deployed_env and deployed_env[name] != value:
            out.append((name, shown(name, deployed_env[name]), shown(name, value)))
    return out


# -- where a stage acts on COS, and stages that would act on the same objects --------------------------

Place = Tuple[str, str, str, str]  # (setting, bucket, region, prefix)


PLACE_FIELDS = ("bucket", "region", "watch_prefixes", "output_bucket", "output_region", "output_prefix")


def places(env: Mapping[str, str]) -> List[Place]:
    """Where a stage acts, from the settings its submit runs with: the prefixes it watches on its bucket (submit
    takes only uploads of that bucket under them, whatever COS trigger fires it, and reconcile's sweep lists
    them: shared/submit.py `skip_reason`, shared/reconcile.py's sweep) and the prefix its outputs go to. When the
    settings do not load, where those variables alone say (the same check on them only): a stage an older release
    deployed runs that release's check, which may take what this one refuses (e.g. a rule outside the watched
    prefixes), so it still acts there. [] only when even they do not load."""
    from shared.config import ConfigError, env_name, load_settings

    names = [env_name(f) for f in PLACE_FIELDS]
    for settings_env in (env, {n: env[n] for n in names if n in env}):
        try:
            s = load_settings(settings_env)
        except ConfigError:
            continue
        return [(WATCH, s.bucket, s.region, p) for p in s.watch_prefixes] + \
            [(OUTPUT, s.out_bucket, s.out_region, s.output_prefix)]
    return []


@dataclass(frozen=True)
class Overlap:
    """Stage `stage` and stage `other` act on the same objects: one line saying so, and its fix."""

    stage: str
    other: str
    mine: Place
    theirs: Place
    removal: str  # how to remove stage `other` (`DeployedStage.removal`)

    def problem(self) -> str:
        (what, bucket, region, prefix), (their_what, _, _, theirs) = self.mine, self.theirs
        doing = {WATCH: "watches", OUTPUT: "writes its outputs to"}
        if what == WATCH and their_what == WATCH:
            why = "both would matte each upload there"
        elif what == WATCH:
            why = f"stage {self.stage} would matte stage {self.other}'s outputs again"
        else:
            why = f"stage {self.other} would matte stage {self.stage}'s outputs again"
        return (f"stage {self.stage} {doing[what]} {prefix!r} and stage {self.other} {doing[their_what]} {theirs!r} "
                f"on bucket {bucket} ({region}): the prefixes overlap, {why}")

    def fix(self) -> str:
        # a deployed stage's output prefix is serverless.yml's literal (never under a watched prefix): its bucket
        # is the setting a stage has
        change = (f"set {WATCH} of stage {self.stage} to a prefix outside {self.theirs[3]!r}" if self.mine[0] == WATCH
                  else f"set {OUTPUT_BUCKET} of stage {self.stage} to another bucket")
        return f"{change}, or {self.removal}"


def overlaps(stage: str, mine: List[Place], others: List[DeployedStage]) -> List[Overlap]:
    """Where this stage's watched or output prefixes and another stage's watched or output prefixes overlap on one
    bucket and region (one a prefix of the other, or equal). Two output prefixes may overlap: no upload comes
    of it."""
    from shared.config import overlap

    found = []
    for other in others:
        for theirs in places(other.settings_env()):
            for place in mine:
                if place[1:3] == theirs[1:3] and overlap(place[3], theirs[3]) and WATCH in (place[0], theirs[0]):
                    found.append(Overlap(stage, other.stage, place, theirs, other.removal()))
    return found


def neighbours(scf: Api, stages: Mapping[str, Mapping[str, str]], *, app: str = APP, region: str = "",
               namespace: str = "default") -> List[DeployedStage]:
    """The stages of a listing (`listed`, `DeployedStage.others`) with the settings they run with: each read
    through `resolve` with its submit function only (one GetFunction a stage; any one function when submit is
    gone: every function has the same settings)."""
    found = []
    for stage, names in sorted(stages.items()):
        kind = "submit" if "submit" in names else sorted(names)[0]
        try:
            found.append(resolve({}, stage, app=app, region=region, namespace=namespace, scf=scf,
                                 only={kind: names[kind]}))
        except StageNotFound:  # removed since the listing
            continue
    return found


# -- the rest of a stage, found by name (CAM and layers have no tag filter in these APIs) -------------

ROLE_MISSING = ("InvalidParameter.RoleNotExist", "ResourceNotFound.RoleNotExist")
LAYER_MISSING = ("ResourceNotFound.Layer", "ResourceNotFound.LayerVersion")


def find_role(cam: Api, name: str) -> Optional[Dict[str, Any]]:
    """CAM GetRole's RoleInfo (None when no such role)."""
    got = cam.get("GetRole", {"RoleName": name}, ROLE_MISSING)
    return None if got is None else got.get("RoleInfo") or {}


def find_policy(cam: Api, name: str) -> Optional[Dict[str, Any]]:
    """The custom policy named exactly `name` (CAM ListPolicies by Keyword, then the exact name) with its
    document parsed (`GetPolicy`, which answers it reformatted: compare with `normalised`)."""
    page = 1
    while True:
        listed = cam.call("ListPolicies", {"Keyword": name, "Scope": "Local", "Rp": 200, "Page": page})
        for row in listed.get("List") or []:
            if row.get("PolicyName") == name:
                got = cam.call("GetPolicy", {"PolicyId": row["PolicyId"]})
                return {**row, **got, "Document": json.loads(got.get("PolicyDocument") or "{}")}
        if page * 200 >= int(listed.get("TotalNum") or 0):
            return None
        page += 1


def attached(cam: Api, role: str) -> List[Dict[str, Any]]:
    """The policies attached to `role` (CAM ListAttachedRolePolicies; [] when the role does not exist)."""
    try:
        return cam.call("ListAttachedRolePolicies", {"RoleName": role, "Page": 1, "Rp": 200}).get("List") or []
    except ApiCallError as exc:
        if exc.code in ROLE_MISSING:
            return []
        raise


def normalised(doc: Any) -> Any:
    """A CAM policy document compared by meaning: CAM's GetPolicy turns a lone action or resource string into
    a one-element array, reorders keys and escapes `/` (parsing undoes the escapes and the key order)."""
    if isinstance(doc, dict):
        return {k: (sorted(normalised(v)) if k in ("action", "resource") and isinstance(v, list) else
                    [v] if k in ("action", "resource") and isinstance(v, str) else normalised(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [normalised(v) for v in doc]
    return doc


def layer_versions(scf: Api, layer: str) -> List[Dict[str, Any]]:
    """The versions of `layer` that deploy published (their description carries LAYER_MARK), newest first."""
    listed = scf.get("ListLayerVersions", {"LayerName": layer}, LAYER_MISSING) or {}
    return [v for v in listed.get("LayerVersions") or [] if LAYER_MARK in (v.get("Description") or "")]


def triggers(scf: Api, name: str, namespace: str = "default") -> List[Dict[str, Any]]:
    """A function's triggers (SCF ListTriggers; [] when the function does not exist)."""
    got = scf.get("ListTriggers", {"FunctionName": name, "Namespace": namespace, "Limit": 100}, FN_MISSING)
    return list((got or {}).get("Triggers") or [])


def code_sha256(scf: Api, name: str, namespace: str = "default") -> str:
    """The SHA-256 of the function's code as SCF holds it: GetFunctionAddress.CodeSha256 (SCF API
    GetFunctionAddress; the SDK's GetFunctionAddressResponse: "函数的SHA256编码"). GetFunction has no code
    hash; ModTime changes with every write, configuration too. "" when SCF gives none."""
    got = scf.get("GetFunctionAddress", {"FunctionName": name, "Namespace": namespace}, FN_MISSING) or {}
    return got.get("CodeSha256") or ""


def same_code(deployed_sha: str, data: bytes) -> bool:
    """Whether SCF's CodeSha256 is that of `data`. How SCF encodes it is not documented (hex assumed here, as
    the local SCF answers; base64 of the digest accepted too), so an encoding we do not know reads as a
    difference: deploy uploads the code again, never skips a change."""
    import base64
    import hashlib

    digest = hashlib.sha256(data).digest()
    return deployed_sha.lower() == digest.hex() or deployed_sha == base64.b64encode(digest).decode("ascii")


def is_ours(fn: Mapping[str, Any], app: str, stage: str) -> bool:
    """A function deploy made for this stage: tagged with the app and this stage (or, from before the stage
    tag, tagged with the app and named as this stage's)."""
    tags = {t.get("Key"): t.get("Value") for t in fn.get("Tags") or []}
    if tags.get(TAG_APP) != app:
        return False
    if TAG_STAGE in tags:
        return tags[TAG_STAGE] == stage
    return fn.get("FunctionName") in {function_name(app, stage, k) for k in KINDS}
