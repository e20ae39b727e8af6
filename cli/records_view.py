"""What `status` shows, at bucket scale: costs follow what is asked for, never all history.

- open records: from the open index (`<records_prefix>open/`, shared/records.py), one listing
  plus one read per record in it (a finished one waits there for reconcile's recheck);
- history: the records prefix a page (1,000 keys) at a time, in record-id order, from a cursor,
  filtered by `since` (the newest stage's Last-Modified, from the listing: no read) and by state,
  stopping after `limit` rows: memory and time follow the page, not the history;
- one record: by record id (direct), job id (CI describe -> the correlation id in UserData),
  or source key (HEAD -> the object version's record id).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from shared.identity import RECORD_ID
from shared.states import FINAL, Rank

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings
    from shared.records import RecordStore
    from cli.clients import ThreadClients

Row = Dict[str, Any]
BATCH = 256  # records read in parallel before the next are listed (about a 1,000-key listing page)


def _store(settings: Settings, clients: ThreadClients) -> RecordStore:
    from shared.records import RecordStore

    return RecordStore.of(settings, clients.get().storage)


def shown(stages: List[Any]) -> Any:
    """The stage whose time a row shows and is ordered by: the newest snapshot (a note is not one)."""
    from shared.records import latest

    snaps = [s for s in stages if not getattr(s, "note_job", "")]
    return latest(snaps) if snaps else None


def row_of(settings: Settings, rid: str, stages: List[Any], record: Any, problem: Optional[str] = None,
           now: Optional[float] = None) -> Row:
    """One status row from a record's stages (listing) and newest readable snapshot; ages are at `now`
    (one instant for every row of a listing, so rows read in parallel keep the listing's order)."""
    from shared.records import age_seconds

    newest = shown(stages)
    modified = newest.last_modified if newest else ""
    row: Row = {"record_id": rid, "state": record.state if record else ("Open" if not stages else "?"),
                "age_s": round(age_seconds(modified, now), 1) if modified else None,
                "stages": [s.key.rsplit("/", 1)[-1] for s in sorted(stages, key=lambda s: s.order)],
                "attempts": max((s.attempt for s in stages), default=1)}
    if record is not None:
        row.update(bucket=record.source.bucket, key=record.source.key, etag=record.source.etag,
                   size=record.source.size, job_id=record.job_id, output=(record.output or {}).get("key"),
                   output_bucket=(record.output or {}).get("bucket"),
                   error=record.error, attempt=record.attempt, retry=record.retry.value if record.retry else None,
                   notes=record.notes or None)
    if problem:
        row["error"] = {"Code": "Unreadable", "Message": problem}
    if newest is not None and newest.rank == Rank.CLAIM and row["age_s"] is not None \
            and row["age_s"] >= settings.claim_lease_seconds:
        row["stuck"] = "claim expired without a job (reconcile resubmits it)"
    return row


def _load(settings: Settings, clients: ThreadClients, rid: str, now: Optional[float] = None) -> Row:
    from shared.records import UnreadableRecord

    store = _store(settings, clients)
    try:
        record, stages = store.load(rid)
        return row_of(settings, rid, stages, record, now=now)
    except UnreadableRecord as exc:  # shown, never the end of the report
        return row_of(settings, rid, store.stages(rid), None, str(exc).splitlines()[0], now)


def load_many(settings: Settings, clients: ThreadClients, rids: List[str], concurrency: int = 16,
              on_row: Optional[Callable[[int], None]] = None) -> List[Row]:
    rows: List[Row] = []
    now = time.time()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for row in pool.map(lambda rid: _load(settings, clients, rid, now), rids):
            rows.append(row)
            if on_row is not None:
                on_row(len(rows))
    return rows


def open_ids(settings: Settings, clients: ThreadClients) -> List[str]:
    store, rids, after = _store(settings, clients), [], ""
    while True:
        page, after = store.open_page(after)
        rids.extend(rid for rid, _ in page)
        if not after:
            return rids


def open_rows(settings: Settings, clients: ThreadClients, rids: List[str], concurrency: int = 16,
              on_row: Optional[Callable[[int], None]] = None) -> List[Row]:
    """The open records `rids` (from `open_ids`), newest snapshot each, sorted by source key."""
    rows = load_many(settings, clients, rids, concurrency, on_row)
    return sorted(rows, key=lambda r: (r.get("key") or "", r["record_id"]))


def history(settings: Settings, clients: ThreadClients, after: str = "", since: Optional[datetime] = None,
            states: Optional[Tuple[str, ...]] = None, concurrency: int = 16) -> Iterator[Row]:
    """Every record after the cursor `after` (a record id), in record-id order, read a batch at a time
    (the listing of the records prefix is paged by RecordStore.scan: memory follows the batch)."""
    from itertools import islice

    from shared.dates import epoch_of
    from shared.records import latest

    threshold = since.timestamp() if since else None
    chosen = (stages for stages in _store(settings, clients).scan(after)
              if threshold is None or epoch_of(latest(stages).last_modified) >= threshold)
    now = time.time()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while True:
            batch = list(islice(chosen, BATCH))
            if not batch:
                return
            for row in pool.map(lambda stages: _load(settings, clients, stages[0].record_id, now), batch):
                if states is None or row["state"] in states:
                    yield row


def newest_first(settings: Settings, clients: ThreadClients, after: str = "", since: Optional[datetime] = None,
                 states: Optional[Tuple[str, ...]] = None, limit: int = 100,
                 concurrency: int = 16) -> Tuple[List[Row], Optional[str], List[str]]:
    """(rows, cursor or None, the state of every record read): the history newest first (by each record's newest stage, then record id),
    from one listing of the records prefix (no reads), then only the page's records read. `after` is
    the cursor a previous page returned (the record id its last row showed)."""
    from shared.dates import epoch_of
    from shared.records import latest

    threshold = since.timestamp() if since else None
    order = []
    for stages in _store(settings, clients).scan():
        stamp = epoch_of((shown(stages) or latest(stages)).last_modified)  # the time the row's age is of
        if threshold is None or stamp >= threshold:
            order.append((-stamp, stages[0].record_id))
    order.sort()
    if after:
        at = next((i for i, (_, rid) in enumerate(order) if rid == after), None)
        order = order[at + 1:] if at is not None else [o for o in order if o[1] > after]
    rows: List[Row] = []
    read: List[str] = []
    position, now = 0, time.time()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while position < len(order) and (not limit or len(rows) < limit):
            want = (limit - len(rows)) if limit else BATCH
            batch = order[position:position + max(want, 1) * (1 if states is None else 2)]
            for row in pool.map(lambda o: _load(settings, clients, o[1], now), batch):
                position += 1
                read.append(row["state"])
                if states is None or row["state"] in states:
                    rows.append(row)
                    if limit and len(rows) >= limit:
                        break
    more = position < len(order)
    return rows, (rows[-1]["record_id"] if more and rows else None), read


def cache_path(settings: Settings) -> str:
    """Where finished records' rows are kept between calls (beside the uploads scan's state)."""
    import hashlib
    import os

    from cli.uploads_scan import state_path

    where = hashlib.sha256(f"{settings.endpoint or ''}|{settings.records_prefix}".encode()).hexdigest()[:8]
    return os.path.join(os.path.dirname(state_path(settings.bucket, settings.endpoint or "")),
                        f"finished-{settings.rec_bucket}-{where}.json")


def recent_finished(settings: Settings, clients: ThreadClients, since: Optional[datetime], concurrency: int = 16,
                    cache: Optional[str] = None) -> List[Row]:
    """Every record whose newest stage is final and at or after `since`, from one listing; a record is read
    only the first time its newest stage is seen. Stage objects are never overwritten (shared/records.py),
    so a row read from a final stage stays true until a new stage (a retry) appears: the rows are kept in
    `cache` by that stage's key, and only their age is recomputed from the listing."""
    import json
    import os

    from shared.dates import epoch_of
    from shared.records import age_seconds, latest

    threshold = since.timestamp() if since else None
    wanted: List[Tuple[str, Any]] = []
    for stages in _store(settings, clients).scan():
        newest = latest([s for s in stages if not s.note_job] or stages)
        if newest.rank == Rank.FINAL and (threshold is None or epoch_of(newest.last_modified) >= threshold):
            wanted.append((newest.key, newest))
    kept: Dict[str, Row] = {}
    if cache:
        try:
            with open(cache, encoding="utf-8") as fh:
                kept = json.load(fh)
        except (OSError, ValueError):
            kept = {}
    missing = [newest for key, newest in wanted if key not in kept]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for newest, row in zip(missing, pool.map(lambda n: _load(settings, clients, n.record_id), missing)):
            if row.get("state") in FINAL:
                kept[newest.key] = row
    rows, now = [], time.time()
    for key, newest in wanted:
        row = kept.get(key)
        if row is not None:
            rows.append({**row, "age_s": round(age_seconds(newest.last_modified, now), 1)})
    if cache:
        fresh = {key: kept[key] for key, _ in wanted if key in kept}
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        with open(cache + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(fresh, fh)
        os.replace(cache + ".tmp", cache)
    return rows


def _notified(settings: Settings, clients: ThreadClients, row: Row) -> Row:
    """One record's webhook delivery log (shared/notify.py), oldest first, when it has one."""
    from shared.notify import deliveries

    log = deliveries(_store(settings, clients), row["record_id"])
    if log:
        row["notifications"] = [{k: d.get(k) for k in ("event_id", "attempt", "status", "ok", "answer", "sent_at")}
                                for d in log]
    return row


def lookup(settings: Settings, clients: ThreadClients, query: str, limit: int = 1000) -> List[Row]:
    """The record(s) a query names: a record id, a job id, a source key, or a key prefix (its first
    `limit` objects: each is a record read)."""
    from shared.cloud import CloudError
    from shared.identity import Correlation, ObjectVersion

    if RECORD_ID.match(query):
        row = _load(settings, clients, query)
        return [_notified(settings, clients, row)] if row["stages"] else []
    storage = clients.get().storage
    try:
        job = clients.get().ci.describe(query)
        marker = Correlation.parse(job.user_data)
        if marker:
            return [_notified(settings, clients, _load(settings, clients, marker.record_id))]
    except CloudError:
        pass  # not a job id: a key
    head = storage.head(settings.bucket, query)
    if head is not None:
        version = ObjectVersion.from_head(settings.bucket, query, head)
        row = _load(settings, clients, version.record_id)
        if not row["stages"]:  # an older release's record of it (shared/records.py formats)?
            older = _store(settings, clients).find_older(version)
            row = _load(settings, clients, older) if older else row
        return [_notified(settings, clients, row)] if row["stages"] else []
    rids, marker_key = [], ""
    while len(rids) < limit:  # a key prefix: its current objects, one page or a few
        page, marker_key = storage.list(settings.bucket, query, marker_key)
        rids.extend(ObjectVersion.from_listing(settings.bucket, o).record_id for o in page)
        if not marker_key:
            break
    return [r for r in load_many(settings, clients, rids[:limit]) if r["stages"]]
