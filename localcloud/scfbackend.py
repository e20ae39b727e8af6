"""The local SCF's backend: functions, layer versions and triggers as typed state, the rules a write
must pass, and what was deployed running in the SCF runtime (localcloud/scf.py). No HTTP here: the API 3.0
front (localcloud/scfapi.py), `Invoke` (scfinvoke.py) and the Function URLs (scf_http.py) are thin
layers over it, as moto splits `models.py` from `responses.py`.

Field names, limits and error codes are the SDK's (`tencentcloud/scf/v20180416/models.py`, `errorcodes.py`).
A deployed function runs the way SCF runs it (localcloud/scfenv.py): its code zip unpacked in one folder
(the working directory), each layer zip in another, the path exactly those, CPython 3.10 when available,
its own environment plus what SCF injects (`Platform`): role credentials only if its role trusts
scf.qcloud.com, the region, and COS_MATTING_ENDPOINT (the local cloud's stand-in for public endpoints).
State (functions, layer versions, triggers, settings, zips) persists under `data_dir`; a restarted cloud
runs the same functions again.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

from .cos import ObjectStore
from .scf import DeployedFunction, Function, Runtime, Trigger
from .scfenv import runtime_python
from .scfevents import timer_event
from .scftriggers import TriggerState, cron_matches
from .tcapi import ApiError, load_state, save_state

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
DEFAULT_ASYNC_RETRIES = 2  # "Error Types and Retry Policies", 583/39851: 2 more tries by default
# Configuration fields kept as sent and answered back, checked below where SCF checks them.
OPTIONAL_FIELDS = ("InstallDependency", "InitTimeout", "DeadLetterConfig", "PublicNetConfig")


def unzip_param(param: Optional[Dict[str, Any]], field_name: str) -> bytes:
    """The zip a request carries base64-encoded in `ZipFile`."""
    raw = (param or {}).get("ZipFile")
    if not raw:
        raise ApiError("InvalidParameterValue.Code", f"{field_name}.ZipFile is required (the local cloud takes zips "
                                                     "in the request, not from COS or git)")
    try:
        data = base64.b64decode(raw, validate=True)
        zipfile.ZipFile(io.BytesIO(data)).testzip()
    except (binascii.Error, zipfile.BadZipFile, ValueError):
        raise ApiError("InvalidParameterValue.ZipFile", f"{field_name}.ZipFile is not a base64-encoded zip") from None
    return data


# -- typed state ---------------------------------------------------------------------------------


@dataclass
class LayerVersion:
    name: str
    version: int
    runtimes: List[str]
    sha256: str
    description: str = ""
    license_info: str = ""
    add_time: str = ""
    status: str = "Active"  # Deleted: hidden from Get/List; functions already bound to it keep it

    @classmethod
    def load(cls, saved: Dict[str, Any]) -> "LayerVersion":
        if "LayerName" in saved:  # stored before the state was typed: the API's fields
            return cls(saved["LayerName"], saved["LayerVersion"], saved["CompatibleRuntimes"], saved["Sha256"],
                       saved.get("Description", ""), saved.get("LicenseInfo", ""), saved.get("AddTime", ""),
                       saved.get("Status", "Active"))
        return cls(**saved)

    def describe(self) -> Dict[str, Any]:
        return {"LayerName": self.name, "LayerVersion": self.version, "Description": self.description,
                "CompatibleRuntimes": self.runtimes, "AddTime": self.add_time, "Status": self.status,
                "LicenseInfo": self.license_info}


@dataclass
class FunctionState:
    name: str
    namespace: str
    function_id: str
    handler: str
    runtime: str
    code_sha256: str = ""
    memory_size: int = 128
    timeout: int = 3
    type: str = "Event"
    description: str = ""
    role: str = ""
    variables: List[Dict[str, str]] = field(default_factory=list)  # [{"Key", "Value"}] in the order sent
    layers: List[Dict[str, Any]] = field(default_factory=list)  # [{"LayerName", "LayerVersion"}]
    tags: List[Dict[str, str]] = field(default_factory=list)
    optional: Dict[str, Any] = field(default_factory=dict)  # OPTIONAL_FIELDS that were sent
    status: str = "Creating"
    add_time: str = ""
    mod_time: str = ""
    triggers: List[TriggerState] = field(default_factory=list)
    reserved: Optional[int] = None  # ReservedConcurrencyMem; 0 stops the function
    retry_num: int = DEFAULT_ASYNC_RETRIES  # AsyncTriggerConfig
    msg_ttl: int = 21600
    settling: str = ""  # the token of the write being applied (Creating / Updating)

    @property
    def key(self) -> str:
        return function_key(self.namespace, self.name)

    @property
    def environment(self) -> Dict[str, str]:
        return {v["Key"]: v["Value"] for v in self.variables}

    def describe(self) -> Dict[str, Any]:
        """The configuration fields of GetFunction (the SDK's GetFunctionResponse), triggers as stored."""
        return {"FunctionName": self.name, "Namespace": self.namespace, "FunctionId": self.function_id,
                "Handler": self.handler, "Runtime": self.runtime, "MemorySize": self.memory_size,
                "Timeout": self.timeout, "Type": self.type, "Description": self.description, "Role": self.role,
                "Environment": {"Variables": [dict(v) for v in self.variables]}, "Layers": [dict(x) for x in self.layers],
                "Tags": list(self.tags), "Status": self.status, "AddTime": self.add_time, "ModTime": self.mod_time,
                **self.optional}

    @classmethod
    def load(cls, saved: Dict[str, Any]) -> "FunctionState":
        if "FunctionName" in saved:
            saved = _api_shaped(saved)
        return cls(**{**saved, "triggers": [TriggerState(**t) for t in saved.get("triggers") or []]})


def _api_shaped(old: Dict[str, Any]) -> Dict[str, Any]:
    """A function as the local cloud stored it before its state was typed (the API's fields, one dict), so a
    data_dir kept from then runs the same functions again."""
    retry = (old.get("AsyncTriggerConfig") or {}).get("RetryConfig") or [{}]
    return {"name": old["FunctionName"], "namespace": old["Namespace"], "function_id": old["FunctionId"],
            "handler": old.get("Handler", "index.main_handler"), "runtime": old.get("Runtime", ""),
            "code_sha256": old["CodeSha256"], "memory_size": old["MemorySize"], "timeout": old["Timeout"],
            "type": old.get("Type", "Event"), "description": old.get("Description", ""), "role": old.get("Role", ""),
            "variables": (old.get("Environment") or {}).get("Variables") or [], "layers": old.get("Layers") or [],
            "tags": old.get("Tags") or [], "optional": {k: old[k] for k in OPTIONAL_FIELDS if k in old},
            "status": old.get("Status", "Active"), "add_time": old.get("AddTime", ""), "mod_time": old.get("ModTime", ""),
            "reserved": old.get("Reserved"), "retry_num": retry[0].get("RetryNum", DEFAULT_ASYNC_RETRIES),
            "msg_ttl": (old.get("AsyncTriggerConfig") or {}).get("MsgTTL", 21600), "settling": old.get("_settling", ""),
            "triggers": [{"type": t["Type"], "name": t["TriggerName"], "desc": t["TriggerDesc"],
                          "enabled": bool(t["Enable"]), "qualifier": t.get("Qualifier", "$DEFAULT"),
                          "custom_argument": t.get("CustomArgument", ""), "description": t.get("Description", ""),
                          "add_time": t.get("AddTime", ""), "mod_time": t.get("ModTime", ""),
                          "url_id": t.get("UrlId", "")} for t in old.get("Triggers") or []]}


def function_key(namespace: Optional[str], name: Optional[str]) -> str:
    """`<namespace>/<name>`: how the backend keys its functions."""
    return f"{namespace or 'default'}/{name or ''}"


@dataclass
class Platform:
    """What SCF gives the functions it runs, handed to the backend by whoever composes the cloud."""

    region: str
    url: Callable[[], str]  # the endpoint functions call (COS_MATTING_ENDPOINT); known once the server is bound
    role_env: Callable[[], Dict[str, str]]  # TENCENTCLOUD_* role credentials of this moment
    trusts: Callable[[str], bool]  # CAM: whether a role exists and trusts scf.qcloud.com
    clock: Callable[[], float] = time.time

    def timestamp(self) -> str:
        """The API's time format ("2026-12-01 09:30:00", e.g. AddTime / ModTime)."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock()))


# -- the backend ---------------------------------------------------------------------------------


class ScfBackend:
    """Functions, layers and triggers of one region, and the live instances of what was deployed."""

    def __init__(self, data_dir: str, platform: Platform, runtime: Runtime, store: ObjectStore) -> None:
        self.dir, self.platform, self.runtime, self.store = data_dir, platform, runtime, store
        os.makedirs(os.path.join(data_dir, "blobs"), exist_ok=True)
        saved = load_state(data_dir, {"functions": {}, "layers": {}})
        self.functions: Dict[str, FunctionState] = {k: FunctionState.load(f) for k, f in saved["functions"].items()}
        self.layers: Dict[str, List[LayerVersion]] = {n: [LayerVersion.load(v) for v in vs]
                                                      for n, vs in saved["layers"].items()}
        self.running: Dict[str, Function] = {}
        self._cos: Dict[str, Trigger] = {}  # "<fn key>/<type>/<trigger name>" -> trigger in the runtime
        self._timers: Dict[str, threading.Event] = {}
        self._gates: Dict[str, threading.Event] = {}  # set = may run (reserved concurrency is not 0)
        self.exposed: Dict[str, FunctionState] = {}  # `localcloud --trigger/--function-url` functions, read-only
        self.lock = threading.RLock()
        self.settle_seconds = SETTLE_SECONDS

    @property
    def region(self) -> str:
        return self.platform.region

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Run every persisted function again (after the server is bound: their env has its URL)."""
        with self.lock:
            for fn in list(self.functions.values()):
                if fn.settling:  # stopped while a write was being applied: it has been since
                    fn.status, fn.settling = "Active", ""
                self._deploy(fn)

    def stop(self) -> None:
        with self.lock:
            for stop in self._timers.values():
                stop.set()
            for running in self.running.values():
                running.close()
            for gate in self._gates.values():
                gate.set()  # events waiting on a stopped function give up now, not after MsgTTL
            self.running.clear()

    def save(self) -> None:
        save_state(self.dir, {"functions": {k: asdict(f) for k, f in self.functions.items()},
                              "layers": {n: [asdict(v) for v in vs] for n, vs in self.layers.items()}})

    def _blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as fh:
                fh.write(data)
            os.replace(path + ".tmp", path)
        return sha

    def _blob_path(self, sha: str) -> str:
        return os.path.join(self.dir, "blobs", sha + ".zip")

    def code_size(self, fn: FunctionState) -> int:
        return os.path.getsize(self._blob_path(fn.code_sha256)) if fn.code_sha256 else 0  # 0: an exposed one

    def _unpacked(self, sha: str) -> str:
        """The zip's tree (content-addressed, so never changed under a running worker)."""
        dest = os.path.join(self.dir, "unpacked", sha)
        if not os.path.isdir(dest):
            tmp = dest + f".tmp{uuid.uuid4().hex[:6]}"
            with zipfile.ZipFile(self._blob_path(sha)) as zf:
                zf.extractall(tmp)
            os.replace(tmp, dest)
        return dest

    # -- functions ------------------------------------------------------------------------------
    def function(self, namespace: Optional[str], name: Optional[str]) -> FunctionState:
        """The function named; ResourceNotFound.Function if none."""
        fn = self.functions.get(function_key(namespace, name))
        if fn is None:
            raise ApiError("ResourceNotFound.Function", f"function {name!r} does not exist in "
                                                        f"namespace {namespace or 'default'}")
        return fn

    def readable(self, namespace: Optional[str], name: Optional[str]) -> FunctionState:
        """A deployed function, else one the CLI wired and exposed (`expose`); ResourceNotFound.Function if none."""
        exposed = self.exposed.get(function_key(namespace, name))
        if exposed is not None and function_key(namespace, name) not in self.functions:
            return exposed
        return self.function(namespace, name)

    def expose(self, name: str, env: Dict[str, str], tags: Dict[str, str], url: Optional[str] = None,
               cos: Optional[str] = None) -> None:
        """Make a function the CLI wired (`cos-matting localcloud --trigger/--function-url`) visible to
        ListFunctions / GetFunction, tagged like a deployed stage, so `--stage` finds it (read-only: the
        write actions only know deployed functions). `url`: its Function URL; `cos`: its COS trigger's bucket."""
        now = self.platform.timestamp()
        triggers = []
        if url:
            net = {"EnableIntranet": False, "EnableExtranet": True, "ExtranetUrl": url, "IntranetUrl": ""}
            triggers.append(TriggerState("http", "url-trigger", json.dumps({"AuthType": "NONE", "NetConfig": net}),
                                         add_time=now, mod_time=now))
        if cos:
            triggers.append(TriggerState("cos", f"{cos}.cos.{self.region}.myqcloud.com",
                                         json.dumps({"event": "cos:ObjectCreated:*"}), add_time=now, mod_time=now))
        fn = FunctionState(name, "default", "lam-" + uuid.uuid4().hex[:8], "index.main_handler", "Python3.10",
                           timeout=60, description="wired by cos-matting localcloud",
                           variables=[{"Key": k, "Value": v} for k, v in sorted(env.items()) if v],
                           tags=[{"Key": k, "Value": v} for k, v in tags.items()], status="Active", add_time=now,
                           mod_time=now, triggers=triggers)
        self.exposed[fn.key] = fn

    def writable(self, action: str, namespace: Optional[str], name: Optional[str]) -> FunctionState:
        """The function, unless a write is still being applied to it (then the API refuses, as SCF does)."""
        fn = self.function(namespace, name)
        if fn.status != "Active":
            raise ApiError(BUSY[action], f"function {fn.name!r} is {fn.status}: write again once its Status is "
                                         "Active (GetFunction)")
        return fn

    def configure(self, fn: FunctionState, p: Dict[str, Any]) -> None:
        """Apply (and check) the configuration fields of Create/UpdateFunctionConfiguration."""
        for name, attr in (("Description", "description"), ("Role", "role"), ("Type", "type")):
            if name in p:
                setattr(fn, attr, p[name])
        for name in ("InstallDependency", "InitTimeout", "PublicNetConfig"):
            if name in p:
                fn.optional[name] = p[name]
        if "Runtime" in p:
            if p["Runtime"] not in RUNTIMES:
                raise ApiError("InvalidParameterValue.Runtime", f"Runtime {p['Runtime']!r}: one of {', '.join(RUNTIMES)}")
            fn.runtime = p["Runtime"]
        if "MemorySize" in p:
            mem = p["MemorySize"]
            if mem != 64 and not (128 <= mem <= 3072 and mem % 128 == 0):
                raise ApiError("InvalidParameterValue.MemorySize", "MemorySize: 64, or 128-3072 in steps of 128 (MB)")
            fn.memory_size = mem
        if "Timeout" in p:
            if not 1 <= p["Timeout"] <= 900:
                raise ApiError("LimitExceeded.Timeout", "Timeout: 1-900 seconds")
            fn.timeout = p["Timeout"]
        if "Environment" in p:
            variables = (p["Environment"] or {}).get("Variables") or []
            for var in variables:  # SCF API Variable.Value: "不可为空字符" (scf/v20180416/models.py)
                if not var.get("Key") or not var.get("Value"):
                    raise ApiError("InvalidParameterValue.Environment",
                                   f"environment variable {var.get('Key')!r}: Key and Value must not be empty")
            fn.variables = [{"Key": v["Key"], "Value": v["Value"]} for v in variables]
        if "Layers" in p:
            for layer in p["Layers"] or []:
                self.layer_version(layer.get("LayerName", ""), layer.get("LayerVersion", 0))
            fn.layers = [{"LayerName": x["LayerName"], "LayerVersion": x["LayerVersion"]} for x in p["Layers"] or []]
        if "DeadLetterConfig" in p:
            dead = p["DeadLetterConfig"] or {}
            if dead and dead.get("Type") not in DEAD_LETTER_TYPES:
                raise ApiError("InvalidParameterValue.DeadLetterConfig",
                               f"DeadLetterConfig.Type {dead.get('Type')!r}: one of {', '.join(DEAD_LETTER_TYPES)}")
            fn.optional["DeadLetterConfig"] = dead
        if "Handler" in p:
            if not re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", p["Handler"] or ""):
                raise ApiError("InvalidParameterValue.Handler", "Handler must look like index.main_handler")
            fn.handler = p["Handler"]

    def create_function(self, p: Dict[str, Any]) -> FunctionState:
        """CreateFunction: `p` carries the SDK's configuration fields and the zip (`Code.ZipFile`)."""
        name, namespace = p.get("FunctionName") or "", p.get("Namespace") or "default"
        if not NAME_RE.match(name):
            raise ApiError("InvalidParameterValue.FunctionName", "FunctionName: 2-60 letters, digits, _ and -, "
                                                                 "starting with a letter")
        if function_key(namespace, name) in self.functions:
            raise ApiError("ResourceInUse.Function", f"function {name!r} already exists")
        for required in ("Handler", "Runtime"):
            if not p.get(required):
                raise ApiError("MissingParameter", f"{required} is required")
        now = self.platform.timestamp()
        fn = FunctionState(name, namespace, "lam-" + uuid.uuid4().hex[:8], p["Handler"], p["Runtime"],
                           tags=p.get("Tags") or [], add_time=now, mod_time=now)
        self.configure(fn, p)
        fn.code_sha256 = self._blob(unzip_param(p.get("Code"), "Code"))
        self.functions[fn.key] = fn
        self._deploy(fn)
        self._settle(fn)
        return fn

    def update_code(self, fn: FunctionState, code: bytes, handler: Optional[str]) -> None:
        fn.code_sha256 = self._blob(code)
        if handler:
            self.configure(fn, {"Handler": handler})
        self._written(fn)

    def update_configuration(self, fn: FunctionState, p: Dict[str, Any]) -> None:
        if p.get("Runtime") and p["Runtime"] != fn.runtime:  # the SDK: "创建时指定，目前不支持修改"
            raise ApiError("InvalidParameterValue.Runtime", f"Runtime is set when the function is created and cannot "
                                                            f"be changed ({fn.runtime})")
        self.configure(fn, p)
        self._written(fn)

    def _written(self, fn: FunctionState) -> None:
        fn.mod_time = self.platform.timestamp()
        self._deploy(fn)
        self._settle(fn)

    def _settle(self, fn: FunctionState) -> None:
        """Creating / Updating now, Active a moment later (the local stand-in for SCF applying a write)."""
        fn.status = "Creating" if fn.status == "Creating" else "Updating"
        token = fn.settling = uuid.uuid4().hex

        def done() -> None:
            with self.lock:
                current = self.functions.get(fn.key)
                if current is not None and current.settling == token:
                    current.status, current.settling = "Active", ""
                    self.save()

        timer = threading.Timer(self.settle_seconds, done)
        timer.daemon = True
        timer.start()

    def list_functions(self, namespace: str, search: str, filters: List[Dict[str, Any]]) -> List[FunctionState]:
        listed = list(self.functions.values()) + [fn for key, fn in self.exposed.items() if key not in self.functions]
        return [fn for fn in listed if fn.namespace == namespace and search in fn.name and _matches(fn, filters)]

    def delete_function(self, fn: FunctionState) -> None:
        for trig in list(fn.triggers):
            self._unbind(fn, trig)
        del self.functions[fn.key]
        running = self.running.pop(fn.key, None)
        if running is not None:
            running.close()
        gate = self._gates.pop(fn.key, None)
        if gate is not None:
            gate.set()  # waiting events find the function closed
        self.save()

    # -- running what was deployed --------------------------------------------------------------
    def _has_role(self, fn: FunctionState) -> bool:
        return bool(fn.role) and self.platform.trusts(fn.role)

    def _platform_env(self, fn: FunctionState) -> Dict[str, str]:
        """What SCF adds: role credentials (only with a role that trusts SCF), region, the local endpoint."""
        env = {"TENCENTCLOUD_REGION": self.region, "COS_MATTING_ENDPOINT": self.platform.url()}
        if self._has_role(fn):
            env.update({k: v for k, v in self.platform.role_env().items() if k.startswith("TENCENTCLOUD_")})
        return env

    def _deploy(self, fn: FunctionState) -> None:
        """(Re)start the function from its state; triggers follow the new instance."""
        old = self.running.pop(fn.key, None)
        module, _, handler = (fn.handler or "index.main_handler").partition(".")
        code = self._unpacked(fn.code_sha256)
        layers = [self._unpacked(self.layer_version(x["LayerName"], x["LayerVersion"], deleted=True).sha256)
                  for x in fn.layers]
        env = {**self._platform_env(fn), **fn.environment}
        gate = self._gate(fn)
        new: Optional[DeployedFunction] = None
        if module == "index" and os.path.isfile(os.path.join(code, "index.py")):
            new = DeployedFunction(fn.name, code, env, DEFAULT_CONCURRENCY, float(fn.timeout),
                                   runtime_python(self.runtime.python),
                                   self.runtime.invocation_env if self._has_role(fn) else None,
                                   layers=layers, handler=handler, gate=gate, ttl=float(fn.msg_ttl))
            self.running[fn.key] = new
        for trig in fn.triggers:
            self._bind(fn, trig)
        if old is not None:
            old.successor = new
            old.close()
        self.save()

    def _gate(self, fn: FunctionState) -> threading.Event:
        """Open unless the function's reserved concurrency is 0 (kept across redeploys of the function)."""
        gate = self._gates.setdefault(fn.key, threading.Event())
        (gate.clear if fn.reserved == 0 else gate.set)()
        return gate

    def runnable(self, namespace: Optional[str], name: Optional[str]) -> Tuple[Function, int]:
        """What an invocation runs and how often an asynchronous one is retried: a deployed function, or in the
        default namespace one the local cloud runs without a deploy (`LocalCloud.add_trigger`, `localcloud
        --trigger`), so a test or the demo can Invoke what its trigger runs."""
        with self.lock:
            fn = self.functions.get(function_key(namespace, name))
            running = self.running.get(fn.key) if fn is not None else None
        if fn is None:
            added = self.runtime.functions.get(name or "") if (namespace or "default") == "default" else None
            if added is None:
                self.function(namespace, name)  # raises ResourceNotFound.Function
            return added, DEFAULT_ASYNC_RETRIES  # type: ignore[return-value]
        if running is None:
            raise ApiError("ResourceNotFound.Function", f"function {name!r} has no runnable code")
        return running, fn.retry_num

    # -- layers ---------------------------------------------------------------------------------
    def layer_version(self, name: str, version: int, deleted: bool = False) -> LayerVersion:
        """A published version; `deleted` also finds removed ones (functions bound to them keep running)."""
        for v in self.layers.get(name, []):
            if v.version == version and (deleted or v.status == "Active"):
                return v
        raise ApiError("ResourceNotFound.LayerVersion", f"layer {name!r} has no version {version}")

    def publish_layer(self, name: str, runtimes: List[str], content: Optional[Dict[str, Any]], description: str = "",
                      license_info: str = "") -> LayerVersion:
        """PublishLayerVersion; `content` is the request's `Content` (the zip base64-encoded in `ZipFile`)."""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", name):
            raise ApiError("InvalidParameterValue.LayerName", "LayerName: 1-64 letters, digits, _ and -")
        if not runtimes:
            raise ApiError("MissingParameter", "CompatibleRuntimes is required")
        versions = self.layers.setdefault(name, [])
        number = max((v.version for v in versions), default=0) + 1
        layer = LayerVersion(name, number, runtimes, self._blob(unzip_param(content, "Content")), description, license_info,
                             self.platform.timestamp())
        versions.append(layer)
        self.save()
        return layer

    def active_layer_versions(self, name: str) -> List[LayerVersion]:
        """Newest first; ResourceNotFound.Layer when none is left."""
        versions = [v for v in self.layers.get(name, []) if v.status == "Active"]
        if not versions:
            raise ApiError("ResourceNotFound.Layer", f"layer {name!r} does not exist")
        return sorted(versions, key=lambda v: -v.version)

    def delete_layer_version(self, name: str, version: int) -> None:
        self.layer_version(name, version).status = "Deleted"
        self.save()

    # -- concurrency and async retry ------------------------------------------------------------
    def reserve(self, fn: FunctionState, mem: Any) -> None:
        """Reserved concurrency in MB: 0 stops the function, anything else lets waiting events run."""
        if not isinstance(mem, int) or mem < 0 or mem % fn.memory_size:
            raise ApiError("InvalidParameterValue",
                           f"ReservedConcurrencyMem must be a multiple of the function's memory ({fn.memory_size} MB)")
        fn.reserved = mem
        self._gate(fn)
        self.save()

    def unreserve(self, fn: FunctionState) -> None:
        fn.reserved = None
        self._gate(fn)
        self.save()

    def set_async_retry(self, fn: FunctionState, retry: Optional[int], ttl: Optional[int]) -> None:
        if retry is None or not 0 <= retry <= 2 or ttl is None or not 60 <= ttl <= 21600:
            raise ApiError("InvalidParameterValue.AsyncTriggerConfig", "RetryConfig[0].RetryNum 0-2 and MsgTTL "
                                                                       "60-21600 s are required")
        fn.retry_num, fn.msg_ttl = retry, ttl
        self._deploy(fn)

    # -- triggers -------------------------------------------------------------------------------
    def find_trigger(self, fn: FunctionState, kind: Optional[str], name: Optional[str]) -> TriggerState:
        for trig in fn.triggers:
            if trig.type == kind and trig.name == name:
                return trig
        raise ApiError("ResourceNotFound.Trigger", f"{kind} trigger {name!r} does not exist")

    def add_trigger(self, fn: FunctionState, trig: TriggerState) -> None:
        for old in fn.triggers:
            if old.type == trig.type and (old.name == trig.name or trig.type == "http"):
                raise ApiError("ResourceInUse.Trigger", f"{trig.type} trigger {old.name!r} already exists")
        if trig.type == "http":
            trig.url_id = uuid.uuid4().hex[:12]  # its address, `/_url/<url_id>`
        fn.triggers.append(trig)
        self._bind(fn, trig)
        self.save()

    def replace_trigger(self, fn: FunctionState, old: TriggerState, new: TriggerState) -> None:
        new.add_time, new.url_id = old.add_time, old.url_id  # a Function URL keeps its address across updates
        self._unbind(fn, old)
        fn.triggers[fn.triggers.index(old)] = new
        self._bind(fn, new)
        self.save()

    def delete_trigger(self, fn: FunctionState, trig: TriggerState) -> None:
        self._unbind(fn, trig)
        fn.triggers.remove(trig)
        self.save()

    def function_url(self, url_id: str) -> Tuple[Optional[TriggerState], Optional[Function]]:
        """The `http` trigger serving `/_url/<url_id>` and the instance it runs (None, None: no such URL)."""
        with self.lock:
            for fn in self.functions.values():
                for trig in fn.triggers:
                    if trig.url_id == url_id:
                        return trig, self.running.get(fn.key)
        return None, None

    def _bind(self, fn: FunctionState, trig: TriggerState) -> None:
        """Make a trigger live in the runtime (COS uploads, timer ticks; URLs are looked up per request)."""
        self._unbind(fn, trig)
        running = self.running.get(fn.key)
        if running is None or not trig.enabled:
            return
        ident = f"{fn.key}/{trig.type}/{trig.name}"
        desc = json.loads(trig.desc)
        if trig.type == "cos":
            bucket = trig.name.split(".cos.", 1)[0]
            live = Trigger(bucket, running, desc["filter"]["Prefix"], desc["filter"]["Suffix"], (desc["event"],),
                           fn.retry_num)
            self._cos[ident] = live
            self.runtime.triggers.append(live)
        elif trig.type == "timer":
            self._timers[ident] = self._start_timer(running, desc["cron"], trig.name, trig.custom_argument)

    def _unbind(self, fn: FunctionState, trig: TriggerState) -> None:
        ident = f"{fn.key}/{trig.type}/{trig.name}"
        cos = self._cos.pop(ident, None)
        if cos is not None and cos in self.runtime.triggers:
            self.runtime.triggers.remove(cos)
        stop = self._timers.pop(ident, None)
        if stop is not None:
            stop.set()

    def _start_timer(self, running: Function, cron: str, name: str, argument: str) -> threading.Event:
        stop = threading.Event()

        def loop() -> None:
            last = None
            while not stop.wait(0.2):
                now = datetime.fromtimestamp(self.platform.clock(), timezone.utc).replace(microsecond=0)
                if now != last and cron_matches(cron, now):
                    self.runtime.invoke_async(running, timer_event(name, argument, now), "timer", retries=0)
                last = now

        threading.Thread(target=loop, daemon=True, name=f"scf-timer-{name}").start()
        return stop


def _matches(fn: FunctionState, filters: List[Dict[str, Any]]) -> bool:
    """ListFunctions `Filters`: every filter must hold, any of its Values; `tag-<key>` matches a tag, other
    names a field such as Status (SDK models.py ListFunctionsRequest.Filters: "Name 字段需要以 `tag-` 起始")."""
    tags = {t.get("Key"): t.get("Value") for t in fn.tags}
    fields = fn.describe()
    for flt in filters:
        name, values = flt.get("Name") or "", flt.get("Values") or []
        have = tags.get(name[4:]) if name.startswith("tag-") else fields.get(name)
        if have not in values:
            return False
    return True
