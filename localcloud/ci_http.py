"""The Cloud Infinite job API, answered for the HTTP handler (`/jobs...`, `/ai_queue`).

Each function takes the request handler (`h`) and returns a `Reply`. Shapes: the CI job API pages
(460/83973 create, 460/84790 describe, 460/84766 list, 460/84793 cancel) and the SDK calls that read them (`ci_create_media_jobs`, `ci_get_media_jobs`,
`ci_list_media_jobs`, `ci_cancel_jobs`, `ci_get_ai_queue` in qcloud_cos/cos_client.py).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from pydantic import ValidationError

from shared import xmlcodec
from shared.jobs import JobRequest, JobsResponse, format_errors

from .ci import ai_queue, parse_ci_time
from .cos import CosError
from .replies import Reply, xml_reply


def route(h: Any, bucket: str, path: str) -> Tuple[str, Callable[[], Reply]]:
    job_id = path[len("/jobs/"):] if path.startswith("/jobs/") else ""
    if h.command == "POST" and path == "/jobs":
        return "ci.create", lambda: create(h, bucket)
    if path == "/ai_queue" and h.command == "GET":
        return "ci.ai_queue", lambda: queues(h, bucket)
    if h.command == "GET" and path == "/jobs":
        return "ci.list", lambda: list_jobs(h, bucket)
    if h.command == "GET" and job_id:
        ids = [j for j in job_id.split(",") if j]
        return "ci.get", lambda: jobs_reply(*h.cloud.jobs.describe(bucket, ids))
    if h.command == "PUT" and job_id and "cancel" in h.query:
        return "ci.cancel", lambda: cancel(h, bucket, job_id)
    raise CosError(405, "MethodNotAllowed", f"{h.command} {path} is not a CI job API")


def jobs_reply(details: List[Any], missing: Optional[List[str]] = None, token: Optional[str] = None) -> Reply:
    resp = JobsResponse(JobsDetail=details, NextToken=token, NonExistJobIds=missing or [])
    return Reply(200, {"Content-Type": "application/xml"}, resp.to_xml())


def cancel(h: Any, bucket: str, job_id: str) -> Reply:
    h.cloud.jobs.cancel(bucket, job_id)
    return Reply(200, {"Content-Type": "application/xml"})  # CI answers a cancel with an empty body


def queues(h: Any, bucket: str) -> Reply:
    """DescribeAiProcessQueues (460/79394): the bucket's one AI queue, filtered by queueIds/state."""
    queue = ai_queue(bucket, h.cloud.started)
    ids = [i for i in (h.query.get("queueIds") or "").split(",") if i]
    state = h.query.get("state") or "All"
    chosen = [queue] if (not ids or queue["QueueId"] in ids) and state in ("All", queue["State"]) else []
    result = {"RequestId": h.request_id, "TotalCount": str(len(chosen)),
              "PageNumber": h.query.get("pageNumber") or "1", "PageSize": h.query.get("pageSize") or "10",
              "QueueList": chosen or None, "NonExistPIDs": [i for i in ids if i != queue["QueueId"]] or None}
    return xml_reply(200, "Response", result)


def create(h: Any, bucket: str) -> Reply:
    raw = h.body()
    try:
        request = JobRequest.from_xml(raw, bucket=bucket)
    except xmlcodec.XMLError as exc:
        raise CosError(400, "InvalidArgument", f"The request body is not valid XML: {exc}") from None
    except ValidationError as exc:
        raise CosError(400, "InvalidArgument", f"Invalid request: {format_errors(exc)}") from None
    except ValueError as exc:
        raise CosError(400, "InvalidArgument", f"Invalid request: {exc}") from None
    return jobs_reply([h.cloud.jobs.create(bucket, request, h.headers.get("Content-Type") or "")])


def list_jobs(h: Any, bucket: str) -> Reply:
    q = h.query
    try:
        size = int(q.get("size") or 10)
    except ValueError:
        raise CosError(400, "InvalidArgument", "size must be an integer") from None
    if not 1 <= size <= 100:
        raise CosError(400, "InvalidArgument", f"size must be 1-100, got {size}")
    order = q.get("orderByTime") or "Desc"
    if order not in ("Desc", "Asc"):
        raise CosError(400, "InvalidArgument", "orderByTime must be Desc or Asc")
    start = parse_ci_time(q["startCreationTime"]) if q.get("startCreationTime") else None
    end = parse_ci_time(q["endCreationTime"]) if q.get("endCreationTime") else None
    if not q.get("tag"):
        raise CosError(400, "InvalidArgument", "tag is required")
    if q.get("queueId") and q.get("queueType") and h.cloud.ci_refuse_queue_id_with_type:
        # DescribeMediaJobs (CI API 1045/50356): queueType must not be sent with queueId. What CI
        # does with both is undocumented; refusing is the strictest reading (switchable).
        raise CosError(400, "InvalidArgument", "queueType must not be used together with queueId")
    details, token = h.cloud.jobs.list(bucket, q["tag"], q.get("states") or "All", size, q.get("nextToken") or "",
                                       order, start, end, q.get("queueId"), q.get("queueType"), q.get("inputObject"))
    return jobs_reply(details, token=token)
