"""Reconcile: what never called back, claims that never became a job, uploads never claimed.

- Records still Submitted/Running after `older_than` are re-read from CI and
  advanced exactly as a callback would.
- Claims older than the lease with no job, and uploads in the watched prefixes
  that have no record at all (every SCF retry failed), go through the same
  idempotent submit path as a trigger: claim or take over, look up, submit.
"""
from typing import Optional, Set

from pydantic import BaseModel

from .cloud import CloudError, Clients
from .config import Settings
from .events import Upload, upload_from_listing
from .log import log
from .progress import refresh
from .records import RecordStore, age_seconds, latest, record_id
from .submit import Submitter, skip_reason

EVENT_NAME = "cos:ObjectCreated:Reconcile"


class Summary(BaseModel):
    scanned: int = 0
    advanced: int = 0
    still_running: int = 0
    resubmitted: int = 0
    swept: int = 0
    failed: int = 0
    finished: int = 0


def reconcile(settings: Settings, clients: Clients, older_than: Optional[float] = None,
              submitter: Optional[Submitter] = None, sweep: bool = True) -> Summary:
    older_than = settings.reconcile_after_seconds if older_than is None else older_than
    store = RecordStore(clients.storage, settings.rec_bucket, settings.records_prefix)
    submitter = submitter or Submitter(settings, clients)
    summary = Summary()
    known: Set[str] = set()
    for stages in store.scan():
        summary.scanned += 1
        newest = latest(stages)
        known.add(newest.record_id)
        try:
            if newest.rank == 3:
                summary.finished += 1
            elif newest.rank == 0:
                if newest.age_seconds >= settings.claim_lease_seconds:
                    record = store.read(newest)
                    if record is not None:
                        _submit(submitter, _upload(record.source), summary, "resubmitted")
            elif newest.age_seconds >= older_than:
                result, record = refresh(clients, store, store.read(newest))
                summary.advanced += result == "advanced"
                summary.still_running += not record.terminal
        except (CloudError, ValueError) as exc:  # ValueError: an unreadable record; the rest go on
            summary.failed += 1
            log("reconcile.failed", level="error", record_id=newest.record_id, error=str(exc)[:500])
    if sweep:
        _sweep(settings, clients, submitter, known, older_than, summary)
    log("reconcile.summary", **summary.model_dump())
    return summary


def _sweep(settings: Settings, clients: Clients, submitter: Submitter, known: Set[str], older_than: float,
           summary: Summary) -> None:
    """Uploads that never became a record: their trigger never ran, or every retry failed."""
    for prefix in settings.watch_prefixes:
        try:
            for obj in clients.storage.list_all(settings.bucket, prefix):
                up = upload_from_listing(settings.bucket, settings.region, obj, EVENT_NAME)
                if skip_reason(settings, up) or record_id(up.bucket, up.key, up.etag) in known:
                    continue
                if age_seconds(obj.get("LastModified", "")) >= older_than:
                    _submit(submitter, up, summary, "swept")
        except CloudError as exc:
            summary.failed += 1
            log("reconcile.sweep_failed", level="error", prefix=prefix, error=str(exc))


def _upload(source) -> Upload:
    return Upload(bucket=source.bucket, appid=source.bucket.rsplit("-", 1)[-1], region=source.region,
                  key=source.key, etag=source.etag, size=source.size, event_name=EVENT_NAME)


def _submit(submitter: Submitter, up: Upload, summary: Summary, counter: str) -> None:
    outcome = submitter.process(up)
    log("reconcile.submit", **outcome.model_dump())
    if outcome.outcome == "submitted":
        setattr(summary, counter, getattr(summary, counter) + 1)
    elif outcome.failed:
        summary.failed += 1
