"""The local cloud without HTTP, disk or threads: an in-memory COS + CI for the fast test tiers.

The seam is the SDK client. `MemoryCloud.client()` answers the few cos-python-sdk-v5 calls
that `shared.cloud.Storage` and `shared.cloud.CI` make (put/get/head/list objects, object
tagging, `ci_*_media_jobs`, `ci_cancel_jobs`) with the shapes the SDK returns, and fails
with the SDK's own `CosServiceError`/`CosClientError` built from the error bodies the local
cloud's server sends. So `Storage`/`CI` and their error mapping run unchanged on top of it,
and the contract suite (tests/contract) runs the same assertions here and through the real
SDK against the HTTP local cloud. The rules (key length, tag limits, CI time format, which
jobs can be cancelled) are the local cloud's own functions, imported, not rewritten.

The control surface mirrors `LocalCloud`: `upload`, `set_job_state`, `faults` (same routes),
`callbacks` (recorded, never sent: the test delivers them to the handler it wants).
Not emulated: bucket versioning, multipart, copies, ranges, SCF (use the HTTP local cloud).
"""
from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from pydantic import ValidationError

from shared import xmlcodec
from shared.cloud import CI, Clients, Storage
from shared.config import Settings
from shared.jobs import (TAG, TERMINAL_STATES, JobDetail, JobInput, JobOperation, JobRequest, JobsResponse,
                         MediaInfoSpec, MediaResultSpec, OutputFileSpec, format_errors)

from .ci import CANCELLABLE, CallbackRecord, Callbacks, ci_time, fake_media_info, parse_ci_time, queue_id
from .cos import CosError, check_key, validate_tags
from .faults import Fault, Faults
from .replies import _gmt, _iso

STATES = ("Submitted", "Running", "Pause", "Success", "Failed", "Cancel")


class _Object:
    __slots__ = ("data", "etag", "content_type", "last_modified", "tags")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data, self.content_type = data, content_type or "application/octet-stream"
        self.etag = hashlib.md5(data).hexdigest()  # noqa: S324 - an ETag, not security
        self.last_modified = time.time()
        self.tags: Dict[str, str] = {}


class _Job:
    __slots__ = ("bucket", "seq", "created", "detail", "request")

    def __init__(self, bucket: str, seq: int, created: float, detail: JobDetail, request: JobRequest) -> None:
        self.bucket, self.seq, self.created, self.detail, self.request = bucket, seq, created, detail, request


class _Dropped(Exception):
    """The connection went away (an injected drop or a delay past the client's timeout)."""


