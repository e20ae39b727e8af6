"""The local cloud without HTTP, disk or threads: an in-memory COS + CI for the fast test tiers.

The seam is the SDK client. `MemoryCloud.client()` answers the cos-python-sdk-v5 calls that
`shared.cloud.Storage` and `shared.cloud.CI` make, with the shapes the SDK returns, and fails
with the SDK's own `CosServiceError`/`CosClientError` built from the error bodies the local
cloud's server sends; so `Storage`/`CI` and their error mapping run unchanged on top of it.

- CI is the local cloud's own code: the SDK's request (`format_xml`) goes to `ci_http.route`
  and `JobService` (its rules untouched; only persistence and callback delivery are replaced,
  see `_MemoryJobs`), and the answer is read back with the SDK's `xml_to_dict`.
- COS is the local cloud's own backend too (`localcloud.cos`: its buckets with bodies kept in
  memory, `MemoryBucket`), so the rules (key length, tags, overwrite, copies, listing) are the same
  code; only the SDK's call shapes are mapped here. tests/contract runs the same assertions on it
  and on the HTTP local cloud.

The control surface mirrors `LocalCloud`: `upload`, `set_job_state`, `faults` (same routes),
`callbacks` (recorded, never sent: the test delivers them to the handler it wants).
Not mapped (the pipeline does not call them): bucket versioning, multipart uploads, ranged GETs (a
`Range` is ignored), delimiter listings, user metadata; SCF and the API 3.0 front (use the HTTP
local cloud).
"""
from __future__ import annotations

import io
import tempfile
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
from .cos import Bucket, CosError, ObjectMeta, ObjectStore, copy_tags, validate_tags
from .cos_http import object_headers
from .faults import Fault, Faults
from .replies import Reply, http_date, iso_date


class _Dropped(Exception):
    """The connection went away (an injected drop or a delay past the client's timeout)."""


class _Recorded(Callbacks):
    """Callbacks are recorded by `notify` as the local cloud records them, and never sent."""

    def _start(self, record: CallbackRecord, fault: Any, wait: float = 0.0,
               then: Optional[Callable[[], None]] = None) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()
        if then is not None:  # nothing to wait for: a held callback is recorded after this one
            then()


