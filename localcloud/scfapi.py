"""The SCF API (version 2018-04-16) of the local cloud, running what was deployed.

Request and response fields are the SDK's (`tencentcloud/scf/v20180416/models.py`); how
triggers are described follows what tencent-component-toolkit 2.27.6 sends
(`lib/modules/triggers/{cos,timer,http}.js`): a COS trigger is named after the bucket's
XML-API domain and described by `{"event", "filter": {"Prefix", "Suffix"}}`, a timer by
its 7-field cron, a Function URL (`Type: http`) by `{"AuthType", "NetConfig"}`, and the
answer's TriggerDesc carries `NetConfig.ExtranetUrl` (as read back by
github.com/DVKunion/SeaMoon `pkg/sdk/tencent`). Error codes are the SDK's
(`tencentcloud/scf/v20180416/errorcodes.py`).

A deployed function runs the way SCF runs it (localcloud/scfenv.py): its code zip
unpacked in one folder (the working directory), each layer zip in another, the path
exactly those, CPython 3.10 when available, its own environment plus what SCF injects:
role credentials only if its role exists in the local CAM and trusts scf.qcloud.com,
the region, and COS_MATTING_ENDPOINT (the local cloud's stand-in for public endpoints).
State (functions, layer versions, triggers, settings, zips) persists under `data_dir`;
a restarted cloud runs the same functions again.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import sys
import threading
import uuid
import zipfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import scfenv
from .scf import Function, Trigger, function_url_reply
from .scfevents import function_url_event
from .scftriggers import TriggerActions
from .tcapi import ApiError, load_state, save_state, timestamp

if TYPE_CHECKING:
    from .cloud import LocalCloud

# CreateFunction `Runtime`: the Python ones CreateFunctionRequest lists (tencentcloud/scf/v20180416/models.py).
RUNTIMES = ("Python3.10", "Python3.9", "Python3.7", "Python3.6", "Python2.7")
# DeadLetterConfig.Type: the SCF API's example values (SCF API DeadLetterConfig, 583/39704; the SDK's
# models.py only says "死信队列模式"); InvalidParameterValue.DeadLetterConfig is the SDK's error code.
DEAD_LETTER_TYPES = ("CMQ-QUEUE", "CMQ-TOPIC")
# A write runs asynchronously: Status is Creating / Updating, then Active (583/37883 "as the API is async,
# you need to query its current status first"); code and configuration writes meanwhile are refused with
# these codes (the SDK's errorcodes.py: "当前函数状态无法更新代码，请在状态为正常时更新").
BUSY = {"UpdateFunctionCode": "FailedOperation.UpdateFunctionCode",
        "UpdateFunctionConfiguration": "FailedOperation.UpdateFunctionConfiguration"}
SETTLE_SECONDS = 0.3  # how long the local SCF stays Creating / Updating (short: tests wait it out)
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$")
DEFAULT_CONCURRENCY = 2  # warm workers per function here (the machine has 2 cores)
_python_lock = threading.Lock()
_python: List[Optional[str]] = []


def runtime_python(preferred: Optional[str]) -> str:
    """CPython 3.10 like SCF's runtime when there is one (looked up once), else this interpreter."""
    if preferred:
        return preferred
    with _python_lock:
        if not _python:
            _python.append(scfenv.find_python310())
    return _python[0] or sys.executable



def _matches(fn: Dict[str, Any], filters: List[Dict[str, Any]]) -> bool:
    """ListFunctions `Filters`: every filter must hold, any of its Values; `tag-<key>` matches a tag, other
    names a field such as Status (SDK models.py ListFunctionsRequest.Filters: "Name 字段需要以 `tag-` 起始")."""
    tags = {t.get("Key"): t.get("Value") for t in fn.get("Tags") or []}
    for flt in filters:
        name, values = flt.get("Name") or "", flt.get("Values") or []
        have = tags.get(name[4:]) if name.startswith("tag-") else fn.get(name)
        if have not in values:
            return False
    return True


