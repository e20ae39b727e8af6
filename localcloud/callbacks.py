"""Job notifications: CI POSTs to a job's `CallBack` URL when it ends (XML or JSON).

The XML envelope is `<Response><EventName>TaskFinish</EventName><JobsDetail>...` (CI "任务回调"
pages, e.g. https://cloud.tencent.com/document/product/460/84951: JobsDetail is a "Container 数组").
The JSON forms (intl CI docs "Callback content"): job APIs send `{"EventName": "TaskFinish",
"JobsDetail": [...]}` (an array, empty elements left out: `json_form="jobs"`, the default); AI
recognition callbacks wrap it all in `{"Response": {...}}` (`json_form="response"`). Deeper
children may or may not be arrays (`arrays`: "jobs" only the list, "all" every container, "none"
a bare object). Retry behaviour is undocumented (ours: `retries` tries with `backoff`). Faults can drop, delay,
duplicate or reorder a delivery (the callback page, 460/76956, says nothing of retries or signing).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from shared import xmlcodec
from shared.jobs import JobDetail, JobRequest

from .faults import Faults

JSON_FORMS = ("jobs", "response")


@dataclass
class CallbackRecord:
    url: str
    job_id: str
    state: str
    fmt: str
    body: bytes
    attempts: int = 0
    status: Optional[int] = None
    ok: Optional[bool] = None
    error: str = ""
    sent_at: List[float] = field(default_factory=list)


class Callbacks:
    """Delivers job notifications to `CallBack` URLs with retries and injectable faults."""

    def __init__(self, faults: Faults, retries: int = 3, backoff: Tuple[float, ...] = (0.2, 0.5, 1.0),
                 timeout: float = 5.0, arrays: str = "jobs", reorder_hold: float = 0.5,
                 json_form: str = "jobs") -> None:
        if json_form not in JSON_FORMS:
            raise ValueError(f"json_form must be one of {', '.join(JSON_FORMS)}, got {json_form!r}")
        self.faults, self.retries, self.backoff, self.timeout = faults, retries, backoff, timeout
        self.arrays, self.reorder_hold, self.json_form = arrays, reorder_hold, json_form
        self.records: List[CallbackRecord] = []
        self._cond = threading.Condition()
        self._pending = 0
        self._held: List[CallbackRecord] = []

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def body(self, detail: JobDetail, fmt: str) -> bytes:
        wire = detail.wire()
        if fmt == "JSON":
            jobs: Any = _arrayify(wire) if self.arrays == "all" else wire
            if self.arrays in ("jobs", "all"):
                jobs = [jobs]
            notice: Any = {"EventName": "TaskFinish", "JobsDetail": jobs}
            if self.json_form == "response":
                notice = {"Response": notice}
            return json.dumps(notice, ensure_ascii=False).encode("utf-8")
        return xmlcodec.dump("Response", {"EventName": "TaskFinish", "JobsDetail": wire})

    def notify(self, detail: JobDetail, request: JobRequest) -> Optional[CallbackRecord]:
        url = request.CallBack
        if not url or url == "no" or request.CallBackType != "Url":
            return None
        record = CallbackRecord(url, detail.JobId, detail.State, request.CallBackFormat,
                                self.body(detail, request.CallBackFormat))
        with self._cond:
            self.records.append(record)
            self._pending += 1
        fault = self.faults.take("callback.send")
        if fault and fault.reorder:
            with self._cond:
                self._held.append(record)
            threading.Timer(self.reorder_hold, self._release_held).start()
            return record
        copies = 2 if fault and fault.duplicate else 1
        if copies == 2:
            with self._cond:
                self._pending += 1
        for copy in range(copies):
            # a held (reordered) callback goes out once this newer one has been answered: started
            # together, a busy machine could let the held one arrive first
            self._start(record, fault, then=self._release_held if copy == 0 else None)
        return record

    def _release_held(self) -> None:
        with self._cond:
            held, self._held = self._held, []
        for record in held:
            self._start(record, None, wait=0.05)

    def _start(self, record: CallbackRecord, fault: Any, wait: float = 0.0,
               then: Optional[Callable[[], None]] = None) -> None:
        threading.Thread(target=self._deliver, args=(record, fault, wait, then), daemon=True,
                         name=f"callback-{record.job_id}").start()

    def _deliver(self, record: CallbackRecord, fault: Any, wait: float,
                 then: Optional[Callable[[], None]] = None) -> None:
        """Send `record` (with its retries); `then` runs once its first try is answered or given up."""
        try:
            if wait:
                time.sleep(wait)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.drop:
                record.ok, record.error = False, "dropped by fault injection"
                return
            for attempt in range(1, self.retries + 1):
                record.attempts += 1
                record.sent_at.append(time.time())
                if fault and fault.status and attempt == 1:
                    record.status, record.error = fault.status, "fault injection"
                else:
                    record.status, record.error = self._post(record)
                    if record.status is not None and 200 <= record.status < 300:
                        record.ok = True
                        return
                if then is not None:
                    then, released = None, then
                    released()
                if attempt < self.retries:
                    time.sleep(self.backoff[min(attempt - 1, len(self.backoff) - 1)] if self.backoff else 0)
            record.ok = False
        finally:
            if then is not None:  # answered at once, dropped, or failed on every try
                then()
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def _post(self, record: CallbackRecord) -> Tuple[Optional[int], str]:
        ctype = "application/json" if record.fmt == "JSON" else "application/xml"
        req = urllib.request.Request(record.url, data=record.body, method="POST",
                                     headers={"Content-Type": ctype, "User-Agent": "localcloud-ci-callback"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
                return resp.status, ""
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except Exception as exc:  # connection refused, timeout: retried like any failure
            return None, f"{type(exc).__name__}: {exc}"


def _arrayify(value: Any) -> Any:
    """XML-to-JSON style where every container child is a one-element array."""
    if isinstance(value, dict):
        return {k: [_arrayify(v)] if isinstance(v, dict) else _arrayify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrayify(v) for v in value]
    return value
