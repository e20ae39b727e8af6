"""Cloud Infinite `SegmentVideoBody` jobs: store, runner and callbacks.

Everything is expressed with `shared.jobs` (JobRequest/JobDetail), the same
model the pipeline uses, so the local cloud can never drift into a second
schema. Jobs persist in one append-only journal per bucket.
"""
from __future__ import annotations

import hashlib
import heapq
import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

from shared import states
from shared.jobs import (TAG, TERMINAL_STATES, EchoedOptions, EchoedOutput, JobDetail, JobInput, JobOperation,
                         JobRequest, MediaInfoSpec, MediaResultSpec, OutputFileSpec, background_key)

from .callbacks import Callbacks
from .cos import CosError, ObjectStore
from .faults import Faults
from .journal import Journal

log = logging.getLogger("localcloud.ci")
CHINA = timezone(timedelta(hours=8))
CI_TIME = "%Y-%m-%dT%H:%M:%S%z"
# "取消一个任务,只有未执行的任务才可以被取消" (https://cloud.tencent.com/document/api/1246/109264);
# a started job answers "The job provided can not be modified" (intl 1045/43702).
CANCELLABLE = states.CANCELLABLE
AI_QUEUE_TYPE = "AIProcess"  # SegmentVideoBody runs on the bucket's AI-processing queue (460/79394)

# engine(job, request, input_path, background_path_or_None, output_path) -> MediaInfo wire dict
Engine = Callable[[JobDetail, JobRequest, str, Optional[str], str], Dict[str, Any]]


def ci_time(epoch: Optional[float] = None) -> str:
    """CI's timestamp format, `2022-06-27T14:44:10+0800`."""
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, CHINA).strftime(CI_TIME)


def parse_ci_time(text: str) -> float:
    for fmt in (CI_TIME, "%Y-%m-%dT%H:%M:%S%Z", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(text, fmt)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA)).timestamp()
        except ValueError:
            continue
    raise CosError(400, "InvalidArgument", f"time {text!r} is not like 2022-06-27T14:44:10+0800")


def queue_id(bucket: str) -> str:
    return "p" + hashlib.md5(bucket.encode()).hexdigest()


def ai_queue(bucket: str, created: float) -> Dict[str, Any]:
    """The bucket's AI queue as DescribeAiProcessQueues (`GET /ai_queue`, 460/79394) lists it."""
    return {"QueueId": queue_id(bucket), "Name": "ai-queue", "State": "Active", "MaxSize": "10000",
            "MaxConcurrent": "10", "UpdateTime": ci_time(created), "CreateTime": ci_time(created),
            "NotifyConfig": {"Type": "Url", "State": "Off"}, "Category": AI_QUEUE_TYPE}


@dataclass
class JobRecord:
    bucket: str
    seq: int
    created: float
    detail: JobDetail
    request: JobRequest
    content_type: str = ""  # of the POST /jobs that created it: what the client really sent

    def dump(self) -> Dict[str, Any]:
        return {"bucket": self.bucket, "seq": self.seq, "created": self.created, "content_type": self.content_type,
                "detail": self.detail.wire(), "request": self.request.wire()}

    @classmethod
    def load(cls, data: Dict[str, Any]) -> "JobRecord":
        return cls(data["bucket"], data["seq"], data["created"], JobDetail.model_validate(data["detail"]),
                   JobRequest.model_validate(data["request"]), data.get("content_type", ""))


