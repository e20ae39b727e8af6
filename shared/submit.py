"""Upload -> exactly one SegmentVideoBody job per object version: filter, HEAD, claim, build,
submit, record, tag.

Every record of an event ends with one `Outcome` (kind + reason/step), logged as one JSON
line with the record id; its wire spelling is `submitted`, `duplicate`, `skipped:<reason>`
or `failed:<step>`.
"""
import random
import time
import uuid
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Union

from pydantic import BaseModel, ValidationError, computed_field

from . import notify, tokens
from .cloud import CloudError, Clients
from .config import Settings, max_submit_seconds, output_key, staging_key
from .events import Malformed, Upload
from .dates import epoch_of
from .identity import Correlation, is_record, normalise_etag
from .jobs import JobDetail, JobRequest, background_url, format_errors
from .log import log
from .lifecycle import Lifecycle
from .records import MAX_ATTEMPTS, Record, RecordStore, Retry, Source, ci_time, latest, not_ours, now_iso, owned
from .states import Rank, State

Sleep = Callable[[float], None]
APPEND_EVENT = "cos:ObjectCreated:Append"


class _Word(str, Enum):
    def __str__(self) -> str:  # f"skipped:{reason}" spells the value on every Python
        return str(self.value)


class Kind(_Word):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # another invocation holds this version, or it is already done
    SKIPPED = "skipped"
    FAILED = "failed"


class Skip(_Word):
    EVENT_NAME = "event-name"
    APPENDING = "appending"  # an append to an appendable object: matted by the sweep once it stops growing
    OTHER_BUCKET = "other-bucket"
    LOOP_GUARD = "loop-guard"
    PREFIX = "prefix"
    CONTROL_CHARACTERS = "control-characters"
    SUFFIX = "suffix"
    EMPTY = "empty"
    TOO_LARGE = "too-large"
    GONE = "gone"    # the object no longer exists
    STALE = "stale"  # the event names a version the object no longer has


class Step(_Word):
    PARSE = "parse"
    HEAD = "head"
    TAGS = "tags"
    CLAIM = "claim"
    BUILD = "build"
    SUBMIT = "submit"
    RECORD = "record"


class Outcome(BaseModel):
    key: str
    kind: Kind
    reason: Optional[Skip] = None
    step: Optional[Step] = None
    record_id: Optional[str] = None
    job_id: Optional[str] = None
    attempt: Optional[int] = None
    detail: Optional[str] = None

    @computed_field  # type: ignore[misc]
    @property
    def outcome(self) -> str:
        qualifier = self.reason or self.step
        return self.kind.value + (f":{qualifier.value}" if qualifier else "")

    @property
    def failed(self) -> bool:
        return self.kind is Kind.FAILED


def skip_reason(settings: Settings, up: Upload) -> Optional[Skip]:
    """Why this upload must not become a job, from the event alone (no I/O)."""
    if not up.created:
        return Skip.EVENT_NAME
    if up.event_name == APPEND_EVENT:
        # The SCF COS trigger documents no append event (583/9707: Put, Post, Copy,
        # CompleteMultipartUpload, Origin, Replication); should one come, a job per append would
        # matte a partial file. The sweep (reconcile.py) takes the object once it has not grown
        # for reconcile_after_seconds: one job for the whole file.
        return Skip.APPENDING
    if up.bucket != settings.bucket:
        return Skip.OTHER_BUCKET
    for bucket, prefix in ((settings.out_bucket, settings.output_prefix), (settings.rec_bucket, settings.records_prefix)):
        if up.bucket == bucket and up.key.lstrip("/").startswith(prefix):
            return Skip.LOOP_GUARD
    if not any(up.key.startswith(p) for p in settings.watch_prefixes):
        return Skip.PREFIX
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in up.key):
        return Skip.CONTROL_CHARACTERS  # cannot travel in the job's XML
    if not up.key.lower().endswith(settings.suffixes):
        return Skip.SUFFIX
    return size_reason(settings, up.size)


