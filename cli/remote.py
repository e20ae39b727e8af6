"""Invoking the deployed functions through the SCF `Invoke` API (`replay --remote`).

Each event goes synchronously (RequestResponse) with the log tail (LogType Tail); the
answer maps to the same `Result` a local run gives. Credentials as deploy/clients.py finds
them: TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY (or TENCENTCLOUD_SECRET_ID / _KEY, or
TENCENT_SECRET_ID / _KEY, the ~/.tencentcloud/credentials profile, or an instance role).
"""
from __future__ import annotations

import importlib
import json
import re
from typing import Any, Dict, List, Mapping

from cli.errors import UsageError
from cli.handlers import Result, outcomes_of, submit_rows

SYNC_LIMIT = 6 * 1024 * 1024  # SCF RequestResponse payload limit


def function_name(template: str, kind: str) -> str:
    return template.replace("{kind}", kind)


def _scf(module: str) -> Any:
    try:
        return importlib.import_module(f"tencentcloud.scf.v20180416.{module}")
    except ImportError:
        raise UsageError("--remote needs tencentcloud-sdk-python-scf: pip install 'cos-matting[cli]' "
                         "(or pip install tencentcloud-sdk-python-scf)") from None


def build_invoke_request(function: str, event: Any, namespace: str = "default", qualifier: str = "$LATEST") -> Any:
    """The SCF v20180416 InvokeRequest for a synchronous invocation (plain: no credentials, no I/O)."""
    models = _scf("models")

    payload = json.dumps(event, ensure_ascii=False)
    if len(payload.encode("utf-8")) > SYNC_LIMIT:
        raise UsageError(f"event is {len(payload.encode('utf-8'))} bytes; a synchronous invocation takes at most 6 MB")
    request = models.InvokeRequest()
    request.FunctionName = function
    request.InvocationType = "RequestResponse"
    request.ClientContext = payload
    request.Namespace = namespace
    request.Qualifier = qualifier
    request.LogType = "Tail"
    return request


def scf_client(env: Mapping[str, str], region: str, sdk_retries: bool = True) -> Any:
    """COS_MATTING_ENDPOINT points it at the local cloud's SCF API, like every other client (deploy/clients.py).
    `sdk_retries=False` for a caller with its own retry loop (backfill's Invoker): the SDK's throttling
    retryer under it would wait unseen and hide the retries from its summary."""
    from deploy.clients import client

    _scf("scf_client")  # a clear message when the SDK is missing
    if sdk_retries:
        return client("scf", env, region)
    from tencentcloud.common.retry import NoopRetryer

    return client("scf", env, region, retry=NoopRetryer())


_JSON_IN_LINE = re.compile(r"\{.*\}")


def _logged_outcomes(lines: List[str]) -> List[Dict[str, Any]]:
    """`submit.outcome` lines of the log tail. A raised handler's Invoke answer carries only
    ErrMsg and the log tail (InvokeResponse.Result: Log, RetMsg, ErrMsg; tencentcloud-sdk-python
    scf v20180416 models.py Result), so for a remote run the log tail is where the outcomes are."""
    rows = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("event") == "submit.outcome":
            rows.append(data)
    return submit_rows(rows)


def result_from_response(kind: str, response: Any) -> Result:
    """Map an InvokeResponse (or its .Result) to the same Result a local run gives."""
    result = getattr(response, "Result", response)
    res = Result(function=kind)
    log_text = getattr(result, "Log", "") or ""
    res.logs = [m.group(0) if (m := _JSON_IN_LINE.search(line)) else line for line in log_text.splitlines()]
    res.duration = float(getattr(result, "Duration", 0) or 0) / 1000
    err = getattr(result, "ErrMsg", "") or ""
    ret = getattr(result, "RetMsg", "") or ""
    res.ok = getattr(result, "InvokeResult", 0) == 0 and not err
    try:
        res.result = json.loads(ret) if ret else None
    except ValueError:
        res.result = ret
    if not res.ok:
        res.error = err or ret or "invocation failed"
    res.outcomes = (_logged_outcomes(res.logs) if kind == "submit" else []) or outcomes_of(kind, res.result)
    request_id = getattr(result, "FunctionRequestId", "")
    if request_id:
        res.notes.append(f"SCF request {request_id}")
    return res


class RemoteRunner:
    def __init__(self, env: Mapping[str, str], template: str, region: str, namespace: str, qualifier: str,
                 client: Any = None) -> None:
        self.env, self.template, self.region = env, template, region
        self.namespace, self.qualifier = namespace, qualifier
        self._client = client

    def invoke(self, kind: str, event: Any) -> Result:
        if self._client is None:
            self._client = scf_client(self.env, self.region)
        request = build_invoke_request(function_name(self.template, kind), event, self.namespace, self.qualifier)
        try:
            return result_from_response(kind, self._client.Invoke(request))
        except Exception as exc:  # TencentCloudSDKException: auth, not found, throttled, network
            code = exc.get_code() if hasattr(exc, "get_code") else type(exc).__name__
            message = exc.get_message() if hasattr(exc, "get_message") else str(exc)
            return Result(function=kind, ok=False, error=f"SCF Invoke {request.FunctionName}: {code}: {message}")
