"""The local cloud without HTTP, disk or threads: an in-memory COS + CI for the fast test tiers.

The seam is the SDK client. `MemoryCloud.client()` answers the cos-python-sdk-v5 calls that
`shared.cloud.Storage` and `shared.cloud.CI` make, with the shapes the SDK returns, and fails
with the SDK's own `CosServiceError`/`CosClientError` built from the error bodies the local
cloud's server sends; so `Storage`/`CI` and their error mapping run unchanged on top of it.

- CI is the local cloud's own code: the SDK's request (`format_xml`) goes to `ci_http.route`
  and `JobService` (its rules untouched; only persistence, outputs and callback delivery are
  replaced, see `_MemoryJobs`), and the answer is read back with the SDK's `xml_to_dict`.
- COS is written here (a dict per bucket), with the local cloud's rules imported (key length,
  tag limits); tests/contract runs the same assertions on it and on the HTTP local cloud.

The control surface mirrors `LocalCloud`: `upload`, `set_job_state`, `faults` (same routes),
`callbacks` (recorded, never sent: the test delivers them to the handler it wants).
Copies are emulated (`copy_object`, tags copied). Not emulated: bucket versioning, multipart uploads,
ranged GETs (a `Range` is ignored), delimiter listings (no CommonPrefixes), SCF and the API 3.0
front (use the HTTP local cloud).
"""
from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from shared import xmlcodec
from shared.cloud import CI, Clients, Storage
from shared.config import Settings

from . import ci_http
from .callbacks import CallbackRecord, Callbacks
from .ci import JobService
from .cloud import LocalCloud
from .cos import CosError, check_key, validate_tags
from .faults import Fault, Faults
from .replies import Reply, http_date, iso_date

class _Object:
    __slots__ = ("data", "etag", "content_type", "last_modified", "tags")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data, self.content_type = data, content_type or "application/octet-stream"
        self.etag = hashlib.md5(data).hexdigest()  # noqa: S324 - an ETag, not security
        self.last_modified = time.time()
        self.tags: Dict[str, str] = {}


class _Dropped(Exception):
    """The connection went away (an injected drop or a delay past the client's timeout)."""


class _Recorded(Callbacks):
    """Callbacks are recorded by `notify` as the local cloud records them, and never sent."""

    def _start(self, record: CallbackRecord, fault: Any, wait: float = 0.0) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()


