"""Event shapes of the local cloud: what SCF hands a handler, built in one place.

Used by the local SCF (its Function URLs, timers and invocations) and by the CLI
(`invoke`, `replay`, `generate-event`), so a handler run either way sees the same shapes.
Each shape names the source of its fields. COS trigger events have their own home,
`shared/events.py` (`build_event`), because the deployed code parses them.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

# The headers of a Function URL request from CI, as in the captured events/funcurl/* events.
SAMPLE_HOST = "1250000000-abcdefgh-gz.scf.tencentcs.com"
SAMPLE_CLIENT = "203.0.113.9"


def function_url_event(method: str, path: str, query: Sequence[Tuple[str, str]], headers: Mapping[str, str],
                       body: bytes, source_ip: str) -> Dict[str, Any]:
    """An SCF Function URL event as SCF doc 583/96099 shows it (2025): `httpMethod`, `path`,
    `headers`, `body`, `queryString`; no `requestContext`, no `isBase64Encoded`, the client's
    address in the header `x-scf-remote-addr` (https://cloud.tencent.com/document/product/583/96099).
    A repeated query parameter becomes a list of its values.

    How a body that is not UTF-8 text arrives is not documented: it is sent base64-encoded
    with the API-gateway flag `isBase64Encoded`, the one case that keeps it.
    """
    query_dict: Dict[str, Any] = {}
    for key, value in query:
        if key in query_dict:
            prev = query_dict[key]
            query_dict[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            query_dict[key] = value
    headers = {k.lower(): v for k, v in headers.items()}
    headers["x-scf-remote-addr"] = source_ip
    event: Dict[str, Any] = {"httpMethod": method, "path": path, "headers": headers, "queryString": query_dict}
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
    return event


def callback_request(body: str, content_type: str, query: Optional[Mapping[str, Union[str, List[str]]]] = None,
                     method: str = "POST", base64_body: bool = False) -> Dict[str, Any]:
    """A CI callback as the callback function receives it: `function_url_event` with the headers
    of the captured events/funcurl/* requests. `base64_body` gives the older API-gateway shape
    (base64 body, `isBase64Encoded`, `requestContext`), which the handler still accepts."""
    headers = {"accept": "*/*", "content-type": content_type, "host": SAMPLE_HOST,
               "user-agent": "Go-http-client/1.1", "x-forwarded-for": SAMPLE_CLIENT}
    event = function_url_event(method, "/", list(_pairs(query or {})), headers, body.encode("utf-8"), SAMPLE_CLIENT)
    if base64_body:
        event.update(body=base64.b64encode(body.encode("utf-8")).decode(), isBase64Encoded=True,
                     requestContext={"sourceIp": SAMPLE_CLIENT, "requestId": str(uuid.uuid4()),
                                     "httpMethod": method, "path": "/", "stage": "$DEFAULT"})
    return event


def _pairs(query: Mapping[str, Union[str, List[str]]]) -> Iterable[Tuple[str, str]]:
    for key, value in query.items():
        for one in (value if isinstance(value, list) else [value]):
            yield key, one


def timer_event(name: str, message: str = "", when: Optional[datetime] = None) -> Dict[str, Any]:
    """The timer trigger's event (SCF doc 583/9708, captured in events/timer/*): Type, TriggerName,
    Time (UTC, seconds), Message (the trigger's custom argument)."""
    when = datetime.now(timezone.utc) if when is None else when
    return {"Type": "Timer", "TriggerName": name, "Time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "Message": message}


def scf_context(function_name: str, timeout_s: float, request_id: Optional[str] = None, namespace: str = "default",
                memory_mb: int = 128, environ: str = "") -> Dict[str, Any]:
    """The `context` argument of `main_handler(event, context)`: the fields SCF doc 583/9210
    (基本概念, 函数入参 context) lists, as a dict like the Python runtime passes it."""
    return {"request_id": request_id or uuid.uuid4().hex, "function_name": function_name,
            "namespace": namespace, "function_version": "$LATEST", "memory_limit_in_mb": memory_mb,
            "time_limit_in_ms": int(timeout_s * 1000), "environ": environ}
