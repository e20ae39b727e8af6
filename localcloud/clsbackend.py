"""The local CLS's backend: the functions' logs as SCF delivers them to CLS, and the rules of a search over
them (the query language, the time window, the order, Limit, paging by Context). No HTTP here: the API 3.0
front (localcloud/clsapi.py, `SearchLog`) is a thin layer over it, as moto splits `models.py` from `responses.py`.

On Tencent Cloud a function's logs are not in an SCF API (GetFunctionLogs is retired: "该接口已下线",
tencentcloud-sdk-python scf_client.py) but in CLS, the topic `GetFunction` names (ClsLogsetId /
ClsTopicId; "日志检索教程", https://cloud.tencent.com/document/product/583/52637: query the
topic with the CLS SearchLog API). Each log line is one CLS log of fixed `SCF_*` keys ("日志投递
配置 / 日志结构说明", https://cloud.tencent.com/document/product/583/60336): SCF_FunctionName,
SCF_Namespace, SCF_StartTime, SCF_LogTime (ms), SCF_RequestId, SCF_Duration, SCF_MemUsage,
SCF_Level, SCF_Message, SCF_Type (Platform: the START / Report lines the platform prints around
each request; Custom: what the code printed), SCF_RetryNum.

Here every function of the cloud writes to one topic (SCF's default: the region's
`SCF_logset` / `SCF_logtopic`), built on demand from the runtime's invocations. The query language
is a subset of CQL (614/47044): terms joined by AND, each `KEY:"value"` (an SCF_* key; SCF_Message
matches a substring) or a bare "phrase" matched anywhere in the log; anything else is refused
(FailedOperation.QueryError), never guessed at.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .tcapi import ApiError, load_state, save_state

if TYPE_CHECKING:
    from .scf import Runtime

TOPIC_NAME = "SCF_logtopic"  # SCF's default topic (583/52637)
# SearchLogRequest.Limit: "默认为100，最大值为1000" (tencentcloud/cls/v20201016/models.py)
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_SEARCHES = 16  # searches kept for paging on by Context (the oldest goes first)
_TERM = re.compile(r'\s*(?:(?P<key>[A-Za-z_][\w.]*)\s*:\s*)?(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<w>[^\s"()|]+))\s*')

Log = Tuple[Dict[str, Any], str]  # one log and its JSON (what LogJson carries)


def parse_query(text: str) -> List[Tuple[Optional[str], str]]:
    """[(key or None, value)] of a query of AND-joined terms; ApiError for what this subset lacks."""
    text = (text or "").strip()
    if text in ("", "*"):
        return []
    terms: List[Tuple[Optional[str], str]] = []
    for i, part in enumerate(re.split(r"\s+AND\s+", text)):
        m = _TERM.fullmatch(part)
        if not m or (m["w"] or "").upper() in ("OR", "NOT"):
            raise ApiError("FailedOperation.QueryError", f"QueryString {text!r}: the local cloud knows terms joined by AND "
                                               "(KEY:\"value\" or \"phrase\"), not OR, NOT, ( ) or | SQL")
        value = m["q"].replace('\\"', '"').replace("\\\\", "\\") if m["q"] is not None else m["w"]
        terms.append((m["key"], value))
    return terms


def _matches(log: Dict[str, Any], text: str, terms: List[Tuple[Optional[str], str]]) -> bool:
    for key, value in terms:
        if key is None:
            if value.rstrip("*") not in text:
                return False
        elif key == "SCF_Message":
            if value.rstrip("*") not in str(log.get(key, "")):
                return False
        elif str(log.get(key, "")) != value:
            return False
    return True


@dataclass
class Page:
    """One page of a search: its logs, where they start in the search's results, and how to go on."""

    logs: List[Log]
    offset: int  # the position of logs[0] among the search's results
    context: str  # pass it back for the next page; "" once the results are over

    @property
    def over(self) -> bool:
        return not self.context


