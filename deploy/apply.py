"""Apply a deploy.spec.Spec through the SCF and CAM APIs: plan first, then execute (or only print).

The model is Chalice's `deploy/planner.py`: the remote state is read from the cloud (no local
state file: a fresh clone or a CI runner sees what everyone else sees), a planner turns the
difference between serverless.yml and the cloud into the list of API calls (`Call`), and an
executor makes exactly those calls (`Executor`) while `--plan` only prints them. A second deploy
with no change plans no call. Every resource is found by name and tag (deploy/stage.py):
functions by their `app`/`stage` tags, the layer, role and policy by the names the stage gives
them, triggers with ListTriggers; destroy removes only what carries deploy's marks.

Two values exist only once a call has run, so calls refer to them (`Ref`) and the executor fills
them in: the layer version PublishLayerVersion answers, and the callback's Function URL, read
back after CreateTrigger from ListTriggers' `TriggerDesc.NetConfig.ExtranetUrl` (SCF "Function
URL", 583/100227: CreateTrigger's answer is not documented to carry it).

SCF applies a write asynchronously (583/37883): Status is Creating / Updating, then Active, and a
code or configuration write meanwhile is refused (FailedOperation.UpdateFunctionCode /
UpdateFunctionConfiguration, the SDK's errorcodes.py). The executor waits for Active before each
write to a function it has written, and at the end.

API shapes: the SDK's request models (tencentcloud/scf/v20180416, cam/v20190116), the calls
tencent-component-toolkit 2.27.6 makes (lib/modules/scf, lib/modules/triggers).
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from . import stage as st
from .clients import Api, ApiCallError
from .spec import NEEDS_CALLBACK_URL, TRUST, URL_STAND_IN, FunctionSpec, Spec, SpecError, TriggerSpec, \
    policy_for

FN_MISSING = st.FN_MISSING
ROLE_MISSING = st.ROLE_MISSING
LAYER_MISSING = st.LAYER_MISSING
TRIGGER_MISSING = ("ResourceNotFound.Trigger",)
POLICY_MISSING = ("InvalidParameter.PolicyIdNotExist",)
ACTIVE_TIMEOUT = 180.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class Ref:
    """A value a call of the same plan produces: "layer_version" or "callback_url"."""

    name: str

    def __str__(self) -> str:
        return "${" + self.name + "}"


@dataclass
class Call:
    """One API call of a plan, and what it changes (for the printed plan)."""

    product: str  # scf | cam
    action: str
    params: Dict[str, Any]
    verb: str  # create | update | delete | attach | detach
    kind: str  # role | policy | layer | function | code | trigger | retry | concurrency
    name: str
    detail: str = ""
    changes: List[Tuple[str, str, str]] = field(default_factory=list)  # (setting, old, new), secrets masked
    function: Optional[str] = None  # the function it writes: wait until it is Active first
    produces: Optional[str] = None  # the Ref this call's answer fills in ...
    answer_field: str = ""  # ... with this field of the answer (the callback URL is read back instead)
    missing_ok: Tuple[str, ...] = ()  # destroy: already gone is fine
    api: Optional[Api] = field(default=None, repr=False)  # the client of another kind's product (Kind)

    def line(self) -> str:
        mark = {"create": "+", "attach": "+", "update": "~", "delete": "-", "detach": "-"}[self.verb]
        return f"{mark} {self.product} {self.action} {self.name}" + (f": {self.detail}" if self.detail else "")

    def lines(self) -> List[str]:
        return [self.line()] + [f"    {k}: {old} -> {new}" for k, old, new in self.changes]

    def to_json(self) -> Dict[str, Any]:
        return {"product": self.product, "action": self.action, "verb": self.verb, "kind": self.kind,
                "name": self.name, "detail": self.detail, "params": printable(self.params),
                "changes": [{"setting": k, "old": old, "new": new} for k, old, new in self.changes]}


def printable(value: Any) -> Any:
    """Params as a plan shows them: secrets masked, zips as their size and hash, refs as ${name}."""
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, dict):
        if "Key" in value and isinstance(value.get("Value"), str):
            return {**value, "Value": st.shown(str(value["Key"]), value["Value"])}
        return {k: (f"<zip {len(base64.b64decode(v)):,d} bytes, sha256:{_sha(base64.b64decode(v))[:12]}>"
                    if k == "ZipFile" and isinstance(v, str) else printable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _show(name: str, value: Any) -> str:
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, Ref):
        return str(value)
    return "****" if st.is_secret(name) else json.dumps(value) if not isinstance(value, str) else st.shown(name, value)


def _env_map(config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    return {v["Key"]: v["Value"] for v in ((config or {}).get("Variables") or [])}


def _trigger_shape(kind: str, desc: str, enable: Any) -> Any:
    """What decides whether a trigger must change (the answer adds fields such as ExtranetUrl)."""
    on = enable in (1, True, "OPEN")
    if kind == "timer":
        cron = json.loads(desc).get("cron", "") if desc.startswith("{") else desc
        return ("timer", cron, on)
    parsed = json.loads(desc or "{}")
    if kind == "cos":
        flt = parsed.get("filter") or {}
        return ("cos", parsed.get("event"), flt.get("Prefix") or "", flt.get("Suffix") or "", on)
    net = parsed.get("NetConfig") or {}
    return ("http", parsed.get("AuthType"), bool(net.get("EnableIntranet")), bool(net.get("EnableExtranet")), on)


def function_url(trigger: Mapping[str, Any]) -> Optional[str]:
    return st.trigger_url(trigger.get("TriggerDesc") or "")


# -- the planner ---------------------------------------------------------------------------------

class Kind(Protocol):
    """Another kind of resource a stage has (say, alarms): it reads what exists with the planner's
    clients and adds the calls that make it right (`planner.add`); an executor needs an Api for each
    product its calls use (`Executor(..., apis={...})`)."""

    def plan(self, planner: "Planner") -> None: ...

    def destroy(self, planner: "Planner") -> None: ...


class Planner:
    """Reads the cloud (read calls only) and returns the calls that make it what `spec` says."""

    def __init__(self, spec: Spec, scf: Api, cam: Api, zips: Mapping[str, bytes],
                 kinds: Optional[Sequence[Kind]] = None, others: bool = True) -> None:
        self.spec, self.scf, self.cam, self.zips = spec, scf, cam, zips
        self.others = others  # refuse prefixes another stage of the app watches or writes (doctor checks it apart)
        self.kinds = tuple(kinds) if kinds is not None else (AlarmKind(),)
        self.calls: List[Call] = []
        self.callback_url: Optional[str] = None  # known now (the trigger exists), else a Ref
        self.busy: List[str] = []  # functions not Active when read: the executor waits before writing them
        self.notes: List[str] = []
        self._found: Dict[str, Any] = {}  # the role and policy as read before the first write

    def _ns(self, fn: FunctionSpec) -> Dict[str, Any]:
        return {"FunctionName": fn.name, "Namespace": self.spec.namespace}

    def add(self, call: Call) -> None:
        self.calls.append(call)

    def _created(self, kind: str, name: str) -> bool:
        """In this plan, a resource this deploy creates has nothing to read yet."""
        return any(c.kind == kind and c.verb == "create" and c.name == name for c in self.calls)

    # -- deploy ----------------------------------------------------------------------------------
    def plan(self) -> List[Call]:
        owner = self.spec.owner_uin or str(self.cam.call("GetUserAppId", {}).get("OwnerUin") or "")
        current = {fn.key: self.scf.get("GetFunction", self._ns(fn), FN_MISSING) for fn in self.spec.ordered()}
        self.busy = [got["FunctionName"] for got in current.values() if got and got.get("Status") != "Active"]
        self._refuse_foreign(current)  # before the first write: never change what another app or stage made
        self._check_environments(current)  # before the first write: refuse a stage that would not start
        self._refuse_overlaps()  # before the first write: refuse to watch or write where another stage does
        self.role()
        self.policy(owner)
        version = self.layer()
        for fn in self.spec.ordered():
            url = self.callback_url or (Ref("callback_url") if fn.key in NEEDS_CALLBACK_URL else None)
            self.function(fn, current[fn.key], self.spec.final_env(fn.key, url), version)
            declared = [t for t in self.spec.triggers if t.function == fn.key]
            for trig in declared:
                self.trigger(fn, trig)
            self.undeclared_triggers(fn, declared)
            self.concurrency(fn)
        self.retry(self.spec.functions["submit"])
        for kind in self.kinds:
            kind.plan(self)
        return self.calls

    def _refuse_foreign(self, current: Mapping[str, Optional[Dict[str, Any]]]) -> None:
        """A function, policy or role with this stage's name that deploy did not make (its tags say another app
        or stage; no MADE_BY in the description) is someone else's: refused, never rewritten."""
        spec = self.spec
        for got in current.values():
            if got and not st.is_ours(got, spec.app, spec.stage):
                tags = ", ".join(f"{t.get('Key')}={t.get('Value')}" for t in got.get("Tags") or []) or "none"
                raise SpecError(f"function {got['FunctionName']} exists but was not made by cos-matting deploy for "
                                f"stage {spec.stage} (tags: {tags}); nothing was written: choose another --stage, "
                                "or delete or rename that function")
        self._found["policy"] = found = st.find_policy(self.cam, spec.policy_name)
        if found is not None and st.MADE_BY not in (found.get("Description") or ""):
            raise SpecError(f"CAM policy {spec.policy_name} exists but was not made by cos-matting deploy (its "
                            "description lacks the mark); nothing was written: choose another --stage, or delete "
                            "or rename that policy")
        self._found["role"] = role = st.find_role(self.cam, spec.role)
        if spec.own_role and role is not None and st.MADE_BY not in (role.get("Description") or ""):
            raise SpecError(f"CAM role {spec.role} exists but was not made by cos-matting deploy; nothing was "
                            "written: delete or rename it (a role of another name in COS_MATTING_DEPLOY_ROLE is used "
                            "as it is)")

    def _check_environments(self, current: Mapping[str, Optional[Dict[str, Any]]]) -> None:
        """Each function's final environment (the callback URL included: the real one when the trigger
        exists, else a stand-in of the same form) through the check its cold start runs."""
        callback = self.spec.functions.get("callback")
        if callback is not None and current.get("callback") is not None:
            self.callback_url = next((function_url(t) for t in st.triggers(self.scf, callback.name,
                                                                           self.spec.namespace)
                                      if t.get("Type") == "http" and function_url(t)), None)
        for key in self.spec.functions:
            self.spec.check_env(key, self.callback_url or URL_STAND_IN)

    def _refuse_overlaps(self) -> None:
        """The app's other stages in this namespace, read from the cloud (one ListFunctions by the app tag, one
        GetFunction a stage: `stage.neighbours`), must not watch where this stage watches or writes, nor write
        where it watches: both would matte one upload, or one would matte the other's outputs again."""
        if not self.others:
            return
        spec = self.spec
        others = {s: names for s, names in st.listed(self.scf, spec.app, spec.namespace).items() if s != spec.stage}
        found = st.overlaps(spec.stage, st.places(spec.final_env("submit", None)),
                            st.neighbours(self.scf, others, app=spec.app, region=spec.region,
                                          namespace=spec.namespace)) if others else []
        if found:
            more = f" (and {len(found) - 1} more overlap(s))" if len(found) > 1 else ""
            raise SpecError(f"{found[0].problem()}{more}; nothing was written: {found[0].fix()}")

    def role(self) -> None:
        spec = self.spec
        got = self._found["role"] if "role" in self._found else st.find_role(self.cam, spec.role)
        if not spec.own_role:  # the user's role: used as it is, never created, rewritten or deleted
            if got is None:
                raise SpecError(f"COS_MATTING_DEPLOY_ROLE={spec.role}: no such CAM role; create it (trusting "
                                f"scf.qcloud.com) or leave the setting empty and deploy creates "
                                f"{st.role_name(spec.app, spec.stage)}")
            if not _trusts_scf(got):
                raise SpecError(f"COS_MATTING_DEPLOY_ROLE={spec.role}: the role does not trust scf.qcloud.com; "
                                "add that trust (deploy does not rewrite a role it did not make)")
            return
        if got is None:
            self.add(Call("cam", "CreateRole", {"RoleName": spec.role, "PolicyDocument": json.dumps(TRUST),
                                                 "Description": f"cos-matting stage {spec.stage} functions "
                                                                f"{st.MADE_BY}"},
                           "create", "role", spec.role, "trusts scf.qcloud.com"))
        elif not _trusts_scf(got):
            trust = json.loads(got["PolicyDocument"])
            trust.setdefault("statement", []).extend(TRUST["statement"])  # keep the trusts it already has
            self.add(Call("cam", "UpdateAssumeRolePolicy", {"RoleName": spec.role, "PolicyDocument": json.dumps(trust)},
                           "update", "role", spec.role, "add trust in scf.qcloud.com"))

    def policy(self, owner: str) -> None:
        spec = self.spec
        document = policy_for(spec, owner)
        found = self._found["policy"] if "policy" in self._found else st.find_policy(self.cam, spec.policy_name)
        detail = f"{len(document['statement'])} statements"
        if found is None:
            self.add(Call("cam", "CreatePolicy", {"PolicyName": spec.policy_name, "PolicyDocument": json.dumps(document),
                                                   "Description": f"least privilege of the cos-matting functions, "
                                                                  f"stage {spec.stage} {st.MADE_BY}"},
                           "create", "policy", spec.policy_name, detail))
        elif st.normalised(found["Document"]) != st.normalised(document):
            self.add(Call("cam", "UpdatePolicy", {"PolicyId": found["PolicyId"], "PolicyDocument": json.dumps(document)},
                           "update", "policy", spec.policy_name, detail + " (the document differs)"))
        on_role = [] if self._created("role", spec.role) else st.attached(self.cam, spec.role)
        if found is None or not any(p.get("PolicyId") == found["PolicyId"] for p in on_role):
            # by name: the policy may only be created by this plan (AttachRolePolicy takes PolicyName)
            self.add(Call("cam", "AttachRolePolicy", {"PolicyName": spec.policy_name, "AttachRoleName": spec.role},
                           "attach", "policy", spec.policy_name, f"to role {spec.role}"))

    def layer(self) -> Any:
        """The layer version holding these exact bytes (found by the sha256 in its description), else a Ref
        to the version PublishLayerVersion makes."""
        data = self.zips["layer"]
        sha = _sha(data)
        same = [v["LayerVersion"] for v in st.layer_versions(self.scf, self.spec.layer_name)
                if f"{st.LAYER_MARK}{sha}" in (v.get("Description") or "")]
        if same:
            return max(same)
        self.add(Call("scf", "PublishLayerVersion",
                       {"LayerName": self.spec.layer_name, "CompatibleRuntimes": self.spec.layer_runtimes,
                        "Content": {"ZipFile": base64.b64encode(data).decode("ascii")},
                        "Description": f"{st.LAYER_MARK}{sha}"},
                       "create", "layer", self.spec.layer_name, f"new version, {len(data):,d} bytes, sha256:{sha[:12]}",
                       produces="layer_version", answer_field="LayerVersion"))
        return Ref("layer_version")

    def config(self, fn: FunctionSpec, env: Mapping[str, Any], layer_version: Any) -> Dict[str, Any]:
        config: Dict[str, Any] = {
            "Runtime": fn.runtime, "MemorySize": fn.memory, "Timeout": fn.timeout, "Description": fn.description,
            "Role": fn.role, "Environment": {"Variables": [{"Key": k, "Value": env[k]} for k in sorted(env)]},
            "Layers": [{"LayerName": self.spec.layer_name, "LayerVersion": layer_version}],
            "PublicNetConfig": {"PublicNetStatus": "ENABLE" if fn.public_access else "DISABLE",
                                "EipConfig": {"EipStatus": "DISABLE"}}}
        if fn.dead_letter:
            config["DeadLetterConfig"] = fn.dead_letter
        return config

    def function(self, fn: FunctionSpec, current: Optional[Dict[str, Any]], env: Mapping[str, Any],
                 layer_version: Any) -> None:
        code = self.zips[fn.key]
        sha = _sha(code)
        config = self.config(fn, env, layer_version)
        zipped = {"ZipFile": base64.b64encode(code).decode("ascii")}
        if current is None:
            detail = f"{fn.runtime}, {fn.memory} MB, {fn.timeout} s, {len(env)} variables, code sha256:{sha[:12]}"
            self.add(Call("scf", "CreateFunction", {**self._ns(fn), **config, "Code": zipped, "Handler": fn.handler,
                                                     "Type": "Event", "Tags": fn.tags or None},
                           "create", "function", fn.name, detail, function=fn.name))
            return
        # Runtime is set at creation and cannot be changed (the SDK's UpdateFunctionConfigurationRequest.Runtime:
        # "创建时指定，目前不支持修改"): said, never sent.
        if current.get("Runtime") != fn.runtime:
            self.notes.append(f"{fn.name} runs {current.get('Runtime')}, serverless.yml says {fn.runtime}: SCF cannot "
                              "change a function's runtime; `cos-matting deploy --destroy`, then deploy again")
        changed = [k for k, v in config.items() if k != "Runtime" and _differs(k, current.get(k), v)]
        if changed:
            self.add(Call("scf", "UpdateFunctionConfiguration", {**self._ns(fn), **{k: config[k] for k in changed}},
                           "update", "function", fn.name, ", ".join(changed), _changes(changed, current, config),
                           function=fn.name))
        # Code drift: the hash SCF holds (GetFunctionAddress.CodeSha256) against the zip serverless.yml builds.
        deployed = st.code_sha256(self.scf, fn.name, self.spec.namespace)
        if not st.same_code(deployed, code) or current.get("Handler") != fn.handler:
            self.add(Call("scf", "UpdateFunctionCode", {**self._ns(fn), "ZipFile": zipped["ZipFile"],
                                                         "Handler": fn.handler},
                           "update", "code", fn.name, f"{len(code):,d} bytes",
                           [("code sha256", deployed[:12] or "(unknown)", sha[:12])]
                           + ([("Handler", current.get("Handler"), fn.handler)]
                              if current.get("Handler") != fn.handler else []), function=fn.name))

    def trigger(self, fn: FunctionSpec, trig: TriggerSpec) -> None:
        listed = [] if self._created("function", fn.name) else st.triggers(self.scf, fn.name, self.spec.namespace)
        same_kind = [t for t in listed if t["Type"] == trig.type and (t["TriggerName"] == trig.name or trig.type == "http")]
        params = {**self._ns(fn), "TriggerName": trig.name, "Type": trig.type, "TriggerDesc": trig.desc,
                  "Enable": "OPEN" if trig.enable else "CLOSE", "Qualifier": trig.qualifier}
        label = f"{fn.name} {trig.type} {trig.name}"
        makes_url = "callback_url" if trig.type == "http" and fn.key == "callback" else None
        if not same_kind:
            self.add(Call("scf", "CreateTrigger", params, "create", "trigger", label, function=fn.name,
                           produces=makes_url))
            return
        current = same_kind[0]
        if _trigger_shape(trig.type, current["TriggerDesc"], current["Enable"]) == \
                _trigger_shape(trig.type, trig.desc, trig.enable):
            return
        change = [("TriggerDesc", current["TriggerDesc"], trig.desc)] + (
            [("Enable", current["Enable"], params["Enable"])] if (current["Enable"] in (1, True, "OPEN")) != trig.enable
            else [])
        if trig.type == "http":  # updated in place: the URL stays (toolkit CAN_UPDATE_TRIGGER)
            self.add(Call("scf", "UpdateTrigger", {**params, "TriggerName": current["TriggerName"]}, "update",
                           "trigger", label, changes=change, function=fn.name))
            return
        self.add(Call("scf", "DeleteTrigger", {**self._ns(fn), "TriggerName": current["TriggerName"], "Type": trig.type,
                                                "TriggerDesc": current["TriggerDesc"],
                                                "Qualifier": current.get("Qualifier") or trig.qualifier},
                       "delete", "trigger", label, "to recreate it changed", change, function=fn.name))
        self.add(Call("scf", "CreateTrigger", params, "create", "trigger", label, function=fn.name))

    def undeclared_triggers(self, fn: FunctionSpec, declared: Sequence[TriggerSpec]) -> None:
        """A trigger added outside deploy (the console) on a function deploy made is deleted: deploy puts back
        what serverless.yml says (an extra timer, or a COS trigger on another prefix or bucket, would run the
        function beyond it). Deleted with its TriggerDesc, as destroy does (SCF API DeleteTrigger)."""
        if self._created("function", fn.name):
            return
        for t in st.triggers(self.scf, fn.name, self.spec.namespace):
            if any(t["Type"] == d.type and (t["TriggerName"] == d.name or d.type == "http") for d in declared):
                continue
            self.add(Call("scf", "DeleteTrigger", {**self._ns(fn), "TriggerName": t["TriggerName"], "Type": t["Type"],
                                                    "TriggerDesc": t.get("TriggerDesc"),
                                                    "Qualifier": t.get("Qualifier") or None},
                           "delete", "trigger", f"{fn.name} {t['Type']} {t['TriggerName']}", "not in serverless.yml",
                           [("TriggerDesc", t.get("TriggerDesc") or "", "(none)")], function=fn.name,
                           missing_ok=TRIGGER_MISSING))

    def concurrency(self, fn: FunctionSpec) -> None:
        current = None if self._created("function", fn.name) else \
            self.scf.call("GetReservedConcurrencyConfig", self._ns(fn)).get("ReservedMem")
        want = None if fn.reserved is None else fn.reserved * fn.memory
        if want == current:
            return
        change = [("ReservedConcurrencyMem", _show("", current), _show("", want))]
        if want is None:
            self.add(Call("scf", "DeleteReservedConcurrencyConfig", self._ns(fn), "delete", "concurrency", fn.name,
                           "back to the shared pool", change, function=fn.name))
        else:
            self.add(Call("scf", "PutReservedConcurrencyConfig", {**self._ns(fn), "ReservedConcurrencyMem": want},
                           "update", "concurrency", fn.name,
                           f"{fn.reserved} instances ({want} MB)" + (" STOPPED" if fn.reserved == 0 else ""), change,
                           function=fn.name))

    def retry(self, fn: FunctionSpec) -> None:
        """Async retry of submit (COS events): multi-scf applies it only with asyncRunEnable, so deploy does."""
        want = {"RetryConfig": [{"RetryNum": self.spec.retry_num}], "MsgTTL": self.spec.msg_ttl}
        old: Tuple[Any, Any] = (None, None)
        if not self._created("function", fn.name):
            got = self.scf.call("GetFunctionEventInvokeConfig", self._ns(fn)).get("AsyncTriggerConfig") or {}
            old = ((got.get("RetryConfig") or [{}])[0].get("RetryNum"), got.get("MsgTTL"))
            if old == (self.spec.retry_num, self.spec.msg_ttl):
                return
        self.add(Call("scf", "UpdateFunctionEventInvokeConfig", {**self._ns(fn), "AsyncTriggerConfig": want},
                       "update", "retry", fn.name, f"{self.spec.retry_num} retries, events kept {self.spec.msg_ttl} s",
                       [("RetryNum", _show("", old[0]), str(self.spec.retry_num)),
                        ("MsgTTL", _show("", old[1]), str(self.spec.msg_ttl))], function=fn.name))

    # -- destroy ---------------------------------------------------------------------------------
    def destroy(self) -> List[Call]:
        """Remove what deploy made for this stage, found in the cloud: the functions tagged with the app and
        this stage (their triggers first), the layer versions deploy published, this stage's policy and,
        if deploy made it, its role. Another stage's resources, and a role the user named, are never touched."""
        spec, ns = self.spec, self.spec.namespace
        for extra in self.kinds:  # what watches the functions goes first
            extra.destroy(self)
        for kind, got in st.locate(self.scf, spec.app, spec.stage, ns).items():
            name = got["FunctionName"]
            if not st.is_ours(got, spec.app, spec.stage):
                self.notes.append(f"left {name}: not tagged app={spec.app}, stage={spec.stage} (not made by deploy)")
                continue
            for trig in st.triggers(self.scf, name, ns):
                # A COS trigger is deleted with its TriggerDesc (SCF API DeleteTrigger; toolkit cos.js delete).
                self.add(Call("scf", "DeleteTrigger", {"FunctionName": name, "Namespace": ns,
                                                        "TriggerName": trig["TriggerName"], "Type": trig["Type"],
                                                        "TriggerDesc": trig.get("TriggerDesc"),
                                                        "Qualifier": trig.get("Qualifier") or None},
                               "delete", "trigger", f"{name} {trig['Type']} {trig['TriggerName']}",
                               missing_ok=TRIGGER_MISSING + FN_MISSING))
            self.add(Call("scf", "DeleteFunction", {"FunctionName": name, "Namespace": ns}, "delete", "function",
                           name, missing_ok=FN_MISSING))
        for v in st.layer_versions(self.scf, spec.layer_name):
            self.add(Call("scf", "DeleteLayerVersion", {"LayerName": spec.layer_name, "LayerVersion": v["LayerVersion"]},
                           "delete", "layer", f"{spec.layer_name} version {v['LayerVersion']}", missing_ok=LAYER_MISSING))
        policy = st.find_policy(self.cam, spec.policy_name)
        if policy is not None and st.MADE_BY in (policy.get("Description") or ""):
            if any(p.get("PolicyId") == policy["PolicyId"] for p in st.attached(self.cam, spec.role)):
                self.add(Call("cam", "DetachRolePolicy", {"PolicyId": policy["PolicyId"], "DetachRoleName": spec.role},
                               "detach", "policy", spec.policy_name, f"from role {spec.role}",
                               missing_ok=ROLE_MISSING + POLICY_MISSING))
            self.add(Call("cam", "DeletePolicy", {"PolicyId": [policy["PolicyId"]]}, "delete", "policy",
                           spec.policy_name, missing_ok=POLICY_MISSING))
        role = st.find_role(self.cam, spec.role) if spec.own_role else None
        if role is not None and st.MADE_BY in (role.get("Description") or ""):
            self.add(Call("cam", "DeleteRole", {"RoleName": spec.role}, "delete", "role", spec.role,
                           missing_ok=ROLE_MISSING))
        elif not spec.own_role:
            self.notes.append(f"left role {spec.role}: named by COS_MATTING_DEPLOY_ROLE, not made by deploy")
        return self.calls


