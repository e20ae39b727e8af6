"""`cos-matting backfill --via scf`: the laptop reads the object list and steers; the deployed submit
function does the work.

Objects come from a COS inventory report or a listing (cli/sources.py), are filtered here with the
trigger's own rules, and go to the submit function in COS-trigger-shaped events of several Records,
each sent with the SCF API's asynchronous `Invoke` (InvocationType=Event). The function handles such
a batch exactly like a trigger event: same idempotent claim, same outcomes, SCF's async retries.

Platform facts used (SCF API `Invoke`, https://www.tencentcloud.com/document/api/583/17243):
ClientContext is at most 128 KB for an asynchronous invocation (6 MB synchronous), and the API takes
at most 100 requests per second. Function status codes (https://www.tencentcloud.com/document/
product/583/35311): an oversize event is refused as RequestTooLarge; tencentcloud-sdk-python-scf's
errorcodes.py names the API error `InvalidParameter.RequestTooLarge`.

Resumable: after every accepted invocation the position in the source (listing key, or inventory
file/row) is saved in the checkpoint file, and a finished run is marked done there, so a second run
sends nothing.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from cli.errors import UsageError

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings

ASYNC_LIMIT = 128 * 1024  # bytes of ClientContext for InvocationType=Event (doc 583/17243)
INVOKE_API_RATE = 100  # Invoke requests per second the API accepts (doc 583/17243)
DEFAULT_BATCH = 20  # records per event: ~20 x 5 COS/CI calls stays far inside the function's 60 s timeout
# Throttling and transient errors are worth a retry; a resend is safe (the function is idempotent).
RETRYABLE = ("RequestLimitExceeded", "LimitExceeded", "ResourceUnavailable", "InternalError", "FailedOperation",
             "ClientNetworkError", "ServerNetworkError", "ClientError")
_PREFIX, _SUFFIX = '{"Records":[', "]}"


def record_json(upload: Any) -> str:
    """One COS-trigger record for an upload, as compact JSON (the bytes we send)."""
    from shared.events import build_event

    record = build_event([upload], source_ip="cos-matting-backfill")["Records"][0]
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def payload_size(records: List[str]) -> int:
    """UTF-8 bytes of `{"Records":[r1,r2,...]}` without building it."""
    return len(_PREFIX) + len(_SUFFIX) + sum(len(r.encode("utf-8")) for r in records) + max(0, len(records) - 1)


def payload(records: List[str]) -> str:
    return _PREFIX + ",".join(records) + _SUFFIX


class Pace:
    """At most `rate` objects per second on average from the start: a batch of n may go out once
    `sent / rate` seconds have passed (bursts never exceed one batch)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start = clock()
        self.sent = 0

    def wait(self, n: int) -> None:
        due = self.start + self.sent / self.rate
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)
        self.sent += n


class InvokeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    @property
    def retryable(self) -> bool:
        return self.code.startswith(RETRYABLE)


