"""Job records on COS: an append-only log per uploaded object version.

A record is a folder `<records_prefix><record id>/` (the id comes from the
object version, see identity.py) holding one object per stage and attempt,
each written create-if-absent (`x-cos-forbid-overwrite`) and each a full
snapshot of the record at that stage:

    001-0-claim-1.json   attempt 1 claimed (claim-2...: a stale claim taken over)
    001-1-submitted.json the job id and the request
    001-2-running.json   the job was seen Running or Pause
    001-3-final.json     Success | Failed | Cancel, with results or the error
    001-n-<job id>.json  a note: a second job found for attempt 1 (cancelled, ignored)
    002-0-claim-1.json   `cos-matting retry`: attempt 2, history kept

The current state is the highest (attempt, stage) present. No stage object is
ever overwritten, so a record only moves forward and a late or duplicate writer
cannot replace a newer state with an older one.

Beside the folders, `<records_prefix>open/<record id>` lists what is pending:
written before a claim, deleted by reconcile once the record is final and its
output and source tags were read again RECHECK_AFTER later (reconcile.py), when no
write that raced the final stage can still land. Reconcile walks that index,
never the history, so its cost follows the records in flight.

Formats (FORMAT, written into every snapshot): 3 is the layout above with the content id
(identity.py: ETag + size). 2 is the same layout with the id from the version id, else ETag +
size + Last-Modified (release 279d89d wrote no `format`: read as 2). 1 is the release a5737e5:
stages `0-claim-<n>.json`, `1-submitted.json`, `2-running.json`, `3-final.json`, one attempt,
`attempt` counting claim takeovers, the record id from the ETag alone, no open index. Format 1
is read as attempt 1 (`_stage`, `read`) and its records are put in the open index once
(`upgrade`, run by reconcile); the records of both are looked up by their own ids
(identity.OLDER_IDS, `find_older`), so their jobs finish and nothing is submitted twice.
The rule for the next change is in ARCHITECTURE.md ("Record formats").
"""
import json
import re
import time
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple

from pydantic import BaseModel, Field, ValidationError

from .cloud import Storage
from .dates import parse_time
from .identity import HEAD_ONLY, OLDER_IDS, RECORD_ID, ObjectVersion, older_record_ids
from .log import log
from .states import Rank, State, rank_of

_STAGE = re.compile(r"^(?P<attempt>\d{3})-(?:(?P<rank>[0-3])-(?:claim-(?P<gen>\d+)|submitted|running|final)"
                    r"|n-(?P<job>[A-Za-z0-9_-]{1,128}))\.json$")
_STAGE_V1 = re.compile(r"^(?P<rank>[0-3])-(?:claim-(?P<gen>\d+)|submitted|running|final)\.json$")  # format 1
FORMAT = 3  # bump on any change older code cannot read as is (ARCHITECTURE.md, "Record formats")
FORMAT_KEY = "state/format.json"  # the upgrade's place and result (`RecordStore.upgrade`)
LEGACY_RECHECK = 600.0  # seconds
OPEN = "open/"
RECHECK = "recheck/"
# Seconds our clock may be off COS's: a signed request further off is refused
# (RequestTimeTooSkewed, COS error codes 436/7730). Leases are judged on COS's clock
# (`RecordStore.lease_expired`); this only bounds when it is worth asking.
MAX_SKEW = 900
MAX_ATTEMPTS = 999


class Retry(str, Enum):
    """Whether running the record again can help (recorded with every failure)."""

    NOW = "now"              # transient: the same request may well succeed
    AFTER_FIX = "after-fix"  # settings, permissions or the role: fix, then `cos-matting retry`
    NEW_INPUT = "new-input"  # the job itself failed on this input: upload a new version


