"""Signed webhook notifications: one JSON event when a record reaches a job's final state.

At least once, never in the callback's way:
- `enqueue` writes the event to the outbox (`<records prefix>outbox/<event id>.json`,
  create-only) from `Lifecycle.settle`, right after the final stage is written. The record
  stays in the open index until reconcile's recheck (`Lifecycle.recheck`, RECHECK_AFTER later),
  which calls `ensure`, as a new attempt does for the one it ends (`Submitter.new_attempt`): a
  writer that died before enqueueing is made good there. `ensure` writes nothing once a delivery
  is logged (the entry may be sent and deleted by then); while the entry is there, the event id,
  stable per record, attempt and state, makes a second write a no-op.
- Right after enqueueing, a daemon thread tries one delivery while the handler answers.
  On SCF code after a function returns is not guaranteed to run (the instance is frozen);
  that attempt is a head start, not the guarantee.
- `deliver_due`, run by every reconcile tick, sends each outbox entry of its deployment whose
  back-off has passed (30 s doubling, at most an hour) until the receiver answers 2xx; then the
  entry is deleted. Two deployments sharing a records store share the outbox: an entry names who
  enqueued it, and one naming none (an older release's, or enqueued with no
  COS_MATTING_DEPLOYMENT) is anyone's, as a job naming none is (identity.Correlation.foreign).
  Receivers deduplicate by the event id (`id`, also in `Cos-Matting-Event-Id`).
- Every attempt leaves a delivery log object beside the record's stages
  (`<record id>/notify-<event id>-<ms>.json`: what was sent, the status, the answer).

Signed as Stripe signs webhooks (docs.stripe.com/webhooks "Verify signatures manually"):
`Cos-Matting-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
`verify` checks it within a tolerance window (README "Notifications").
Only the standard library sends (urllib): nothing beyond the SCF layer is needed.
"""
import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from .cloud import CloudError
from .dates import epoch_of
from .log import log
from .records import Record, RecordStore, age_seconds, now_iso
from .states import JOB_FINAL

SIGNATURE_HEADER = "Cos-Matting-Signature"
EVENT_HEADER = "Cos-Matting-Event-Id"
TOLERANCE_SECONDS = 300  # as Stripe's libraries default
OUTBOX = "outbox/"
BACKOFF_BASE, BACKOFF_CAP = 30.0, 3600.0
SEND_TIMEOUT = 5.0
HEAD_START = 2 * SEND_TIMEOUT  # reconcile leaves a new entry this long to the enqueuer's own try
UNANSWERED_STOP = 3  # deliveries in a row with no answer that end a tick's deliveries
ANSWER_BYTES = 500  # of the receiver's answer kept in the delivery log
NOTIFIED_STATES = JOB_FINAL  # a job's final states (Gone/Superseded never had a job)


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old or does not match."""


# -- the event and its signature ---------------------------------------------------------------------
def event_id(record: Record) -> str:
    """Stable per record, attempt and state: every delivery of one result carries the same id."""
    return "evt_" + hashlib.sha256(f"{record.id}.{record.attempt}.{record.state}".encode()).hexdigest()[:32]


def event(record: Record) -> Dict[str, Any]:
    src, out = record.source, record.output or {}
    return {
        "id": event_id(record), "type": "record.finished", "created_at": now_iso(),
        "record_id": record.id, "state": record.state, "attempt": record.attempt, "job_id": record.job_id,
        "source": {"bucket": src.bucket, "region": src.region, "key": src.key, "version_id": src.version_id,
                   "etag": src.etag},
        "output": {"bucket": out["bucket"], "region": out.get("region"), "key": out["key"]} if out else None,
        "error": record.error, "retry": record.retry.value if record.retry else None,
        "claimed_at": record.claimed_at, "submitted_at": record.submitted_at, "finished_at": record.updated_at,
    }


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secrets: Union[str, Iterable[str]], header: Optional[str], body: bytes,
           tolerance: float = TOLERANCE_SECONDS, now: Optional[float] = None) -> int:
    """The signed timestamp if `header` signs `body` with one of `secrets` within `tolerance`
    seconds of `now`; SignatureError otherwise. Compare in constant time; reject old replays."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    parts: Dict[str, List[str]] = {}
    for item in (header or "").split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"{SIGNATURE_HEADER} has no t=<unix time>") from None
    if not parts.get("v1"):
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1=<signature>")
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        raise SignatureError(f"timestamp {stamp} is outside the {tolerance:.0f} s tolerance")
    for key in keys:
        want = sign(key, body, stamp).split("v1=", 1)[1]
        if any(hmac.compare_digest(want, got) for got in parts["v1"]):
            return stamp
    raise SignatureError("no v1 signature matches the body")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new target: urllib would turn the POST into a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)  # http(s) only: the URL is validated in shared/config.py


