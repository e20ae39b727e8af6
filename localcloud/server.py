"""HTTP front door: route by Host (bucket) and path (COS, CI `/jobs`, control, Function URLs).

The real SDK connects to ip:port and still sends `Host: <bucket>.cos.<region>
.myqcloud.com`, for CI calls too, so the bucket comes from the Host header and
`/jobs...` paths are CI. Anything else on a plain host is the test-only
control API (`/_localcloud/...`) or a Function URL (`/_fn/<name>/...`).
"""
from __future__ import annotations

import logging
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from shared import xmlcodec

from . import ci_http, cos_http
from .cos_http import HOST_RE
from .auth import AuthError, verify
from .cos import CosError, ObjectMeta, check_key, validate_tags
from .faults import Fault
from .replies import Reply, _gmt, _iso, _json, _xml  # noqa: F401 - _json is imported from here by cloud.py

if TYPE_CHECKING:
    from .cloud import LocalCloud

log = logging.getLogger("localcloud.server")
MAX_XML = 1 << 20
SMALL_BODY = 64 << 10  # answers up to this size are sent in one write with their headers


class Dropped(Exception):
    """Close the connection without answering (fault injection)."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "tencent-cos"

    def version_string(self) -> str:
        return self.server_version
    cloud: "LocalCloud"  # set on the subclass made per server

    # -- plumbing ---------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.track(self.connection, False)  # type: ignore[attr-defined]
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.cloud.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _dispatch(self) -> None:
        self._consumed = False
        self.request_id = uuid.uuid4().hex
        split = urlsplit(self.path)
        self.raw_path = split.path
        self.query_pairs: List[Tuple[str, str]] = parse_qsl(split.query, keep_blank_values=True)
        self.query = dict(self.query_pairs)
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        match = HOST_RE.match(host)
        try:
            if match:
                reply = self._bucket_request(match.group("bucket"), match.group("region"))
            elif self.raw_path.startswith("/_fn/"):
                reply = self.cloud._function_url(self)
            elif self.headers.get("X-TC-Action") or self.raw_path.startswith("/_url/") or \
                    self.raw_path in ("/mediabucket", "/ai_bucket"):
                reply = self.cloud._api(self)  # TC API 3.0 (SCF, CAM), deployed Function URLs, CI bucket binding
            elif self.raw_path.startswith("/_localcloud/") or self.raw_path == "/_localcloud":
                reply = self.cloud._control(self)
            else:
                reply = self._cos_error(CosError(404, "NoSuchBucket", f"no bucket in Host {host!r}"))
        except Dropped:
            self._drop()
            return
        except Exception as exc:  # a bug here must answer 500, never kill the server or hang the client
            log.exception("unhandled error for %s %s", self.command, self.path)
            self.close_connection = True
            err = CosError(500, "InternalError", f"local cloud error: {type(exc).__name__}: {exc}")
            reply = self._ci_error(err) if self.raw_path.startswith(("/jobs", "/ai_queue")) else self._cos_error(err)
        self._send(reply)

    def body(self, limit: int = MAX_XML) -> bytes:
        """The whole request body (Content-Length or chunked), at most `limit` bytes."""
        self._consumed = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b"".join(iter(lambda: self._chunk(), b""))
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > limit:
                self.close_connection = True
                raise CosError(400, "EntityTooLarge", f"body of {length} bytes exceeds {limit}")
            data = self.rfile.read(length) if length else b""
        if len(data) > limit:
            raise CosError(400, "EntityTooLarge", f"body exceeds {limit} bytes")
        return data

    def _chunk(self) -> bytes:
        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b""
        data = self.rfile.read(size)
        self.rfile.readline()
        return data

    def body_reader(self) -> Tuple[Callable[[int], bytes], Optional[int]]:
        """A chunk reader for streaming bodies; the body counts as consumed once read from.

        If the store refuses before reading (e.g. forbid-overwrite), `_drain` still
        skips the body so the keep-alive connection stays in sync.
        """
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._consumed = True
            buffer = bytearray()

            def read(n: int) -> bytes:
                while len(buffer) < n:
                    chunk = self._chunk()
                    if not chunk:
                        break
                    buffer.extend(chunk)
                out = bytes(buffer[:n])
                del buffer[:n]
                return out

            return read, None

        def read_plain(n: int) -> bytes:
            self._consumed = True
            self.close_connection = True  # until the whole body is read, the stream position is unknown
            return self.rfile.read(n)

        return read_plain, int(self.headers.get("Content-Length") or 0)

    def _drain(self) -> None:
        """Keep the connection usable when answering before reading the body."""
        if self._consumed:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or length > (8 << 20):
            self.close_connection = True
        elif length:
            self.rfile.read(length)
        self._consumed = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply: Reply) -> None:
        """Write the answer; small bodies go out with the headers in one send."""
        self._drain()
        try:
            self.send_response(reply.status)
            length = reply.file[2] if reply.file else len(reply.body)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            body = b"" if self.command == "HEAD" else reply.body
            if reply.file and self.command != "HEAD" and length <= SMALL_BODY:
                body = self._read_file(*reply.file)
            elif reply.file and self.command != "HEAD":
                self.end_headers()
                self._stream_file(*reply.file)
                return
            self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    @staticmethod
    def _read_file(path: str, offset: int, count: int) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(count)

    def _stream_file(self, path: str, offset: int, count: int) -> None:
        with open(path, "rb") as fh:
            fh.seek(offset)
            while count > 0:
                chunk = fh.read(min(count, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                count -= len(chunk)

    # -- errors -----------------------------------------------------------
    def _cos_error(self, err: CosError, resource: str = "") -> Reply:
        content = {"Code": err.code, "Message": err.message, "Resource": resource or self.headers.get("Host", ""),
                   "RequestId": self.request_id, "TraceId": uuid.uuid4().hex}
        return _xml(err.status, "Error", content, {"x-cos-request-id": self.request_id})

    def _ci_error(self, err: CosError) -> Reply:
        # CI documents <Response><Code/><Message/><RequestId/></Response> (no <Resource>); the Go SDK
        # parses <Error>: `cloud.ci_error_root` switches the root so clients are tested on both.
        content = {"Code": err.code, "Message": err.message, "RequestId": self.request_id}
        return _xml(err.status, self.cloud.ci_error_root, content, {"x-ci-request-id": self.request_id})

    def _fault_reply(self, fault: Fault, ci: bool) -> Reply:
        code = fault.error_code(ci)
        err = CosError(fault.status or 500, code, f"injected fault: {code}")
        return self._ci_error(err) if ci else self._cos_error(err)

    # -- buckets ----------------------------------------------------------
    def _bucket_request(self, bucket_name: str, region: str) -> Reply:
        cloud = self.cloud
        is_ci = self.raw_path in ("/jobs", "/ai_queue") or self.raw_path.startswith("/jobs/")
        error = self._ci_error if is_ci else self._cos_error
        try:
            if region != cloud.region:
                raise CosError(404, "NoSuchBucket", f"The specified bucket does not exist in {region}.")
            cloud.store.bucket(bucket_name)  # NoSuchBucket before auth, like COS
            path = unquote(self.raw_path)
            verify(self.command, path, self.query, self.headers, cloud.credentials)
            route, action = (self._ci_route if is_ci else self._cos_route)(bucket_name, path)
        except AuthError as exc:
            return error(CosError(exc.status, exc.code, exc.message))
        except CosError as exc:
            return error(exc)
        cloud.requests[route] += 1  # what a client really cost (benchmarks/lookup_cost.py)
        fault = cloud.faults.take(route)
        if fault and not fault.after:
            failed = self._apply_fault(fault, is_ci)
            if failed:
                return failed
        try:
            reply = action()
        except CosError as exc:
            reply = error(exc)
        reply.headers.setdefault("x-ci-request-id" if is_ci else "x-cos-request-id", self.request_id)
        if fault and fault.after:  # the work is done; only the answer misbehaves
            return self._apply_fault(fault, is_ci) or reply
        return reply

    def _apply_fault(self, fault: Any, is_ci: bool) -> Optional[Reply]:
        """Sleep, drop the connection, or answer with the fault's status; None lets the request through."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            raise Dropped()
        return self._fault_reply(fault, is_ci) if fault.status else None

    def _cos_route(self, bucket: str, path: str) -> Tuple[str, Callable[[], Reply]]:
        key = path[1:]
        method, q = self.command, self.query
        if not key:
            if method == "GET" and "uploads" in q:
                return "cos.multipart.list_uploads", lambda: cos_http.list_uploads(self, bucket)
            if "versioning" in q and method in ("GET", "PUT"):
                return f"cos.versioning.{method.lower()}", lambda: cos_http.versioning(self, bucket)
            if method == "GET":
                return "cos.list", lambda: self._list(bucket)
            if method == "HEAD":  # HeadBucket (436/7735): 200 when it exists and the caller may read it
                return "cos.head_bucket", lambda: Reply(200)
            raise CosError(405, "MethodNotAllowed", f"{method} on the bucket is not supported by the local cloud")
        if "tagging" in q:
            route = {"PUT": "cos.tagging.put", "GET": "cos.tagging.get", "DELETE": "cos.tagging.delete"}.get(method)
            if route is None:
                raise CosError(405, "MethodNotAllowed", f"{method} ?tagging")
            return route, lambda: self._tagging(bucket, key)
        if method in ("PUT", "POST"):
            check_key(key)
        if "uploadId" in q:
            multipart = {"PUT": ("cos.multipart.part", cos_http.upload_part),
                         "POST": ("cos.multipart.complete", cos_http.complete),
                         "DELETE": ("cos.multipart.abort", cos_http.abort),
                         "GET": ("cos.multipart.list_parts", cos_http.list_parts)}
            if method not in multipart or (method == "PUT" and "partNumber" not in q):
                raise CosError(405, "MethodNotAllowed", f"{method} ?uploadId")
            route, fn = multipart[method]
            return route, lambda: fn(self, bucket, key)
        if method == "POST" and "uploads" in q:
            return "cos.multipart.initiate", lambda: cos_http.initiate(self, bucket, key)
        if method == "PUT" and self.headers.get("x-cos-copy-source"):
            return "cos.copy", lambda: self._copy(bucket, key)
        actions = {"PUT": ("cos.put", self._put), "GET": ("cos.get", self._get), "HEAD": ("cos.head", self._head),
                   "DELETE": ("cos.delete", self._delete)}
        if method not in actions:
            raise CosError(405, "MethodNotAllowed", f"{method} on an object is not supported by the local cloud")
        route, fn = actions[method]
        return route, lambda: fn(bucket, key)

    def _object_headers(self, obj: ObjectMeta) -> Dict[str, str]:
        headers = {"ETag": f'"{obj.etag}"', "Content-Type": obj.content_type, "Last-Modified": _gmt(obj.last_modified),
                   "Accept-Ranges": "bytes", "x-cos-storage-class": "STANDARD"}
        headers.update(obj.meta)
        if obj.tags:
            headers["x-cos-tagging-count"] = str(len(obj.tags))
        if obj.version_id:  # HEAD/GET Object on a versioned bucket (436/7745)
            headers["x-cos-version-id"] = obj.version_id
        return headers

    def _user_meta(self) -> Dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-cos-meta-")}

    def _forbid(self) -> bool:
        return (self.headers.get("x-cos-forbid-overwrite") or "").strip().lower() == "true"

    def _put(self, bucket: str, key: str) -> Reply:
        tags = None
        if self.headers.get("x-cos-tagging"):
            tags = validate_tags(parse_qsl(self.headers["x-cos-tagging"], keep_blank_values=True))
        read, length = self.body_reader()
        obj = self.cloud.store.bucket(bucket).put_stream(
            key, read, length, self.headers.get("Content-Type") or "", self._user_meta(), tags, self._forbid())
        self.close_connection = False  # whole body read: keep-alive is safe
        self.cloud._object_created(bucket, obj, "cos:ObjectCreated:Put")
        return Reply(200, {"ETag": f'"{obj.etag}"', **({"x-cos-version-id": obj.version_id} if obj.version_id else {})})

    def _copy(self, bucket: str, key: str) -> Reply:
        src, src_key = cos_http.copy_source(self)
        replace = None
        if (self.headers.get("x-cos-metadata-directive") or "Copy").lower() == "replaced":
            replace = (self.headers.get("Content-Type") or "", self._user_meta())
        obj = self.cloud.store.bucket(bucket).copy_from(src, src_key, key, replace, self._forbid())
        self.cloud._object_created(bucket, obj, "cos:ObjectCreated:Copy")
        return _xml(200, "CopyObjectResult", {"ETag": f'"{obj.etag}"', "LastModified": _iso(obj.last_modified)},
                    {"x-cos-version-id": obj.version_id} if obj.version_id else None)

    def _head(self, bucket: str, key: str) -> Reply:
        obj = self.cloud.store.bucket(bucket).head(key)
        return Reply(200, self._object_headers(obj), file=(self.cloud.store.bucket(bucket).data_path(key), 0, obj.size))

    def _get(self, bucket: str, key: str) -> Reply:
        b = self.cloud.store.bucket(bucket)
        obj = b.head(key)
        headers = self._object_headers(obj)
        start, count, status = 0, obj.size, 200
        rng = self.headers.get("Range")
        if rng:
            match = re.match(r"^bytes=(\d*)-(\d*)$", rng.strip())
            if not match or (not match.group(1) and not match.group(2)):
                raise CosError(416, "InvalidRange", f"Range {rng!r} is not satisfiable")
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), obj.size - 1) if last else obj.size - 1
            else:
                start = max(obj.size - int(last), 0)
                end = obj.size - 1
            if start >= obj.size or end < start:
                raise CosError(416, "InvalidRange", f"Range {rng!r} is not satisfiable for {obj.size} bytes")
            count, status = end - start + 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
        return Reply(status, headers, file=(b.data_path(key), start, count))

    def _delete(self, bucket: str, key: str) -> Reply:
        self.cloud.store.bucket(bucket).delete(key)
        return Reply(204)

    def _list(self, bucket: str) -> Reply:
        q = self.query
        try:
            max_keys = int(q.get("max-keys") or 1000)
        except ValueError:
            raise CosError(400, "InvalidArgument", "max-keys must be an integer") from None
        max_keys = max(0, min(max_keys, 1000))
        prefix, marker, delimiter = q.get("prefix", ""), q.get("marker", ""), q.get("delimiter", "")
        contents, prefixes, truncated, next_marker = self.cloud.store.bucket(bucket).list(prefix, marker, max_keys,
                                                                                        delimiter)
        enc = (lambda s: quote(s, safe="/")) if q.get("encoding-type") == "url" else (lambda s: s)
        result: Dict[str, Any] = {"Name": bucket, "EncodingType": q.get("encoding-type") or None,
                                  "Prefix": enc(prefix), "Marker": enc(marker), "MaxKeys": str(max_keys),
                                  "Delimiter": enc(delimiter) or None, "IsTruncated": "true" if truncated else "false"}
        if truncated:
            result["NextMarker"] = enc(next_marker)
        result["CommonPrefixes"] = [{"Prefix": enc(p)} for p in prefixes] or None
        result["Contents"] = [{"Key": enc(o.key), "LastModified": _iso(o.last_modified), "ETag": f'"{o.etag}"',
                               "Size": str(o.size), "Owner": {"ID": "1250000000", "DisplayName": "1250000000"},
                               "StorageClass": "STANDARD"} for o in contents] or None
        return _xml(200, "ListBucketResult", result)

    def _tagging(self, bucket: str, key: str) -> Reply:
        b = self.cloud.store.bucket(bucket)
        if self.command == "GET":
            tags = b.head(key).tags
            return _xml(200, "Tagging", {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}})
        if self.command == "DELETE":
            b.set_tags(key, {})
            return Reply(204)
        raw = self.body()
        try:
            root, content = xmlcodec.parse(raw)
        except xmlcodec.XMLError as exc:
            raise CosError(400, "MalformedXML", str(exc)) from None
        tag_set = content.get("TagSet") if isinstance(content, dict) else None
        if root != "Tagging" or not isinstance(tag_set, (dict, str)):
            raise CosError(400, "MalformedXML", "body must be <Tagging><TagSet><Tag>...</Tag></TagSet></Tagging>")
        items = (tag_set.get("Tag") if isinstance(tag_set, dict) else None) or []
        items = items if isinstance(items, list) else [items]
        pairs = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
                raise CosError(400, "MalformedXML", "each <Tag> needs <Key> and <Value>")
            value = item.get("Value", "")
            pairs.append((item["Key"], value if isinstance(value, str) else ""))
        b.head(key)
        b.set_tags(key, validate_tags(pairs))
        return Reply(200)

    # -- CI ---------------------------------------------------------------
    def _ci_route(self, bucket: str, path: str) -> Tuple[str, Callable[[], Reply]]:
        return ci_http.route(self, bucket, path)


class Server(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server that can cut its keep-alive connections on close.

    Without that, pooled SDK connections would keep talking to a stopped cloud's
    handler threads, and a "restart" in a test would not really happen.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], handler: type) -> None:
        self._connections: set = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def server_close(self) -> None:
        super().server_close()
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_server(cloud: "LocalCloud", host: str, port: int) -> Server:
    return Server((host, port), type("BoundHandler", (Handler,), {"cloud": cloud}))