class EngineError(Exception):
    """A job failure with a CI-like code, as engines may raise it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class JobService:
    """Jobs per bucket, the execution queue and its workers."""

    def __init__(self, root: str, store: ObjectStore, region: str, faults: Faults, callbacks: Callbacks,
                 engine: Optional[Engine] = None, workers: int = 2,
                 on_output: Optional[Callable[[str, str, str], None]] = None) -> None:
        self.root, self.store, self.region, self.faults, self.callbacks = root, store, region, faults, callbacks
        self.engine = engine
        self.on_output = on_output  # (bucket, key, event_name): lets COS triggers see job outputs
        self.lock = threading.Lock()
        self.jobs: Dict[str, Dict[str, JobRecord]] = {}
        self._seq = 0
        self._queue: List[Tuple[int, int, str, str]] = []
        self._cond = threading.Condition(self.lock)
        self._active = 0
        self._stopping = False
        self._threads: List[threading.Thread] = []
        self.workers = workers
        self._journals: Dict[str, Journal] = {}
        os.makedirs(root, exist_ok=True)

    # -- persistence: one journal per bucket, last entry per job wins -------
    def _journal_path(self, bucket: str) -> str:
        return os.path.join(self.root, bucket + ".jsonl")

    def _save(self, rec: JobRecord) -> None:
        self._journals[rec.bucket].append(rec.dump())

    def add_bucket(self, bucket: str) -> None:
        with self.lock:
            if bucket in self._journals:
                return
            jobs = self.jobs.setdefault(bucket, {})
            for entry in Journal.replay(self._journal_path(bucket)):
                rec = JobRecord.load(entry)
                jobs[rec.detail.JobId] = rec
                self._seq = max(self._seq, rec.seq)
            journal = Journal(self._journal_path(bucket))
            journal.compact(r.dump() for r in sorted(jobs.values(), key=lambda r: r.seq))
            self._journals[bucket] = journal

    def close(self) -> None:
        for journal in self._journals.values():
            journal.close()

    # -- API --------------------------------------------------------------
    def create(self, bucket: str, request: JobRequest, content_type: str = "") -> JobDetail:
        """A job on the bucket's AI queue. Its detail carries what CI returns, fields it documents
        nowhere included (Progress, QueueType, Input.CosHeaders: DescribeMediaJob's example, api/436/47211)."""
        now = time.time()
        op = request.Operation
        detail = JobDetail(
            Code="Success", Message="", JobId="s" + uuid.uuid4().hex, State="Submitted", CreationTime=ci_time(now),
            StartTime="-", EndTime="-", QueueId=queue_id(bucket), Tag=TAG, Progress="0", QueueType=AI_QUEUE_TYPE,
            Input=JobInput(BucketId=bucket, Object=request.Input.Object, Region=self.region, CosHeaders=[]),
            Operation=JobOperation(SegmentVideoBody=EchoedOptions.model_validate(op.SegmentVideoBody.wire()),
                                   Output=EchoedOutput.model_validate(op.Output.wire()), UserData=op.UserData,
                                   JobLevel=op.JobLevel),
        )
        with self.lock:
            self._seq += 1
            rec = JobRecord(bucket, self._seq, now, detail, request, content_type)
            self.jobs[bucket][detail.JobId] = rec
            self._save(rec)
            if self.engine is not None:
                self._enqueue(rec)
        return detail.model_copy(deep=True)

    def record(self, bucket: str, job_id: str) -> JobRecord:
        rec = self.jobs.get(bucket, {}).get(job_id)
        if rec is None:
            raise CosError(404, "InvalidJobId", f"The job {job_id} does not exist.")
        return rec

    def get(self, bucket: str, job_id: str) -> JobDetail:
        with self.lock:
            return self.record(bucket, job_id).detail.model_copy(deep=True)

    def describe(self, bucket: str, job_ids: List[str]) -> Tuple[List[JobDetail], List[str]]:
        """GET /jobs/<id,...>: (the jobs found, the ids CI has no job for). An unknown id is not
        an error: the answer is 200 with <NonExistJobIds> (DescribeMediaJob, 460/84790)."""
        with self.lock:
            jobs = self.jobs.get(bucket, {})
            found = [jobs[j].detail.model_copy(deep=True) for j in job_ids if j in jobs]
            return found, [j for j in job_ids if j not in jobs]

    def list(self, bucket: str, tag: str = TAG, states: str = "All", size: int = 10, next_token: str = "",
             order: str = "Desc", start: Optional[float] = None, end: Optional[float] = None,
             queue: Optional[str] = None, queue_type: Optional[str] = None,
             input_object: Optional[str] = None) -> Tuple[List[JobDetail], str]:
        wanted = {s.strip() for s in (states or "All").split(",") if s.strip()}
        with self.lock:
            recs = sorted(self.jobs.get(bucket, {}).values(), key=lambda r: r.seq, reverse=(order != "Asc"))
            if next_token:
                try:
                    after = int(next_token)
                except ValueError:
                    raise CosError(400, "InvalidArgument", f"nextToken {next_token!r} is invalid") from None
                recs = [r for r in recs if (r.seq < after if order != "Asc" else r.seq > after)]
            chosen = [r for r in recs
                      if r.detail.Tag == tag and ("All" in wanted or r.detail.State in wanted)
                      and (start is None or r.created >= start) and (end is None or r.created <= end)
                      and (not queue or r.detail.QueueId == queue)
                      and (not queue_type or queue_type == AI_QUEUE_TYPE)
                      and (not input_object or r.request.Input.Object == input_object)]
            page = chosen[:size]
            token = str(page[-1].seq) if len(chosen) > size else ""
            return [r.detail.model_copy(deep=True) for r in page], token

    def cancel(self, bucket: str, job_id: str) -> JobDetail:
        with self.lock:
            rec = self.record(bucket, job_id)
            if rec.detail.State not in CANCELLABLE:
                raise CosError(400, "InvalidArgument", f"The job provided can not be modified (it is {rec.detail.State};"
                                                       f" only jobs not yet started can be cancelled).")
            rec.detail.State = "Cancel"
            rec.detail.EndTime = ci_time()
            self._save(rec)
            detail = rec.detail.model_copy(deep=True)
        self.callbacks.notify(detail, rec.request)
        return detail

    def forget(self, bucket: str, job_id: str) -> None:
        """Test control: CI no longer knows the job (describe lists it in NonExistJobIds, the
        list leaves it out), as after its retention ran out. Kept in the journal: a restarted
        local cloud knows it again."""
        with self.lock:
            self.record(bucket, job_id)
            del self.jobs[bucket][job_id]

    def all_jobs(self, bucket: Optional[str] = None) -> List[JobDetail]:
        with self.lock:
            recs = [r for b, jobs in self.jobs.items() if bucket in (None, b) for r in jobs.values()]
            return [r.detail.model_copy(deep=True) for r in sorted(recs, key=lambda r: r.seq)]

    def set_state(self, bucket: str, job_id: str, state: str, code: Optional[str] = None,
                  message: Optional[str] = None, media_info: Optional[Dict[str, Any]] = None,
                  force: bool = False) -> JobDetail:
        """Test control: move a job as CI would, writing a small fake output on Success."""
        with self.lock:
            rec = self.record(bucket, job_id)
            if rec.detail.terminal and not force:
                raise ValueError(f"job {job_id} is already {rec.detail.State}; pass force=True to change it")
        if state == "Success" and media_info is None:
            out = rec.request.Operation.Output
            data = f"localcloud fake output of job {job_id}\n".encode()
            self._write_output(out.Bucket, out.Object, data=data)
            media_info = fake_media_info(len(data))
        return self._transition(rec, state, code, message, media_info)

    def _transition(self, rec: JobRecord, state: str, code: Optional[str] = None, message: Optional[str] = None,
                    media_info: Optional[Dict[str, Any]] = None) -> JobDetail:
        with self.lock:
            d = rec.detail
            now = ci_time()
            d.State = state  # type: ignore[assignment]
            if state in ("Running", "Success", "Failed") and d.StartTime == "-":
                d.StartTime = now
            d.Progress = "100" if state == "Success" else ("50" if state == "Running" else d.Progress)  # type: ignore[attr-defined]
            if state in TERMINAL_STATES:
                d.EndTime = now
            if state == "Failed":
                d.Code, d.Message = code or "InternalError", message or "job failed"
            elif state == "Success":
                d.Code, d.Message = code or "Success", message or ""
                out = rec.request.Operation.Output
                assert d.Operation is not None
                d.Operation.MediaInfo = MediaInfoSpec.model_validate(media_info or {})
                md5 = self._output_md5(out.Bucket, out.Object)
                d.Operation.MediaResult = MediaResultSpec(
                    OutputFile=OutputFileSpec(Bucket=out.Bucket, Region=out.Region, ObjectName=out.Object,
                                              Md5Info={"ObjectName": out.Object, "Md5": md5} if md5 else None))
            self._save(rec)
            detail = d.model_copy(deep=True)
        if state in TERMINAL_STATES:
            self.callbacks.notify(detail, rec.request)
        return detail

    def _output_md5(self, bucket: str, key: str) -> str:
        try:
            etag = self.store.bucket(bucket).head(key).etag
        except CosError:
            return ""
        return etag if "-" not in etag else ""

    def _write_output(self, bucket: str, key: str, data: Optional[bytes] = None, path: Optional[str] = None) -> None:
        target = self.store.bucket(bucket)
        if path is not None:
            target.put_file(key, path, "video/mp4")
        else:
            target.put_bytes(key, data or b"", "video/mp4")
        if self.on_output:
            self.on_output(bucket, key, "cos:ObjectCreated:Put")

    # -- runner -----------------------------------------------------------
    def _enqueue(self, rec: JobRecord) -> None:
        """Caller holds the lock. Higher JobLevel first, then creation order."""
        level = rec.request.Operation.JobLevel
        heapq.heappush(self._queue, (-level, rec.seq, rec.bucket, rec.detail.JobId))
        self._cond.notify()

    def set_engine(self, engine: Optional[Engine]) -> None:
        """Install the engine and queue every job still Submitted (or Running after a restart)."""
        with self.lock:
            self.engine = engine
            if engine is None:
                return
            queued = {item[3] for item in self._queue}
            for jobs in self.jobs.values():
                for rec in sorted(jobs.values(), key=lambda r: r.seq):
                    if rec.detail.State in ("Submitted", "Running") and rec.detail.JobId not in queued:
                        rec.detail.State = "Submitted"
                        self._enqueue(rec)
        self.start()

    def start(self) -> None:
        with self.lock:
            self._stopping = False
            alive = [t for t in self._threads if t.is_alive()]
            for n in range(len(alive), self.workers):
                thread = threading.Thread(target=self._work, daemon=True, name=f"ci-worker-{n}")
                thread.start()
                alive.append(thread)
            self._threads = alive

    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    @property
    def busy(self) -> int:
        """Jobs queued or executing (0 when no engine is installed)."""
        with self.lock:
            return (len(self._queue) + self._active) if self.engine is not None else 0

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                _, _, bucket, job_id = heapq.heappop(self._queue)
                rec = self.jobs.get(bucket, {}).get(job_id)
                if rec is None or rec.detail.State != "Submitted" or self.engine is None:
                    continue
                engine = self.engine
                self._active += 1
            try:
                self._execute(rec, engine)
            except Exception:  # never lose a worker thread
                log.exception("job %s crashed the runner", job_id)
            finally:
                with self.lock:
                    self._active -= 1
                    self._cond.notify_all()

    def _execute(self, rec: JobRecord, engine: Engine) -> None:
        self._transition(rec, "Running")
        req = rec.request
        opts = req.Operation.SegmentVideoBody
        try:
            source = self.store.bucket(rec.bucket)
            if not source.exists(req.Input.Object):
                raise EngineError("InvalidInput", f"The input object {req.Input.Object} does not exist.")
            background = None
            if opts.BackgroundLogoUrl:
                bg_key = background_key(opts.BackgroundLogoUrl)
                if not source.exists(bg_key):
                    raise EngineError("InvalidInput", f"The BackgroundLogoUrl object {bg_key} does not exist.")
                background = source.data_path(bg_key)
            out = req.Operation.Output
            if out.Bucket not in self.store.buckets or out.Region != self.region:
                raise EngineError("InvalidOutput", f"The output bucket {out.Bucket} ({out.Region}) does not exist.")
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".run-") as tmp:
                out_path = os.path.join(tmp, "output" + (os.path.splitext(out.Object)[1] or ".mp4"))
                with self.lock:
                    detail = rec.detail.model_copy(deep=True)
                media_info = engine(detail, req, source.data_path(req.Input.Object), background, out_path)
                if rec.detail.State != "Running":  # cancelled meanwhile: the result is discarded
                    return
                if not os.path.exists(out_path):
                    raise EngineError("InternalError", "the engine wrote no output file")
                self._write_output(out.Bucket, out.Object, path=out_path)
            self._transition(rec, "Success", media_info=media_info or {})
        except Exception as exc:
            if rec.detail.State != "Running":
                return
            code = getattr(exc, "code", None) or "InternalError"
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._transition(rec, "Failed", str(code), str(message))


def fake_media_info(size: int) -> Dict[str, Any]:
    """MediaInfo for a job finished by the test control (no real video)."""
    return {"Format": {"Duration": "1.0", "Size": str(size), "Bitrate": "0", "FormatName": "mp4", "NumStream": "1"},
            "Stream": {"Video": {"Width": "640", "Height": "360", "Fps": "25", "Duration": "1.0",
                                 "CodecName": "h264", "NumFrames": "25"}}}
