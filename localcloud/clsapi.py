"""The CLS API (version 2020-10-16) of the local cloud: a thin front over the CLS backend
(localcloud/clsbackend.py). `SearchLog` takes the request's params (already checked against the SDK's
request model by localcloud/tcapi.py), asks the backend for one page, and answers the Response fields;
the logs, the query language and paging are the backend's.

Fields follow the SDK's models (tencentcloud/cls/v20201016/models.py: SearchLogRequest From/To in ms,
TopicId or Topics, Query / QueryString, Limit, Context to page on, Sort asc/desc; SearchLogResponse
Context, ListOver, Analysis, Results of LogInfo with Time in ms and LogJson). Error codes are the SDK's
(tencentcloud/cls/v20201016/errorcodes.py).
"""
from __future__ import annotations

from typing import Any, Dict

from .clsbackend import TOPIC_NAME, ClsBackend
from .tcapi import ApiError


class ClsApi:
    """The service object `tcapi.Api` dispatches CLS calls to: params in, Response fields out."""

    unlocked = ("SearchLog",)  # a read: the backend locks what it builds

    def __init__(self, backend: ClsBackend) -> None:
        self.backend = backend

    @property
    def lock(self) -> Any:
        return self.backend.lock

    def SearchLog(self, p: Dict[str, Any]) -> Dict[str, Any]:
        if p.get("Topics"):
            raise ApiError("InvalidParameter", "the local cloud searches one topic: pass TopicId")
        self.backend.check_topic(p.get("TopicId"))
        for name in ("From", "To"):
            if not isinstance(p.get(name), int):
                raise ApiError("MissingParameter", f"{name} (ms) is required")
        page = self.backend.search(p["From"], p["To"],
                                   p.get("Query") if p.get("Query") is not None else p.get("QueryString") or "",
                                   descending=(p.get("Sort") or "desc") == "desc", limit=p.get("Limit"),
                                   offset=p.get("Offset") or 0, context=p.get("Context") or "")
        results = [{"Time": log["SCF_LogTime"], "TopicId": self.backend.topic_id, "TopicName": TOPIC_NAME,
                    "Source": "127.0.0.1", "FileName": "", "PkgId": log["SCF_RequestId"],
                    "PkgLogId": str(page.offset + i), "LogJson": text, "HostName": "localcloud"}
                   for i, (log, text) in enumerate(page.logs)]
        return {"Context": page.context, "ListOver": page.over, "Analysis": False, "Results": results,
                "ColNames": [], "AnalysisRecords": []}
