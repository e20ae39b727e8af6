""""Uploads that never became a job", found incrementally: each `status` call checks a bounded
number of objects (`budget`) from a COS inventory report or a listing, resuming where the last call
stopped (the position is saved in a small state file), so its cost per call does not grow with the
bucket. Objects the trigger would skip are not checked (same filter, `cli/sources.py`); an object is
missing when no record exists for its version. What was found missing is re-checked on every call
and dropped once a record appears (a backfill, a late trigger).

One pass over a listing ends at its last key; the next call starts a new pass. A pass over an
inventory ends with the report: a newer report starts a new pass.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

HasRecord = Callable[[str], bool]


@dataclass
class ScanState:
    source: Dict[str, Any]
    position: Any = None
    checked: int = 0  # candidates checked in this pass
    read: int = 0  # objects read in this pass (skipped ones included)
    passes: int = 0  # completed passes
    complete: bool = False  # this pass reached the end of the source
    started_at: float = field(default_factory=time.time)
    finished_at: Optional[float] = None
    missing: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # record id -> what the upload is

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def state_path(bucket: str, identity: Mapping[str, Any]) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps([bucket, identity], sort_keys=True).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cos-matting", f"uploads-{digest}.json")


def load_state(path: str, identity: Mapping[str, Any]) -> ScanState:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("source") == dict(identity):
            return ScanState(**data)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError):
        pass  # an unreadable state only costs a fresh pass
    return ScanState(source=dict(identity))


def save_state(path: str, state: ScanState) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    Path(tmp).write_text(json.dumps(state.as_dict()) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def scan(settings: Any, source: Any, state: ScanState, has_record: HasRecord, budget: int,
         record_id_of: Callable[[Any, str], str], concurrency: int = 16) -> ScanState:
    """Re-check what was missing, then check up to `budget` more candidates from the saved position."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        rids = list(state.missing)
        for rid, found in zip(rids, pool.map(has_record, rids)):
            if found:
                state.missing.pop(rid, None)
        if budget <= 0:
            return state
        if state.complete and source.kind == "listing":  # the listing moves on: a new pass
            state.position, state.checked, state.read, state.complete = None, 0, 0, False
            state.started_at, state.finished_at = time.time(), None
        if state.complete:
            return state
        window: List[Any] = []

        def check(items: List[Any]) -> None:
            found = list(pool.map(has_record, [rid for _, rid in items]))
            for (item, rid), exists in zip(items, found):
                if not exists:
                    state.missing[rid] = {"record_id": rid, "bucket": item.upload.bucket, "key": item.upload.key,
                                          "etag": item.upload.etag, "size": item.upload.size,
                                          "modified": item.modified}
            state.checked += len(items)
            state.position = items[-1][0].position if items else state.position

        exhausted = True
        for item in source.items(settings, state.position):
            state.read += 1
            if item.reason:
                if not window:
                    state.position = item.position
                continue
            window.append((item, record_id_of(item.upload, item.modified)))
            if len(window) >= 64:
                check(window)
                window = []
            if state.checked + len(window) >= budget:
                exhausted = False
                break
        check(window)
        if exhausted:
            state.complete, state.finished_at = True, time.time()
            state.passes += 1
    return state