def _zip(param: Dict[str, Any], field: str) -> bytes:
    raw = (param or {}).get("ZipFile")
    if not raw:
        raise ApiError("InvalidParameterValue.Code", f"{field}.ZipFile is required (the local cloud takes zips "
                                                     "in the request, not from COS or git)")
    try:
        data = base64.b64decode(raw, validate=True)
        zipfile.ZipFile(io.BytesIO(data)).testzip()
    except (binascii.Error, zipfile.BadZipFile, ValueError):
        raise ApiError("InvalidParameterValue.ZipFile", f"{field}.ZipFile is not a base64-encoded zip") from None
    return data

class DeployedFunction(Function):
    """A function deployed through the API. Reserved concurrency 0 stops it (PutReservedConcurrencyConfig; 583/39464 does not say so: unverified): an
    asynchronous event (COS, timer) then waits, as SCF keeps it queued (up to MsgTTL), until the
    reservation is lifted; a synchronous call (Function URL, Invoke) is refused at once. An event that
    waited, or was queued when the function was redeployed, runs on the newest version."""

    def __init__(self, *args: Any, gate: threading.Event, ttl: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.ttl = gate, ttl
        self.successor: Optional["DeployedFunction"] = None
        self.closed = False

    def invoke(self, inv: Any, kill_after: Optional[float] = None) -> Any:
        if not self.gate.is_set() and (inv.kind in ("http", "direct") or not self.gate.wait(self.ttl)):
            inv.ok, inv.error = False, "ResourceInsufficient: reserved concurrency is 0, the function is stopped"
            return inv
        if self.successor is not None:
            return self.successor.invoke(inv, kill_after)
        if self.closed:
            inv.ok, inv.error = False, "the function was deleted or the cloud stopped"
            return inv
        return super().invoke(inv, kill_after)

    def close(self) -> None:
        """Like Function.close, but events already queued here still run (on the successor)."""
        self.closed = True
        self.executor.shutdown(wait=False)
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.close()


class ScfService(TriggerActions):
    """Actions are the methods named like the API's (`CreateFunction`, ...): params in, Response fields out."""

    unlocked = ("Invoke",)  # a synchronous invocation must not hold up the other API calls

    def __init__(self, cloud: "LocalCloud", data_dir: str) -> None:
        self.cloud, self.dir = cloud, data_dir
        os.makedirs(os.path.join(data_dir, "blobs"), exist_ok=True)
        self.state: Dict[str, Any] = load_state(data_dir, {"functions": {}, "layers": {}})
        self.running: Dict[str, Function] = {}
        self._cos: Dict[str, Trigger] = {}  # "<fn key>/<trigger name>" -> trigger in the runtime
        self._timers: Dict[str, threading.Event] = {}
        self._gates: Dict[str, threading.Event] = {}  # set = may run (reserved concurrency is not 0)
        self.exposed: Dict[str, Dict[str, Any]] = {}  # `localcloud --trigger/--function-url` functions, read-only
        self.lock = threading.RLock()
        self.settle_seconds = SETTLE_SECONDS

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Run every persisted function again (after the server is bound: their env has its URL)."""
        with self.lock:
            for key in list(self.state["functions"]):
                fn = self.state["functions"][key]
                if fn.pop("_settling", None):  # stopped while a write was being applied: it has been since
                    fn["Status"] = "Active"
                self._deploy(key)

    def stop(self) -> None:
        with self.lock:
            for stop in self._timers.values():
                stop.set()
            for fn in self.running.values():
                fn.close()
            for gate in self._gates.values():
                gate.set()  # events waiting on a stopped function give up now, not after MsgTTL
            self.running.clear()

    def _save(self) -> None:
        save_state(self.dir, self.state)

    def _blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.dir, "blobs", sha + ".zip")
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as fh:
                fh.write(data)
            os.replace(path + ".tmp", path)
        return sha

    def _unpacked(self, sha: str) -> str:
        """The zip's tree (content-addressed, so never changed under a running worker)."""
        dest = os.path.join(self.dir, "unpacked", sha)
        if not os.path.isdir(dest):
            tmp = dest + f".tmp{uuid.uuid4().hex[:6]}"
            with zipfile.ZipFile(os.path.join(self.dir, "blobs", sha + ".zip")) as zf:
                zf.extractall(tmp)
            os.replace(tmp, dest)
        return dest

    # -- functions ------------------------------------------------------------------------------
    @staticmethod
    def function_key(p: Dict[str, Any]) -> str:
        """`<namespace>/<name>` of the function a request names (the key of `state["functions"]`)."""
        return f"{p.get('Namespace') or 'default'}/{p.get('FunctionName') or ''}"

    def function_config(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """The stored configuration of the function a request names; ResourceNotFound.Function if none."""
        fn = self.state["functions"].get(self.function_key(p))
        if fn is None:
            raise ApiError("ResourceNotFound.Function", f"function {p.get('FunctionName')!r} does not exist in "
                                                        f"namespace {p.get('Namespace') or 'default'}")
        return fn

    def _configure(self, fn: Dict[str, Any], p: Dict[str, Any]) -> None:
        """Apply (and check) the configuration fields of Create/UpdateFunctionConfiguration."""
        for field in ("Description", "Role", "Type", "InstallDependency", "InitTimeout"):
            if field in p:
                fn[field] = p[field]
        if "Runtime" in p:
            if p["Runtime"] not in RUNTIMES:
                raise ApiError("InvalidParameterValue.Runtime", f"Runtime {p['Runtime']!r}: one of {', '.join(RUNTIMES)}")
            fn["Runtime"] = p["Runtime"]
        if "MemorySize" in p:
            mem = p["MemorySize"]
            if mem != 64 and not (128 <= mem <= 3072 and mem % 128 == 0):
                raise ApiError("InvalidParameterValue.MemorySize", "MemorySize: 64, or 128-3072 in steps of 128 (MB)")
            fn["MemorySize"] = mem
        if "Timeout" in p:
            if not 1 <= p["Timeout"] <= 900:
                raise ApiError("LimitExceeded.Timeout", "Timeout: 1-900 seconds")
            fn["Timeout"] = p["Timeout"]
        if "Environment" in p:
            variables = (p["Environment"] or {}).get("Variables") or []
            for var in variables:  # SCF API Variable.Value: "不可为空字符" (scf/v20180416/models.py)
                if not var.get("Key") or not var.get("Value"):
                    raise ApiError("InvalidParameterValue.Environment",
                                   f"environment variable {var.get('Key')!r}: Key and Value must not be empty")
            fn["Environment"] = {"Variables": [{"Key": v["Key"], "Value": v["Value"]} for v in variables]}
        if "Layers" in p:
            for layer in p["Layers"] or []:
                self._layer_version(layer.get("LayerName", ""), layer.get("LayerVersion", 0))
            fn["Layers"] = [{"LayerName": x["LayerName"], "LayerVersion": x["LayerVersion"]} for x in p["Layers"] or []]
        if "DeadLetterConfig" in p:
            dead = p["DeadLetterConfig"] or {}
            if dead and dead.get("Type") not in DEAD_LETTER_TYPES:
                raise ApiError("InvalidParameterValue.DeadLetterConfig",
                               f"DeadLetterConfig.Type {dead.get('Type')!r}: one of {', '.join(DEAD_LETTER_TYPES)}")
            fn["DeadLetterConfig"] = dead
        if "PublicNetConfig" in p:
            fn["PublicNetConfig"] = p["PublicNetConfig"]
        if "Handler" in p:
            if not re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", p["Handler"] or ""):
                raise ApiError("InvalidParameterValue.Handler", "Handler must look like index.main_handler")
            fn["Handler"] = p["Handler"]

    def CreateFunction(self, p: Dict[str, Any]) -> Dict[str, Any]:
        key = self.function_key(p)
        if not NAME_RE.match(p.get("FunctionName") or ""):
            raise ApiError("InvalidParameterValue.FunctionName", "FunctionName: 2-60 letters, digits, _ and -, "
                                                                 "starting with a letter")
        if key in self.state["functions"]:
            raise ApiError("ResourceInUse.Function", f"function {p['FunctionName']!r} already exists")
        for field in ("Handler", "Runtime"):
            if not p.get(field):
                raise ApiError("MissingParameter", f"{field} is required")
        fn: Dict[str, Any] = {"FunctionName": p["FunctionName"], "Namespace": p.get("Namespace") or "default",
                              "FunctionId": "lam-" + uuid.uuid4().hex[:8], "MemorySize": 128, "Timeout": 3,
                              "Type": "Event", "Description": "", "Role": "", "Environment": {"Variables": []},
                              "Layers": [], "Status": "Creating", "AddTime": timestamp(), "ModTime": timestamp(),
                              "Tags": p.get("Tags") or [], "Triggers": [], "Reserved": None,
                              "AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": 2}], "MsgTTL": 21600}}
        self._configure(fn, p)
        fn["CodeSha256"] = self._blob(_zip(p.get("Code") or {}, "Code"))
        self.state["functions"][key] = fn
        self._deploy(key)
        self._settle(key)
        return {}

    def _busy(self, action: str, p: Dict[str, Any]) -> Dict[str, Any]:
        """The function, unless a write is still being applied to it (then the API refuses, as SCF does)."""
        fn = self.function_config(p)
        if fn.get("Status", "Active") != "Active":
            raise ApiError(BUSY[action], f"function {fn['FunctionName']!r} is {fn['Status']}: write again once "
                                         "its Status is Active (GetFunction)")
        return fn

    def _settle(self, key: str) -> None:
        """Creating / Updating now, Active a moment later (the local stand-in for SCF applying a write)."""
        fn = self.state["functions"][key]
        fn["Status"] = "Creating" if fn["Status"] == "Creating" else "Updating"
        token = uuid.uuid4().hex
        fn["_settling"] = token

        def done() -> None:
            with self.lock:
                current = self.state["functions"].get(key)
                if current is not None and current.get("_settling") == token:
                    current["Status"] = "Active"
                    current.pop("_settling", None)
                    self._save()

        timer = threading.Timer(self.settle_seconds, done)
        timer.daemon = True
        timer.start()

    def UpdateFunctionCode(self, p: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._busy("UpdateFunctionCode", p)
        source = p.get("Code") if p.get("Code") else p
        fn["CodeSha256"] = self._blob(_zip(source, "Code" if p.get("Code") else "UpdateFunctionCode"))
        if p.get("Handler"):
            self._configure(fn, {"Handler": p["Handler"]})
        fn["ModTime"] = timestamp()
        self._deploy(self.function_key(p))
        self._settle(self.function_key(p))
        return {}

    def UpdateFunctionConfiguration(self, p: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._busy("UpdateFunctionConfiguration", p)
        if p.get("Runtime") and p["Runtime"] != fn["Runtime"]:  # the SDK: "创建时指定，目前不支持修改"
            raise ApiError("InvalidParameterValue.Runtime", f"Runtime is set when the function is created and cannot "
                                                            f"be changed ({fn['Runtime']})")
        self._configure(fn, p)
        fn["ModTime"] = timestamp()
        self._deploy(self.function_key(p))
        self._settle(self.function_key(p))
        return {}

    def GetFunctionAddress(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """The code's SHA-256 (SCF API GetFunctionAddress: `CodeSha256` "函数的SHA256编码", `Url` its COS
        address; the SDK's GetFunctionAddressResponse): here the hex SHA-256 of the zip as uploaded."""
        fn = self.function_config(p)
        return {"Url": "", "CodeSha256": fn["CodeSha256"]}  # no code download here

    def expose(self, name: str, env: Dict[str, str], tags: Dict[str, str], url: Optional[str] = None,
               cos: Optional[str] = None) -> None:
        """Make a function the CLI wired (`cos-matting localcloud --trigger/--function-url`) visible to
        ListFunctions / GetFunction, tagged like a deployed stage, so `--stage` finds it (read-only: the
        write actions only know deployed functions). `url`: its Function URL; `cos`: its COS trigger's bucket."""
        triggers = []
        if url:
            triggers.append({"Type": "http", "TriggerName": "url-trigger", "Enable": 1, "Qualifier": "$DEFAULT",
                             "TriggerDesc": json.dumps({"AuthType": "NONE", "NetConfig": {
                                 "EnableIntranet": False, "EnableExtranet": True, "ExtranetUrl": url,
                                 "IntranetUrl": ""}}),
                             "CustomArgument": "", "Description": "", "AddTime": timestamp(), "ModTime": timestamp(),
                             "AvailableStatus": "Available"})
        if cos:
            triggers.append({"Type": "cos", "TriggerName": f"{cos}.cos.{self.cloud.region}.myqcloud.com", "Enable": 1,
                             "Qualifier": "$DEFAULT", "TriggerDesc": json.dumps({"event": "cos:ObjectCreated:*"}),
                             "CustomArgument": "", "Description": "", "AddTime": timestamp(),
                             "ModTime": timestamp(), "AvailableStatus": "Available"})
        self.exposed[f"default/{name}"] = {
            "FunctionName": name, "Namespace": "default", "FunctionId": "lam-" + uuid.uuid4().hex[:8],
            "MemorySize": 128, "Timeout": 60, "Type": "Event", "Description": "wired by cos-matting localcloud",
            "Role": "", "Runtime": "Python3.10", "Handler": "index.main_handler", "Layers": [], "Status": "Active",
            "AddTime": timestamp(), "ModTime": timestamp(), "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            "Environment": {"Variables": [{"Key": k, "Value": v} for k, v in sorted(env.items()) if v]},
            "Triggers": triggers}

    def GetFunction(self, p: Dict[str, Any]) -> Dict[str, Any]:
        wired = self.exposed.get(self.function_key(p))
        if wired is not None and self.function_key(p) not in self.state["functions"]:
            return {**wired, "CodeSize": 0, "Qualifier": "$LATEST", "FunctionVersion": "$LATEST",
                    "AvailableStatus": "Available", "StatusDesc": "", "ClsLogsetId": self.cloud.cls.logset_id,
                    "ClsTopicId": self.cloud.cls.topic_id}
        fn = self.function_config(p)
        out = {k: v for k, v in fn.items() if k not in ("CodeSha256", "Reserved", "AsyncTriggerConfig", "_settling")}
        out["CodeSize"] = os.path.getsize(os.path.join(self.dir, "blobs", fn["CodeSha256"] + ".zip"))
        out["Triggers"] = [self._trigger_out(t) for t in fn["Triggers"]]
        out.update(Qualifier="$LATEST", FunctionVersion="$LATEST", AvailableStatus="Available", StatusDesc="",
                   # where its logs go (SCF API GetFunction ClsLogsetId/ClsTopicId, 583/18584): the cloud's CLS topic
                   ClsLogsetId=self.cloud.cls.logset_id, ClsTopicId=self.cloud.cls.topic_id)
        return out

    def ListFunctions(self, p: Dict[str, Any]) -> Dict[str, Any]:
        ns = p.get("Namespace") or "default"
        listed = list(self.state["functions"].values()) + [
            fn for key, fn in self.exposed.items() if key not in self.state["functions"]]
        found = [fn for fn in listed if fn["Namespace"] == ns
                 and (p.get("SearchKey") or "") in fn["FunctionName"] and _matches(fn, p.get("Filters") or [])]
        offset, limit = p.get("Offset") or 0, p.get("Limit") or 20
        out = [{k: fn[k] for k in ("FunctionName", "FunctionId", "Namespace", "Runtime", "Status", "Description",
                                   "AddTime", "ModTime", "Type")} for fn in found[offset:offset + limit]]
        return {"Functions": out, "TotalCount": len(found)}

    def DeleteFunction(self, p: Dict[str, Any]) -> Dict[str, Any]:
        key = self.function_key(p)
        fn = self.function_config(p)
        for trig in list(fn["Triggers"]):
            self._unbind(key, trig)
        del self.state["functions"][key]
        running = self.running.pop(key, None)
        if running is not None:
            running.close()
        gate = self._gates.pop(key, None)
        if gate is not None:
            gate.set()  # waiting events find the function closed
        return {}

    # -- running what was deployed --------------------------------------------------------------
    def _has_role(self, fn: Dict[str, Any]) -> bool:
        return bool(fn.get("Role")) and self.cloud.cam.trusts(fn["Role"], "scf.qcloud.com")

    def _platform_env(self, fn: Dict[str, Any]) -> Dict[str, str]:
        """What SCF adds: role credentials (only with a role that trusts SCF), region, the local endpoint."""
        env = {"TENCENTCLOUD_REGION": self.cloud.region, "COS_MATTING_ENDPOINT": self.cloud.url}
        if self._has_role(fn):
            env.update({k: v for k, v in self.cloud.function_env().items() if k.startswith("TENCENTCLOUD_")})
        return env

    def _deploy(self, key: str) -> None:
        """(Re)start the function from its state; triggers follow the new instance."""
        fn = self.state["functions"][key]
        old = self.running.pop(key, None)
        module, _, handler = fn.get("Handler", "index.main_handler").partition(".")
        code = self._unpacked(fn["CodeSha256"])
        layers = [self._unpacked(self._layer_version(x["LayerName"], x["LayerVersion"], deleted=True)["Sha256"])
                  for x in fn.get("Layers") or []]
        env = {**self._platform_env(fn), **{v["Key"]: v["Value"] for v in fn["Environment"]["Variables"]}}
        gate = self._gate(key)
        new: Optional[DeployedFunction] = None
        if module == "index" and os.path.isfile(os.path.join(code, "index.py")):
            new = DeployedFunction(fn["FunctionName"], code, env, DEFAULT_CONCURRENCY, float(fn["Timeout"]),
                                   runtime_python(self.cloud.runtime.python),
                                   self.cloud.runtime.invocation_env if self._has_role(fn) else None,
                                   layers=layers, handler=handler, gate=gate,
                                   ttl=float(fn["AsyncTriggerConfig"]["MsgTTL"]))
            self.running[key] = new
        for trig in fn["Triggers"]:
            self._bind(key, trig)
        if old is not None:
            old.successor = new
            old.close()
        self._save()

    def _gate(self, key: str) -> threading.Event:
        """Open unless the function's reserved concurrency is 0 (kept across redeploys of the function)."""
        gate = self._gates.setdefault(key, threading.Event())
        (gate.clear if self.state["functions"][key].get("Reserved") == 0 else gate.set)()
        return gate

    # -- layers ---------------------------------------------------------------------------------
    def _layer_version(self, name: str, version: int, deleted: bool = False) -> Dict[str, Any]:
        """A published version; `deleted` also finds removed ones (functions bound to them keep running)."""
        for v in self.state["layers"].get(name, []):
            if v["LayerVersion"] == version and (deleted or v["Status"] == "Active"):
                return v
        raise ApiError("ResourceNotFound.LayerVersion", f"layer {name!r} has no version {version}")

    def PublishLayerVersion(self, p: Dict[str, Any]) -> Dict[str, Any]:
        name = p.get("LayerName") or ""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", name):
            raise ApiError("InvalidParameterValue.LayerName", "LayerName: 1-64 letters, digits, _ and -")
        if not p.get("CompatibleRuntimes"):
            raise ApiError("MissingParameter", "CompatibleRuntimes is required")
        versions = self.state["layers"].setdefault(name, [])
        number = max((v["LayerVersion"] for v in versions), default=0) + 1
        versions.append({"LayerName": name, "LayerVersion": number, "Description": p.get("Description") or "",
                         "CompatibleRuntimes": p["CompatibleRuntimes"], "AddTime": timestamp(), "Status": "Active",
                         "LicenseInfo": p.get("LicenseInfo") or "",
                         "Sha256": self._blob(_zip(p.get("Content") or {}, "Content"))})
        self._save()
        return {"LayerVersion": number}

    @staticmethod
    def _layer_out(v: Dict[str, Any]) -> Dict[str, Any]:
        return {k: val for k, val in v.items() if k != "Sha256"}

    def ListLayerVersions(self, p: Dict[str, Any]) -> Dict[str, Any]:
        versions = [v for v in self.state["layers"].get(p.get("LayerName") or "", []) if v["Status"] == "Active"]
        if not versions:
            raise ApiError("ResourceNotFound.Layer", f"layer {p.get('LayerName')!r} does not exist")
        return {"LayerVersions": [self._layer_out(v) for v in sorted(versions, key=lambda v: -v["LayerVersion"])]}

    def GetLayerVersion(self, p: Dict[str, Any]) -> Dict[str, Any]:
        v = self._layer_version(p.get("LayerName") or "", p.get("LayerVersion") or 0)
        return {**self._layer_out(v), "CodeSha256": v["Sha256"], "Location": ""}

    def DeleteLayerVersion(self, p: Dict[str, Any]) -> Dict[str, Any]:
        v = self._layer_version(p.get("LayerName") or "", p.get("LayerVersion") or 0)
        v["Status"] = "Deleted"  # hidden from Get/List; functions already bound to it keep it
        self._save()
        return {}

    # -- concurrency and async retry ------------------------------------------------------------
    def PutReservedConcurrencyConfig(self, p: Dict[str, Any]) -> Dict[str, Any]:
        fn = self.function_config(p)
        mem = p.get("ReservedConcurrencyMem")
        if not isinstance(mem, int) or mem < 0 or mem % fn["MemorySize"]:
            raise ApiError("InvalidParameterValue",
                           f"ReservedConcurrencyMem must be a multiple of the function's memory ({fn['MemorySize']} MB)")
        fn["Reserved"] = mem
        self._gate(self.function_key(p))  # 0 stops it; anything else lets waiting events run
        self._save()
        return {}

    def GetReservedConcurrencyConfig(self, p: Dict[str, Any]) -> Dict[str, Any]:
        return {"ReservedMem": self.function_config(p)["Reserved"]}

    def DeleteReservedConcurrencyConfig(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self.function_config(p)["Reserved"] = None
        self._gate(self.function_key(p))
        self._save()
        return {}

    def UpdateFunctionEventInvokeConfig(self, p: Dict[str, Any]) -> Dict[str, Any]:
        fn = self.function_config(p)
        config = p.get("AsyncTriggerConfig") or {}
        retry = (config.get("RetryConfig") or [{}])[0].get("RetryNum")
        ttl = config.get("MsgTTL")
        if retry is None or not 0 <= retry <= 2 or ttl is None or not 60 <= ttl <= 21600:
            raise ApiError("InvalidParameterValue.AsyncTriggerConfig", "RetryConfig[0].RetryNum 0-2 and MsgTTL "
                                                                       "60-21600 s are required")
        fn["AsyncTriggerConfig"] = {"RetryConfig": [{"RetryNum": retry}], "MsgTTL": ttl}
        self._deploy(self.function_key(p))
        return {}

    def GetFunctionEventInvokeConfig(self, p: Dict[str, Any]) -> Dict[str, Any]:
        return {"AsyncTriggerConfig": self.function_config(p)["AsyncTriggerConfig"]}

    # -- invoking -------------------------------------------------------------------------------
    def Invoke(self, p: Dict[str, Any]) -> Dict[str, Any]:
        from .scfinvoke import invoke  # payload limits, async retries, functions run without a deploy

        return invoke(self, p)

    def function_url(self, handler: Any) -> Any:
        """Serve `/_url/<id>/...`: the deployed Function URL of an `http` trigger."""
        from .replies import Reply, json_reply

        url_id, _, rest = handler.raw_path[len("/_url/"):].partition("/")
        with self.lock:
            found = [(key, t) for key, fn in self.state["functions"].items() for t in fn["Triggers"]
                     if t.get("UrlId") == url_id]
            fn = self.running.get(found[0][0]) if found else None
        if not found or fn is None or not found[0][1]["Enable"]:
            return json_reply(404, {"errorCode": 404, "errorMessage": f"no Function URL {url_id!r}"})
        if json.loads(found[0][1]["TriggerDesc"]).get("AuthType") == "CAM" and not handler.headers.get("Authorization"):
            return json_reply(403, {"errorCode": 403, "errorMessage": "this Function URL requires CAM authentication"})
        body = handler.body(6 << 20)  # 6 MB: the synchronous payload limit
        event = function_url_event(handler.command, "/" + rest, handler.query_pairs, dict(handler.headers.items()),
                                   body, handler.client_address[0])
        status, headers, out = function_url_reply(self.cloud.runtime.run(fn, event, "http"))
        return Reply(status, headers, out)
