"""Job records on COS: an append-only log per uploaded object version.

A record is a folder `<records_prefix><record id>/` holding one object per
stage, each written create-if-absent (`x-cos-forbid-overwrite`) and each a full
snapshot of the record at that stage:

    0-claim-<n>.json   claim attempt n (n > 1: a stale claim taken over)
    1-submitted.json   the job id and the request
    2-running.json     the job was seen Running or Pause
    3-final.json       Success | Failed | Cancel, with results or the error

The current state is the highest stage present. Because no stage object is
ever overwritten, a record only moves forward and a late or duplicate writer
cannot replace a newer state with an older one.
"""
import hashlib
import time
import uuid
import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Tuple

from pydantic import BaseModel, Field

from .cloud import Storage
from .jobs import STATE_RANK

CLAIMED = "Claimed"
_STAGE = re.compile(r"^(?P<rank>[0-3])-(?P<name>claim-(?P<attempt>\d+)|submitted|running|final)\.json$")
STAGE_FILE = {1: "1-submitted.json", 2: "2-running.json", 3: "3-final.json"}


def record_id(bucket: str, key: str, etag: str) -> str:
    """One id per uploaded object version: the correlation id everywhere."""
    return hashlib.sha256(f"{bucket}\n{key}\n{etag}".encode()).hexdigest()[:32]


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


class Record(BaseModel):
    """The snapshot stored at every stage."""

    id: str
    state: str = CLAIMED
    source: Source
    attempt: int = 1
    owner: str = Field(default_factory=lambda: uuid.uuid4().hex)  # who wrote the claim: tells our own retried write from a rival's
    claimed_at: str = Field(default_factory=now_iso)
    job_id: Optional[str] = None
    submitted_at: Optional[str] = None
    updated_at: Optional[str] = None
    request: Optional[Dict[str, Any]] = None
    output: Optional[Dict[str, str]] = None
    media: Optional[Dict[str, Any]] = None
    timings: Optional[Dict[str, float]] = None
    error: Optional[Dict[str, str]] = None
    notes: List[str] = Field(default_factory=list)

    @property
    def rank(self) -> int:
        return STATE_RANK.get(self.state, 0)

    @property
    def terminal(self) -> bool:
        return self.rank == 3


class Stage(BaseModel):
    """A stage object as seen in a listing (no GET needed)."""

    record_id: str
    rank: int
    attempt: int = 0
    key: str
    last_modified: str = ""

    @property
    def age_seconds(self) -> float:
        return age_seconds(self.last_modified)


def age_seconds(stamp: str, now: Optional[float] = None) -> float:
    if not stamp:
        return 0.0
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    return current - when.timestamp()


class RecordStore:
    def __init__(self, storage: Storage, bucket: str, prefix: str) -> None:
        self.storage, self.bucket, self.prefix = storage, bucket, prefix

    def _key(self, rid: str, name: str) -> str:
        return f"{self.prefix}{rid}/{name}"

    def _write(self, record: Record, name: str) -> bool:
        body = record.model_dump_json(exclude_none=True).encode()
        return self.storage.put_json(self.bucket, self._key(record.id, name), body, create_only=True)

    def claim(self, record: Record) -> bool:
        """Create claim attempt `record.attempt`; False if someone holds it already."""
        return self._write(record, f"0-claim-{record.attempt}.json")

    def advance(self, record: Record) -> bool:
        """Write the stage for `record.state`; False if that stage already exists."""
        return self._write(record, STAGE_FILE[record.rank])

    def stages(self, rid: str) -> List[Stage]:
        page, _ = self.storage.list(self.bucket, f"{self.prefix}{rid}/")
        return [s for s in (self._stage(o) for o in page) if s]

    def _stage(self, obj: Dict[str, Any]) -> Optional[Stage]:
        rest = obj["Key"][len(self.prefix):]
        rid, _, name = rest.partition("/")
        match = _STAGE.match(name)
        if not match:
            return None
        return Stage(record_id=rid, rank=int(match["rank"]), attempt=int(match["attempt"] or 0),
                     key=obj["Key"], last_modified=obj.get("LastModified", ""))

    def read(self, stage: Stage) -> Optional[Record]:
        body = self.storage.get(self.bucket, stage.key)
        return Record.model_validate_json(body) if body else None

    def load(self, rid: str) -> Tuple[Optional[Record], List[Stage]]:
        """The newest snapshot of a record (None if it has none) and its stages."""
        stages = self.stages(rid)
        if not stages:
            return None, []
        return self.read(latest(stages)), stages

    def scan(self) -> Iterator[List[Stage]]:
        """Every record's stages, grouped, from listings only."""
        group: List[Stage] = []
        for obj in self.storage.list_all(self.bucket, self.prefix):
            stage = self._stage(obj)
            if not stage:
                continue
            if group and group[0].record_id != stage.record_id:
                yield group
                group = []
            group.append(stage)
        if group:
            yield group


def latest(stages: List[Stage]) -> Stage:
    return max(stages, key=lambda s: (s.rank, s.attempt))

