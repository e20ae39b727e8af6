"""Apply a deploy.spec.Spec through the SCF and CAM APIs: plan, deploy (idempotent), destroy.

Every resource is read first and written only when it differs, so a second deploy with
no change makes no write call. The order resolves the one dependency: the callback
function and its Function URL (`CreateTrigger` type `http`) come first, then submit and
reconcile get `COS_MATTING_CALLBACK_URL` from that URL in the same run.

What deploy created is kept in a per-stage state file (like Chalice's
`.chalice/deployed/<stage>.json`): the code hash of each function (GetFunction reports
no code hash), the layer versions it published, the triggers, role and policy it
created. `destroy` removes exactly those; it never touches buckets or objects.

API shapes: the SDK's request models (tencentcloud/scf/v20180416, cam/v20190116), the
calls tencent-component-toolkit 2.27.6 makes (lib/modules/scf, lib/modules/triggers).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from .clients import Api
from .spec import CALLBACK_URL, NEEDS_CALLBACK_URL, TRUST, FunctionSpec, Spec, TriggerSpec, policy_for

FN_MISSING = ("ResourceNotFound.Function",)
LAYER_MISSING = ("ResourceNotFound.Layer", "ResourceNotFound.LayerVersion")
ROLE_MISSING = ("InvalidParameter.RoleNotExist", "ResourceNotFound.RoleNotExist")
TRIGGER_MISSING = ("ResourceNotFound.Trigger",)
PENDING_URL = "<the Function URL this deploy creates>"
ACTIVE_TIMEOUT = 180.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One change: verb create | update | delete | attach | detach, on a resource."""

    verb: str
    kind: str  # role | policy | layer | function | code | trigger | retry | concurrency | alarm
    name: str
    detail: str = ""

    def line(self) -> str:
        mark = {"create": "+", "attach": "+", "update": "~", "delete": "-", "detach": "-"}[self.verb]
        return f"{mark} {self.verb} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")