def size_reason(settings: Settings, size: int) -> Optional[Skip]:
    if size <= 0:
        return Skip.EMPTY
    if size > settings.max_size_bytes:
        return Skip.TOO_LARGE
    return None


def build_request(settings: Settings, record: Record, now: float) -> JobRequest:
    src = record.source
    opts = settings.options_for(src.key)
    body = {
        "Mode": opts.mode, "SegmentType": opts.segment_type,
        "BackgroundRed": opts.background_red, "BackgroundGreen": opts.background_green,
        "BackgroundBlue": opts.background_blue, "BinaryThreshold": opts.binary_threshold,
        "RemoveRed": opts.remove_red, "RemoveGreen": opts.remove_green, "RemoveBlue": opts.remove_blue,
    }
    if opts.mode == "Combination":
        body["BackgroundLogoUrl"] = background_url(src.bucket, src.region, opts.background_key or "")
    marker = Correlation(record.id, record.attempt, settings.deployment or "").marker
    user_data = marker + (f"|{opts.user_data}" if opts.user_data else "")
    published = published_key(settings, record)
    request = {
        "Tag": "SegmentVideoBody",
        "Input": {"Object": src.key},
        "Operation": {
            "SegmentVideoBody": body,
            # The job writes its own key; Lifecycle.publish copies it to `published`.
            "Output": {"Region": settings.out_region, "Bucket": settings.out_bucket,
                       "Object": staging_key(settings, record.id, record.attempt, published)},
            "UserData": user_data,
            "JobLevel": opts.job_level,
        },
        "CallBackFormat": settings.callback_format,
        "CallBack": (tokens.callback_url(settings.callback_url, settings.callback_keys, record.id,
                                         settings.callback_token_ttl, now)
                     if settings.callback_url else None),
    }
    return JobRequest.model_validate(request, context={"bucket": src.bucket})


def published_key(settings: Settings, record: Record) -> str:
    opts = settings.options_for(record.source.key)
    return output_key(settings, record.source.key, opts.mode, opts.segment_type, record.id)


def retry_hint(exc: CloudError) -> Retry:
    """A 4xx from POST /jobs (403 before CI's role is authorised, 400 for a bad request):
    fix the cause, then `cos-matting retry`."""
    return Retry.NOW if exc.retryable else Retry.AFTER_FIX