class AlarmKind:
    """serverless.yml's alarm policies (deploy/alarms.py, Cloud Monitor) as calls of the plan: alarms.py
    reads through its monitor client and writes through `write`, which adds a call; a policy it creates
    is bound by the PolicyId CreateAlarmPolicy answers (a Ref until the executor has it)."""

    def __init__(self, monitor: Optional[Api] = None) -> None:
        self.monitor = monitor  # built from the spec's environment when None

    def _alarms(self, planner: "Planner") -> Any:
        from .alarms import for_spec

        def write(verb: str, kind: str, name: str, detail: str, action: str, params: Dict[str, Any]) -> Dict[str, Any]:
            made = f"alarm_policy_id:{name}" if action == "CreateAlarmPolicy" else None
            planner.add(Call("monitor", action, params, verb, kind, name, detail, produces=made,
                             answer_field="PolicyId" if made else "", api=alarms.monitor))
            return {"PolicyId": Ref(made)} if made else {}

        alarms = for_spec(planner.spec, self.monitor, write)
        self.monitor = alarms.monitor
        return alarms

    def plan(self, planner: "Planner") -> None:
        self._alarms(planner).apply(planner.spec.alarms)

    def destroy(self, planner: "Planner") -> None:
        self._alarms(planner).destroy()


