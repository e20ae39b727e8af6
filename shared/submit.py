"""Upload -> exactly one SegmentVideoBody job: filter, claim, build, submit, record, tag.

Every record of an event ends with one outcome: `submitted`, `skipped:<reason>`,
`duplicate` or `failed:<step>`, logged as one JSON line with the record id.
"""
import random
import uuid
import time
from typing import Callable, Dict, List, Optional

from pydantic import BaseModel, ValidationError

from . import tags, tokens
from .cloud import CloudError, Clients
from .config import Settings, output_key
from .events import Upload
from .jobs import JobDetail, JobRequest, background_url, format_errors
from .log import log
from .records import Record, RecordStore, Source, ci_time, latest, now_iso, record_id

Sleep = Callable[[float], None]


class Outcome(BaseModel):
    key: str
    outcome: str
    record_id: Optional[str] = None
    job_id: Optional[str] = None
    detail: Optional[str] = None

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed:")


def skip_reason(settings: Settings, up: Upload) -> Optional[str]:
    """Why this upload must not become a job, from the event alone (no I/O)."""
    if not up.created:
        return "event-name"
    if up.bucket != settings.bucket:
        return "other-bucket"
    for bucket, prefix in ((settings.out_bucket, settings.output_prefix), (settings.rec_bucket, settings.records_prefix)):
        if up.bucket == bucket and up.key.lstrip("/").startswith(prefix):
            return "loop-guard"
    if not any(up.key.startswith(p) for p in settings.watch_prefixes):
        return "prefix"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in up.key):
        return "control-characters"  # cannot travel in the job's XML
    if not up.key.lower().endswith(settings.suffixes):
        return "suffix"
    if up.size <= 0:
        return "empty"
    if up.size > settings.max_size_bytes:
        return "too-large"
    return None


def correlation_marker(rid: str) -> str:
    return f"cm:{rid}"


def build_request(settings: Settings, up: Upload, rid: str, now: float) -> JobRequest:
    opts = settings.options_for(up.key)
    body = {
        "Mode": opts.mode, "SegmentType": opts.segment_type,
        "BackgroundRed": opts.background_red, "BackgroundGreen": opts.background_green,
        "BackgroundBlue": opts.background_blue, "BinaryThreshold": opts.binary_threshold,
        "RemoveRed": opts.remove_red, "RemoveGreen": opts.remove_green, "RemoveBlue": opts.remove_blue,
    }
    if opts.mode == "Combination":
        body["BackgroundLogoUrl"] = background_url(up.bucket, up.region, opts.background_key or "")
    user_data = correlation_marker(rid) + (f"|{opts.user_data}" if opts.user_data else "")
    request = {
        "Tag": "SegmentVideoBody",
        "Input": {"Object": up.key},
        "Operation": {
            "SegmentVideoBody": body,
            "Output": {"Region": settings.out_region, "Bucket": settings.out_bucket,
                       "Object": output_key(settings, up.key, opts.mode, opts.segment_type, rid)},
            "UserData": user_data,
            "JobLevel": opts.job_level,
        },
        "CallBackFormat": settings.callback_format,
        "CallBack": (tokens.callback_url(settings.callback_url, settings.callback_keys, rid,
                                         settings.callback_token_ttl, now)
                     if settings.callback_url else None),
    }
    return JobRequest.model_validate(request, context={"bucket": up.bucket})


