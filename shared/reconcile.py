"""Reconcile: what never called back, claims that never became a job, uploads never claimed.

It works from what is pending, never from history, so a tick costs what is open:
- the open index (`<records_prefix>open/`, records.py): a Submitted/Running record
  older than `older_than` is re-read from CI and advanced exactly as a callback would;
  a claim past its lease is resumed through the submit path (or closed, when the source
  is gone or overwritten); a final record's output and source tags are read once more
  RECHECK_AFTER its final stage and put right (a late tag write moved a state back, an
  older version's publish landed over ours), and only then does it leave the index;
- the recheck index (`<records_prefix>recheck/`) that releases up to 750cb24 wrote at
  settle: each entry is rechecked the same way and removed;
- CI's listing of the jobs created since the last tick (StartCreationTime): a job
  carrying a record's id that is not the job the record names (a slow create answered
  after our retry) is cancelled if not started, and noted;
- the sweep for uploads that never became a record lists the watched prefixes at most
  SWEEP_PAGES pages per tick and checks (one listing of the record's folder) only
  objects modified since the last complete pass began.
Every part resumes where it stopped: the place each reached (`Place`: the open index's
and recheck indexes' cursors, the job listing's NextToken and window, the sweep's prefix and
marker) is saved in
`<records_prefix>state/reconcile.json` and the next tick goes on from there. No part can
starve another: each first runs to its share of the time budget (a fifth each, what one
leaves unused passes to the next), then the parts that stopped early go on in turn with
what is left. So the sweep advances every tick however long CI's job list or the open
index has grown.
"""
import json
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from pydantic import BaseModel, Field

from .cloud import CloudError, Clients
from .config import Settings
from .events import Upload, upload_from_listing
from .dates import epoch_of
from .identity import Correlation, ObjectVersion, is_record
from .log import log
from .notify import deliver_due
from .records import (MAX_SKEW, RECHECK, Record, RecordStore, UnreadableRecord, age_seconds, cos_times, latest,
                      owned)
from .states import Rank
from .submit import Kind, Outcome, Skip, Submitter, skip_reason

EVENT_NAME = "cos:ObjectCreated:Reconcile"
STATE_KEY = "state/reconcile.json"
SWEEP_MARGIN = 120  # seconds of clock skew between COS's Last-Modified and ours
# Listing pages (1000 keys) the sweep reads per tick: its cost stays flat however large the
# watched prefixes grow; a full pass over N objects takes N / 1000 ticks (50,000 objects and
# a 10-minute timer: about 8 hours). It is the last resort: an upload whose every trigger
# retry failed also reaches the submit function's dead-letter queue (serverless.yml).
SWEEP_PAGES = 1
# A final record's output and tags are read once more this long after its final stage, on COS's
# clock (`_Tick.cos_age`), or `older_than` if shorter; then it leaves the open index: a tag write
# COS applies after its client gave up (a stalled request: the SDK timed out, retried, and the
# first one landed later) has moved a state back by then, and a publish or submit tag write that
# raced the final stage has landed. 40x the default request timeout; a write that lands later
# still is not caught.
RECHECK_AFTER = 120


class Sweep(BaseModel):
    prefix: int = 0           # index into the watched prefixes
    marker: str = ""          # last key listed
    pass_started: float = 0.0
    checked_before: float = 0.0  # every upload older than this was checked by a complete pass


class JobScan(BaseModel):
    """A pass over CI's job list that has not reached its end yet."""

    token: str = ""       # NextToken of the next page ("" : no pass under way)
    since: float = 0.0    # the pass's StartCreationTime (the same query, page after page)
    started: float = 0.0  # when the pass began: jobs created before it are checked once it ends


class Place(BaseModel):
    """Where the last tick stopped."""

    open_after: str = ""
    recheck_after: str = ""
    jobs_since: float = 0.0  # CI jobs created since then were checked for second jobs
    jobs: JobScan = Field(default_factory=JobScan)
    sweep: Sweep = Field(default_factory=Sweep)

