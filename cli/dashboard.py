"""`cos-matting dashboard` as a library: a Flask app over the library `status` reads through
(cli/records_view.py), and the actions `retry` and `cancel` take (cli/retry.py, cli/cancel.py).

What a request costs follows the page, never the history: the open view lists the open index
(ids and marker times only) and reads records until it has a page of open ones or has read
READ_BUDGET (finished records waiting there for reconcile's recheck are skipped), led by the
uploads that never became a job (the incremental scan `status` runs, a step in the background);
the finished and failed views walk the records prefix from a cursor (records_view.history) and
stop after a page or a read budget; totals and the throughput chart come from listings alone (no
record read), recomputed in the background at most every STATS_EVERY seconds.

Access: bound to loopback; every request needs the random token (`?token=` once, then an
HttpOnly SameSite=Strict cookie); a Host that is not this server's (DNS rebinding), a foreign
Origin or a cross-site fetch is refused; actions are POSTs that also need the page's CSRF token.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from shared import states
from shared.states import Rank

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings
    from cli.clients import ThreadClients

PAGE = 50  # rows a view returns at once
READ_BUDGET = 1000  # records a filtered history request reads at most before it answers with a cursor
STATS_EVERY = 15.0  # seconds between two listings for the totals and the chart
WINDOW_MIN = 60  # the chart's minutes
OPEN_TTL = 1.0  # seconds an open-index listing is reused (polls from several tabs)
UPLOADS_EVERY = 5.0  # seconds between two steps of the "never became a job" scan
SCAN_BUDGET = 1000  # objects of the watched prefixes one step reads (as `status --scan`)
FINAL = states.FINAL
SINCE = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "all": 0}


class Dashboard:
    """The data behind the page: views, one record, totals; the actions."""

    def __init__(self, settings: Settings, env: Dict[str, str], clients: ThreadClients, concurrency: int = 16) -> None:
        self.settings, self.env, self.clients, self.concurrency = settings, env, clients, concurrency
        self._open: Tuple[float, List[Tuple[str, str]]] = (0.0, [])
        self._jobs: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.Lock()

    def store(self) -> Any:
        from shared.records import RecordStore

        return RecordStore.of(self.settings, self.clients.get().storage)

    # -- views ----------------------------------------------------------------------------------
    def open_index(self) -> List[Tuple[str, str]]:
        """(record id, marker Last-Modified) of every record in the open index (finished ones included until
        reconcile's recheck), newest first (listings only)."""
        with self._lock:
            at, ids = self._open
            if time.monotonic() - at < OPEN_TTL:
                return ids
        store, ids, after = self.store(), [], ""
        while True:
            page, after = store.open_page(after)
            ids.extend(page)
            if not after:
                break
        ids.sort(key=lambda item: (item[1], item[0]), reverse=True)
        with self._lock:
            self._open = (time.monotonic(), ids)
        return ids

    def view(self, view: str, after: str = "", state: str = "", prefix: str = "", since: str = "24h",
             limit: int = 0) -> Dict[str, Any]:
        """{"rows": [...], "next": cursor or None, "read": records read}: a page (`limit`, default PAGE rows)
        of a view, from the cursor `after` (a record id)."""
        from cli import records_view

        limit = limit or PAGE

        def wanted(row: Dict[str, Any]) -> bool:
            return (not state or row["state"] == state) and (row.get("key") or "").startswith(prefix)

        rows: List[Dict[str, Any]] = []
        if view == "open":
            return self._open_view(after, wanted, limit)
        from datetime import datetime, timezone

        seconds = SINCE.get(since, SINCE["24h"])
        cutoff = datetime.fromtimestamp(time.time() - seconds, timezone.utc) if seconds else None
        wanted_states = (states.State.Failed,) if view == "failed" else FINAL
        read, last = 0, None
        for row in records_view.history(self.settings, self.clients, after, cutoff, None, self.concurrency):
            read, last = read + 1, row["record_id"]
            if row["state"] in wanted_states and wanted(row):
                rows.append(row)
            if len(rows) >= limit or read >= READ_BUDGET:
                return {"rows": rows, "next": last, "read": read}
        return {"rows": rows, "next": None, "read": read}

    def _open_view(self, after: str, wanted: Callable[[Dict[str, Any]], bool], limit: int) -> Dict[str, Any]:
        """The open records newest claim first, from the cursor `after` ("<marker time>|<record id>": it
        holds even if that record closed meanwhile); the uploads that never became a job lead the first
        page, beside (not counted in) its `limit` records."""
        from cli import records_view

        ids = self.open_index()
        rows: List[Dict[str, Any]] = []
        if not after:
            known = {rid for rid, _ in ids}
            rows = [r for r in self.missing() if wanted(r) and r["record_id"] not in known]
        at, _, rid = after.partition("|")
        end = next((i for i, item in enumerate(ids) if (item[1], item[0]) < (at, rid)), len(ids)) if after else 0
        found, read = 0, 0
        while end < len(ids) and found < limit and read < READ_BUDGET:
            chunk = [rid for rid, _ in ids[end:end + limit]]
            end, read = end + len(chunk), read + len(chunk)
            # a final record stays in the index until reconcile's recheck (reconcile.RECHECK_AFTER): finished, not open
            page = [r for r in records_view.load_many(self.settings, self.clients, chunk, self.concurrency)
                    if wanted(r) and r["state"] not in FINAL]
            rows, found = rows + page, found + len(page)
        last = ids[end - 1] if end else None
        return {"rows": rows, "next": f"{last[1]}|{last[0]}" if last and end < len(ids) else None, "read": read}

    def search(self, query: str) -> Dict[str, Any]:
        from cli import records_view

        rows = records_view.lookup(self.settings, self.clients, query.strip(), limit=PAGE * 4)  # reads what it shows
        return {"rows": rows, "next": None, "read": len(rows)}

    def record(self, rid: str) -> Optional[Dict[str, Any]]:
        """One record: its row, a timeline of every stage of every attempt (listing times), its
        timings, and presigned URLs of the source and the output."""
        from cli import records_view
        from shared.records import UnreadableRecord, owned

        store = self.store()
        try:
            record, stages = store.load(rid)
            row = records_view.row_of(self.settings, rid, stages, record)
        except UnreadableRecord as exc:
            record, stages = None, store.stages(rid)
            row = records_view.row_of(self.settings, rid, stages, None, str(exc).splitlines()[0])
        if not stages:
            return None
        timeline = [{"attempt": s.attempt, "stage": f"note {s.note_job}" if s.note_job else Rank(s.rank).stage,
                     "generation": s.generation, "at": s.last_modified, "object": s.key.rsplit("/", 1)[-1]}
                    for s in sorted(stages, key=lambda s: (s.order, s.note_job))]
        media: Dict[str, Optional[str]] = {"source": None, "output": None}
        if record is not None:
            row.update(claimed_at=record.claimed_at, submitted_at=record.submitted_at, updated_at=record.updated_at,
                       timings=record.timings, notes=record.notes, region=record.source.region)
            media["source"] = self.presign(record.source.bucket, record.source.region, record.source.key)
            if record.output and record.output.get("key"):
                media["output"] = self.presign(self.settings.out_bucket, self.settings.out_region,
                                               record.output["key"])
        # another deployment's record (one records store) is theirs to act on: retry and cancel would refuse it
        ours = record is not None and owned(self.settings, record)
        row.update(timeline=timeline, media=media, can_retry=ours and row["state"] in states.RETRYABLE,
                   can_cancel=ours and row["state"] in states.CANCELLABLE and bool(row.get("job_id")))
        return row

    def presign(self, bucket: str, region: str, key: str, expires: int = 3600) -> str:
        """A GET URL for the browser, signed by the COS SDK (cos_client.py get_presigned_url). Against the
        local cloud the URL names `<bucket>.cos.<region>.localhost:PORT` (its browser alias, see
        localcloud/cos_http.py HOST_RE) and leaves the host out of the signature (the browser sends the port in
        Host; the SDK signs the host name alone)."""
        from shared.cloud import cos_client

        client = cos_client(self.settings, region, 0, self.env)  # the pipeline's credentials, as every call
        if not self.settings.endpoint:
            return client.get_presigned_url(Bucket=bucket, Key=key, Method="GET", Expired=expires)
        from urllib.parse import urlsplit

        conf, port = client._conf, urlsplit(self.settings.endpoint).port
        conf._ip = conf._port = None  # CosConfig.uri: IP:port wins over the domain; the browser needs the name
        conf._domain = f"{bucket}.cos.{region}.localhost:{port}"
        return client.get_presigned_url(Bucket=bucket, Key=key, Method="GET", Expired=expires, SignHost=False)

    # -- totals and throughput (listings only) ------------------------------------------------------
    def _refreshed(self, name: str, every: float, compute: Callable[[], Any], default: Any) -> Any:
        """The last value of `compute`, run again in the background (one run at a time) when older than
        `every` seconds: a poll never waits for a listing of the whole bucket."""
        from shared.cloud import CloudError

        with self._lock:
            job = self._jobs.setdefault(name, {"at": 0.0, "running": False, "value": default})
            start = not job["running"] and time.monotonic() - job["at"] >= every
            job["running"] = job["running"] or start

        def run() -> None:
            try:
                job["value"] = compute()
            except CloudError as exc:  # kept beside the last value; the next poll tries again
                job["value"] = {**job["value"], "error": str(exc)} if isinstance(job["value"], dict) else job["value"]
            finally:
                with self._lock:
                    job["running"], job["at"] = False, time.monotonic()

        if start:
            threading.Thread(target=run, daemon=True, name=f"dashboard-{name}").start()
        return job["value"]

    def stats(self) -> Dict[str, Any]:
        """Totals and records per minute, from listings (recomputed at most every STATS_EVERY s)."""
        return self._refreshed("stats", STATS_EVERY, self._count, {"computing": True})

    def missing(self) -> List[Dict[str, Any]]:
        """Uploads that never became a job: the incremental scan `status` runs (cli/uploads_scan.py), one
        step of at most SCAN_BUDGET objects at most every UPLOADS_EVERY s."""
        from shared.records import age_seconds

        def step() -> List[Dict[str, Any]]:
            from cli import uploads_scan

            state = uploads_scan.step(self.settings, self.clients, SCAN_BUDGET, self.concurrency)
            return sorted(({**m, "state": "NoRecord", "attempts": 0} for m in state.missing.values()),
                          key=lambda m: m["key"])

        rows = self._refreshed("uploads", UPLOADS_EVERY, step, [])
        return [{**r, "age_s": round(age_seconds(r["modified"]), 1) if r.get("modified") else None} for r in rows]

    def _count(self) -> Dict[str, Any]:
        from shared.dates import epoch_of
        from shared.records import latest

        started, now = time.monotonic(), time.time()
        by_rank = [0] * len(Rank)
        claimed, finished = [0] * WINDOW_MIN, [0] * WINDOW_MIN
        for stages in self.store().scan():
            newest = latest(stages)
            by_rank[newest.rank] += 1
            first = min(epoch_of(s.last_modified) for s in stages)
            for series, at in ((claimed, first), (finished, epoch_of(newest.last_modified) if newest.rank == Rank.FINAL else None)):
                if at is not None and 0 <= now - at < WINDOW_MIN * 60:
                    series[WINDOW_MIN - 1 - int((now - at) // 60)] += 1
        return {"records": sum(by_rank), "claimed": by_rank[Rank.CLAIM], "submitted": by_rank[Rank.SUBMITTED],
                "running": by_rank[Rank.RUNNING], "final": by_rank[Rank.FINAL], "open_index": len(self.open_index()), "at": now,
                "per_minute": {"claimed": claimed, "finished": finished}, "seconds": round(time.monotonic() - started, 2)}

    # -- actions: exactly the CLI's ----------------------------------------------------------------
    def retry(self, rid: str) -> Dict[str, Any]:
        from cli.retry import resolve, retry_one

        row = resolve(self.settings, self.clients.get(), rid, command="dashboard")
        # One record a person chose on the page (its error shown there): like `retry RID --include-new-input`.
        return row if "outcome" in row else retry_one(self.settings, self.clients.get(), row, dry_run=False,
                                                      include_new_input=True)

    def cancel(self, job_id: str) -> Dict[str, Any]:
        from cli.cancel import cancel_one

        return cancel_one(self.settings, self.clients.get(), job_id)


def csrf_of(token: str) -> str:
    return hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()


HEADERS = {
    # Videos come from COS through presigned URLs (and the local cloud's *.localhost alias).
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; media-src https://*.myqcloud.com http://*.localhost:*; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store"}


def refusal(request: Any, token: str, csrf: str, hosts: Any, cookie: str) -> Optional[str]:
    """Why a request is refused (403), or None: another Host (DNS rebinding), a foreign Origin, a
    cross-site fetch, no token (query or cookie); for a POST also no CSRF token, not JSON, no Origin."""
    if request.host not in hosts:
        return "unknown Host (the dashboard answers only to its own address)"
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return "foreign Origin"
    if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
        return "cross-site request"
    given = request.args.get("token") or request.cookies.get(cookie) or ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "the access token is missing or wrong: open the URL `cos-matting dashboard` printed"
    if request.method == "POST" and (origin is None or not request.is_json or not hmac.compare_digest(
            (request.headers.get("X-CSRF-Token") or "").encode(), csrf.encode())):
        return "CSRF check failed"
    return None


def make_app(board: Dashboard, token: str, port: Callable[[], int], poll: float = 2.0) -> Any:
    """The Flask app. `port` gives the bound port (known after binding) for the Host and Origin checks."""
    from flask import Flask, abort, jsonify, request

    app = Flask(__name__, template_folder="templates", static_folder="static", static_url_path="/static")
    cookie = lambda: f"cos_matting_dashboard_{port()}"  # noqa: E731 - cookies are per host, not per port
    csrf = csrf_of(token)

    @app.before_request
    def guard() -> Any:
        hosts = {f"127.0.0.1:{port()}", f"localhost:{port()}", f"[::1]:{port()}", app.config.get("BIND_HOST", "")}
        why = refusal(request, token, csrf, hosts, cookie())
        if why:
            abort(403, why)

    @app.after_request
    def harden(response: Any) -> Any:
        # after_request runs for refused requests too: only the right token in the URL earns the cookie
        if hmac.compare_digest(request.args.get("token", "").encode(), token.encode()):
            response.set_cookie(cookie(), token, httponly=True, samesite="Strict", path="/")
        response.headers.update(HEADERS)
        return response

    from werkzeug.exceptions import HTTPException

    from shared.cloud import CloudError

    @app.errorhandler(HTTPException)
    def refused(error: Any) -> Any:  # 400, 403, 404: JSON the page shows
        return jsonify(error=error.description), error.code

    @app.errorhandler(CloudError)
    def cloud_failed(error: Any) -> Any:  # COS or CI did not answer: the page says so and polls on
        return jsonify(error=f"the cloud did not answer: {error}"), 502

    add_routes(app, board, csrf, poll)
    return app


def add_routes(app: Any, board: Dashboard, csrf: str, poll: float) -> None:
    """The page and its JSON API (a thin layer over `Dashboard`)."""
    from flask import abort, jsonify, render_template, request

    from shared.identity import RECORD_ID

    @app.get("/")
    def page() -> Any:
        settings = board.settings
        return render_template("dashboard.html", csrf=csrf, poll=poll, bucket=settings.bucket,
                               prefixes=", ".join(settings.watch_prefixes), final=FINAL, since=list(SINCE))

    @app.get("/api/records")
    def records() -> Any:
        args = request.args
        view = args.get("view", "open")
        if view not in ("open", "finished", "failed"):
            abort(400, "view: open, finished or failed")
        if args.get("q"):
            return jsonify(board.search(args["q"]))
        return jsonify(board.view(view, args.get("after", ""), args.get("state", ""), args.get("prefix", ""),
                                  args.get("since", "24h")))

    @app.get("/api/stats")
    def stats() -> Any:
        return jsonify(board.stats())

    @app.get("/api/record/<rid>")
    def record(rid: str) -> Any:
        if not RECORD_ID.match(rid):
            abort(404)
        row = board.record(rid)
        if row is None:
            abort(404)
        return jsonify(row)

    @app.post("/api/retry")
    def retry() -> Any:
        rid = str((request.get_json(silent=True) or {}).get("record_id") or "")
        if not RECORD_ID.match(rid):
            abort(400, "record_id: a record id")
        return jsonify(board.retry(rid))

    @app.post("/api/cancel")
    def cancel() -> Any:
        job_id = str((request.get_json(silent=True) or {}).get("job_id") or "")
        if not job_id or len(job_id) > 64:
            abort(400, "job_id: a job id")
        return jsonify(board.cancel(job_id))


def serve(board: Dashboard, host: str, port: int, poll: float, announce: Callable[[str], None],
          token: Optional[str] = None) -> None:
    """Bind, print the URL (with the token), serve until interrupted."""
    import socket

    from werkzeug.serving import make_server

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its request lines would print the token
    token = token or secrets.token_urlsafe(24)
    bound = {"port": port}
    app = make_app(board, token, lambda: bound["port"], poll)
    # Bound here: an OSError is the caller's to explain (werkzeug's own bind prints and exits 1).
    listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    server = make_server(host, listener.getsockname()[1], app, threaded=True, fd=listener.fileno())
    bound["port"] = listener.getsockname()[1]
    app.config["BIND_HOST"] = f"[{host}]:{bound['port']}" if ":" in host else f"{host}:{bound['port']}"
    announce(f"http://{f'[{host}]' if ':' in host else host}:{bound['port']}/?token={token}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        listener.close()