class Submitter:
    def __init__(self, settings: Settings, clients: Clients, sleep: Sleep = time.sleep) -> None:
        self.settings, self.clients, self.sleep = settings, clients, sleep
        self.store = RecordStore(clients.storage, settings.rec_bucket, settings.records_prefix)

    def process(self, up: Upload) -> Outcome:
        reason = skip_reason(self.settings, up)
        if reason:
            return Outcome(key=up.key, outcome=f"skipped:{reason}")
        rid = record_id(up.bucket, up.key, up.etag)
        step = "tags"
        try:
            existing = self.clients.storage.get_tags(up.bucket, up.key)
            if existing is None:
                return Outcome(key=up.key, outcome="skipped:missing", record_id=rid)
            if tags.is_output(existing):
                return Outcome(key=up.key, outcome="skipped:loop-guard", record_id=rid, detail="tagged as output")
            step = "claim"
            record = Record(id=rid, source=Source(bucket=up.bucket, region=up.region, key=up.key,
                                                  etag=up.etag, size=up.size))
            if not self.store.claim(record):
                record = self._take_over(record)
                if record is None:
                    return Outcome(key=up.key, outcome="duplicate", record_id=rid)
            return self._submit_claimed(record, up, existing)
        except CloudError as exc:
            return Outcome(key=up.key, outcome=f"failed:{step}", record_id=rid, detail=str(exc))

    def _take_over(self, record: Record) -> Optional[Record]:
        """A claim exists. Take it over only if it is stale and never reached a job."""
        stages = self.store.stages(record.id)
        if not stages:
            return None
        newest = latest(stages)
        first_claim = min(s.last_modified for s in stages)
        if newest.rank == 0 and newest.attempt == record.attempt:
            held = self.store.read(newest)
            if held is not None and held.owner == record.owner:
                return record  # our own write went through and an SDK retry hit 409
        if newest.rank > 0 or newest.age_seconds < self.settings.claim_lease_seconds:
            return None
        # claimed_at stays the first claim's time: no job for this upload can be older.
        takeover = record.model_copy(update={"attempt": newest.attempt + 1, "claimed_at": first_claim or now_iso(),
                                             "owner": uuid.uuid4().hex})
        return takeover if self.store.claim(takeover) else None

    def _submit_claimed(self, record: Record, up: Upload, source_tags: Dict[str, str]) -> Outcome:
        rid = record.id
        try:
            request = build_request(self.settings, up, rid, time.time())
        except (ValidationError, ValueError) as exc:
            detail = format_errors(exc)
            self._record_final(record, "InvalidRequest", detail)
            return Outcome(key=up.key, outcome="failed:build", record_id=rid, detail=detail)
        step = "submit"
        try:
            job = self._existing_job(record) if record.attempt > 1 else None
            job = job or self._submit(request, record)
            step = "record"
            submitted = record.model_copy(update={
                "state": "Submitted", "job_id": job.JobId, "submitted_at": now_iso(),
                "request": request.model_dump(exclude_none=True, exclude={"CallBack"}),
            })
            self.store.advance(submitted)  # False only if a callback got there first: fine
            self._tag_source(up, job.JobId, source_tags)
        except CloudError as exc:
            if step == "submit" and not exc.retryable:
                self._record_final(record, exc.code, exc.message)
            return Outcome(key=up.key, outcome=f"failed:{step}", record_id=rid, detail=str(exc))
        return Outcome(key=up.key, outcome="submitted", record_id=rid, job_id=job.JobId)

    def _submit(self, request: JobRequest, record: Record) -> JobDetail:
        """POST /jobs, safely retried: after an unknown outcome, look the job up first."""
        attempts = self.settings.submit_attempts
        for attempt in range(attempts):
            try:
                return self.clients.ci.create(request)
            except CloudError as exc:
                if not exc.retryable or attempt == attempts - 1:
                    raise
                log("submit.retry", level="warning", record_id=record.id, attempt=attempt + 1, error=str(exc))
                if exc.unknown_outcome:
                    found = self._existing_job(record)
                    if found:
                        return found
                self.sleep(random.uniform(0, min(8.0, 0.25 * 2 ** attempt)))  # full jitter
        raise AssertionError("unreachable")

    def _existing_job(self, record: Record) -> Optional[JobDetail]:
        """The job CI already has for this record, searched from shortly before its first claim."""
        return self.clients.ci.find(correlation_marker(record.id), start=ci_time(record.claimed_at, -600),
                                    input_object=record.source.key)

    def _record_final(self, record: Record, code: str, message: str) -> None:
        failed = record.model_copy(update={"state": "Failed", "updated_at": now_iso(),
                                           "error": {"Code": code, "Message": message}})
        try:
            self.store.advance(failed)
        except CloudError as exc:
            log("record.write_failed", level="error", record_id=record.id, error=str(exc))

    def _tag_source(self, up: Upload, job_id: str, existing: Dict[str, str]) -> None:
        """Best effort, onto the tags read by the loop guard: the final state is tagged again when the job ends."""
        try:
            merged, skipped = tags.merge(existing, {tags.JOB: job_id, tags.STATE: "Submitted"})
            self.clients.storage.put_tags(up.bucket, up.key, merged)
            if skipped:
                log("tags.limit", level="warning", key=up.key, skipped=skipped)
        except CloudError as exc:
            log("tags.source_failed", level="warning", key=up.key, error=str(exc))


def handle(uploads: List[Upload], submitter: Submitter) -> List[Outcome]:
    """Process every record, log each outcome; the caller raises if any failed."""
    outcomes = []
    for up in uploads:
        outcome = submitter.process(up)
        log("submit.outcome", level="error" if outcome.failed else "info", **outcome.model_dump())
        outcomes.append(outcome)
    return outcomes