def _trusts_scf(role_info: Mapping[str, Any]) -> bool:
    trust = json.loads(role_info.get("PolicyDocument") or "{}")
    return any("scf.qcloud.com" in json.dumps(s.get("principal")) for s in trust.get("statement", []))


def _differs(name: str, current: Any, desired: Any) -> bool:
    if name == "Environment":
        return _env_map(current) != _env_map(desired)
    if name == "Layers":
        return [(x.get("LayerName"), x.get("LayerVersion")) for x in current or []] != \
            [(x["LayerName"], x["LayerVersion"]) for x in desired]
    if isinstance(desired, dict):
        return not isinstance(current, dict) or any(_differs(k, current.get(k), v) for k, v in desired.items())
    return current != desired


def _changes(changed: List[str], current: Mapping[str, Any], config: Mapping[str, Any]) -> List[Tuple[str, str, str]]:
    """(setting, old, new) of each changed field; environment variables one by one, secrets masked."""
    out = []
    for name in changed:
        if name == "Environment":
            old, new = _env_map(current.get(name)), _env_map(config[name])
            out += [(k, _show(k, old.get(k)), _show(k, new.get(k)))
                    for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif name == "Layers":
            fmt = lambda layers: ", ".join(f"{x.get('LayerName')}:{x.get('LayerVersion')}" for x in layers or [])  # noqa: E731
            out.append((name, fmt(current.get(name)) or "(none)", fmt(config[name])))
        else:
            out.append((name, _show(name, current.get(name)), _show(name, config[name])))
    return out


# -- the executor --------------------------------------------------------------------------------

class Executor:
    """Makes a plan's calls in order, filling in the values earlier calls produced."""

    def __init__(self, scf: Api, cam: Api, log: Log = print, namespace: str = "default",
                 busy: Sequence[str] = (), apis: Optional[Mapping[str, Api]] = None) -> None:
        self.apis: Dict[str, Api] = {"scf": scf, "cam": cam, **(apis or {})}
        self.log, self.namespace = log, namespace
        self.values: Dict[str, Any] = {}
        self.done: List[Call] = []
        # functions written in this run, or not Active when planned: Active is awaited before the next write
        self._written = set(busy)

    def run(self, calls: List[Call]) -> List[Call]:
        for call in calls:
            if call.function and call.function in self._written and call.action != "DeleteFunction":
                self.wait_active(call.function)
            self.log("  " + call.line())
            try:
                answer = (call.api or self.apis[call.product]).call(call.action, self._resolve(call.params))
            except ApiCallError as exc:
                if exc.code not in call.missing_ok:
                    raise
                self.log(f"    (already gone: {exc.code})")
                answer = {}
            self.done.append(call)
            if call.function and call.action in ("CreateFunction", "UpdateFunctionConfiguration", "UpdateFunctionCode"):
                self._written.add(call.function)
            if call.produces == "callback_url":
                self.values["callback_url"] = self.read_url(call.function or "")
            elif call.produces:
                self.values[call.produces] = answer[call.answer_field]
        for name in sorted(self._written - {c.function for c in calls if c.action == "DeleteFunction"}):
            self.wait_active(name)
        return self.done

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            if value.name not in self.values:
                raise RuntimeError(f"no value for {value} yet: the plan is out of order")
            return self.values[value.name]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    def read_url(self, name: str, timeout: float = 30.0) -> str:
        """The Function URL as documented: ListTriggers' TriggerDesc.NetConfig.ExtranetUrl (583/100227)."""
        deadline = time.time() + timeout
        while True:
            for trig in st.triggers(self.apis["scf"], name, self.namespace):
                if trig.get("Type") == "http" and function_url(trig):
                    return str(function_url(trig))
            if time.time() > deadline:
                raise ApiCallError("ListTriggers", "NoFunctionUrl", f"{name}: the http trigger has no "
                                                                    "NetConfig.ExtranetUrl yet")
            time.sleep(0.5)

    def wait_active(self, name: str) -> None:
        """SCF applies code and configuration asynchronously (Status Creating/Updating, then Active, 583/37883)."""
        deadline = time.time() + ACTIVE_TIMEOUT
        while True:
            got = self.apis["scf"].call("GetFunction", {"FunctionName": name, "Namespace": self.namespace})
            status = got.get("Status") or ""
            if status == "Active":
                return
            if "Failed" in status or time.time() > deadline:
                raise ApiCallError("GetFunction", f"Status {status}",
                                   f"function {name} did not become Active: {got.get('StatusDesc') or ''}")
            time.sleep(0.2)
