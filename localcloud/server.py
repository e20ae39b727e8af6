"""HTTP front door: route by Host (bucket) and path (COS, CI `/jobs`, control, Function URLs).

The real SDK connects to ip:port and still sends `Host: <bucket>.cos.<region>
.myqcloud.com`, for CI calls too, so the bucket comes from the Host header and
`/jobs...` paths are CI. Anything else on a plain host is the test-only
control API (`/_localcloud/...`), a Function URL (`/_fn/<name>/...`, deployed ones
`/_url/<id>/...`) or a Tencent Cloud API 3.0 call (`X-TC-Action`).

This module is the plumbing (bodies, streaming, errors, faults, keep-alive); the answers
are in `cos_http` (COS), `ci_http` (CI), `control` and `LocalCloud.serve_*`.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from . import ci_http, control, cos_http
from .auth import AuthError, verify
from .cibinding import PATHS as CI_BUCKET_PATHS
from .cos import CosError
from .cos_http import HOST_RE
from .faults import Fault
from .replies import Reply, xml_reply

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

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """The Date header, on COS's clock (COS common response headers, 436/7729)."""
        return super().date_time_string(self.cloud.store.clock() if timestamp is None else timestamp)

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
                reply = self.cloud.serve_function_url(self)
            elif self.headers.get("X-TC-Action") or self.raw_path.startswith("/_url/") or \
                    self.raw_path in CI_BUCKET_PATHS:
                reply = self.cloud.serve_api(self)  # TC API 3.0 (SCF, CAM), deployed Function URLs, CI bucket binding
            elif self.raw_path.startswith("/_localcloud/") or self.raw_path == "/_localcloud":
                reply = control.serve(self.cloud, self)
            elif self.command in ("GET", "HEAD") and "q-signature" in self.query and self.cloud.store.buckets:
                # A presigned URL the SDK made with its IP/Port config (`cos-matting get --url` against the
                # local cloud) addresses the cloud itself, not a bucket domain: the first bucket answers it,
                # its signature (Host included) checked like any other.
                reply = self._bucket_request(next(iter(self.cloud.store.buckets)), self.cloud.region)
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

    def user_meta(self) -> Dict[str, str]:
        """The request's `x-cos-meta-*` headers, names lower-cased as COS stores them."""
        return {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-cos-meta-")}

    def forbid_overwrite(self) -> bool:
        return (self.headers.get("x-cos-forbid-overwrite") or "").strip().lower() == "true"

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
    def _opened(source: Any) -> Any:
        """A body to send: a path, or a file already opened with the metadata it goes with (Bucket.open_body)."""
        return open(source, "rb") if isinstance(source, str) else source

    @classmethod
    def _read_file(cls, source: Any, offset: int, count: int) -> bytes:
        with cls._opened(source) as fh:
            fh.seek(offset)
            return fh.read(count)

    def _stream_file(self, source: Any, offset: int, count: int) -> None:
        with self._opened(source) as fh:
            fh.seek(offset)
            while count > 0:
                chunk = fh.read(min(count, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                count -= len(chunk)

    # -- errors -----------------------------------------------------------
    def _cos_error(self, err: CosError) -> Reply:
        content = {"Code": err.code, "Message": err.message, "Resource": self.headers.get("Host", ""),
                   "RequestId": self.request_id, "TraceId": uuid.uuid4().hex}
        return xml_reply(err.status, "Error", content, {"x-cos-request-id": self.request_id})

    def _ci_error(self, err: CosError) -> Reply:
        # CI's job error-code page documents <Error><Code/><Message/><RequestId/><TraceId/></Error>
        # (no <Resource>; cos-go-sdk-v5 parses <Error> too); some older pages show a <Response>
        # root: `cloud.ci_error_root` switches it so clients are tested on both.
        content = {"Code": err.code, "Message": err.message, "RequestId": self.request_id,
                   "TraceId": uuid.uuid4().hex}
        return xml_reply(err.status, self.cloud.ci_error_root, content, {"x-ci-request-id": self.request_id})

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
            route, action = (ci_http if is_ci else cos_http).route(self, bucket_name, path)
        except AuthError as exc:
            return error(CosError(exc.status, exc.code, exc.message))
        except CosError as exc:
            return error(exc)
        cloud.requests[route] += 1  # what a client really cost (benchmarks/lookup_cost.py)
        fault = cloud.faults.take(route)
        if fault and fault.delay:
            with cloud.faults.stalling():  # counted until its work is done (Faults.wait_stalled)
                return self._faulted(fault, action, is_ci, error)
        return self._faulted(fault, action, is_ci, error)

    def _faulted(self, fault: Optional[Fault], action: Callable[[], Reply], is_ci: bool,
                 error: Callable[[CosError], Reply]) -> Reply:
        """Run `action` with the request's fault (if any) before or after it."""
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
