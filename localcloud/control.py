"""The test-only control API, `/_localcloud/...` on the cloud's port: never part of the emulated COS/CI.

Tests, benchmarks and `cos-matting localcloud` users drive the cloud through it (job states,
faults, inventories) and read what happened (invocations, callbacks). JSON in, JSON out.
Each route is one small function of (cloud, handler, path parts, payload).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .cos import CosError
from .replies import Reply, json_reply

if TYPE_CHECKING:
    from .cloud import LocalCloud

Route = Callable[["LocalCloud", Any, List[str], Dict[str, Any]], Any]


def _health(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return {"ok": True, "buckets": sorted(cloud.store.buckets), "region": cloud.region}


def _jobs(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    jobs = cloud.list_jobs(h.query.get("bucket"))
    if h.query.get("count"):  # 10^5 jobs: the number, not 100 MB of JSON
        return {"count": len(jobs)}
    return [j.wire() for j in jobs]


def _job_state(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    detail = cloud.set_job_state(parts[1], parts[2], payload["state"], payload.get("code"), payload.get("message"),
                                 payload.get("media_info"), bool(payload.get("force")))
    return detail.wire()


def _add_faults(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    if "rate" in payload:
        cloud.faults.random(**payload)
    else:
        cloud.faults.add(**payload)
    return {"pending": cloud.faults.pending()}


def _clear_faults(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    cloud.faults.clear()
    return {"pending": {}}


def _faults(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return {"pending": cloud.faults.pending(), "injected": dict(cloud.faults.injected)}


def _inventory(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return cloud.generate_inventory(**payload)


def _invocations(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return [i.summary() for i in cloud.invocations]


def _callbacks(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return [{"url": c.url, "job_id": c.job_id, "state": c.state, "format": c.fmt, "attempts": c.attempts,
             "status": c.status, "ok": c.ok, "error": c.error} for c in cloud.callbacks]


def _idle(cloud: "LocalCloud", h: Any, parts: List[str], payload: Dict[str, Any]) -> Any:
    return {"idle": cloud.wait_idle(float(h.query.get("timeout") or 10))}


# (method or None for any, path after /_localcloud/ with "*" for one segment) -> route
ROUTES: List[Tuple[Optional[str], Tuple[str, ...], Route]] = [
    (None, ("health",), _health),
    ("GET", ("jobs",), _jobs),
    ("POST", ("jobs", "*", "*", "state"), _job_state),
    ("POST", ("faults",), _add_faults),
    ("DELETE", ("faults",), _clear_faults),
    ("GET", ("faults",), _faults),
    ("POST", ("inventory",), _inventory),
    ("GET", ("invocations",), _invocations),
    ("GET", ("callbacks",), _callbacks),
    ("GET", ("idle",), _idle),
]


def _find(method: str, parts: List[str]) -> Optional[Route]:
    for want_method, pattern, fn in ROUTES:
        if want_method in (None, method) and len(pattern) == len(parts) and \
                all(p == "*" or p == part for p, part in zip(pattern, parts)):
            return fn
    return None


def serve(cloud: "LocalCloud", h: Any) -> Reply:
    """Answer one `/_localcloud/...` request; a bad payload is a 400 naming the error."""
    parts = [p for p in h.raw_path.split("/") if p][1:]
    method = h.command
    try:
        payload = json.loads(h.body() or b"{}") if method in ("POST", "PUT") else {}
        fn = _find(method, parts)
        if fn is not None:
            return json_reply(200, fn(cloud, h, parts, payload))
    except CosError as exc:
        return json_reply(exc.status, {"error": exc.code, "message": exc.message})
    except (ValueError, TypeError, KeyError) as exc:
        return json_reply(400, {"error": type(exc).__name__, "message": str(exc)})
    return json_reply(404, {"error": "NotFound", "message": f"{method} {h.raw_path} is not a control route"})