class _MemoryJobs(JobService):
    """The local cloud's JobService over the in-memory store, without its journal on disk; no runner (jobs
    move by `set_job_state`), callbacks recorded."""

    def __init__(self, store: ObjectStore, faults: Faults) -> None:
        # the root is never written to: the methods that would touch it are overridden below
        super().__init__(tempfile.gettempdir(), store, store.region, faults, _Recorded(faults), engine=None, workers=0)

    def add_bucket(self, bucket: str) -> None:
        with self.lock:
            self.jobs.setdefault(bucket, {})

    def _save(self, rec: Any) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryCloud:
    """Buckets and jobs of one region, shared by every client made from it; thread-safe."""

    def __init__(self, buckets: Tuple[str, ...] = ("videos-1250000000",), region: str = "ap-guangzhou") -> None:
        self.region = region
        self.started = time.time()
        self.faults = Faults()
        self.store = ObjectStore(None, region)  # in memory: MemoryBucket
        self.jobs = _MemoryJobs(self.store, self.faults)
        self.callback_sender = self.jobs.callbacks
        for name in buckets:
            self.add_bucket(name)

    def add_bucket(self, name: str) -> None:
        self.store.add_bucket(name)
        self.jobs.add_bucket(name)

    def client(self, retry: int = 0, timeout: float = 10.0) -> "MemoryClient":
        """A stand-in for `CosS3Client(config, retry=retry)` on this cloud."""
        return MemoryClient(self, retry, timeout)

    def clients(self, settings: Settings) -> Clients:
        """What `shared.cloud.Clients(settings)` builds, on this cloud (SDK retries on COS, none on CI)."""
        return MemoryClients(settings, self)

    # -- control, like LocalCloud's ----------------------------------------
    def bucket(self, name: str) -> Bucket:
        return self.store.bucket(name)

    def upload(self, bucket: str, key: str, data: bytes, content_type: str = "") -> str:
        """Put an object as an uploader would; returns its ETag (unquoted). No trigger fires."""
        return self.bucket(bucket).put_bytes(key, data, content_type).etag

    def delete(self, bucket: str, key: str) -> None:
        self.bucket(bucket).delete(key)

    def tags(self, bucket: str, key: str) -> Dict[str, str]:
        return dict(self.bucket(bucket).head(key).tags)

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

    # -- COS: the SDK's call shapes over the local cloud's buckets (localcloud/cos.py) ---------
    def put_object(self, Bucket: str, Body: bytes, Key: str, ContentType: str = "",
                   Metadata: Optional[Dict[str, str]] = None, **_: Any) -> Dict[str, str]:
        forbid = str((Metadata or {}).get("x-cos-forbid-overwrite", "")).lower() == "true"

        def put() -> Dict[str, str]:
            obj = self.cloud.bucket(Bucket).put_bytes(Key, bytes(Body), ContentType, forbid_overwrite=forbid)
            return {"ETag": f'"{obj.etag}"'}

        return self._send("PUT", "cos.put", put)

    def get_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, Any]:
        def get() -> Dict[str, Any]:
            bucket = self.cloud.bucket(Bucket)
            return {**self._headers(bucket.head(Key)), "Body": _Body(bucket.read(Key))}

        return self._send("GET", "cos.get", get)

    def head_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, str]:
        return self._send("HEAD", "cos.head", lambda: self._headers(self.cloud.bucket(Bucket).head(Key)))

    def list_objects(self, Bucket: str, Prefix: str = "", Marker: str = "", MaxKeys: int = 1000,
                     **_: Any) -> Dict[str, Any]:
        def listing() -> Dict[str, Any]:
            limit = max(0, min(int(MaxKeys), 1000))
            page, _, truncated, next_marker = self.cloud.bucket(Bucket).list(Prefix, Marker, limit)
            result: Dict[str, Any] = {"Name": Bucket, "Prefix": Prefix, "Marker": Marker, "MaxKeys": str(limit),
                                      "IsTruncated": "true" if truncated else "false"}
            if truncated:
                result["NextMarker"] = next_marker
            if page:
                result["Contents"] = [{"Key": o.key, "LastModified": iso_date(o.last_modified), "ETag": f'"{o.etag}"',
                                       "Size": str(o.size), "StorageClass": "STANDARD"} for o in page]
            return result

        return self._send("GET", "cos.list", listing)

    def copy_object(self, Bucket: str, Key: str, CopySource: Dict[str, str], Tagging: str = "",
                    Metadata: Optional[Dict[str, str]] = None, **_: Any) -> Dict[str, str]:
        """Server-side copy, the tags as x-cos-tagging-directive says (`Metadata` carries it, as in the SDK)."""
        def copy() -> Dict[str, str]:
            source = self.cloud.bucket(CopySource["Bucket"])
            tags = copy_tags((Metadata or {}).get("x-cos-tagging-directive"), Tagging)
            obj = self.cloud.bucket(Bucket).copy_from(source, CopySource["Key"], Key, replace_tags=tags)
            return {"ETag": f'"{obj.etag}"', "LastModified": iso_date(obj.last_modified)}

        return self._send("PUT", "cos.copy", copy)

    def delete_object(self, Bucket: str, Key: str, **_: Any) -> Dict[str, str]:
        def delete() -> Dict[str, str]:
            self.cloud.bucket(Bucket).delete(Key)  # COS answers 204 for a missing key too
            return {}

        return self._send("DELETE", "cos.delete", delete)

    def get_object_tagging(self, Bucket: str, Key: str, **_: Any) -> Dict[str, Any]:
        def get() -> Dict[str, Any]:
            tags = self.cloud.bucket(Bucket).head(Key).tags
            return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}} if tags else {"TagSet": None}

        return self._send("GET", "cos.tagging.get", get)

    def put_object_tagging(self, Bucket: str, Key: str, Tagging: Optional[Dict[str, Any]] = None,
                           **_: Any) -> None:
        items = ((Tagging or {}).get("TagSet") or {}).get("Tag") or []
        pairs = [(t["Key"], t.get("Value") or "") for t in (items if isinstance(items, list) else [items])]

        def put() -> None:
            bucket = self.cloud.bucket(Bucket)
            bucket.head(Key)  # a missing object first, as the server answers
            bucket.set_tags(Key, validate_tags(pairs))

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
    def _headers(self, obj: ObjectMeta) -> Dict[str, str]:
        """The server's object headers (localcloud/cos_http.py), with the length and the Date (COS's clock, as
        every COS answer has one, 436/7729) it sends."""
        return {**object_headers(obj), "Content-Length": str(obj.size), "Date": http_date(self.cloud.store.clock())}

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