class Submitter:
    def __init__(self, settings: Settings, clients: Clients, sleep: Sleep = time.sleep) -> None:
        self.settings, self.clients, self.sleep = settings, clients, sleep
        self.store = RecordStore.of(settings, clients.storage)
        self.lifecycle = Lifecycle(clients, self.store)

    def process(self, up: Upload) -> Outcome:
        reason = skip_reason(self.settings, up)
        if reason:
            return Outcome(key=up.key, kind=Kind.SKIPPED, reason=reason)
        step = Step.HEAD
        rid = None
        try:
            version = self.clients.storage.version(up.bucket, up.key)
            if version is None:
                return Outcome(key=up.key, kind=Kind.SKIPPED, reason=Skip.GONE)
            rid = version.record_id
            hinted = normalise_etag(up.etag)
            # Same ETag means same bytes (an event's size can be wrong then); only without an
            # ETag does the size tell versions apart.
            if (hinted and hinted != version.etag) or (not hinted and up.size and up.size != version.size):
                return Outcome(key=up.key, kind=Kind.SKIPPED, reason=Skip.STALE, record_id=rid,
                               detail=f"event names ETag {hinted or '-'} size {up.size}; the object is now "
                                      f"ETag {version.etag} size {version.size}")
            reason = size_reason(self.settings, version.size)
            if reason:
                return Outcome(key=up.key, kind=Kind.SKIPPED, reason=reason, record_id=rid)
            step = Step.TAGS
            existing = self.clients.storage.get_tags(up.bucket, up.key)
            if existing is None:
                return Outcome(key=up.key, kind=Kind.SKIPPED, reason=Skip.GONE, record_id=rid)
            from .tags import is_output

            if is_output(existing):
                return Outcome(key=up.key, kind=Kind.SKIPPED, reason=Skip.LOOP_GUARD, record_id=rid,
                               detail="tagged as output")
            step = Step.CLAIM
            older = self.store.find_older(version)  # an older release's record of it
            if older:
                return Outcome(key=up.key, kind=Kind.DUPLICATE, record_id=older, detail="recorded by an older release")
            record = self._named(Record(id=rid, source=Source.of(version, up.region)))
            opened = self.store.mark_open(record)
            if not self.store.claim(record, marked=True):
                record = self._existing(record, up, opened)
                if record is None:
                    return Outcome(key=up.key, kind=Kind.DUPLICATE, record_id=rid)
            return self._submit_claimed(record)
        except CloudError as exc:
            return Outcome(key=up.key, kind=Kind.FAILED, step=step, record_id=rid, detail=str(exc))
        except ValueError as exc:  # an unreadable record: reported, this upload fails alone
            return Outcome(key=up.key, kind=Kind.FAILED, step=Step.CLAIM, record_id=rid, detail=str(exc))

    def _existing(self, record: Record, up: Upload, opened: bool) -> Optional[Record]:
        """A claim exists. Ours (an SDK retry of our own write), stale (take it over), or a
        final non-success that a later upload of the same bytes re-opens; else None.
        `opened`: our claim attempt wrote the open marker (it was not there)."""
        stages = self.store.stages(record.id)
        if not stages:
            return None
        newest = latest(stages)
        if newest.rank == Rank.FINAL:
            held, _ = self.store.load(record.id)
            # An upload event newer than the failure (same bytes, same second: one version to COS)
            # is a new attempt; an SCF retry of the original event is older than the failure.
            fresh_upload = up.event_time and up.event_time > epoch_of(newest.last_modified)
            # Only the record's own deployment runs it again (two watching one prefix would race for it).
            if held is not None and held.state != State.Success and fresh_upload and held.attempt < MAX_ATTEMPTS \
                    and owned(self.settings, held):
                return self.new_attempt(held, "a new upload of the same bytes after a failure")
            if held is not None and held.state == State.Success:
                self.lifecycle.reinstate(held)  # these bytes are the newest version again
            if opened:  # our claim attempt re-created the marker of a record reconcile had closed
                self.store.close_final(held or record)  # a retry claimed meanwhile keeps it
            # else the marker is the record's own: reconcile has not rechecked it yet (Lifecycle.recheck)
            # and closes it when it has.
            return None
        if newest.rank > Rank.CLAIM:
            return None
        if newest.attempt == record.attempt and newest.generation == record.generation:
            held, _ = self.store.load(record.id)
            if held is not None and held.owner == record.owner:
                return record  # our own write went through and an SDK retry hit 409
        if not self.store.lease_expired(newest.key, newest.age_seconds, self.settings.claim_lease_seconds):
            return None
        held, _ = self.store.load(record.id)
        base = held or record
        # claimed_at stays the first claim's time: no job for this attempt can be older.
        takeover = base.model_copy(update={"generation": newest.generation + 1, "owner": uuid.uuid4().hex,
                                           "attempt": newest.attempt})
        return takeover if self.store.claim(takeover) else None

    def new_attempt(self, held: Record, why: str) -> Optional[Record]:
        """Claim attempt n+1 of a final record (history kept); None if someone else just did."""
        fresh = self._named(Record(id=held.id, source=held.source, attempt=held.attempt + 1,
                                   notes=[f"attempt {held.attempt + 1}: {why}; attempt {held.attempt} ended {held.state}"]))
        # The ended attempt's event, unless sent: its writer may have died before enqueueing it, and
        # reconcile's recheck, which would have, follows the new attempt from its claim on.
        notify.ensure(self.settings, self.store, held)
        if not self.store.claim(fresh):
            return None
        # The final attempt's marker may still be there, and reconcile about to close it after its
        # recheck: written again after our claim, it stays (reconcile looks for a newer attempt
        # after its delete, RecordStore.close_final).
        self.store.mark_open(fresh, replace=True)
        return fresh

    def _named(self, claim: Record) -> Record:
        """The output's predictable name goes on the claim itself, so a record whose Submitted
        stage was lost (the handler died after POST /jobs) is still published under it."""
        return claim.model_copy(update={"publish_as": published_key(self.settings, claim)})

    def resume(self, record: Record) -> Outcome:
        """A claim past its lease with no job (its submitter died), or a retry: check the
        source is still this version, then submit through the same idempotent path."""
        src = record.source
        try:
            version = self.clients.storage.version(src.bucket, src.key)
        except CloudError as exc:
            return Outcome(key=src.key, kind=Kind.FAILED, step=Step.HEAD, record_id=record.id, detail=str(exc))
        if version is None or not is_record(version, record.id):
            reason = Skip.GONE if version is None else Skip.STALE
            self.lifecycle.close_as(record, State.Gone if version is None else State.Superseded)
            return Outcome(key=src.key, kind=Kind.SKIPPED, reason=reason, record_id=record.id,
                           detail="claim closed: " + ("the source is gone" if version is None
                                                      else "the source was overwritten since"))
        return self._submit_claimed(record)

    def retry(self, rid: str) -> Outcome:
        """`cos-matting retry`: a new attempt of a final, unsuccessful record."""
        held, _ = self.store.load(rid)
        if held is None:
            return Outcome(key="", kind=Kind.FAILED, step=Step.CLAIM, record_id=rid, detail=f"no record {rid}")
        if not held.terminal or held.state == State.Success:
            return Outcome(key=held.source.key, kind=Kind.DUPLICATE, record_id=rid, attempt=held.attempt,
                           detail=f"record is {held.state}: nothing to retry")
        # Another deployment's record (one records store, several stages): run with our settings, its
        # job would carry our callback and output prefix, and its own callback would refuse it (403).
        foreign = not_ours(self.settings, held)
        if foreign:
            return Outcome(key=held.source.key, kind=Kind.FAILED, step=Step.CLAIM, record_id=rid,
                           attempt=held.attempt, detail=foreign)
        fresh = self.new_attempt(held, "cos-matting retry")
        if fresh is None:
            return Outcome(key=held.source.key, kind=Kind.DUPLICATE, record_id=rid, detail="retried concurrently")
        return self.resume(fresh)

    def _submit_claimed(self, record: Record) -> Outcome:
        rid, key = record.id, record.source.key
        try:
            request = build_request(self.settings, record, time.time())
        except (ValidationError, ValueError) as exc:
            detail = format_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            self._record_final(record, "InvalidRequest", detail, Retry.AFTER_FIX)
            return Outcome(key=key, kind=Kind.FAILED, step=Step.BUILD, record_id=rid, attempt=record.attempt,
                           detail=detail)
        step = Step.SUBMIT
        try:
            job = self._existing_job(record) if record.generation > 1 else None
            job = job or self._submit(request, record)
            step = Step.RECORD
            out = request.Operation.Output
            submitted = record.model_copy(update={
                "state": State.Submitted, "job_id": job.JobId, "submitted_at": now_iso(),
                "request": request.model_dump(exclude_none=True, exclude={"CallBack"}),
                "publish_as": published_key(self.settings, record),
            })
            self.store.advance(submitted)  # False only if a callback got there first: fine
            log("submit.job", record_id=rid, job_id=job.JobId, attempt=record.attempt, output=out.Object)
            # If the job ends before this tag write lands, the callback's own read may not see it: its
            # final tags are put back by reconcile's recheck (Lifecycle.recheck), the record still open.
            self.lifecycle.tag_source(submitted)
        except CloudError as exc:
            if step is Step.SUBMIT and not exc.retryable:
                self._record_final(record, exc.code, exc.message, retry_hint(exc))
            return Outcome(key=key, kind=Kind.FAILED, step=step, record_id=rid, attempt=record.attempt, detail=str(exc))
        return Outcome(key=key, kind=Kind.SUBMITTED, record_id=rid, job_id=job.JobId, attempt=record.attempt)

    def _submit(self, request: JobRequest, record: Record) -> JobDetail:
        """POST /jobs, safely retried: after an unknown outcome, look the job up first."""
        attempts = self.settings.submit_attempts
        # The bound the claim lease is validated against (config.max_submit_seconds): past it,
        # stop and leave the claim to a takeover rather than outlive the lease.
        deadline = time.monotonic() + max_submit_seconds(self.settings) - 2 * self.settings.timeout_seconds
        for attempt in range(attempts):
            try:
                return self.clients.ci.create(request)
            except CloudError as exc:
                if not exc.retryable or attempt == attempts - 1 or time.monotonic() > deadline:
                    raise
                log("submit.retry", level="warning", record_id=record.id, attempt=attempt + 1, error=str(exc))
                if exc.unknown_outcome:
                    found = self._existing_job(record)
                    if found:
                        return found
                self.sleep(random.uniform(0, min(8.0, 0.25 * 2 ** attempt)))  # full jitter
        raise AssertionError("unreachable")

    def _existing_job(self, record: Record) -> Optional[JobDetail]:
        """The job CI already has for this attempt, searched from shortly before its first claim."""
        wanted = Correlation(record.id, record.attempt, self.settings.deployment or "")
        return self.clients.ci.find(wanted, start=ci_time(record.claimed_at, -600), input_object=record.source.key)

    def _record_final(self, record: Record, code: str, message: str, retry: Retry) -> None:
        failed = record.model_copy(update={"state": State.Failed, "updated_at": now_iso(), "retry": retry,
                                           "error": {"Code": code, "Message": message}})
        try:
            if self.store.advance(failed, close=False):  # False: another writer's final stage: theirs to settle
                self.lifecycle.settle(failed)  # its webhook event too (README "Notifications"); reconcile closes it
        except CloudError as exc:
            log("record.write_failed", level="error", record_id=record.id, error=str(exc))


