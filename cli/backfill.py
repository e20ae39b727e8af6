"""Backfill as a library: push objects already in the bucket through the trigger's own submit
path (`Submitter.process`), at most `concurrency` in flight, resumable at a key.

Every listed object becomes an Upload (key, ETag, size): its record id is derived from
bucket + key + ETag, so a second backfill (or a rerun after Ctrl-C) submits nothing twice;
objects that already have a record say `duplicate`. `cos-matting backfill` (cli/cmd_backfill.py)
parses its flags, calls `backfill` and prints the `Summary`.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from cli.clients import ThreadClients
from cli.errors import UsageError
from cli.sources import Item, ListingSource

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings

COUNTERS = ("submitted", "duplicate", "skipped", "failed")


@dataclass
class Summary:
    bucket: str
    prefixes: List[str]
    listed: int = 0
    counts: Counter = field(default_factory=Counter)  # outcome -> n (submitted, duplicate, skipped:*, failed:*)
    failures: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    resume_after: str = ""
    elapsed: float = 0.0
    dry_run: bool = False
    source: str = ""  # what was read: a listing of bucket/prefixes, or an inventory report

    def total(self, group: str) -> int:
        return sum(n for k, n in self.counts.items() if k == group or k.startswith(group + ":"))

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def totals(self) -> Dict[str, int]:
        if self.dry_run:
            return {"would-submit": self.counts["would-submit"], "has-record": self.counts["has-record"],
                    "skipped": self.total("skipped")}
        return {name: self.total(name) for name in COUNTERS}

    def as_dict(self) -> Dict[str, Any]:
        return {"bucket": self.bucket, "prefixes": self.prefixes, "source": self.source, "listed": self.listed,
                "done": self.done,
                "totals": self.totals(), "outcomes": dict(sorted(self.counts.items())),
                "failures": self.failures, "interrupted": self.interrupted, "resume_after": self.resume_after or None,
                "elapsed_s": round(self.elapsed, 3), "per_second": round(self.rate, 1), "dry_run": self.dry_run}


class Frontier:
    """The last position (listing key, or inventory file/row) such that it and everything read before
    it are finished: where a rerun resumes."""

    def __init__(self) -> None:
        self.keys: List[Any] = []
        self.finished: List[bool] = []
        self.next = 0

    def add(self, key: Any) -> int:
        self.keys.append(key)
        self.finished.append(False)
        return len(self.keys) - 1

    def finish(self, index: int) -> None:
        self.finished[index] = True
        while self.next < len(self.finished) and self.finished[self.next]:
            self.next += 1

    @property
    def key(self) -> Any:
        return self.keys[self.next - 1] if self.next else ""


ProgressHook = Callable[[Summary], None]


def backfill(settings: Settings, clients: ThreadClients, bucket: str, prefixes: List[str], since: Optional[datetime] = None,
             concurrency: int = 8, dry_run: bool = False, start_after: Any = "", limit: Optional[int] = None,
             on_progress: Optional[ProgressHook] = None, source: Any = None) -> Summary:
    """Read (a listing of the prefixes, or `source`: see cli/sources.py), filter and push every object
    through Submitter.process with at most `concurrency` in flight.

    A KeyboardInterrupt (Ctrl-C, or raised by `on_progress`) stops listing and submitting, lets the
    objects in flight finish, and returns the summary with `interrupted` and `resume_after` set.
    """
    return Backfill(settings, clients, bucket, prefixes, since, concurrency, dry_run, start_after, limit,
                    on_progress, source).run()


class Backfill:
    """One run of `backfill`: the summary, the resume frontier and the futures in flight.

    Steps: `run` reads the record ids first for a dry run (`_recorded`), `_feed` judges each item
    and hands it to `_take`, `_drain` collects finished work into `_count`, `_stop` (Ctrl-C) cancels
    what has not started and waits for what has.
    """

    def __init__(self, settings: Settings, clients: ThreadClients, bucket: str, prefixes: List[str],
                 since: Optional[datetime], concurrency: int, dry_run: bool, start_after: Any, limit: Optional[int],
                 on_progress: Optional[ProgressHook], source: Any) -> None:
        self.settings, self.clients, self.since, self.limit = settings, clients, since, limit
        self.dry_run, self.start_after, self.on_progress = dry_run, start_after, on_progress
        self.summary = Summary(bucket=bucket, prefixes=sorted(set(prefixes)), dry_run=dry_run,
                               resume_after=start_after)
        self.frontier = Frontier()
        self.known: Set[str] = set()  # record ids that exist (dry run only)
        self.pending: Dict[Future, Tuple[int, str]] = {}
        self.workers = max(1, concurrency)
        self.window = self.workers * 4
        self._local = threading.local()
        self.source = source or ListingSource(clients.get().storage, bucket, prefixes)

    def run(self) -> Summary:
        summary = self.summary
        started = time.monotonic()
        if self.dry_run:
            self.known = self._recorded()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="backfill")
        summary.source = self.source.describe()
        try:
            try:
                self._feed(pool)
                while self.pending:
                    self._drain(block=True)
                    self._progress()
            except KeyboardInterrupt:
                self._stop()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            summary.elapsed = time.monotonic() - started
        summary.resume_after = self.frontier.key or self.start_after
        if not summary.interrupted:
            self._progress()
        return summary

    def _recorded(self) -> Set[str]:
        from shared.records import RecordStore

        store = RecordStore.of(self.settings, self.clients.get().storage)
        return {stages[0].record_id for stages in store.scan()}

    def _feed(self, pool: ThreadPoolExecutor) -> None:
        for item in self.source.items(self.settings, self.start_after, self.since):
            if self.limit is not None and self.summary.listed >= self.limit:
                break
            self.summary.listed += 1
            self._take(item, pool)
            self._progress()

    def _take(self, item: Item, pool: ThreadPoolExecutor) -> None:
        up, reason = item.upload, item.reason
        index = self.frontier.add(item.position)
        if reason:
            self._count(index, up.key, f"skipped:{reason}")
        elif self.dry_run:
            self._count(index, up.key, "has-record" if self._has_record(item) else "would-submit")
        else:
            self.pending[pool.submit(self._submit, up)] = (index, up.key)
            while len(self.pending) >= self.window:
                self._drain(block=True)
            self._drain(block=False)

    def _has_record(self, item: Item) -> bool:
        """Dry run: a record under today's id or an older format's (identity.OLDER_IDS); past the known
        ids, the store's own lookup, which may HEAD the object (RecordStore.find_older)."""
        from shared.identity import older_record_ids
        from shared.records import RecordStore

        if {item.record_id, *older_record_ids(item.version).values()} & self.known:
            return True
        return bool(RecordStore.of(self.settings, self.clients.get().storage).find_older(item.version, listed=True))

    def _submit(self, up: Any) -> Any:
        """Submitter.process on this thread's own Submitter (its clients are not shared)."""
        from shared.submit import Submitter

        sub = getattr(self._local, "submitter", None)
        if sub is None:
            sub = self._local.submitter = Submitter(self.settings, self.clients.get())
        return sub.process(up)

    def _drain(self, block: bool) -> None:
        if not self.pending:
            return
        done, _ = wait(list(self.pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            index, key = self.pending.pop(fut)
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None:
                self._count(index, key, "failed:error", f"{type(exc).__name__}: {exc}")
            else:
                out = fut.result()
                self._count(index, key, out.outcome, out.detail)

    def _count(self, index: int, key: str, outcome: str, detail: Optional[str] = None) -> None:
        self.summary.counts[outcome] += 1
        if outcome.startswith("failed"):  # the resume point stays before it, so a rerun retries it
            self.summary.failures.append({"key": key, "outcome": outcome, "detail": detail})
        else:
            self.frontier.finish(index)

    def _stop(self) -> None:
        self.summary.interrupted = True
        for fut in list(self.pending):
            if fut.cancel():
                self.pending.pop(fut)
        while self.pending:  # in-flight objects finish: their outcome is known, not half-done
            self._drain(block=True)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.summary)


def read_checkpoint(path: str, identity: Dict[str, Any]) -> Any:
    """The saved resume position (a key for a listing, {file, row} for an inventory), checked to belong
    to this source (`identity`: bucket + prefixes, or the inventory)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        raise UsageError(f"--checkpoint {path}: unreadable ({exc})") from None
    saved = {k: sorted(data.get(k) or []) if k == "prefixes" else data.get(k) for k in identity}
    if saved != identity:
        raise UsageError(f"--checkpoint {path} belongs to {' '.join(str(data.get(k)) for k in identity)}, not "
                         f"{' '.join(str(v) for v in identity.values())}: remove it or use another file")
    return data.get("start_after") or ""


def write_checkpoint(path: str, identity: Dict[str, Any], summary: Summary) -> None:
    Path(path).write_text(json.dumps({**identity, "start_after": summary.resume_after, "saved_at": time.time()})
                          + "\n", encoding="utf-8")


def count_objects(source: Any, settings: Settings, start: Any = "", limit: Optional[int] = None) -> int:
    """How many objects the run will list (a listing without the work)."""
    count = 0
    for _ in source.items(settings, start):
        count += 1
        if limit is not None and count >= limit:
            break
    return count
