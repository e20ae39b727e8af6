""""Uploads that never became a job", found incrementally, so `status` costs the same with 10^2 or
10^7 objects in the bucket:

- each call reads at most `budget` objects of the source (a COS inventory report, or the listing
  of the watched prefixes), from the position the last call saved, and stops;
- objects the trigger would skip are not checked (its own filter, cli/sources.py); the others
  are checked for a record of their version (one listing of that record's folder);
- once a pass is complete, the next pass (the listing again, or a newer inventory) only checks
  objects modified since the previous pass began (less a margin for clock skew): older ones were
  checked then, and those found missing are kept and re-checked on every call until a record
  appears (a backfill, a late trigger).

The state is a small JSON file per bucket under ~/.cache/cos-matting (XDG_CACHE_HOME).
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings
    from cli.clients import ThreadClients

HasRecord = Callable[[str, Any], bool]  # (record id, the object version as listed: RecordStore.exists)
MARGIN = 120  # seconds: COS's Last-Modified and this clock may disagree this much
WINDOW = 64  # objects checked concurrently


@dataclass
class ScanState:
    source: Dict[str, Any] = field(default_factory=dict)
    position: Any = None
    read: int = 0  # objects read in this pass
    checked: int = 0  # records looked up in this pass
    complete: bool = False
    started_at: float = field(default_factory=time.time)
    finished_at: Optional[float] = None
    passes: int = 0  # completed passes
    checked_before: float = 0.0  # every candidate modified before this was checked by a complete pass
    missing: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # record id -> the upload

    def new_pass(self, source: Dict[str, Any]) -> None:
        self.source, self.position, self.read, self.checked, self.complete = dict(source), None, 0, 0, False
        self.started_at, self.finished_at = time.time(), None


def state_path(bucket: str, endpoint: str = "") -> str:
    """One state per bucket and cloud (the local cloud's buckets are named like real ones)."""
    import hashlib

    where = hashlib.sha256(endpoint.encode()).hexdigest()[:8] if endpoint else "cloud"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cos-matting", f"uploads-{bucket}-{where}.json")


def load_state(path: str) -> ScanState:
    try:
        return ScanState(**json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return ScanState()  # none yet, or unreadable: a fresh pass is all it costs


def save_state(path: str, state: ScanState) -> None:
    """Whole or not at all, and safe beside another writer (the dashboard's background step and a
    `status` at once): each write has its own temporary file, renamed over the state."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(state.__dict__) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scan(settings: Settings, source: Any, state: ScanState, has_record: HasRecord, budget: int,
         concurrency: int = 16) -> ScanState:
    """Re-check what was missing, then read up to `budget` more objects from the saved position."""
    from shared.dates import epoch_of
    from shared.identity import ObjectVersion

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        rids = list(state.missing)
        listed = [ObjectVersion(m.get("bucket", ""), m.get("key", ""), m.get("etag", ""), int(m.get("size") or 0),
                                epoch_of(m.get("modified"))) for m in (state.missing[r] for r in rids)]
        for rid, found in zip(rids, pool.map(has_record, rids, listed)):
            if found:
                state.missing.pop(rid, None)
        if budget <= 0:
            return state
        if state.source != dict(source.identity) or (state.complete and source.kind == "listing"):
            if state.complete:  # what this pass saw need not be checked again
                state.checked_before = state.started_at - MARGIN
            state.new_pass(source.identity)
        if state.complete:  # this inventory is done: a newer one starts the next pass
            return state
        window: List[Any] = []

        def check() -> None:
            found = list(pool.map(has_record, [item.record_id for item in window],
                                  [item.version for item in window]))
            for item, exists in zip(window, found):
                if not exists:
                    state.missing[item.record_id] = {"record_id": item.record_id, "bucket": item.upload.bucket,
                                                     "key": item.upload.key, "etag": item.upload.etag,
                                                     "size": item.upload.size, "modified": item.modified}
            state.checked += len(window)
            window.clear()

        read = 0
        for item in source.items(settings, state.position):
            read += 1
            state.read += 1
            if not item.reason and epoch_of(item.modified) >= state.checked_before:
                window.append(item)
                if len(window) >= WINDOW:
                    check()
            state.position = item.position
            if read >= budget:
                check()
                return state
        check()
        state.complete, state.finished_at = True, time.time()
        state.passes += 1
    return state


def step(settings: Settings, clients: ThreadClients, budget: int, concurrency: int = 16, inventory: Optional[str] = None) -> ScanState:
    """One step of the scan for this bucket and cloud (`status`, the dashboard): load the saved state,
    read up to `budget` objects of the watched prefixes (or of the `inventory` report), save."""
    from cli.sources import open_source
    from shared.records import RecordStore

    source = open_source(clients.get().storage, settings, inventory, list(settings.watch_prefixes))
    path = state_path(settings.bucket, settings.endpoint or "")

    def has_record(rid: str, listed: Any = None) -> bool:  # on the scan's threads: each its own clients
        return RecordStore.of(settings, clients.get().storage).exists(rid, listed)

    state = scan(settings, source, load_state(path), has_record, budget, concurrency)
    save_state(path, state)
    return state