class State:
    """What deploy created for one stage and target; written after every change (a partial deploy is undoable)."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.data: Dict[str, Any] = {}
        if path.exists():
            self.data = json.loads(path.read_text(encoding="utf-8"))
        if self.data.get("target") != target:
            self.data = {}
        self.data.setdefault("target", target)
        for key, empty in (("functions", {}), ("triggers", []), ("layer_versions", []), ("role", {}),
                           ("policy", {})):
            self.data.setdefault(key, empty)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def state_path(folder: Path, stage: str, endpoint: str) -> Path:
    return folder / (f"{stage}-local.json" if endpoint else f"{stage}.json")


def target_of(endpoint: str, region: str) -> str:
    """What a state file belongs to: the local cloud (whatever its port: it keeps its state across
    restarts), or Tencent Cloud in one region."""
    return "localcloud" if endpoint else f"tencentcloud:{region}"


def _env_map(config: Optional[Mapping[str, Any]]) -> Dict[str, str]:
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
    net = json.loads(trigger.get("TriggerDesc") or "{}").get("NetConfig") or {}
    return net.get("ExtranetUrl") or net.get("IntranetUrl") or None


class Deployer:
    def __init__(self, spec: Spec, scf: Api, cam: Api, state: State, zips: Mapping[str, bytes], apply: bool,
                 log: Log = print, monitor: Optional[Api] = None) -> None:
        self.spec, self.scf, self.cam, self.state, self.zips = spec, scf, cam, state, zips
        self.monitor = monitor  # Cloud Monitor, for the alarm policies (built from the spec when None)
        self.apply, self.log = apply, log
        self.steps: List[Step] = []
        self.planned: List[Dict[str, Any]] = []  # {"product", "action", "params"} of every write, planned or made
        self.callback_url: Optional[str] = None

    # -- plumbing -------------------------------------------------------------------------------
    def _write(self, step: Step, api: Api, action: str, params: Dict[str, Any]) -> Dict[str, Any]:
        self.steps.append(step)
        self.planned.append({"product": api.product, "action": action,
                             "params": {k: v for k, v in params.items() if v is not None}})
        if not self.apply:
            return {}
        self.log(step.line())
        return api.call(action, params)

    def _ns(self, fn: FunctionSpec) -> Dict[str, Any]:
        return {"FunctionName": fn.name, "Namespace": self.spec.namespace}

    def _wait_active(self, fn: FunctionSpec) -> None:
        """SCF applies code and configuration asynchronously (Status Creating/Updating, then Active)."""
        if not self.apply:
            return
        deadline = time.time() + ACTIVE_TIMEOUT
        while True:
            got = self.scf.call("GetFunction", self._ns(fn))
            if got.get("Status") == "Active":
                return
            if "Failed" in (got.get("Status") or "") or time.time() > deadline:
                from .clients import ApiCallError

                raise ApiCallError("GetFunction", f"Status {got.get('Status')}",
                                   f"function {fn.name} did not become Active: {got.get('StatusDesc') or ''}")
            time.sleep(1.0)

    # -- the whole deployment -------------------------------------------------------------------
    def run(self) -> List[Step]:
        owner = self.spec.owner_uin or str(self.cam.call("GetUserAppId", {}).get("OwnerUin") or "")
        self.role(owner)
        version = self.layer()
        for fn in self.spec.ordered():
            env = dict(fn.env)
            if fn.key in NEEDS_CALLBACK_URL:
                env[CALLBACK_URL] = self.callback_url or PENDING_URL
            self.function(fn, env, version)
            for trig in [t for t in self.spec.triggers if t.function == fn.key]:
                url = self.trigger(fn, trig)
                if trig.type == "http" and fn.key == "callback":
                    self.callback_url = url
            self.concurrency(fn)
        self.retry(self.spec.functions["submit"])
        self.alarms().apply(self.spec.alarms)
        return self.steps

    def alarms(self) -> Any:
        """serverless.yml's alarm policies (deploy/alarms.py), planned and written like every other change."""
        from .alarms import for_spec

        alarms = for_spec(self.spec, self.monitor, lambda verb, kind, name, detail, action, params:
                          self._write(Step(verb, kind, name, detail), alarms.monitor, action, params))
        self.monitor = alarms.monitor  # one client, its calls recorded in one place (Api.sent)
        return alarms

    # -- role and policy ------------------------------------------------------------------------
    def role(self, owner: str) -> None:
        spec = self.spec
        got = self.cam.get("GetRole", {"RoleName": spec.role}, ROLE_MISSING)
        if got is None:
            self._write(Step("create", "role", spec.role, "trusts scf.qcloud.com"), self.cam, "CreateRole",
                        {"RoleName": spec.role, "PolicyDocument": json.dumps(TRUST),
                         "Description": "cos-matting functions (created by cos-matting deploy)"})
            self._remember("role", {"name": spec.role, "created": True})
        else:
            trust = json.loads(got["RoleInfo"]["PolicyDocument"])
            if not any("scf.qcloud.com" in json.dumps(st.get("principal")) for st in trust.get("statement", [])):
                trust.setdefault("statement", []).extend(TRUST["statement"])  # keep the trusts it already has
                self._write(Step("update", "role", spec.role, "add trust in scf.qcloud.com"), self.cam,
                            "UpdateAssumeRolePolicy", {"RoleName": spec.role, "PolicyDocument": json.dumps(trust)})
        document = policy_for(spec, owner)
        listed = self.cam.call("ListPolicies", {"Keyword": spec.policy_name, "Scope": "Local", "Rp": 200, "Page": 1})
        found = [p for p in listed.get("List") or [] if p["PolicyName"] == spec.policy_name]
        detail = f"{len(document['statement'])} statements"
        if not found:
            made = self._write(Step("create", "policy", spec.policy_name, detail), self.cam, "CreatePolicy",
                               {"PolicyName": spec.policy_name, "PolicyDocument": json.dumps(document),
                                "Description": "least privilege of the cos-matting functions (cos-matting deploy)"})
            policy_id = made.get("PolicyId")
            self._remember("policy", {"name": spec.policy_name, "id": policy_id, "created": True})
        else:
            policy_id = found[0]["PolicyId"]
            current = self.cam.call("GetPolicy", {"PolicyId": policy_id})
            if json.loads(current.get("PolicyDocument") or "{}") != document:
                self._write(Step("update", "policy", spec.policy_name, detail), self.cam, "UpdatePolicy",
                            {"PolicyId": policy_id, "PolicyDocument": json.dumps(document)})
        attached = [] if got is None else self.cam.call(
            "ListAttachedRolePolicies", {"RoleName": spec.role, "Page": 1, "Rp": 200}).get("List") or []
        if policy_id is None or not any(p["PolicyId"] == policy_id for p in attached):
            self._write(Step("attach", "policy", spec.policy_name, f"to role {spec.role}"), self.cam,
                        "AttachRolePolicy", {"PolicyId": policy_id, "AttachRoleName": spec.role})

    # -- layer ----------------------------------------------------------------------------------
    def layer(self) -> int:
        """The layer version holding these exact bytes: found by the sha256 in its description, else published."""
        data = self.zips["layer"]
        sha = hashlib.sha256(data).hexdigest()
        listed = self.scf.get("ListLayerVersions", {"LayerName": self.spec.layer_name}, LAYER_MISSING) or {}
        same = [v["LayerVersion"] for v in listed.get("LayerVersions") or [] if f"sha256:{sha}" in
                (v.get("Description") or "")]
        if same:
            return max(same)
        made = self._write(Step("create", "layer", self.spec.layer_name, f"new version, {len(data):,d} bytes, "
                                                                           f"sha256:{sha[:12]}"),
                           self.scf, "PublishLayerVersion",
                           {"LayerName": self.spec.layer_name, "CompatibleRuntimes": self.spec.layer_runtimes,
                            "Content": {"ZipFile": base64.b64encode(data).decode("ascii")},
                            "Description": f"cos-matting dependencies sha256:{sha}"})
        version = int(made.get("LayerVersion") or 0)
        if self.apply:
            self.state.data["layer_versions"].append({"name": self.spec.layer_name, "version": version})
            self._save()
        return version

    # -- functions ------------------------------------------------------------------------------
    def config(self, fn: FunctionSpec, env: Mapping[str, str], layer_version: int) -> Dict[str, Any]:
        config: Dict[str, Any] = {
            "Runtime": fn.runtime, "MemorySize": fn.memory, "Timeout": fn.timeout, "Description": fn.description,
            "Role": fn.role, "Environment": {"Variables": [{"Key": k, "Value": env[k]} for k in sorted(env)]},
            "Layers": [{"LayerName": self.spec.layer_name, "LayerVersion": layer_version}],
            "PublicNetConfig": {"PublicNetStatus": "ENABLE" if fn.public_access else "DISABLE",
                                "EipConfig": {"EipStatus": "DISABLE"}}}
        if fn.dead_letter:
            config["DeadLetterConfig"] = fn.dead_letter
        return config

    def function(self, fn: FunctionSpec, env: Mapping[str, str], layer_version: int) -> None:
        code = self.zips[fn.key]
        sha = hashlib.sha256(code).hexdigest()
        config = self.config(fn, env, layer_version)
        current = self.scf.get("GetFunction", self._ns(fn), FN_MISSING)
        zipped = {"ZipFile": base64.b64encode(code).decode("ascii")}
        if current is None:
            detail = f"{fn.runtime}, {fn.memory} MB, {fn.timeout} s, {len(env)} variables"
            self._write(Step("create", "function", fn.name, detail), self.scf, "CreateFunction",
                        {**self._ns(fn), **config, "Code": zipped, "Handler": fn.handler, "Type": "Event",
                         "Tags": fn.tags or None})
            self._wait_active(fn)
            self._remember("functions", {**self.state.data["functions"],
                                         fn.name: {"key": fn.key, "code_sha256": sha, "created": True}})
            return
        changed = [k for k, v in config.items() if self._differs(k, current.get(k), v)]
        if changed:
            self._write(Step("update", "function", fn.name, self._describe(changed, current, config)), self.scf,
                        "UpdateFunctionConfiguration", {**self._ns(fn), **{k: config[k] for k in changed}})
            self._wait_active(fn)
        known = self.state.data["functions"].get(fn.name) or {}
        if known.get("code_sha256") != sha or current.get("Handler") != fn.handler:
            self._write(Step("update", "code", fn.name, f"{len(code):,d} bytes, sha256:{sha[:12]}"), self.scf,
                        "UpdateFunctionCode", {**self._ns(fn), "ZipFile": zipped["ZipFile"], "Handler": fn.handler})
            self._wait_active(fn)
        self._remember("functions", {**self.state.data["functions"],
                                     fn.name: {"key": fn.key, "created": bool(known.get("created")), "code_sha256": sha}})

    @staticmethod
    def _differs(field: str, current: Any, desired: Any) -> bool:
        if field == "Environment":
            return _env_map(current) != _env_map(desired)
        if field == "Layers":
            return [(x.get("LayerName"), x.get("LayerVersion")) for x in current or []] != \
                [(x["LayerName"], x["LayerVersion"]) for x in desired]
        if isinstance(desired, dict):
            return not isinstance(current, dict) or any(Deployer._differs(k, current.get(k), v)
                                                        for k, v in desired.items())
        return current != desired

    @staticmethod
    def _describe(changed: List[str], current: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        parts = []
        for field in changed:
            if field == "Environment":  # names only: values can be secrets
                old, new = _env_map(current.get(field)), _env_map(config[field])
                keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                parts.append(f"Environment ({', '.join(keys)})")
            elif isinstance(config[field], (int, str)):
                parts.append(f"{field} {current.get(field)!r} -> {config[field]!r}")
            else:
                parts.append(field)
        return "; ".join(parts)

    # -- triggers -------------------------------------------------------------------------------
    def trigger(self, fn: FunctionSpec, trig: TriggerSpec) -> Optional[str]:
        """Create or change one trigger; returns a Function URL's address."""
        listed = {} if (not self.apply and self._pending(fn)) else \
            self.scf.call("ListTriggers", {**self._ns(fn), "Limit": 100})
        same_kind = [t for t in listed.get("Triggers") or [] if t["Type"] == trig.type and
                     (t["TriggerName"] == trig.name or trig.type == "http")]
        params = {**self._ns(fn), "TriggerName": trig.name, "Type": trig.type, "TriggerDesc": trig.desc,
                  "Enable": "OPEN" if trig.enable else "CLOSE", "Qualifier": trig.qualifier}
        label = f"{trig.type} {trig.name} on {fn.name}"
        record = {"function": fn.name, "type": trig.type, "name": trig.name, "desc": trig.desc}
        if not same_kind:
            made = self._write(Step("create", "trigger", label), self.scf, "CreateTrigger", params)
            if self.apply and record not in self.state.data["triggers"]:
                self.state.data["triggers"].append(record)
                self._save()
            return function_url(made.get("TriggerInfo") or {}) if self.apply else None
        current = same_kind[0]
        if _trigger_shape(trig.type, current["TriggerDesc"], current["Enable"]) == \
                _trigger_shape(trig.type, trig.desc, trig.enable):
            return function_url(current)
        if trig.type == "http":  # updated in place: the URL stays (toolkit CAN_UPDATE_TRIGGER)
            self._write(Step("update", "trigger", label), self.scf, "UpdateTrigger",
                        {**params, "TriggerName": current["TriggerName"]})
            return function_url(current)
        self._write(Step("delete", "trigger", label, "to recreate it changed"), self.scf, "DeleteTrigger",
                    {**self._ns(fn), "TriggerName": current["TriggerName"], "Type": trig.type,
                     "TriggerDesc": current["TriggerDesc"], "Qualifier": current.get("Qualifier") or trig.qualifier})
        self._write(Step("create", "trigger", label), self.scf, "CreateTrigger", params)
        return None

    def _pending(self, fn: FunctionSpec) -> bool:
        """In a plan, a function this deploy would create has nothing to read yet."""
        return any(s.kind == "function" and s.verb == "create" and s.name == fn.name for s in self.steps)

    # -- settings applied after the function ----------------------------------------------------
    def concurrency(self, fn: FunctionSpec) -> None:
        current = None if self._pending(fn) else \
            self.scf.call("GetReservedConcurrencyConfig", self._ns(fn)).get("ReservedMem")
        want = None if fn.reserved is None else fn.reserved * fn.memory
        if want == current:
            return
        if want is None:
            self._write(Step("delete", "concurrency", fn.name, "back to the shared pool"), self.scf,
                        "DeleteReservedConcurrencyConfig", self._ns(fn))
        else:
            self._write(Step("update", "concurrency", fn.name, f"{fn.reserved} instances ({want} MB)"
                             + (" STOPPED" if fn.reserved == 0 else "")), self.scf,
                        "PutReservedConcurrencyConfig", {**self._ns(fn), "ReservedConcurrencyMem": want})

    def retry(self, fn: FunctionSpec) -> None:
        """Async retry of submit (COS events): multi-scf applies it only with asyncRunEnable, so deploy does."""
        want = {"RetryConfig": [{"RetryNum": self.spec.retry_num}], "MsgTTL": self.spec.msg_ttl}
        if not self._pending(fn):
            got = self.scf.call("GetFunctionEventInvokeConfig", self._ns(fn)).get("AsyncTriggerConfig") or {}
            if ((got.get("RetryConfig") or [{}])[0].get("RetryNum"), got.get("MsgTTL")) == \
                    (self.spec.retry_num, self.spec.msg_ttl):
                return
        self._write(Step("update", "retry", fn.name, f"{self.spec.retry_num} retries, events kept {self.spec.msg_ttl} s"),
                    self.scf, "UpdateFunctionEventInvokeConfig", {**self._ns(fn), "AsyncTriggerConfig": want})

    def _remember(self, key: str, value: Any) -> None:
        """Record what deploy made (only when applying: a plan leaves the state as it found it)."""
        if self.apply:
            self.state.data[key] = value
            self.state.save()

    def _save(self) -> None:
        if self.apply:
            self.state.save()

    # -- destroy --------------------------------------------------------------------------------
    def destroy(self) -> List[Step]:
        """Remove what deploy created (state file), newest first; what is already gone is skipped."""
        data, ns = self.state.data, self.spec.namespace
        self.alarms().destroy()  # found in the cloud by name and remark, not in the state file
        for trig in list(data["triggers"]):
            # A COS trigger is deleted with its TriggerDesc (SCF API DeleteTrigger; toolkit cos.js delete).
            self._gone(Step("delete", "trigger", f"{trig['type']} {trig['name']} on {trig['function']}"), self.scf,
                       "DeleteTrigger", {"FunctionName": trig["function"], "Namespace": ns, "TriggerName": trig["name"],
                                         "Type": trig["type"], "TriggerDesc": trig.get("desc")},
                       TRIGGER_MISSING + FN_MISSING, lambda t=trig: data["triggers"].remove(t))
        for name, info in list(data["functions"].items()):
            if info.get("created"):
                self._gone(Step("delete", "function", name), self.scf, "DeleteFunction",
                           {"FunctionName": name, "Namespace": ns}, FN_MISSING, lambda n=name: data["functions"].pop(n))
        for layer in list(data["layer_versions"]):
            self._gone(Step("delete", "layer", f"{layer['name']} version {layer['version']}"), self.scf,
                       "DeleteLayerVersion", {"LayerName": layer["name"], "LayerVersion": layer["version"]},
                       LAYER_MISSING, lambda x=layer: data["layer_versions"].remove(x))
        policy, role = data.get("policy") or {}, data.get("role") or {}
        if policy.get("created"):
            if role.get("name"):
                self._gone(Step("detach", "policy", policy["name"], f"from role {role['name']}"), self.cam,
                           "DetachRolePolicy", {"PolicyId": policy["id"], "DetachRoleName": role["name"]},
                           ROLE_MISSING + ("InvalidParameter.PolicyIdNotExist",), lambda: None)
            self._gone(Step("delete", "policy", policy["name"]), self.cam, "DeletePolicy", {"PolicyId": [policy["id"]]},
                       ("InvalidParameter.PolicyIdNotExist",), lambda: data.update(policy={}))
        if role.get("created"):
            self._gone(Step("delete", "role", role["name"]), self.cam, "DeleteRole", {"RoleName": role["name"]},
                       ROLE_MISSING, lambda: data.update(role={}))
        return self.steps

    def _gone(self, step: Step, api: Api, action: str, params: Dict[str, Any], missing: tuple,
              forget: Callable[[], Any]) -> None:
        from .clients import ApiCallError

        try:
            self._write(step, api, action, params)
        except ApiCallError as exc:
            if exc.code not in missing:
                raise
            self.log(f"  (already gone: {exc.code})")
        if self.apply:
            forget()
            self.state.save()