class MemoryCloud:
    """Buckets and jobs of one region, shared by every client made from it; thread-safe."""

    def __init__(self, buckets: Tuple[str, ...] = ("videos-1250000000",), region: str = "ap-guangzhou") -> None:
        self.region = region
        self.lock = threading.RLock()
        self.buckets: Dict[str, Dict[str, _Object]] = {name: {} for name in buckets}
        self.jobs: Dict[str, Dict[str, _Job]] = {name: {} for name in buckets}
        self.faults = Faults()
        self.callbacks: List[CallbackRecord] = []
        self._bodies = Callbacks(self.faults)  # only its body format is used: nothing is sent
        self._seq = 0

    def add_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.setdefault(name, {})
            self.jobs.setdefault(name, {})

    def client(self, retry: int = 0, timeout: float = 10.0) -> "MemoryClient":
        """A stand-in for `CosS3Client(config, retry=retry)` on this cloud."""
        return MemoryClient(self, retry, timeout)

    def clients(self, settings: Settings) -> Clients:
        """What `shared.cloud.Clients(settings)` builds, on this cloud (SDK retries on COS, none on CI)."""
        return MemoryClients(settings, self)

    # -- control, like LocalCloud's ----------------------------------------
    def bucket(self, name: str) -> Dict[str, _Object]:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        return bucket

    def upload(self, bucket: str, key: str, data: bytes, content_type: str = "") -> str:
        """Put an object as an uploader would; returns its ETag (unquoted). No trigger fires."""
        check_key(key)
        obj = _Object(data, content_type)
        with self.lock:
            self.bucket(bucket)[key] = obj
        return obj.etag

    def delete(self, bucket: str, key: str) -> None:
        with self.lock:
            self.bucket(bucket).pop(key, None)

    def tags(self, bucket: str, key: str) -> Dict[str, str]:
        return dict(self.bucket(bucket)[key].tags)

    def get_job(self, bucket: str, job_id: str) -> JobDetail:
        return self._job(bucket, job_id).detail.model_copy(deep=True)

    def list_jobs(self, bucket: Optional[str] = None) -> List[JobDetail]:
        with self.lock:
            jobs = [j for b, jobs in self.jobs.items() if bucket in (None, b) for j in jobs.values()]
            return [j.detail.model_copy(deep=True) for j in sorted(jobs, key=lambda j: j.seq)]

    def set_job_state(self, bucket: str, job_id: str, state: str, code: Optional[str] = None,
                      message: Optional[str] = None, media_info: Optional[Dict[str, Any]] = None,
                      force: bool = False) -> JobDetail:
        """Move a job as CI would (LocalCloud.set_job_state): a small fake output on Success,
        a callback recorded for every terminal state."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self.lock:
            job = self._job(bucket, job_id)
            if job.detail.terminal and not force:
                raise ValueError(f"job {job_id} is already {job.detail.State}; pass force=True to change it")
            if state == "Success" and media_info is None:
                out = job.request.Operation.Output
                data = f"localcloud fake output of job {job_id}\n".encode()
                self.upload(out.Bucket, out.Object, data, "video/mp4")
                media_info = fake_media_info(len(data))
            return self._transition(job, state, code, message, media_info)

    # -- CI rules -------------------------------------------------------------
    def _job(self, bucket: str, job_id: str) -> _Job:
        job = self.jobs.get(bucket, {}).get(job_id)
        if job is None:
            raise CosError(404, "InvalidJobId", f"The job {job_id} does not exist.")
        return job

    def _create_job(self, bucket: str, request: JobRequest) -> JobDetail:
        now = time.time()
        op = request.Operation
        detail = JobDetail(
            Code="Success", Message="", JobId="s" + uuid.uuid4().hex, State="Submitted", CreationTime=ci_time(now),
            QueueId=queue_id(bucket), Tag=TAG,
            Input=JobInput(BucketId=bucket, Object=request.Input.Object, Region=self.region),
            Operation=JobOperation(SegmentVideoBody=op.SegmentVideoBody, Output=op.Output, UserData=op.UserData,
                                   JobLevel=op.JobLevel),
        )
        with self.lock:
            self._seq += 1
            self.jobs[bucket][detail.JobId] = _Job(bucket, self._seq, now, detail, request)
        return detail.model_copy(deep=True)

    def _list_jobs(self, bucket: str, tag: str, states: str, size: int, token: str, order: str,
                   start: Optional[float], end: Optional[float], queue: Optional[str]) -> Tuple[List[JobDetail], str]:
        wanted = {s.strip() for s in (states or "All").split(",") if s.strip()}
        descending = order != "Asc"
        with self.lock:
            jobs = sorted(self.jobs.get(bucket, {}).values(), key=lambda j: j.seq, reverse=descending)
            if token:
                try:
                    after = int(token)
                except ValueError:
                    raise CosError(400, "InvalidArgument", f"nextToken {token!r} is invalid") from None
                jobs = [j for j in jobs if (j.seq < after if descending else j.seq > after)]
            chosen = [j for j in jobs
                      if j.detail.Tag == tag and ("All" in wanted or j.detail.State in wanted)
                      and (start is None or j.created >= start) and (end is None or j.created <= end)
                      and (not queue or j.detail.QueueId == queue)]
            page = chosen[:size]
            return [j.detail.model_copy(deep=True) for j in page], (str(page[-1].seq) if len(chosen) > size else "")

    def _cancel(self, bucket: str, job_id: str) -> None:
        with self.lock:
            job = self._job(bucket, job_id)
            if job.detail.State not in CANCELLABLE:
                raise CosError(400, "InvalidArgument", f"The job {job_id} is {job.detail.State}; only "
                                                       f"{'/'.join(CANCELLABLE)} jobs can be cancelled.")
            self._transition(job, "Cancel")

    def _transition(self, job: _Job, state: str, code: Optional[str] = None, message: Optional[str] = None,
                    media_info: Optional[Dict[str, Any]] = None) -> JobDetail:
        d, now = job.detail, ci_time()
        d.State = state  # type: ignore[assignment]
        if state in ("Running", "Success", "Failed") and d.StartTime == "-":
            d.StartTime = now
        if state in TERMINAL_STATES:
            d.EndTime = now
        if state == "Failed":
            d.Code, d.Message = code or "InternalError", message or "job failed"
        elif state == "Success":
            out = job.request.Operation.Output
            d.Code, d.Message = code or "Success", message or ""
            assert d.Operation is not None
            d.Operation.MediaInfo = MediaInfoSpec.model_validate(media_info or {})
            d.Operation.MediaResult = MediaResultSpec(
                OutputFile=OutputFileSpec(Bucket=out.Bucket, Region=out.Region, ObjectName=out.Object))
        detail = d.model_copy(deep=True)
        url = job.request.CallBack
        if state in TERMINAL_STATES and url and url != "no" and job.request.CallBackType == "Url":
            fmt = job.request.CallBackFormat
            self.callbacks.append(CallbackRecord(url, d.JobId, state, fmt, self._bodies.body(detail, fmt)))
        return detail


class MemoryClients(Clients):
    """`shared.cloud.Clients` on a MemoryCloud: one region, so out_storage is storage."""

    def __init__(self, settings: Settings, cloud: MemoryCloud) -> None:  # not super().__init__: it builds SDK clients
        self.settings, self.cloud = settings, cloud
        self.storage = self.out_storage = Storage(cloud.client(retry=2, timeout=settings.timeout_seconds))
        self.ci = CI(cloud.client(retry=0, timeout=settings.timeout_seconds), settings.bucket)


class MemoryClient:
    """The cos-python-sdk-v5 `CosS3Client` calls the pipeline makes, answered from a MemoryCloud.

    Like the SDK (`CosS3Client.send_request`), it retries `retry` times on 5xx and on a dropped
    connection, never on 4xx; unlike it, it does not sleep between attempts.
    """

    def __init__(self, cloud: MemoryCloud, retry: int, timeout: float) -> None:
        self.cloud, self.retry, self.timeout = cloud, retry, timeout

    # -- COS ----------------------------------------------------------------
    def put_object(self, Bucket: str, Body: bytes, Key: str, ContentType: str = "",
                   Metadata: Optional[Dict[str, str]] = None, **_: Any) -> Dict[str, str]:
        forbid = str((Metadata or {}).get("x-cos-forbid-overwrite", "")).lower() == "true"

        def put() -> Dict[str, str]:
            check_key(Key)
            with self.cloud.lock:
                bucket = self.cloud.bucket(Bucket)
                if forbid and Key in bucket:
                    raise CosError(409, "FileAlreadyExists", "The object already exists (x-cos-forbid-overwrite is true).")
                obj = bucket[Key] = _Object(bytes(Body), ContentType)
            return {"ETag": f'"{obj.etag}"'}

        return self._send("PUT", "cos.put", put)

    def get_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, Any]:
        def get() -> Dict[str, Any]:
            obj = self._object(Bucket, Key)
            return {**self._headers(obj), "Body": _Body(obj.data)}

        return self._send("GET", "cos.get", get)

    def head_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, str]:
        return self._send("HEAD", "cos.head", lambda: self._headers(self._object(Bucket, Key)))

    def list_objects(self, Bucket: str, Prefix: str = "", Marker: str = "", MaxKeys: int = 1000,
                     **_: Any) -> Dict[str, Any]:
        def listing() -> Dict[str, Any]:
            limit = max(0, min(int(MaxKeys), 1000))
            with self.cloud.lock:
                keys = sorted(k for k in self.cloud.bucket(Bucket) if k.startswith(Prefix) and k > Marker)
                page = [(k, self.cloud.buckets[Bucket][k]) for k in keys[:limit]]
            truncated = len(keys) > limit
            result: Dict[str, Any] = {"Name": Bucket, "Prefix": Prefix, "Marker": Marker, "MaxKeys": str(limit),
                                      "IsTruncated": "true" if truncated else "false"}
            if truncated:
                result["NextMarker"] = page[-1][0] if page else Marker
            if page:
                result["Contents"] = [{"Key": k, "LastModified": _iso(o.last_modified), "ETag": f'"{o.etag}"',
                                       "Size": str(len(o.data)), "StorageClass": "STANDARD"} for k, o in page]
            return result

        return self._send("GET", "cos.list", listing)

    def get_object_tagging(self, Bucket: str, Key: str, **_: Any) -> Dict[str, Any]:
        def get() -> Dict[str, Any]:
            tags = self._object(Bucket, Key).tags
            return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}} if tags else {"TagSet": None}

        return self._send("GET", "cos.tagging.get", get)

    def put_object_tagging(self, Bucket: str, Key: str, Tagging: Optional[Dict[str, Any]] = None,
                           **_: Any) -> None:
        items = ((Tagging or {}).get("TagSet") or {}).get("Tag") or []
        pairs = [(t["Key"], t.get("Value") or "") for t in (items if isinstance(items, list) else [items])]

        def put() -> None:
            with self.cloud.lock:
                obj = self._object(Bucket, Key)
                obj.tags = validate_tags(pairs)

        return self._send("PUT", "cos.tagging.put", put)

    # -- CI -------------------------------------------------------------------
    def ci_create_media_jobs(self, Bucket: str, Jobs: Dict[str, Any], **_: Any) -> Dict[str, Any]:
        def create() -> Dict[str, Any]:
            self.cloud.bucket(Bucket)
            try:  # what the local cloud's server does with the XML body (server._ci_create)
                request = JobRequest.model_validate(Jobs, context={"bucket": Bucket})
            except ValidationError as exc:
                raise CosError(400, "InvalidArgument", f"Invalid request: {format_errors(exc)}") from None
            except ValueError as exc:
                raise CosError(400, "InvalidArgument", f"Invalid request: {exc}") from None
            return _jobs([self.cloud._create_job(Bucket, request)])

        return self._send("POST", "ci.create", create, ci=True)

    def ci_get_media_jobs(self, Bucket: str, JobIDs: str, **_: Any) -> Dict[str, Any]:
        def get() -> Dict[str, Any]:
            self.cloud.bucket(Bucket)
            return _jobs([self.cloud.get_job(Bucket, j) for j in JobIDs.split(",") if j])

        return self._send("GET", "ci.get", get, ci=True)

    def ci_list_media_jobs(self, Bucket: str, Tag: str, QueueId: Optional[str] = None,
                           StartCreationTime: Optional[str] = None, EndCreationTime: Optional[str] = None,
                           OrderByTime: str = "Desc", States: str = "All", Size: int = 10, NextToken: str = "",
                           **_: Any) -> Dict[str, Any]:
        def listing() -> Dict[str, Any]:  # the checks of the local cloud's server._ci_list
            self.cloud.bucket(Bucket)
            size = int(Size)
            if not 1 <= size <= 100:
                raise CosError(400, "InvalidArgument", f"size must be 1-100, got {size}")
            if OrderByTime not in ("Desc", "Asc"):
                raise CosError(400, "InvalidArgument", "orderByTime must be Desc or Asc")
            if not Tag:
                raise CosError(400, "InvalidArgument", "tag is required")
            start = parse_ci_time(StartCreationTime) if StartCreationTime else None
            end = parse_ci_time(EndCreationTime) if EndCreationTime else None
            details, token = self.cloud._list_jobs(Bucket, Tag, States, size, NextToken or "", OrderByTime, start,
                                                   end, QueueId)
            return _jobs(details, token)

        return self._send("GET", "ci.list", listing, ci=True)

    def ci_cancel_jobs(self, Bucket: str, JobID: str, **_: Any) -> None:
        def cancel() -> None:
            self.cloud.bucket(Bucket)
            self.cloud._cancel(Bucket, JobID)

        return self._send("PUT", "ci.cancel", cancel, ci=True)

    # -- plumbing -------------------------------------------------------------
    def _object(self, bucket: str, key: str) -> _Object:
        obj = self.cloud.bucket(bucket).get(key)
        if obj is None:
            raise CosError(404, "NoSuchKey", "The specified key does not exist.")
        return obj

    @staticmethod
    def _headers(obj: _Object) -> Dict[str, str]:
        headers = {"ETag": f'"{obj.etag}"', "Content-Type": obj.content_type,
                   "Last-Modified": _gmt(obj.last_modified), "Accept-Ranges": "bytes",
                   "x-cos-storage-class": "STANDARD", "Content-Length": str(len(obj.data))}
        if obj.tags:
            headers["x-cos-tagging-count"] = str(len(obj.tags))
        return headers

    def _send(self, method: str, route: str, action: Callable[[], Any], ci: bool = False) -> Any:
        """One SDK call: faults as the local cloud's server applies them, retries as the SDK does."""
        from qcloud_cos.cos_exception import CosClientError

        for attempt in range(self.retry + 1):
            last = attempt == self.retry
            try:
                return self._attempt(route, action, ci)
            except CosError as exc:
                if exc.status < 500 or last:
                    raise _service_error(method, exc, ci) from None
            except _Dropped as exc:
                if last:
                    raise CosClientError(str(exc)) from None
        raise AssertionError("unreachable")

    def _attempt(self, route: str, action: Callable[[], Any], ci: bool) -> Any:
        fault = self.cloud.faults.take(route)
        if fault and not fault.after:
            self._misbehave(fault, ci, action)
        result = action()
        if fault and fault.after:  # the work is done; only the answer misbehaves
            self._misbehave(fault, ci, None)
        return result

    def _misbehave(self, fault: Fault, ci: bool, action: Optional[Callable[[], Any]]) -> None:
        if fault.delay:
            time.sleep(min(fault.delay, self.timeout))
            if fault.delay >= self.timeout:  # the client gave up; the server still does the work
                if action is not None:
                    try:
                        action()
                    except CosError:
                        pass
                raise _Dropped(f"Read timed out. (read timeout={self.timeout})")
        if fault.drop:
            raise _Dropped("Connection aborted: RemoteDisconnected('Remote end closed connection without response')")
        if fault.status:
            code = fault.error_code(ci)
            raise CosError(fault.status, code, f"injected fault: {code}")