def post(url: str, secret: str, body: bytes, event_id_: str, timeout: float = SEND_TIMEOUT) -> Tuple[int, str]:
    """(HTTP status or 0 when nothing answered, the answer or the error, cut short)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "cos-matting-notify/1",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())), EVENT_HEADER: event_id_})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return answer.status, answer.read(ANSWER_BYTES).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(ANSWER_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timed out, not HTTP
        return 0, f"{type(exc).__name__}: {exc}"[:ANSWER_BYTES]


# -- the outbox ----------------------------------------------------------------------------------------
def _outbox_key(store: RecordStore, eid: str) -> str:
    return f"{store.prefix}{OUTBOX}{eid}.json"


def enqueue(settings: Any, store: RecordStore, record: Record) -> Optional[str]:
    """Put `record`'s final event in the outbox (create-only) and, when this call created it, try it
    at once in a daemon thread. The event id, or None when notifications are off or not for this state."""
    if not settings.notify_url or record.state not in NOTIFIED_STATES:
        return None
    entry = {"event": event(record), "attempts": 0, "next_at": 0.0, "deployment": store.deployment}
    eid = entry["event"]["id"]
    created = store.storage.put_json(store.bucket, _outbox_key(store, eid), json.dumps(entry).encode(),
                                     create_only=True)
    if created:
        own = RecordStore(store.storage.twin(), store.bucket, store.prefix)
        threading.Thread(target=_send_quietly, args=(settings, own, eid, entry), daemon=True,
                         name=f"notify-{eid}").start()
    return eid


def ensure(settings: Any, store: RecordStore, record: Record) -> Optional[str]:
    """`enqueue`, unless the event was sent already (a delivery is logged beside the record: one
    listing): for a look long after the record's writer enqueued it (or died before it could), when its
    outbox entry may have been delivered and deleted. The event id, or None as `enqueue`."""
    if not settings.notify_url or record.state not in NOTIFIED_STATES:
        return None
    eid = event_id(record)
    sent, _ = store.storage.list(store.bucket, f"{store.prefix}{record.id}/notify-{eid}-", max_keys=1)
    return eid if sent else enqueue(settings, store, record)


def _send_quietly(settings: Any, store: RecordStore, eid: str, entry: Dict[str, Any]) -> None:
    try:
        send(settings, store, eid, entry)
    except Exception as exc:  # noqa: BLE001 - a thread must not die loudly: reconcile retries
        log("notify.send_failed", level="warning", event_id=eid, error=f"{type(exc).__name__}: {exc}"[:300])


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def send(settings: Any, store: RecordStore, eid: str, entry: Dict[str, Any]) -> int:
    """One delivery: POST, log it beside the record, then delete the entry (2xx) or schedule the next try.
    The receiver's HTTP status, 0 when nothing answered."""
    body = json.dumps(entry["event"], separators=(",", ":"), ensure_ascii=False).encode()
    started = time.time()
    status, answer = post(settings.notify_url, settings.notify_secret.get_secret_value(), body, eid)
    ok = 200 <= status < 300
    attempts = int(entry.get("attempts", 0)) + 1
    rid = entry["event"]["record_id"]
    delivery = {"event_id": eid, "url": settings.notify_url, "sent_at": started, "attempt": attempts,
                "status": status, "answer": answer, "ok": ok, "seconds": round(time.time() - started, 3)}
    store.storage.put_json(store.bucket, f"{store.prefix}{rid}/notify-{eid}-{int(started * 1000)}-"
                                         f"{uuid.uuid4().hex[:6]}.json", json.dumps(delivery).encode())
    if ok:
        store.storage.delete(store.bucket, _outbox_key(store, eid))
    else:
        entry = {**entry, "attempts": attempts, "next_at": time.time() + backoff(attempts)}
        store.storage.put_json(store.bucket, _outbox_key(store, eid), json.dumps(entry).encode())
    log("notify.sent" if ok else "notify.refused", level="info" if ok else "warning", event_id=eid, record_id=rid,
        status=status, attempt=attempts)
    return status


