"""Tencent Cloud API 3.0 front door of the local cloud (the calls the tencentcloud SDK makes).

Wire format (https://cloud.tencent.com/document/api/213/30654 "签名方法 v3", and the SDK's
`tencentcloud/common/abstract_client.py` `_build_req_with_tc3_signature`): a JSON POST to
`/` with headers `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp`, `X-TC-Region`, optional
`X-TC-Token`, and `Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
SignedHeaders=content-type;host, Signature=<hex>`. Answers are HTTP 200 with
`{"Response": {..., "RequestId"}}`; errors are `{"Response": {"Error": {"Code", "Message"},
"RequestId"}}` with the public error codes (AuthFailure.SignatureFailure, InvalidAction,
UnknownParameter, ResourceNotFound.Function, ...).

The service is taken from the credential scope (`.../<service>/tc3_request`): on one
loopback port the Host cannot tell scf.tencentcloudapi.com from cam.tencentcloudapi.com,
and the signature binds the scope, so a client signing for the wrong service fails.
Request parameters are checked against the SDK's own request models (field names and
types from their docstrings), the way the real API refuses an unknown parameter.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

# The answer to a call over its rate limit: code RequestLimitExceeded ("API 频率限制说明",
# cloud.tencent.com/document/product/1278/109059); the message as real answers carry it (a logged
# "[TencentCloudSDKError] Code=RequestLimitExceeded, Message=Your current request times equals to `21` ...").
THROTTLED_MESSAGE = "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` " \
                    "for a second. Please reduce the frequency of calls."
CLOCK_SKEW = 300  # the API refuses a timestamp more than 5 minutes off (AuthFailure.SignatureExpire)
MAX_BODY = 64 << 20  # code zips travel base64-encoded in the body
SDK_MODELS = {("scf", "2018-04-16"): "tencentcloud.scf.v20180416.models",
              ("cam", "2019-01-16"): "tencentcloud.cam.v20190116.models",
              ("cls", "2020-10-16"): "tencentcloud.cls.v20201016.models",
              ("monitor", "2018-07-24"): "tencentcloud.monitor.v20180724.models"}


class ApiError(Exception):
    """An error answer: `code` is the public error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass
class Call:
    """One API call as the local cloud saw it (the deploy tests count the writes)."""

    service: str
    version: str
    action: str
    params: Dict[str, Any]
    error: str = ""


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    k = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(k, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
           credentials: Mapping[str, str], now: Optional[float] = None) -> Tuple[str, str]:
    """Check a TC3-HMAC-SHA256 request; returns (secret_id, service) or raises ApiError."""
    auth = headers.get("Authorization") or ""
    m = re.fullmatch(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z0-9]+)/tc3_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth.strip())
    if not m:
        raise ApiError("AuthFailure.InvalidAuthorization", "Authorization is not a TC3-HMAC-SHA256 signature")
    secret_id, date, service, signed, sig = m.groups()
    if secret_id not in credentials:
        raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId "
                                                       "is correct.")
    try:
        stamp = int(headers.get("X-TC-Timestamp") or "")
    except ValueError:
        raise ApiError("MissingParameter", "X-TC-Timestamp is missing or not an integer") from None
    now = time.time() if now is None else now
    if abs(now - stamp) > CLOCK_SKEW:
        raise ApiError("AuthFailure.SignatureExpire", "Signature expired. Timestamp is more than 5 minutes off.")
    if time.strftime("%Y-%m-%d", time.gmtime(stamp)) != date:
        raise ApiError("AuthFailure.SignatureFailure", "the credential date does not match X-TC-Timestamp")
    names = signed.split(";")
    if "host" not in names or "content-type" not in names:
        raise ApiError("AuthFailure.SignatureFailure", "SignedHeaders must include content-type and host")
    canonical_headers = "".join(f"{n}:{(headers.get(n) or '').strip().lower()}\n" for n in names)
    canonical = "\n".join([method, path, query, canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/{service}/tc3_request\n" \
              f"{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    if not hmac.compare_digest(signature(credentials[secret_id], date, service, to_sign), sig):
        raise ApiError("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please "
                                                       "check your signature is correct.")
    return secret_id, service


# -- what the services share ---------------------------------------------------------------------


def timestamp() -> str:
    """The API's time format ("2026-12-01 09:30:00", e.g. AddTime / ModTime)."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def load_state(folder: str, default: Dict[str, Any]) -> Dict[str, Any]:
    """A service's persisted state (`<folder>/state.json`), or `default` for a new cloud."""
    import os

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "state.json")
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_state(folder: str, state: Mapping[str, Any]) -> None:
    """Written whole and renamed into place: a crash leaves the previous state, never half of one."""
    import os

    path = os.path.join(folder, "state.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


# -- the SDK's request models as the schema -----------------------------------------------------

_TYPE = re.compile(r"^\s*:type (\w+): (.+?)\s*$", re.M)


def _model(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name, None)


@functools.lru_cache(maxsize=None)
def fields(model: Any) -> Dict[str, str]:
    """Field name -> type as the SDK model documents it (`str`, `int`, `list of Variable`, `:class:...`);
    read once per model (a SearchLog page holds 1,000 LogInfo objects)."""
    return dict(_TYPE.findall(model.__init__.__doc__ or ""))


def check_params(module: str, model_name: str, params: Any, where: str = "") -> List[str]:
    """Problems of `params` against SDK model `model_name`: unknown fields, wrong types."""
    model = _model(module, model_name)
    if model is None:
        return [f"{where or model_name}: the SDK has no model {model_name}"]
    if not isinstance(params, dict):
        return [f"{where or model_name}: expected an object, got {type(params).__name__}"]
    known = fields(model)
    problems = []
    for key, value in params.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            problems.append(f"{path}: unknown parameter (not in {model_name})")
        elif value is not None:
            problems += _check_type(module, known[key], value, path)
    return problems


def _check_type(module: str, spec: str, value: Any, path: str) -> List[str]:
    if spec.startswith("list of "):
        if not isinstance(value, list):
            return [f"{path}: expected a list ({spec}), got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in _check_type(module, spec[8:], item, f"{path}[{i}]")]
    m = re.fullmatch(r":class:`[\w.]+\.(\w+)`", spec)
    name = m.group(1) if m else spec.split()[0]  # "int non-negative" -> int
    scalars: Dict[str, Callable[[Any], bool]] = {
        "str": lambda v: isinstance(v, str), "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool), "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}
    if name in scalars:
        return [] if scalars[name](value) else [f"{path}: expected {name}, got {type(value).__name__} {value!r:.40}"]
    return check_params(module, name, value, path)


# -- dispatch -----------------------------------------------------------------------------------


class Api:
    """Routes signed calls to the service objects (`scf`, `cam`): one method per action."""

    def __init__(self, credentials: Mapping[str, str], services: Mapping[Tuple[str, str], Any],
                 faults: Any = None) -> None:
        self.credentials, self.services, self.faults = credentials, dict(services), faults
        self.calls: List[Call] = []

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Dict[str, Any]:
        """The JSON answer (always HTTP 200, like the real API)."""
        request_id = str(uuid.uuid4())
        action, version = headers.get("X-TC-Action") or "", headers.get("X-TC-Version") or ""
        call = Call("", version, action, {})
        try:
            if method != "POST" or not (headers.get("Content-Type") or "").startswith("application/json"):
                raise ApiError("UnsupportedProtocol", "the local cloud accepts JSON POST requests only")
            _, call.service = verify(method, path, query, headers, body, self.credentials)
            try:
                call.params = json.loads(body or b"{}")
            except ValueError:
                raise ApiError("InvalidParameter", "the body is not valid JSON") from None
            self.calls.append(call)
            fault = self.faults.take(f"api.{call.service}") if self.faults is not None else None
            if fault is not None:  # refused before it runs, as the API's rate limiter does
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.code or fault.status == 429:
                    raise ApiError(fault.code or "RequestLimitExceeded", THROTTLED_MESSAGE)
                raise ApiError("InternalError", f"injected fault (HTTP {fault.status} equivalent)")
            service = self.services.get((call.service, version))
            if service is None:
                raise ApiError("InvalidAction", f"service {call.service} version {version!r} is not served here")
            handler = getattr(service, action, None) if re.fullmatch(r"[A-Z]\w+", action) else None
            if handler is None:
                raise ApiError("InvalidAction", f"The action {action!r} is not found (service {call.service}).")
            module = SDK_MODELS[(call.service, version)]
            problems = check_params(module, f"{action}Request", call.params)
            if problems:
                code = "UnknownParameter" if "unknown parameter" in problems[0] else "InvalidParameter"
                raise ApiError(code, "; ".join(problems))
            if action in getattr(service, "unlocked", ()):
                result = handler(call.params) or {}
            else:
                with service.lock:  # one write at a time per service, persisted before answering
                    result = handler(call.params) or {}
            # The emulator's answers are held to the SDK's response models too: a field the SDK
            # does not know, or of the wrong type, is a bug here, not something a client should see.
            wrong = check_params(module, f"{action}Response", {**result, "RequestId": request_id})
            if wrong:
                raise ApiError("InternalError", "local cloud answer does not match the SDK: " + "; ".join(wrong))
            return {"Response": {**result, "RequestId": request_id}}
        except ApiError as exc:
            call.error = exc.code
            return {"Response": {"Error": {"Code": exc.code, "Message": exc.message}, "RequestId": request_id}}

    def writes(self, since: int = 0) -> List[Call]:
        """Successful calls after index `since` that change something (not Get/List/Describe)."""
        return [c for c in self.calls[since:] if not c.error and not c.action.startswith(("Get", "List", "Describe"))]


def reply_json(handler: Any, api: Api) -> Tuple[int, Dict[str, str], bytes]:
    """Serve one HTTP request of `localcloud.server.Handler` (its headers map is case-insensitive)."""
    body = handler.body(MAX_BODY)
    answer = api.handle(handler.command, handler.raw_path, handler.path.partition("?")[2], handler.headers, body)
    return 200, {"Content-Type": "application/json"}, json.dumps(answer, ensure_ascii=False).encode("utf-8")
