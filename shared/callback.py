"""The job callback: verify the token, read the hint, re-read the job, advance the record.

The body only tells us which job to look at; the state we record is always the
one `GET /jobs/<JobId>` returns.
"""
import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import tokens, xmlcodec
from .cloud import CloudError, Clients
from .config import Settings
from .jobs import as_list
from .log import log
from .lifecycle import Lifecycle, WrongJob, belongs
from .records import UnreadableRecord

MAX_BODY = 256 * 1024


class BadCallback(ValueError):
    """The body is not a TaskFinish callback we can read (400)."""


def job_ids(body: bytes) -> List[str]:
    """JobIds named by a callback body, JSON or XML (told apart by the body, since senders'
    Content-Type cannot be trusted), JobsDetail object or array."""
    text = body.lstrip()
    if not text:
        raise BadCallback("empty body")
    if text[:1] in (b"{", b"["):
        try:
            data: Any = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BadCallback(f"invalid JSON: {str(exc)[:200]}") from None
        if isinstance(data, dict) and set(data) == {"Response"}:
            data = data["Response"]
    elif text[:1] == b"<":
        try:
            root, data = xmlcodec.parse(text, max_bytes=MAX_BODY)
        except ValueError as exc:
            raise BadCallback(str(exc)) from None
        if root != "Response":
            raise BadCallback(f"XML root must be <Response>, got <{root}>")
    else:
        raise BadCallback("body is neither JSON nor XML")
    if not isinstance(data, dict):
        raise BadCallback("body must be an object with EventName and JobsDetail")
    event = data.get("EventName")
    if isinstance(event, list):
        event = event[0] if event else None
    if event != "TaskFinish":
        raise BadCallback(f"EventName must be TaskFinish, got {event!r}")
    ids = []
    for detail in as_list(data.get("JobsDetail")):
        job_id = detail.get("JobId") if isinstance(detail, dict) else None
        if isinstance(job_id, list):
            job_id = job_id[0] if job_id else None
        if not isinstance(job_id, str) or not job_id.strip() or len(job_id) > 128:
            raise BadCallback("JobsDetail.JobId missing or invalid")
        ids.append(job_id.strip())
    if not ids:
        raise BadCallback("JobsDetail is empty")
    return ids


def handle(settings: Settings, clients: Clients, query: Dict[str, str], body: bytes,
           now: Optional[float] = None) -> Tuple[int, Dict[str, Any]]:
    """(HTTP status, JSON answer). Nothing is written unless the answer is 200."""
    rid = query.get("rid", "")
    if not tokens.verify(settings.callback_keys, rid, query.get("exp", ""), query.get("t", ""),
                         time.time() if now is None else now):
        log("callback.rejected", level="warning", record_id=rid or None, reason="token")
        return 401, {"error": "missing, expired or invalid token"}
    if len(body) > MAX_BODY:
        return 413, {"error": f"body larger than {MAX_BODY} bytes"}
    try:
        ids = job_ids(body)
    except BadCallback as exc:
        log("callback.rejected", level="warning", record_id=rid, reason=str(exc))
        return 400, {"error": str(exc)}
    life = Lifecycle.of(settings, clients)
    try:
        record, _ = life.store.load(rid)
        if record is None:
            return 404, {"error": f"no record {rid}"}
        jobs = [clients.ci.describe(job_id) for job_id in ids]
        for job in jobs:  # every job the body names is checked before anything is written
            belongs(rid, job, settings.deployment or "")
        results = []
        for job in jobs:
            result, record = life.advance(record, job)
            results.append({"job_id": job.JobId, "result": result, "state": record.state})
    except WrongJob as exc:
        log("callback.rejected", level="warning", record_id=rid, reason=str(exc))
        return 403, {"error": str(exc)}
    except UnreadableRecord as exc:  # nothing readable: CI's retries cannot fix it, an operator can
        log("callback.failed", level="error", record_id=rid, key=exc.key, why=exc.why)
        return 422, {"error": str(exc)}
    except CloudError as exc:
        log("callback.failed", level="error", record_id=rid, error=str(exc))
        status = 404 if exc.operation == "ci.get" and exc.status in (400, 404) else 503
        return status, {"error": str(exc)}
    log("callback.done", record_id=rid, results=results)
    return 200, {"record_id": rid, "results": results}


def create_app(settings_factory: Callable[[], Settings], clients_factory: Callable[[Settings], Clients]) -> Any:
    """The Flask app; settings and clients are built on first use, once per container."""
    from flask import Flask, jsonify, request

    app = Flask("cos-matting-callback")
    state: Dict[str, Any] = {}

    def deps() -> Tuple[Settings, Clients]:
        if not state:
            settings = settings_factory()
            state.update(settings=settings, clients=clients_factory(settings))
        return state["settings"], state["clients"]

    @app.route("/", defaults={"_path": ""}, methods=["POST"])
    @app.route("/<path:_path>", methods=["POST"])
    def callback(_path: str) -> Any:
        settings, clients = deps()
        if (request.content_length or 0) > MAX_BODY:
            return jsonify(error=f"body larger than {MAX_BODY} bytes"), 413
        status, answer = handle(settings, clients, request.args.to_dict(), request.get_data())
        return jsonify(answer), status

    @app.route("/", defaults={"_path": ""}, methods=["GET"])
    @app.route("/<path:_path>", methods=["GET"])
    def health(_path: str) -> Any:
        return jsonify(service="cos-matting callback", ok=True)

    return app
