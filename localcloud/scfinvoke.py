"""SCF API `Invoke` in the local cloud: synchronous, or asynchronous (InvocationType=Event) with
SCF's payload limits, its async retries and the function's concurrency.

Facts and sources:
- ClientContext "同步调用最大支持 6MB，异步调用最大支持 128 KB" (tencentcloud-sdk-python-scf
  `tencentcloud/scf/v20180416/models.py`, InvokeRequest; also https://www.tencentcloud.com/document/
  api/583/17243). An oversize event is "406 RequestTooLarge ... 6 MB for sync request events or
  128 KB for async ones" (function status codes, https://www.tencentcloud.com/document/product/583/35311);
  the API error code is the SDK's `InvalidParameter.RequestTooLarge` ("请求大小超限",
  `tencentcloud/scf/v20180416/errorcodes.py`), the only size error it lists.
- InvocationType is RequestResponse (default) or Event (doc 583/17243); anything else is
  `InvalidParameterValue.InvokeType` (errorcodes.py).
- An asynchronous invocation that fails is retried like a COS trigger's event ("Error Types and Retry Policies", 583/39851:
  2 more times by default, the function's AsyncTriggerConfig RetryNum when deployed with one);
  here the retries are 0.5 s apart instead of about a minute.
- Concurrency: at most the function's instance count run at once; further async events wait in its
  queue, the way events beyond a function's concurrency wait in SCF's async queue.

Functions are those deployed through the SCF API (localcloud/scfapi.py) and, in the default
namespace, those the local cloud runs without a deploy (`LocalCloud.add_trigger`,
`cos-matting localcloud --trigger`), so a test or the demo can Invoke what its trigger runs.
"""
from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Dict, Tuple

from .tcapi import ApiError

if TYPE_CHECKING:
    from .scf import Function
    from .scfapi import ScfService

SYNC_LIMIT = 6 << 20
ASYNC_LIMIT = 128 << 10
INVOCATION_TYPES = ("RequestResponse", "Event")
DEFAULT_ASYNC_RETRIES = 2
RETRY_DELAY = 0.5


def _function(service: "ScfService", p: Dict[str, Any]) -> Tuple["Function", int]:
    key = service.function_key(p)
    with service.lock:
        config = service.state["functions"].get(key)
        fn = service.running.get(key) if config is not None else None
    if config is None:
        if (p.get("Namespace") or "default") == "default":
            fn = service.cloud.runtime.functions.get(p.get("FunctionName") or "")
        if fn is None:
            service.function_config(p)  # raises ResourceNotFound.Function
        return fn, DEFAULT_ASYNC_RETRIES
    if fn is None:
        raise ApiError("ResourceNotFound.Function", f"function {p.get('FunctionName')!r} has no runnable code")
    retries = ((config.get("AsyncTriggerConfig") or {}).get("RetryConfig") or [{}])[0].get("RetryNum")
    return fn, DEFAULT_ASYNC_RETRIES if retries is None else int(retries)


def invoke(service: "ScfService", p: Dict[str, Any]) -> Dict[str, Any]:
    kind = p.get("InvocationType") or "RequestResponse"
    if kind not in INVOCATION_TYPES:
        raise ApiError("InvalidParameterValue.InvokeType", f"InvocationType {kind!r}: {' or '.join(INVOCATION_TYPES)}")
    fn, retries = _function(service, p)
    body = p.get("ClientContext") or "{}"
    size, limit = len(body.encode("utf-8")), ASYNC_LIMIT if kind == "Event" else SYNC_LIMIT
    if size > limit:
        raise ApiError("InvalidParameter.RequestTooLarge",
                       f"ClientContext is {size} bytes; {'an asynchronous' if kind == 'Event' else 'a synchronous'} "
                       f"invocation takes at most {limit} ({'128 KB' if kind == 'Event' else '6 MB'})")
    try:
        event = json.loads(body)
    except ValueError:
        raise ApiError("InvalidParameterValue.ClientContext", "ClientContext must be a JSON string") from None
    runtime = service.cloud.runtime
    if kind == "Event":
        runtime.invoke_async(fn, event, "direct", retries=retries, retry_delay=RETRY_DELAY)
        return {"Result": {"FunctionRequestId": uuid.uuid4().hex, "InvokeResult": 0, "RetMsg": "", "ErrMsg": "",
                           "Log": "", "Duration": 0.0, "BillDuration": 0, "MemUsage": 0}}
    inv = runtime.run(fn, event, "direct")
    return {"Result": {"FunctionRequestId": inv.request_id, "InvokeResult": 0 if inv.ok else -1,
                       "RetMsg": json.dumps(inv.result) if inv.ok else "", "ErrMsg": "" if inv.ok else inv.error,
                       "Log": "\n".join(inv.logs), "Duration": round(inv.duration * 1000, 3),
                       "BillDuration": int(inv.duration * 1000) + 1, "MemUsage": 0}}
