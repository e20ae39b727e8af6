"""Reconcile: what never called back, and claims that never became a job.

Records still Submitted/Running after `reconcile_after_seconds` are re-read
from CI and advanced exactly as a callback would; claims older than the lease
with no job go through the same idempotent submit path (lookup, then submit).
"""
import time
import uuid
from typing import Optional

from pydantic import BaseModel

from .cloud import CloudError, Clients
from .config import Settings
from .events import Upload
from .log import log
from .progress import refresh
from .records import RecordStore, latest
from .submit import Submitter


class Summary(BaseModel):
    scanned: int = 0
    advanced: int = 0
    still_running: int = 0
    resubmitted: int = 0
    failed: int = 0
    finished: int = 0


def reconcile(settings: Settings, clients: Clients, older_than: Optional[float] = None,
              submitter: Optional[Submitter] = None) -> Summary:
    older_than = settings.reconcile_after_seconds if older_than is None else older_than
    store = RecordStore(clients.storage, settings.rec_bucket, settings.records_prefix)
    submitter = submitter or Submitter(settings, clients)
    summary = Summary()
    for stages in store.scan():
        summary.scanned += 1
        newest = latest(stages)
        try:
            if newest.rank == 3:
                summary.finished += 1
            elif newest.rank == 0:
                if newest.age_seconds >= settings.claim_lease_seconds:
                    _resubmit(store, submitter, newest, summary)
            elif newest.age_seconds >= older_than:
                record = store.read(newest)
                result, record = refresh(clients, store, record)
                if record.terminal and result == "advanced":
                    summary.advanced += 1
                elif result == "advanced":
                    summary.advanced += 1
                    summary.still_running += 1
                else:
                    summary.still_running += 1
        except CloudError as exc:
            summary.failed += 1
            log("reconcile.failed", level="error", record_id=newest.record_id, error=str(exc))
    log("reconcile.summary", **summary.model_dump())
    return summary


def _resubmit(store: RecordStore, submitter: Submitter, claim, summary: Summary) -> None:
    record = store.read(claim)
    if record is None:
        return
    src = record.source
    takeover = record.model_copy(update={"attempt": claim.attempt + 1, "owner": uuid.uuid4().hex})
    if not store.claim(takeover):
        return  # someone else is taking it over right now
    up = Upload(bucket=src.bucket, appid=src.bucket.rsplit("-", 1)[-1], region=src.region, key=src.key,
                etag=src.etag, size=src.size, event_name="cos:ObjectCreated:Reconcile", event_time=int(time.time()))
    outcome = submitter.submit_claimed(takeover, up)
    log("reconcile.resubmit", **outcome.model_dump())
    if outcome.outcome == "submitted":
        summary.resubmitted += 1
    else:
        summary.failed += 1