def deliver_due(settings: Any, store: RecordStore, out_of_time: Callable[[], bool],
                now: Optional[float] = None) -> Dict[str, int]:
    """Reconcile's part: send every outbox entry due at `now`. {"sent", "failed", "waiting"}.
    After UNANSWERED_STOP deliveries in a row that nothing answered (a receiver down or black-holed:
    up to SEND_TIMEOUT each) the rest wait for the next tick, so they do not eat the tick's budget."""
    counts = {"sent": 0, "failed": 0, "waiting": 0}
    if not settings.notify_url:
        return counts
    marker, prefix, unanswered = "", store.prefix + OUTBOX, 0
    while True:
        page, marker = store.storage.list(store.bucket, prefix, marker)
        for obj in page:
            if out_of_time():
                return counts
            if unanswered >= UNANSWERED_STOP:
                log("notify.unreachable", level="warning", url_host=urllib.parse.urlsplit(settings.notify_url).hostname,
                    unanswered=unanswered)
                return counts
            body = store.storage.get(store.bucket, obj["Key"])
            if body is None:  # delivered and deleted by another sender since the listing
                continue
            try:
                entry = json.loads(body)
                eid = entry["event"]["id"]
            except (ValueError, KeyError, TypeError):
                log("notify.unreadable", level="error", key=obj["Key"])
                continue
            if entry.get("deployment") and entry["deployment"] != store.deployment:
                continue  # another deployment's, in a shared records store: its webhook, its reconcile
            at = time.time() if now is None else now
            fresh = not entry.get("attempts") and age_seconds(obj.get("LastModified", ""), at) < HEAD_START
            if fresh or float(entry.get("next_at", 0)) > at:  # the enqueuer's own try may be under way
                counts["waiting"] += 1
                continue
            try:
                status = send(settings, store, eid, entry)
                counts["sent" if 200 <= status < 300 else "failed"] += 1
                unanswered = unanswered + 1 if status == 0 else 0
            except CloudError as exc:  # the log or the outbox write failed: the entry stays, next tick
                counts["failed"] += 1
                log("notify.store_failed", level="warning", event_id=eid, error=str(exc)[:300])
        if not marker:
            return counts


def pending(store: RecordStore) -> List[str]:
    """Event ids still in the outbox."""
    prefix = store.prefix + OUTBOX
    return [o["Key"][len(prefix):-len(".json")] for o in store.storage.list_all(store.bucket, prefix)]


def deliveries(store: RecordStore, rid: str) -> List[Dict[str, Any]]:
    """The delivery log of a record, oldest first; an object there that is not a delivery is listed as
    unreadable (with its key) rather than failing whoever shows the log."""
    out = []
    for obj in store.storage.list_all(store.bucket, f"{store.prefix}{rid}/notify-"):
        body = store.storage.get(store.bucket, obj["Key"])
        if not body:
            continue
        try:
            delivery = json.loads(body)
        except ValueError:
            delivery = None
        if not isinstance(delivery, dict):
            delivery = {"ok": False, "status": None, "answer": f"unreadable delivery log {obj['Key']}",
                        "sent_at": epoch_of(obj.get("LastModified", "")) or 0}
        out.append(delivery)
    return sorted(out, key=lambda d: d.get("sent_at") or 0)