class _MemoryJobs(JobService):
    """The local cloud's JobService with its I/O replaced: no journal on disk, outputs written
    into the MemoryCloud, callbacks recorded, no runner (jobs move by `set_job_state`)."""

    def __init__(self, cloud: "MemoryCloud") -> None:
        # the root is never written to: every method that would touch it is overridden below
        super().__init__(tempfile.gettempdir(), None, cloud.region, cloud.faults, _Recorded(cloud.faults),  # type: ignore[arg-type]
                         engine=None, workers=0)
        self.memory = cloud

    def add_bucket(self, bucket: str) -> None:
        with self.lock:
            self.jobs.setdefault(bucket, {})

    def _save(self, rec: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def _write_output(self, bucket: str, key: str, data: Optional[bytes] = None, path: Optional[str] = None) -> None:
        self.memory.upload(bucket, key, data or b"", "video/mp4")

    def _output_md5(self, bucket: str, key: str) -> str:
        obj = self.memory.buckets.get(bucket, {}).get(key)
        return obj.etag if obj else ""


class MemoryCloud:
    """Buckets and jobs of one region, shared by every client made from it; thread-safe."""

    def __init__(self, buckets: Tuple[str, ...] = ("videos-1250000000",), region: str = "ap-guangzhou") -> None:
        self.region = region
        self.started = time.time()
        self.lock = threading.RLock()
        self.faults = Faults()
        self.buckets: Dict[str, Dict[str, _Object]] = {}
        self.jobs = _MemoryJobs(self)
        self.callback_sender = self.jobs.callbacks
        for name in buckets:
            self.add_bucket(name)

    def add_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.setdefault(name, {})
        self.jobs.add_bucket(name)

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

    # the control surface is LocalCloud's own: the same methods over the same JobService
    get_job = LocalCloud.get_job
    list_jobs = LocalCloud.list_jobs
    set_job_state = LocalCloud.set_job_state
    callbacks = LocalCloud.callbacks


class MemoryClients(Clients):
    """`shared.cloud.Clients` on a MemoryCloud: one region, so out_storage is storage."""

    def __init__(self, settings: Settings, cloud: MemoryCloud) -> None:  # not super().__init__: it builds SDK clients
        self.settings, self.cloud = settings, cloud
        self.storage = self.out_storage = Storage(cloud.client(retry=2, timeout=settings.timeout_seconds))
        self.ci = CI(cloud.client(retry=0, timeout=settings.timeout_seconds), settings.bucket)


class _Request:
    """What the local cloud's request handlers (`ci_http`) read of an HTTP request."""

    def __init__(self, cloud: MemoryCloud, command: str, query: Dict[str, Any], body: bytes = b"",
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.cloud, self.command, self._body = cloud, command, body
        # the SDK's format_values may hand over bytes
        self.query = {_text(k): _text(v) for k, v in query.items() if v is not None}
        self.headers = headers or {}
        self.request_id = uuid.uuid4().hex

    def body(self, limit: int = 0) -> bytes:
        return self._body


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _Raw:
    """The part of a `requests.Response` that `CI._list_scoped` reads."""

    def __init__(self, content: bytes) -> None:
        self.content = content


class MemoryClient:
    """The cos-python-sdk-v5 `CosS3Client` calls the pipeline makes, answered from a MemoryCloud.

    Like the SDK (`CosS3Client.send_request`), it retries `retry` times on 5xx and on a dropped
    connection, never on 4xx; unlike it, it does not sleep between attempts.
    """

    def __init__(self, cloud: MemoryCloud, retry: int, timeout: float) -> None:
        from qcloud_cos import CosConfig

        self.cloud, self.retry, self.timeout = cloud, retry, timeout
        # a real config: CI builds some requests itself from it (uri, signing)
        self._conf = CosConfig(Region=cloud.region, SecretId="AKIDmemory", SecretKey="memory", Scheme="http")

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
                result["Contents"] = [{"Key": k, "LastModified": iso_date(o.last_modified), "ETag": f'"{o.etag}"',
                                       "Size": str(len(o.data)), "StorageClass": "STANDARD"} for k, o in page]
            return result

        return self._send("GET", "cos.list", listing)

    def copy_object(self, Bucket: str, Key: str, CopySource: Dict[str, str], **_: Any) -> Dict[str, str]:
        """Server-side copy (tags copied, as COS's default x-cos-tagging-directive Copy)."""
        def copy() -> Dict[str, str]:
            check_key(Key)
            with self.cloud.lock:
                source = self._object(CopySource["Bucket"], CopySource["Key"])
                obj = self.cloud.bucket(Bucket)[Key] = _Object(source.data, source.content_type)
                obj.tags = dict(source.tags)
            return {"ETag": f'"{obj.etag}"', "LastModified": iso_date(obj.last_modified)}

        return self._send("PUT", "cos.copy", copy)

    def delete_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, str]:
        def delete() -> Dict[str, str]:
            with self.cloud.lock:
                self.cloud.bucket(Bucket).pop(Key, None)  # COS answers 204 for a missing key too
            return {}

        return self._send("DELETE", "cos.delete", delete)

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

    # -- CI: the SDK's request shapes, answered by the local cloud's ci_http ------
    def ci_create_media_jobs(self, Bucket: str, Jobs: Dict[str, Any], ContentType: str = "",
                             **_: Any) -> Dict[str, Any]:
        from qcloud_cos.cos_comm import format_xml

        body = format_xml(data=Jobs, root="Request")
        return self._ci("POST", Bucket, "/jobs", {}, ["JobsDetail"], body.encode("utf-8") if isinstance(body, str)
                        else body, {"Content-Type": ContentType} if ContentType else {})

    def ci_get_media_jobs(self, Bucket: str, JobIDs: str, **_: Any) -> Dict[str, Any]:
        return self._ci("GET", Bucket, "/jobs/" + JobIDs, {}, ["JobsDetail"])

    def ci_list_media_jobs(self, Bucket: str, Tag: str, QueueId: Optional[str] = None,
                           StartCreationTime: Optional[str] = None, EndCreationTime: Optional[str] = None,
                           OrderByTime: str = "Desc", States: str = "All", Size: int = 10, NextToken: str = "",
                           **_: Any) -> Dict[str, Any]:
        query = {"tag": Tag, "orderByTime": OrderByTime, "states": States, "size": str(Size), "nextToken": NextToken,
                 "queueId": QueueId, "startCreationTime": StartCreationTime, "endCreationTime": EndCreationTime}
        return self._ci("GET", Bucket, "/jobs", query, ["JobsDetail"])

    def ci_cancel_jobs(self, Bucket: str, JobID: str, **_: Any) -> str:
        self._ci("PUT", Bucket, "/jobs/" + JobID, {"cancel": ""}, [])
        return ""

    def ci_get_ai_queue(self, Bucket: str, State: str = "All", QueueIds: str = "", PageNumber: str = "",
                        PageSize: str = "", **_: Any) -> Dict[str, Any]:
        query = {"queueIds": QueueIds, "state": State, "pageNumber": PageNumber, "pageSize": PageSize}
        return self._ci("GET", Bucket, "/ai_queue", query, ["QueueList"])

    def send_request(self, method: str, url: str, bucket: str, params: Optional[Dict[str, Any]] = None,
                     **_: Any) -> _Raw:
        """The SDK's raw request, as `CI` uses it for the job lookup (GET /jobs with more parameters)."""
        return _Raw(self._ci(method, bucket, urlsplit(url).path, params or {}, None))

    def _ci(self, method: str, bucket: str, path: str, query: Dict[str, Any], lists: Optional[List[str]],
            body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> Any:
        """One CI request through the local cloud's handlers; the answer parsed as the SDK parses it
        (`xml_to_dict`, then `format_dict` of `lists`), or the raw XML when `lists` is None."""
        from qcloud_cos.cos_comm import format_dict, xml_to_dict

        request = _Request(self.cloud, method, query, body, headers)
        try:
            self.cloud.bucket(bucket)  # checked before routing, as the server does
            route, action = ci_http.route(request, bucket, path)
        except CosError as exc:
            raise _service_error(method, exc, True) from None
        reply: Reply = self._send(method, route, action, ci=True)
        if lists is None:
            return reply.body
        data = xml_to_dict(reply.body) if reply.body else {}
        if lists:
            format_dict(data, lists)
        return data

    # -- plumbing -------------------------------------------------------------
    def _object(self, bucket: str, key: str) -> _Object:
        obj = self.cloud.bucket(bucket).get(key)
        if obj is None:
            raise CosError(404, "NoSuchKey", "The specified key does not exist.")
        return obj

    @staticmethod
    def _headers(obj: _Object) -> Dict[str, str]:
        headers = {"ETag": f'"{obj.etag}"', "Content-Type": obj.content_type,
                   "Last-Modified": http_date(obj.last_modified), "Accept-Ranges": "bytes",
                   "x-cos-storage-class": "STANDARD", "Content-Length": str(len(obj.data)),
                   "Date": http_date(time.time())}  # every COS answer has one (436/7729)
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