class ClsBackend:
    """One topic whose logs are the runtime's invocations' lines, as SCF delivers them, and searches over it."""

    def __init__(self, runtime: "Runtime", data_dir: str) -> None:
        self.runtime = runtime  # whose invocations' lines are the logs
        self.lock = threading.RLock()
        self.state = load_state(data_dir, {"logset": str(uuid.uuid4()), "topic": str(uuid.uuid4())})
        save_state(data_dir, self.state)
        self._built: List[Log] = []  # the logs of the invocations consumed
        self._consumed = 0  # invocations turned into logs (in order, up to the first one still running)
        self._searches: Dict[str, List[Log]] = {}  # Context -> the search's results

    @property
    def logset_id(self) -> str:
        return self.state["logset"]

    @property
    def topic_id(self) -> str:
        return self.state["topic"]

    def check_topic(self, topic_id: Any) -> None:
        if topic_id != self.topic_id:
            raise ApiError("ResourceNotFound.TopicNotExist", f"topic {topic_id!r} does not exist")

    def logs(self) -> List[Log]:
        """(log, JSON) of every finished invocation as SCF would deliver it: START, the code's lines,
        Report; built once per invocation, in order, stopping at the first one still running."""
        with self.lock:
            invocations = self.runtime.invocations
            while self._consumed < len(invocations):
                inv = invocations[self._consumed]
                if inv.ok is None:
                    break  # still running: SCF reports a request's lines as it ends (583/52637)
                self._built += [(log, json.dumps(log, ensure_ascii=False)) for log in self.lines(inv)]
                self._consumed += 1
            return self._built

    @staticmethod
    def lines(inv: Any) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        if inv.ok is not None and inv.started:
            start = int(inv.started * 1000)
            end = int((inv.started + inv.duration) * 1000)
            base = {"SCF_FunctionName": inv.function, "SCF_Namespace": "default", "SCF_RequestId": inv.request_id,
                    "SCF_StartTime": start, "SCF_RetryNum": max(0, inv.attempt - 1), "SCF_Alias": "",
                    "SCF_Qualifier": "$LATEST"}
            lines = [(start, "Platform", f"START RequestId: {inv.request_id}")]
            step = (end - start) / (len(inv.logs) + 1) if inv.logs else 0
            lines += [(int(start + step * (i + 1)), "Custom", line) for i, line in enumerate(inv.logs)]
            status = "" if inv.ok else f" Error: {inv.error}"
            lines.append((end, "Platform", f"Report RequestId: {inv.request_id} Duration: {inv.duration * 1000:.0f}ms"
                                           f"{status}"))
            for stamp, kind, message in lines:
                log = {**base, "SCF_LogTime": stamp, "SCF_Type": kind, "SCF_Message": message,
                       "SCF_Level": "INFO" if inv.ok or kind == "Custom" else "ERROR"}
                if kind == "Platform" and message.startswith("Report"):
                    log.update(SCF_Duration=int(inv.duration * 1000), SCF_StatusCode=200 if inv.ok else 500)
                out.append(log)
        return out

    def search(self, start_ms: int, end_ms: int, query: str = "", descending: bool = True,
               limit: Optional[int] = None, offset: int = 0, context: str = "") -> Page:
        """The logs with start_ms <= SCF_LogTime < end_ms that match `query`, by time, one page of `limit`
        from `offset`; with `context` (a Page's), the same search further on, its window and query kept."""
        limit = limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError("InvalidParameter", f"Limit: 1-{MAX_LIMIT}")
        terms = parse_query(query)
        at, search = 0, ""
        if context:  # the same search, further on: its results were kept (SearchLogRequest.Context: "过期时间1小时")
            try:
                search, _, position = base64.b64decode(context).decode().partition(":")
                at = int(position)
            except ValueError:
                search = ""
            if search not in self._searches:
                raise ApiError("FailedOperation.InvalidContext", "Context is not one this topic returned (or expired)")
            picked = self._searches[search]
        else:
            picked = [(log, text) for log, text in self.logs()
                      if start_ms <= log["SCF_LogTime"] < end_ms and _matches(log, text, terms)]
            picked.sort(key=lambda lt: lt[0]["SCF_LogTime"], reverse=descending)
        at = max(at, offset)
        over = at + limit >= len(picked)
        if not over and not search:
            search = uuid.uuid4().hex[:12]
            with self.lock:
                self._searches[search] = picked
                while len(self._searches) > MAX_SEARCHES:
                    self._searches.pop(next(iter(self._searches)))
        return Page(picked[at:at + limit], at,
                    "" if over else base64.b64encode(f"{search}:{at + limit}".encode()).decode())