class _Body:
    """`StreamBody`: `get_raw_stream()` is a file-like with read(n)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_raw_stream(self) -> io.BytesIO:
        return io.BytesIO(self.data)


def _jobs(details: List[JobDetail], token: Optional[str] = None) -> Dict[str, Any]:
    return JobsResponse(JobsDetail=details, NextToken=token or None).wire()


def _service_error(method: str, err: CosError, ci: bool) -> Exception:
    """The SDK's CosServiceError for the error body the local cloud's server would send."""
    from qcloud_cos.cos_exception import CosServiceError

    request_id = uuid.uuid4().hex
    if method == "HEAD" and err.status == 404:  # HEAD has no body: the SDK makes up this one
        return CosServiceError(method, {"code": "NoSuchResource", "message": "The Resource You Head Not Exist",
                                        "resource": "", "requestid": request_id, "traceid": ""}, err.status)
    if ci:
        body = xmlcodec.dump("Response", {"Code": err.code, "Message": err.message, "RequestId": request_id})
    else:
        body = xmlcodec.dump("Error", {"Code": err.code, "Message": err.message, "Resource": "localcloud-memory",
                                       "RequestId": request_id, "TraceId": uuid.uuid4().hex})
    return CosServiceError(method, body.decode("utf-8"), err.status)