class UnreadableRecord(ValueError):
    """A stage object that is empty or not a record: `key` says which, the message why."""

    def __init__(self, key: str, why: str) -> None:
        self.key, self.why = key, why
        super().__init__(f"unreadable record object {key}: {why}")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ci_time(stamp: str, shift_seconds: float = 0) -> str:
    """An ISO or HTTP-date stamp, shifted, in CI's query format (`2022-06-27T14:44:10+0000`)."""
    when = datetime.fromtimestamp(time.time() - age_seconds(stamp) + shift_seconds, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S%z")


class Source(BaseModel):
    bucket: str
    region: str
    key: str
    etag: str
    size: int = 0
    modified: int = 0  # Last-Modified, epoch seconds
    version_id: str = ""

    def version(self) -> ObjectVersion:
        return ObjectVersion(self.bucket, self.key, self.etag, self.size, self.modified, self.version_id)

    @classmethod
    def of(cls, version: ObjectVersion, region: str) -> "Source":
        return cls(bucket=version.bucket, region=region, key=version.key, etag=version.etag, size=version.size,
                   modified=version.modified, version_id=version.version_id)


class Record(BaseModel):
    """The snapshot stored at every stage."""

    id: str
    format: int = FORMAT  # of the stage it was read from; written as FORMAT
    deployment: str = ""  # who made it (COS_MATTING_DEPLOYMENT); "" : an older release, or none set
    state: str = State.Claimed.value  # shared/states.py; a str, so a newer release's state still reads
    source: Source
    attempt: int = Field(1, ge=1, le=MAX_ATTEMPTS)  # a retry is a new attempt; earlier ones stay in the folder
    generation: int = 1  # claim takeovers within one attempt
    owner: str = Field(default_factory=lambda: uuid.uuid4().hex)  # who wrote the claim: tells our own retried write from a rival's
    claimed_at: str = Field(default_factory=now_iso)
    job_id: Optional[str] = None
    submitted_at: Optional[str] = None
    updated_at: Optional[str] = None
    request: Optional[Dict[str, Any]] = None
    publish_as: Optional[str] = None  # the predictable output name; the job itself writes a per-attempt key
    output: Optional[Dict[str, str]] = None
    media: Optional[Dict[str, Any]] = None
    timings: Optional[Dict[str, float]] = None
    error: Optional[Dict[str, str]] = None
    retry: Optional[Retry] = None
    notes: List[str] = Field(default_factory=list)

    @property
    def rank(self) -> Rank:
        return rank_of(self.state)

    @property
    def terminal(self) -> bool:
        return self.rank == Rank.FINAL


class Stage(BaseModel):
    """A stage object as seen in a listing (no GET needed)."""

    record_id: str
    attempt: int
    rank: Rank = Rank.CLAIM
    generation: int = 0
    note_job: str = ""  # set for a note object
    format: int = FORMAT  # told by the object's name
    key: str
    last_modified: str = ""

    @property
    def age_seconds(self) -> float:
        return age_seconds(self.last_modified)

    @property
    def order(self) -> Tuple[int, int, int]:
        return self.attempt, self.rank, self.generation


def parse_stamp(stamp: Any) -> Optional[float]:
    try:
        return parse_time(stamp).timestamp() if stamp else None
    except ValueError:
        return None


def cos_times(head: Mapping[str, Any]) -> Tuple[Optional[float], Optional[float]]:
    """(COS's clock at the answer, the object's Last-Modified), epoch seconds, from a HEAD's headers
    (`Date` and `Last-Modified`, COS common response headers 436/7729; HEAD Object 436/7745)."""
    h = {str(k).lower(): v for k, v in head.items()}
    return parse_stamp(h.get("date")), parse_stamp(h.get("last-modified"))


def age_seconds(stamp: str, now: Optional[float] = None) -> float:
    """Seconds since an ISO or HTTP-date stamp (shared/dates.py); 0 for none."""
    if not stamp:
        return 0.0
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    return current - parse_time(stamp).timestamp()


class RecordStore:
    def __init__(self, storage: Storage, bucket: str, prefix: str, deployment: str = "") -> None:
        self.storage, self.bucket, self.prefix = storage, bucket, prefix
        self.deployment = deployment  # stamped on what this store writes for a record that names none
        self._older: Optional[Tuple[FrozenSet[int], float]] = None  # (older formats that may have records, when read)

    @classmethod
    def of(cls, settings: Any, storage: Storage) -> "RecordStore":
        """The record store the settings name (COS_MATTING_RECORDS_BUCKET + _PREFIX) on `storage`."""
        return cls(storage, settings.rec_bucket, settings.records_prefix, settings.deployment or "")

    def _key(self, rid: str, name: str) -> str:
        return f"{self.prefix}{rid}/{name}"

    def _write(self, record: Record, name: str) -> bool:
        record = record.model_copy(update={"format": FORMAT, "deployment": record.deployment or self.deployment})
        body = record.model_dump_json(exclude_none=True).encode()
        return self.storage.put_json(self.bucket, self._key(record.id, name), body, create_only=True)

    def claim(self, record: Record, marked: bool = False) -> bool:
        """Create claim `record.generation` of `record.attempt`; False if someone holds it already.
        The open marker goes first (`marked`: the caller wrote it, `mark_open`): a crash between the
        two leaves a marker reconcile resolves."""
        if not marked:
            self.mark_open(record)
        return self._write(record, f"{record.attempt:03d}-0-claim-{record.generation}.json")

    def advance(self, record: Record, close: bool = True) -> bool:
        """Write the stage for `record.state`; False if that stage already exists. Final: closes the
        marker, unless `close=False` (a record with outputs and tags: reconcile closes it after its recheck)."""
        written = self._write(record, f"{record.attempt:03d}-{record.rank:d}-{record.rank.stage}.json")
        if record.terminal and close:
            self.close_final(record)
        return written

    def note(self, record: Record, job_id: str, text: str) -> None:
        """A second job for this attempt: kept beside the stages, shown by `load` and `status`."""
        body = json.dumps({"job_id": job_id, "note": text}).encode()
        self.storage.put_json(self.bucket, self._key(record.id, f"{record.attempt:03d}-n-{job_id}.json"), body,
                              create_only=True)

    # -- the open index -------------------------------------------------------------------------
    def mark_open(self, record: Record, replace: bool = False) -> bool:
        """Put the record in the open index; False if its marker was there already (`replace`: written
        over it, so it is newer than any delete of the old one; always True)."""
        body = record.source.model_dump_json().encode()
        return self.storage.put_json(self.bucket, self.open_key(record.id), body, create_only=not replace)

    def close(self, rid: str) -> None:
        self.storage.delete(self.bucket, self.open_key(rid))

    def close_final(self, record: Record) -> None:
        """Take final `record` out of the open index. A newer attempt claimed meanwhile (`cos-matting
        retry`, the same bytes uploaded again) writes the marker again after its claim
        (Submitter.new_attempt); if our delete came after that write, the listing after it shows the
        newer attempt, and the marker is put back, whatever that attempt's stage: one already final (a
        submit CI refused at once) still has its recheck to come (reconcile.py)."""
        self.close(record.id)
        stages = self.stages(record.id)
        if stages and latest(stages).attempt > record.attempt:
            self.mark_open(record)

    def open_key(self, rid: str) -> str:
        return f"{self.prefix}{OPEN}{rid}"

    def open_page(self, after: str = "", limit: int = 1000) -> Tuple[List[Tuple[str, str]], str]:
        """([(record id, marker LastModified)], next cursor or '') from the open index."""
        return self._index_page(OPEN, after, limit)

    def _index_page(self, folder: str, after: str, limit: int) -> Tuple[List[Tuple[str, str]], str]:
        base = self.prefix + folder
        page, marker = self.storage.list(self.bucket, base, after and base + after, limit)
        return [(o["Key"][len(base):], o.get("LastModified", "")) for o in page], marker[len(base):] if marker else ""

    # -- the recheck index of releases up to 750cb24 (reconcile drains it; nothing writes it now) ---
    def recheck_page(self, after: str = "", limit: int = 1000) -> Tuple[List[Tuple[str, str]], str]:
        return self._index_page(RECHECK, after, limit)

    def rechecked(self, rid: str) -> None:
        self.storage.delete(self.bucket, self.prefix + RECHECK + rid)

    def open_source(self, rid: str) -> Optional[Source]:
        body = self.storage.get(self.bucket, self.open_key(rid))
        try:
            return Source.model_validate_json(body) if body else None
        except ValidationError:
            return None

    # -- reading --------------------------------------------------------------------------------
    def stages(self, rid: str) -> List[Stage]:
        page, _ = self.storage.list(self.bucket, f"{self.prefix}{rid}/")
        return [s for s in (self._stage(o) for o in page) if s]

    def _stage(self, obj: Dict[str, Any]) -> Optional[Stage]:
        rest = obj["Key"][len(self.prefix):]
        rid, _, name = rest.partition("/")
        match = _STAGE.match(name)
        if not match:
            old = _STAGE_V1.match(name)
            if not old:
                return None
            return Stage(record_id=rid, attempt=1, rank=int(old["rank"]), generation=int(old["gen"] or 0), format=1,
                         key=obj["Key"], last_modified=obj.get("LastModified", ""))
        return Stage(record_id=rid, attempt=int(match["attempt"]), rank=int(match["rank"] or 0),
                     generation=int(match["gen"] or 0), note_job=match["job"] or "",
                     key=obj["Key"], last_modified=obj.get("LastModified", ""))

    def read(self, stage: Stage) -> Record:
        body = self.storage.get(self.bucket, stage.key)
        if body is None:
            raise UnreadableRecord(stage.key, "gone between listing and reading")
        if not body.strip():
            raise UnreadableRecord(stage.key, f"empty ({len(body)} bytes)")
        try:
            data = json.loads(body)
            if stage.format == 1:
                return Record.model_validate(upgraded(data))
            if isinstance(data, dict) and "format" not in data:  # 279d89d wrote none: format 2
                data = {**data, "format": 2}
            return Record.model_validate(data)
        except ValueError as exc:
            if not isinstance(exc, ValidationError):
                raise UnreadableRecord(stage.key, f"not JSON ({str(exc)[:100]})") from None
            first = exc.errors()[0]
            raise UnreadableRecord(stage.key, f"not a record ({'.'.join(map(str, first['loc'])) or 'body'}: "
                                              f"{first['msg']})") from None

    def load(self, rid: str) -> Tuple[Optional[Record], List[Stage]]:
        """The newest readable snapshot (None if the record has no stage) and its stages.

        An unreadable stage is reported and skipped: the next older snapshot (each is a
        full copy) stands in, noted. Raises UnreadableRecord only if none can be read."""
        stages = self.stages(rid)
        snaps = sorted((s for s in stages if not s.note_job), key=lambda s: s.order, reverse=True)
        if not snaps:
            return None, stages
        problems: List[UnreadableRecord] = []
        for stage in snaps:
            try:
                record = self.read(stage)
            except UnreadableRecord as exc:
                log("record.unreadable", level="error", record_id=rid, key=exc.key, why=exc.why)
                problems.append(exc)
                continue
            extra = [f"skipped {p}" for p in problems]
            extra += [self._note_text(s) for s in stages if s.note_job and s.attempt == record.attempt]
            if extra:
                record = record.model_copy(update={"notes": list(record.notes) + [n for n in extra if n not in record.notes]})
            return record, stages
        others = "".join(f"; older {p.key} too: {p.why}" for p in problems[1:])
        raise UnreadableRecord(snaps[0].key, problems[0].why + others)

    def _note_text(self, stage: Stage) -> str:
        try:
            return str(json.loads(self.storage.get(self.bucket, stage.key) or b"{}").get("note"))
        except (ValueError, AttributeError):
            return f"second job {stage.note_job} (note {stage.key} unreadable)"

    def lease_expired(self, key: str, local_age: float, lease: float) -> bool:
        """Whether the claim (or open marker) `key` is older than `lease`, judged on COS's clock
        alone: the `Date` of a HEAD of it minus its `Last-Modified` (COS common response headers,
        436/7729; HEAD Object, 436/7745). Our own clock may be minutes off COS's; ages from it
        (`local_age`) only spare the HEAD for claims younger than the lease by more than any
        skew COS lets a signed request through with (MAX_SKEW)."""
        if local_age + MAX_SKEW < lease:
            return False
        head = self.storage.head(self.bucket, key)
        if head is None:
            return True  # gone: nothing live holds it
        now, written = cos_times(head)
        if now is None or written is None:
            return local_age >= lease + MAX_SKEW  # no server clock to read: wait out any skew
        return now - written >= lease

    def exists(self, rid: str, listed: Optional[ObjectVersion] = None) -> bool:
        """Whether the object version `rid` has a record (any stage): one listing of its folder; then,
        for a version read from a listing, a record under an older format's id (`find_older`)."""
        return bool(self.stages(rid)) or bool(listed and self.find_older(listed, listed=True))

    def find_older(self, version: ObjectVersion, listed: bool = False) -> str:
        """The id of `version`'s record written under an older format's id rule (identity.OLDER_IDS),
        "" if none: one listing per id, for the formats that may still have records (`older_formats`).
        A `listed` version (no version id) gets one HEAD of the object when a format whose id only a
        HEAD tells (identity.HEAD_ONLY) may have records and the listing's ids found nothing."""
        formats = self.older_formats()
        tried = older_record_ids(version)
        found = next((rid for fmt, rid in tried.items() if fmt in formats and self.stages(rid)), "")
        if found or not listed or not HEAD_ONLY & formats:
            return found
        now = self.storage.version(version.bucket, version.key)
        if now is None or not now.version_id or (now.etag, now.size) != (version.etag, version.size):
            return ""  # gone, unversioned, or changed since it was listed: nothing a HEAD adds
        return next((rid for fmt, rid in older_record_ids(now).items()
                     if fmt in formats & HEAD_ONLY and rid not in tried.values() and self.stages(rid)), "")

    # -- upgrades (formats 1 and 2 -> FORMAT) ------------------------------------------------------
    def older_formats(self) -> FrozenSet[int]:
        """The older formats whose records may be in this store: all of them until `upgrade` has been
        through the whole store for this FORMAT, then those it found. An empty answer is kept for
        good, any other is read again after LEGACY_RECHECK seconds (a warm container outlives it)."""
        if self._older is None or (self._older[0] and time.monotonic() - self._older[1] > LEGACY_RECHECK):
            state = self._format_state()
            if state.get("done") and state.get("format") == FORMAT:
                found = frozenset(int(f) for f, n in (state.get("older") or {}).items() if n)
            else:
                found = frozenset(OLDER_IDS)
            self._older = (found, time.monotonic())
        return self._older[0]

    def _format_state(self) -> Dict[str, Any]:
        try:
            data = json.loads(self.storage.get(self.bucket, self.prefix + FORMAT_KEY) or b"{}")
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def upgrade(self, out_of_time: Callable[[], bool]) -> Dict[str, Any]:
        """Once per store and FORMAT: counts the records of each older format (`older_formats`, so
        lookups by older ids stop once none are left), and puts every format 1 record not final into
        the open index (format 1 had none; format 2 keeps its own), so reconcile finishes it like any
        other. A format 2 record is told by its first snapshot (one GET: its stage names are those of
        today's format, and today's code may have written its later stages). Resumable: the place is
        saved in FORMAT_KEY when time runs out (a place saved for another FORMAT starts over)."""
        state = self._format_state()
        if state.get("format") != FORMAT:
            state = {}
        if state.get("done"):
            return state
        after, opened = str(state.get("after") or ""), 0
        older = {str(f): int((state.get("older") or {}).get(str(f)) or 0) for f in OLDER_IDS}
        for n, stages in enumerate(self.scan(after)):
            if n and (n % 100 == 0 or opened or older["2"]) and out_of_time():  # the clock per page, or per GET
                break
            rid = stages[0].record_id
            newest = latest(stages)
            if any(st.format == 1 for st in stages):
                older["1"] += 1
                record = self.load(rid)[0] if newest.rank < Rank.FINAL else None  # UnreadableRecord: reconcile reports it
                if record is not None and not record.terminal:
                    self.mark_open(record)
                    opened += 1
            else:
                try:  # the id is its creator's: the format of its first snapshot (later ones may be ours)
                    fmt = self.read(min((st for st in stages if not st.note_job), key=lambda st: st.order)).format
                except UnreadableRecord:  # reported by reconcile when it reads it; counted, to be safe
                    fmt = 2
                if fmt < FORMAT:
                    older[str(fmt if str(fmt) in older else 2)] += 1
            after = rid
        else:
            after = ""
        state = {"format": FORMAT, "older": older, **({"after": after} if after else {"done": True})}
        self.storage.put_json(self.bucket, self.prefix + FORMAT_KEY, json.dumps(state).encode())
        if opened or state.get("done"):
            log("records.upgrade", older=older, opened=opened, done=bool(state.get("done")))
        return state

    def scan(self, after: str = "") -> Iterator[List[Stage]]:
        """Every record's stages (notes left out), grouped, in record-id order, from listings only
        (history: for `status`, not reconcile); `after` (a record id) starts past that record."""
        group: List[Stage] = []
        marker = f"{self.prefix}{after}/~" if after else ""  # "~" sorts after every stage name
        while True:
            page, marker = self.storage.list(self.bucket, self.prefix, marker)
            for obj in page:
                stage = self._stage(obj)
                if not stage or stage.note_job or not RECORD_ID.match(stage.record_id):
                    continue  # open/ and state/ live beside the record folders
                if group and group[0].record_id != stage.record_id:
                    yield group
                    group = []
                group.append(stage)
            if not marker:
                break
        if group:
            yield group

    def newest_stages(self, after: str = "") -> Iterator[Stage]:
        """The newest stage of every record, from listings only (no GET)."""
        for stages in self.scan(after):
            yield latest(stages)

    def newest_records(self) -> Iterator[Record]:
        """The newest snapshot of every record (one GET each; UnreadableRecord if one is not a record)."""
        for stage in self.newest_stages():
            yield self.read(stage)


def upgraded(data: Any) -> Dict[str, Any]:
    """A format 1 snapshot as format 2: its `attempt` counted claim takeovers (now `generation`);
    there was one attempt. Everything else reads as is (new fields take their defaults)."""
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return {**data, "format": 1, "attempt": 1, "generation": int(data.get("attempt") or 1)}


def owned(settings: Any, record: Record) -> bool:
    """Whether this deployment (settings) acts on `record`: it names this deployment, or names none
    (an older release or no COS_MATTING_DEPLOYMENT) and its source is in a prefix this one watches.
    So two deployments sharing a records store never adopt each other's records."""
    if record.deployment:
        return record.deployment == (settings.deployment or "")
    src = record.source
    return src.bucket == settings.bucket and any(src.key.startswith(p) for p in settings.watch_prefixes)


def not_ours(settings: Any, record: Record) -> Optional[str]:
    """Why this deployment must not act on `record` (`owned`), on one line naming both sides; None if ours."""
    if owned(settings, record):
        return None
    ours = settings.deployment or "(no COS_MATTING_DEPLOYMENT)"
    if record.deployment:
        return f"record {record.id} belongs to deployment {record.deployment}, not {ours}"
    return (f"record {record.id} names no deployment (an older release's) and its source "
            f"{record.source.bucket}/{record.source.key} is outside {ours}'s watched prefixes "
            f"({', '.join(settings.watch_prefixes)} in {settings.bucket})")


def latest(stages: List[Stage]) -> Stage:
    return max((s for s in stages if not s.note_job), key=lambda s: s.order)