PHASES = ("open_records", "rechecks", "second_jobs", "notifications", "sweep")


class Summary(BaseModel):
    scanned: int = 0
    advanced: int = 0
    still_running: int = 0
    resubmitted: int = 0
    swept: int = 0
    closed: int = 0
    second_jobs: int = 0
    failed: int = 0
    finished: int = 0
    rechecked: int = 0
    # left alone this tick, each for its reason: a Submitted/Running record changed less than
    # `older_than` ago (its callback may still come), a claim within its lease (submit may still be
    # on it), a final record whose final stage is younger than the recheck wait (a later tick), another
    # deployment's record (a shared records store: its own reconcile's)
    too_young: int = 0
    leased: int = 0
    waiting_recheck: int = 0
    others: int = 0
    unreadable: List[str] = Field(default_factory=list)
    notified: Dict[str, int] = Field(default_factory=dict)  # webhook deliveries: sent, failed, waiting
    stopped_early: bool = False  # the budget ran out: the next tick goes on from the saved place
    elapsed_s: float = 0.0


class _Tick:
    def __init__(self, settings: Settings, clients: Clients, submitter: Submitter, older_than: float,
                 budget: float, clock: Callable[[], float]) -> None:
        self.settings, self.clients, self.submitter, self.older_than = settings, clients, submitter, older_than
        self.store = submitter.store
        self.lifecycle = submitter.lifecycle  # one store, one set of clients
        self.clock, self.end = clock, clock() + budget
        self.deadline = self.end  # the running part's: its share first (`reconcile`), then the end
        self.summary = Summary()
        self.records: Dict[str, Optional[Record]] = {}
        self.sweep_pages = 0
        self.recheck_wait = min(older_than, RECHECK_AFTER)
        self.cos_offset: Optional[float] = None  # COS's clock minus ours, read once per tick (`cos_age`)

    def out_of_time(self) -> bool:
        return self.clock() >= self.deadline

    def waited(self, key: str, stamp: str) -> bool:
        """Whether object `key`, last modified at `stamp`, was written `recheck_wait` ago or more."""
        return self.recheck_wait <= 0 or self.cos_age(key, stamp) >= self.recheck_wait

    def cos_age(self, key: str, stamp: str) -> float:
        """The age of object `key`, last modified at `stamp`, on COS's clock: ours may be minutes off,
        which would shorten the recheck wait by as much. The offset comes from the `Date` of one HEAD per
        tick (COS common response headers, 436/7729), as claim leases are judged
        (`RecordStore.lease_expired`); without one (the object gone, no Date), any skew up to MAX_SKEW
        is waited out, and the next record's HEAD tries again. (Date has whole seconds: the wait can
        come out up to a second long.)"""
        offset = self.cos_offset
        if offset is None:
            now, _ = cos_times(self.store.storage.head(self.store.bucket, key) or {})
            offset = -float(MAX_SKEW) if now is None else now - time.time()
            self.cos_offset = None if now is None else offset
        return age_seconds(stamp) + offset

    def count(self, outcome: Outcome, counter: str) -> None:
        log("reconcile.submit", **outcome.model_dump(exclude_none=True))
        if outcome.kind is Kind.SUBMITTED:
            setattr(self.summary, counter, getattr(self.summary, counter) + 1)
        elif outcome.kind is Kind.SKIPPED and outcome.reason and outcome.reason.value in ("gone", "stale"):
            self.summary.closed += 1
        elif outcome.failed:
            self.summary.failed += 1

    # -- the paged indexes (open, recheck) -------------------------------------------------------
    def _round(self, page_of: Callable[[str], Tuple[List[Tuple[str, str]], str]], after: str,
               visit: Callable[[str, str], None]) -> Tuple[bool, str]:
        """One resumable round over a paged index (open, recheck): `visit` each (record id, marked) from
        `after` while time lasts. (True, "") once the round is complete (the next starts from the top),
        else (False, the last id visited: where the next tick goes on)."""
        while True:
            page, next_after = page_of(after)
            for rid, marked in page:
                if self.out_of_time():
                    return False, after
                visit(rid, marked)
                after = rid
            if not next_after:
                return True, ""
            after = next_after

    # -- the open index ------------------------------------------------------------------------
    def open_records(self, place: Place) -> bool:
        """True once the round over the open index is complete."""
        done, place.open_after = self._round(lambda a: self.store.open_page(a, limit=100), place.open_after,
                                             self._open_one)
        return done

    def _open_one(self, rid: str, marked: str) -> None:
        self.summary.scanned += 1
        try:
            self.one(rid, marked)
        except UnreadableRecord as exc:  # reported (which object, why) and skipped
            self.records[rid] = None
            self.summary.unreadable.append(f"{exc.key}: {exc.why}")
        except (CloudError, ValueError) as exc:
            self.summary.failed += 1
            log("reconcile.failed", level="error", record_id=rid, error=str(exc)[:500])

    def one(self, rid: str, marked: str) -> None:
        record, stages = self.store.load(rid)
        if record is not None and not owned(self.settings, record):
            self.summary.others += 1
            return  # another deployment's record in a shared records store: its reconcile's
        self.records[rid] = record
        lease = self.settings.claim_lease_seconds
        if record is None:  # marked, never claimed (a crash in between, or the claim write failed)
            if self.store.lease_expired(self.store.open_key(rid), time.time() - epoch_of(marked), lease):
                self.unclaimed(rid)
            else:
                self.summary.leased += 1
            return
        newest = latest(stages)
        if newest.rank == Rank.FINAL:  # final (even if that snapshot is unreadable)
            if record.terminal:
                if not self.waited(newest.key, newest.last_modified):
                    self.summary.waiting_recheck += 1
                    return  # a write racing its final stage may still land: a later tick rechecks it
                self.lifecycle.recheck(record)
                self.summary.rechecked += 1
            self.store.close_final(record)  # a newer attempt's marker stays
            self.summary.finished += 1
        elif not record.job_id:  # a claim (a newer stage may be unreadable: the readable snapshot decides)
            claim = latest([s for s in stages if s.rank == Rank.CLAIM and s.attempt == record.attempt] or [newest])
            if self.store.lease_expired(claim.key, claim.age_seconds, lease):
                self.count(self.submitter.resume(self._takeover(record, claim)), "resubmitted")
            else:
                self.summary.leased += 1
        elif newest.age_seconds >= self.older_than:
            result, record = self.lifecycle.refresh(record)
            self.summary.advanced += result == "advanced"
            self.summary.still_running += not record.terminal
        else:
            self.summary.too_young += 1

    def _takeover(self, record: Record, newest: Any) -> Record:
        import uuid

        takeover = record.model_copy(update={"generation": newest.generation + 1, "owner": uuid.uuid4().hex})
        if not self.store.claim(takeover):
            raise CloudError("reconcile", 409, "ClaimTaken", f"record {record.id}: another worker took over first")
        return takeover

    def unclaimed(self, rid: str) -> None:
        source = self.store.open_source(rid)
        version = self.clients.storage.version(source.bucket, source.key) if source else None
        if version is None or not is_record(version, rid):
            self.store.close(rid)
            self.summary.closed += 1
            return
        up = upload_from_listing(version.bucket, source.region, {"Key": version.key, "ETag": version.etag,
                                                                 "Size": version.size}, EVENT_NAME)
        self.count(self.submitter.process(up), "resubmitted")

    # -- the recheck index of releases up to 750cb24 ---------------------------------------------------
    def rechecks(self, place: Place) -> bool:
        """Records an older release settled into its recheck index: once their tags can no longer change
        under us, their output and source are put right (`Lifecycle.recheck`) and they leave the index."""
        def visit(rid: str, marked: str) -> None:
            if self.waited(self.store.prefix + RECHECK + rid, marked):
                self.recheck(rid)

        done, place.recheck_after = self._round(lambda a: self.store.recheck_page(a, limit=100),
                                                place.recheck_after, visit)
        return done

    def recheck(self, rid: str) -> None:
        try:
            record, _ = self.store.load(rid)
            if record is not None and not owned(self.settings, record):
                return  # another deployment's (a shared records store): its reconcile drains the entry
            if record is not None and record.terminal:  # its event too, unless sent (notify.ensure)
                self.lifecycle.recheck(record)
            self.store.rechecked(rid)
            self.summary.rechecked += 1
        except UnreadableRecord as exc:
            self.summary.unreadable.append(f"{exc.key}: {exc.why}")
        except CloudError as exc:  # the entry stays: the next tick tries again
            self.summary.failed += 1
            log("reconcile.recheck_failed", level="error", record_id=rid, error=str(exc)[:500])

    # -- second jobs, from CI's own listing -------------------------------------------------------
    def second_jobs(self, place: Place) -> bool:
        """Jobs CI created since the last complete check (a minute's overlap) that carry a
        record's current attempt but are not its job: cancelled if not started, noted.
        A pass goes on next tick from its NextToken; True once it reached the list's end."""
        scan = place.jobs
        if not scan.token:  # a new pass
            scan.started = time.time()
            scan.since = (place.jobs_since or scan.started - 86400) - 60
        start = datetime.fromtimestamp(scan.since, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z")
        while True:
            if self.out_of_time():
                return False
            jobs, token = self.clients.ci.list(states="All", size=100, next_token=scan.token, start=start)
            for job in jobs:
                corr = Correlation.parse(job.user_data)
                if corr is None or corr.foreign(self.settings.deployment):
                    continue  # not ours: no correlation id, or another deployment's
                if corr.record_id not in self.records:
                    try:
                        self.records[corr.record_id] = self.store.load(corr.record_id)[0]
                    except UnreadableRecord:
                        self.records[corr.record_id] = None
                record = self.records[corr.record_id]
                if record is None or not owned(self.settings, record) or not record.job_id \
                        or corr.attempt != record.attempt or record.job_id == job.JobId \
                        or any(job.JobId in n for n in record.notes):
                    continue
                self.records[corr.record_id] = self.lifecycle.second_job(record, job, corr)
                self.summary.second_jobs += 1
            if not token or not jobs:
                place.jobs_since, place.jobs = scan.started, JobScan()
                return True
            scan.token = token

    # -- webhook notifications due (shared/notify.py) ------------------------------------------------
    def notifications(self, place: Place) -> bool:
        """The outbox's due deliveries (it has no resume point of its own: it is read from the top)."""
        done = deliver_due(self.settings, self.store, self.out_of_time)
        sent = self.summary.notified
        self.summary.notified = {"sent": sent.get("sent", 0) + done["sent"],
                                 "failed": sent.get("failed", 0) + done["failed"], "waiting": done["waiting"]}
        return not self.out_of_time()

    # -- uploads that never became a record -----------------------------------------------------------
    def sweep(self, place: Place) -> bool:
        """True once this tick's SWEEP_PAGES are read (or the pass completed)."""
        s, prefixes, now = place.sweep, self.settings.watch_prefixes, time.time()
        if not s.pass_started:
            s.pass_started = now
        while self.sweep_pages < SWEEP_PAGES:
            if s.prefix >= len(prefixes):
                break
            if self.out_of_time():
                return False
            page, marker = self.clients.storage.list(self.settings.bucket, prefixes[s.prefix], s.marker, 1000)
            for obj in page:
                if self.out_of_time():
                    return False
                self.sweep_one(obj, s.checked_before, now)
                s.marker = obj["Key"]
            self.sweep_pages += 1
            if not marker:
                s.prefix, s.marker = s.prefix + 1, ""
        if s.prefix < len(prefixes):
            return True  # this tick's pages are read: the pass goes on next tick
        # a complete pass: everything modified before it started (less the settle time) is checked
        place.sweep = Sweep(checked_before=s.pass_started - self.older_than - SWEEP_MARGIN)
        return True

    def sweep_one(self, obj: Dict[str, Any], checked_before: float, now: float) -> None:
        modified = epoch_of(obj.get("LastModified"))
        if modified < checked_before or now - modified < self.older_than:
            return
        seen = listed(self.settings, self.settings.bucket, obj, EVENT_NAME)
        if seen.reason or seen.record_id in self.records or self.store.exists(seen.record_id, seen.version):
            return
        self.count(self.submitter.process(seen.upload), "swept")


class Listed(NamedTuple):
    """A listed object as its COS trigger would have seen it (the sweep, `status` and `backfill`)."""

    upload: Upload
    reason: Optional[Skip]  # why the trigger would skip it; None: it would take it
    record_id: str  # its version's record id, from the listing's fields alone (no HEAD)
    version: Optional[ObjectVersion] = None  # as listed: older formats' ids of it (RecordStore.exists)


def listed(settings: Settings, bucket: str, obj: Dict[str, Any], event_name: str) -> Listed:
    """An upload in the watched prefixes with no record is one with no `reason` whose
    `record_id` does not exist (`RecordStore.exists`)."""
    up = upload_from_listing(bucket, settings.region, obj, event_name)
    version = ObjectVersion.from_listing(bucket, obj)
    return Listed(up, skip_reason(settings, up), version.record_id, version)


def reconcile(settings: Settings, clients: Clients, older_than: Optional[float] = None,
              submitter: Optional[Submitter] = None, sweep: bool = True, budget: Optional[float] = None,
              clock: Callable[[], float] = time.monotonic) -> Summary:
    started = clock()
    older_than = settings.reconcile_after_seconds if older_than is None else older_than
    budget = settings.reconcile_budget_seconds if budget is None else budget
    tick = _Tick(settings, clients, submitter or Submitter(settings, clients), older_than, budget, clock)
    place = load_place(tick.store)
    tick.deadline = started + budget / (len(PHASES) + 1)  # a share, so an upgrade never starves the parts
    try:
        tick.store.upgrade(tick.out_of_time)  # once per store: older releases' records (records.py)
    except (CloudError, UnreadableRecord) as exc:  # the next tick goes on from the saved place
        tick.summary.failed += 1
        log("reconcile.upgrade_failed", level="error", error=str(exc)[:500])
    phases = [p for p in PHASES if sweep or p != "sweep"]
    unfinished = []
    for share, phase in enumerate(phases, 1):  # each to its share of the budget first
        tick.deadline = started + budget * share / len(phases)
        if _run(tick, phase, place) is False:
            unfinished.append(phase)
    tick.deadline = tick.end
    results = [_run(tick, phase, place) for phase in unfinished]  # then those out of time go on, in turn
    tick.summary.stopped_early = any(r is False for r in results)
    save_place(tick.store, place)
    tick.summary.elapsed_s = round(clock() - started, 3)
    log("reconcile.summary", **tick.summary.model_dump())
    return tick.summary


def place_key(store: RecordStore) -> str:
    """Each deployment keeps its own place: two sharing a records store watch different prefixes."""
    return store.prefix + (STATE_KEY.replace(".json", f"-{store.deployment}.json") if store.deployment else STATE_KEY)


def _run(tick: _Tick, phase: str, place: Place) -> Optional[bool]:
    """One part of the tick: True if it finished, False if out of time, None if a listing failed."""
    try:
        return bool(getattr(tick, phase)(place))
    except CloudError as exc:  # keep what was reached: the next tick goes on from there
        tick.summary.failed += 1
        log("reconcile.listing_failed", level="error", phase=phase, error=str(exc))
        return None


def load_place(store: RecordStore) -> Place:
    body = store.storage.get(store.bucket, place_key(store))
    try:
        return Place.model_validate_json(body) if body else Place()
    except ValueError:
        log("reconcile.place_unreadable", level="warning", key=place_key(store))
        return Place()  # start from the top: slower, never wrong


def save_place(store: RecordStore, place: Place) -> None:
    try:
        store.storage.put_json(store.bucket, place_key(store), json.dumps(place.model_dump()).encode())
    except CloudError as exc:
        log("reconcile.place_not_saved", level="warning", error=str(exc))