class Invoker:
    """Async `Invoke` of one function through tencentcloud-sdk-python-scf, with bounded retries."""

    def __init__(self, client: Any, function: str, namespace: str = "default", qualifier: str = "$LATEST",
                 attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.function, self.namespace, self.qualifier = client, function, namespace, qualifier
        self.attempts, self.sleep = attempts, sleep
        self.retries = 0

    def _once(self, body: str) -> str:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.scf.v20180416 import models

        request = models.InvokeRequest()
        request.FunctionName, request.InvocationType = self.function, "Event"
        request.ClientContext, request.Namespace, request.Qualifier = body, self.namespace, self.qualifier
        try:
            response = self.client.Invoke(request)
        except TencentCloudSDKException as exc:
            raise InvokeError(exc.get_code() or "ClientError", exc.get_message() or str(exc)) from None
        except OSError as exc:  # connection refused/reset below the SDK
            raise InvokeError("ClientNetworkError", str(exc)) from None
        result = getattr(response, "Result", None)
        return str(getattr(result, "FunctionRequestId", "") or getattr(response, "RequestId", ""))

    def send(self, body: str) -> str:
        for attempt in range(self.attempts):
            try:
                return self._once(body)
            except InvokeError as exc:
                if not exc.retryable or attempt == self.attempts - 1:
                    raise
                self.retries += 1
                self.sleep(random.uniform(0, min(10.0, 0.5 * 2 ** attempt)))  # full jitter
        raise AssertionError("unreachable")


@dataclass
class Summary:
    source: str
    function: str
    total: Optional[int] = None
    read: int = 0
    counts: Counter = field(default_factory=Counter)  # sent, skipped:<reason>
    invocations: int = 0
    payload_bytes: int = 0
    max_payload: int = 0
    retries: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0
    position: Any = None
    complete: bool = False
    already_complete: bool = False
    interrupted: bool = False
    error: Optional[str] = None

    @property
    def skipped(self) -> int:
        return sum(n for k, n in self.counts.items() if k.startswith("skipped:"))

    def as_dict(self) -> Dict[str, Any]:
        return {"via": "scf", "source": self.source, "function": self.function, "total": self.total,
                "read": self.read, "sent": self.counts["sent"], "skipped": self.skipped,
                "outcomes": dict(sorted(self.counts.items())), "invocations": self.invocations,
                "payload_bytes": {"max": self.max_payload, "mean": round(self.payload_bytes / self.invocations)
                                  if self.invocations else 0, "limit": ASYNC_LIMIT},
                "invoke_retries": self.retries, "elapsed_s": round(self.elapsed, 3), "cpu_s": round(self.cpu, 3),
                "per_second": round(self.read / self.elapsed, 1) if self.elapsed > 0 else 0.0,
                "position": self.position, "complete": self.complete, "already_complete": self.already_complete,
                "interrupted": self.interrupted, "error": self.error}


class Checkpoint:
    """The resume file: which source, where we stand in it, and whether the run finished."""

    def __init__(self, path: str, identity: Mapping[str, Any], function: str) -> None:
        self.path, self.identity, self.function = Path(path), dict(identity), function

    def load(self) -> Dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"--checkpoint {self.path}: unreadable ({exc})") from None
        if data.get("source") != self.identity:
            raise UsageError(f"--checkpoint {self.path} belongs to {data.get('source')}, not {self.identity}: "
                             f"remove it or use another file")
        return data

    def save(self, summary: Summary, sent_total: int) -> None:
        data = {"via": "scf", "source": self.identity, "function": self.function, "position": summary.position,
                "sent": sent_total, "complete": summary.complete, "saved_at": time.time()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # a crash mid-write leaves the previous checkpoint


Hook = Callable[[Summary], None]


def backfill_scf(settings: Settings, source: Any, invoker: Invoker, checkpoint: Optional[Checkpoint], rate: float,
                 batch: int = DEFAULT_BATCH, since: Any = None, limit: Optional[int] = None,
                 restart: bool = False, on_progress: Optional[Hook] = None,
                 pace: Optional[Pace] = None) -> Summary:
    """Read, filter, batch and send; returns the summary. Ctrl-C (or KeyboardInterrupt from
    `on_progress`) stops after the invocation in flight, with the checkpoint at the last one accepted."""
    return ScfBackfill(settings, source, invoker, checkpoint, batch, on_progress).run(rate, since, limit, restart,
                                                                                     pace)


class ScfBackfill:
    """One run of `backfill_scf`: the summary, and the batch being filled (its records and payload size,
    kept as records are added) with the source position it reaches.

    Steps: `run` resumes from the checkpoint, `_read` hands every item to `_take`, which starts a new
    batch (`_flush`: pace, send, count, save the checkpoint) when the next record would not fit.
    """

    def __init__(self, settings: Settings, source: Any, invoker: Invoker, checkpoint: Optional[Checkpoint], batch: int,
                 on_progress: Optional[Hook]) -> None:
        self.settings, self.source, self.invoker, self.checkpoint = settings, source, invoker, checkpoint
        self.batch, self.on_progress = batch, on_progress
        self.summary = Summary(source=source.describe(), function=invoker.function, total=source.total)
        self.sent_before = 0  # sent by earlier runs of this checkpoint
        self.pace: Optional[Pace] = None
        self.records: List[str] = []
        self.size = payload_size([])  # bytes of the pending payload
        self.batch_end: Any = None  # source position once the pending batch is accepted

    def run(self, rate: float, since: Any, limit: Optional[int], restart: bool, pace: Optional[Pace]) -> Summary:
        summary = self.summary
        started, cpu0 = time.monotonic(), time.process_time()
        saved = {} if self.checkpoint is None or restart else self.checkpoint.load()
        self.sent_before = int(saved.get("sent") or 0)
        summary.position = self.batch_end = saved.get("position")
        if saved.get("complete"):
            summary.complete = summary.already_complete = True
            return summary
        self.pace = pace or Pace(rate)
        try:
            self._read(since, limit)
        except KeyboardInterrupt:
            summary.interrupted = True  # the pending batch was not sent; the checkpoint is before it
        except InvokeError as exc:
            summary.error = f"SCF Invoke {self.invoker.function}: {exc}"
        finally:
            summary.retries = self.invoker.retries
            summary.elapsed = time.monotonic() - started
            summary.cpu = time.process_time() - cpu0
        return summary

    def _read(self, since: Any, limit: Optional[int]) -> None:
        summary = self.summary
        for item in self.source.items(self.settings, summary.position, since):
            if limit is not None and summary.read >= limit:
                break
            summary.read += 1
            self._take(item)
            self.batch_end = item.position
            if self.on_progress is not None:
                self.on_progress(summary)
        self._flush()
        summary.complete = limit is None or summary.read < limit
        if summary.complete:
            self._save()

    def _take(self, item: Any) -> None:
        if item.reason:
            self.summary.counts[f"skipped:{item.reason}"] += 1
            return
        rec = record_json(item.upload)
        if payload_size([rec]) > ASYNC_LIMIT:  # cannot happen with COS's 850-byte keys; never send it
            self.summary.counts["skipped:event-too-large"] += 1
            return
        grow = len(rec.encode("utf-8")) + (1 if self.records else 0)  # the record and its comma
        if len(self.records) >= self.batch or self.size + grow > ASYNC_LIMIT:
            self._flush()
            grow = len(rec.encode("utf-8"))
        self.records.append(rec)
        self.size += grow

    def _flush(self) -> None:
        summary = self.summary
        if self.records:
            assert self.pace is not None
            self.pace.wait(len(self.records))
            self.invoker.send(payload(self.records))
            summary.invocations += 1
            summary.payload_bytes += self.size
            summary.max_payload = max(summary.max_payload, self.size)
            summary.counts["sent"] += len(self.records)
            self.records.clear()
            self.size = payload_size([])
        summary.position = self.batch_end
        self._save()

    def _save(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint.save(self.summary, self.sent_before + self.summary.counts["sent"])


def print_summary(summary: Summary, out: Any) -> None:
    if summary.already_complete:
        out.write(f"backfill {summary.source} via scf: nothing to send, this source was fully sent before "
                  f"(checkpoint complete; --restart sends it again: the function answers duplicate)\n")
        return
    head = "interrupted" if summary.interrupted else ("failed" if summary.error else
                                                      ("done" if summary.complete else "stopped at --limit"))
    mean = round(summary.payload_bytes / summary.invocations) if summary.invocations else 0
    rate = summary.read / summary.elapsed if summary.elapsed > 0 else 0.0
    out.write(f"backfill {summary.source} via scf {summary.function}: {head}; read {summary.read}, "
              f"sent {summary.counts['sent']} in {summary.invocations} async invocations "
              f"(payload mean {mean} B, max {summary.max_payload} B of {ASYNC_LIMIT}), skipped {summary.skipped} "
              f"in {summary.elapsed:.1f} s ({rate:.0f}/s)\n")
    detail = {k: v for k, v in sorted(summary.counts.items()) if k.startswith("skipped:")}
    if detail:
        out.write("  " + "  ".join(f"{k}={v}" for k, v in detail.items()) + "\n")
    if summary.error:
        out.write(f"  FAILED {summary.error}\n")
    if summary.interrupted or summary.error or not summary.complete:
        out.write("  rerun the same command to resume from the checkpoint\n")
    if summary.counts["sent"]:
        out.write("  jobs are submitted by the function as it runs: follow them with `cos-matting status`\n")
    out.flush()


def default_checkpoint(identity: Mapping[str, Any], function: str) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps([identity, function], sort_keys=True).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cos-matting", f"backfill-{digest}.json")


def run_scf(args: Any, env: Mapping[str, str], settings: Settings, source: Any) -> int:
    """The `--via scf` branch of `cos-matting backfill`."""
    import sys

    from cli.progress import Progress
    from cli.remote import scf_client
    from cli.ui import dump_json

    if args.dry_run:
        raise UsageError("--dry-run applies to --via local (with --via scf nothing is read from the record log)")
    if not 0 < args.rate <= 100_000:
        raise UsageError("--rate must be between 0 and 100000 objects per second")
    batch = args.batch or DEFAULT_BATCH
    if not 1 <= batch <= 1000:
        raise UsageError("--batch must be between 1 and 1000 records per invocation")
    if args.rate / batch > INVOKE_API_RATE:
        raise UsageError(f"--rate {args.rate:g} with --batch {batch} is {args.rate / batch:.0f} Invoke calls per "
                         f"second; the SCF API takes at most {INVOKE_API_RATE}/s: raise --batch or lower --rate")
    function = args.function or (f"cos-matting-{env['COS_MATTING_DEPLOY_STAGE']}-submit"
                                 if env.get("COS_MATTING_DEPLOY_STAGE") else "")
    if not function:
        raise UsageError("--via scf needs --function NAME (or COS_MATTING_DEPLOY_STAGE for "
                         "cos-matting-<stage>-submit)")
    path = args.checkpoint or default_checkpoint(source.identity, function)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    checkpoint = Checkpoint(path, source.identity, function)
    if not args.checkpoint:
        print(f"checkpoint: {path}", file=sys.stderr)
    invoker = Invoker(scf_client(env, settings.region, sdk_retries=False), function, args.namespace, args.qualifier)
    progress = Progress(enabled=not args.no_progress, total=source.total, label="backfill via scf", unit="objects")

    def show(summary: Summary) -> None:
        progress.update(summary.read, {"sent": summary.counts["sent"], "skipped": summary.skipped,
                                       "invocations": summary.invocations})

    start = args.start_after if args.start_after and not args.inventory else None
    if start and not checkpoint.load():
        checkpoint.path.write_text(json.dumps({"source": dict(source.identity), "position": start}) + "\n",
                                   encoding="utf-8")
    summary = backfill_scf(settings, source, invoker, checkpoint, args.rate, batch, args.since, args.limit,
                           args.restart, on_progress=show)
    if not summary.already_complete:
        progress.finish(summary.read, {"sent": summary.counts["sent"], "skipped": summary.skipped,
                                       "invocations": summary.invocations})
    out = sys.stdout
    if args.json:
        out.write(dump_json(summary.as_dict()) + "\n")
    else:
        print_summary(summary, out)
    if summary.interrupted:
        return 130
    return 1 if summary.error else 0