class SubmitFailed(RuntimeError):
    """Some records of an event failed: raised once, after every record was processed, carrying
    every outcome (like powertools' BatchProcessingError after its per-record results,
    aws_lambda_powertools/utilities/batch). SCF retries an asynchronous invocation (a COS
    trigger's) whose code raised ("Error Types and Retry Policies", tencentcloud.com/document/
    product/583/39851), and a retry is safe: a record already submitted comes back `duplicate`.
    The message names each failed key and step, readable in the function log."""

    def __init__(self, outcomes: List[Outcome]) -> None:
        self.outcomes = list(outcomes)
        failed = [o for o in self.outcomes if o.failed]
        super().__init__(f"{len(failed)} of {len(self.outcomes)} records failed: "
                         + "; ".join(f"{o.key}: {o.outcome}" for o in failed))


def answer(outcomes: List[Outcome]) -> Dict[str, Any]:
    """The submit handler's return value; `SubmitFailed` instead when any record failed."""
    if any(o.failed for o in outcomes):
        raise SubmitFailed(outcomes)
    return {"outcomes": [o.model_dump(exclude_none=True) for o in outcomes]}


def handle(items: List[Union[Upload, Malformed]], submitter: Submitter) -> List[Outcome]:
    """Process every record (a malformed one fails alone), log each outcome; `answer` raises if any failed."""
    outcomes = []
    for item in items:
        if isinstance(item, Malformed):
            outcome = Outcome(key="", kind=Kind.FAILED, step=Step.PARSE, detail=item.error)
        else:
            outcome = submitter.process(item)
        log("submit.outcome", level="error" if outcome.failed else "info", **outcome.model_dump(exclude_none=True))
        outcomes.append(outcome)
    return outcomes

