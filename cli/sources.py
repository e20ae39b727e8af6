"""Where backfill and status get the bucket's objects from: a COS inventory report or a listing,
each with a resumable position, and every object judged by the trigger's own filter
(`shared.submit.skip_reason`) so a backfill sends exactly what the trigger would have sent."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from cli.inventory import Manifest, Position, as_listing, load_manifest, rows

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings

BACKFILL_EVENT = "cos:ObjectCreated:Backfill"


@dataclass
class Item:
    """One object: the upload its trigger would have described, why it is skipped (None: send it),
    and the source position just after it (where a rerun resumes once this item is done)."""

    upload: Any  # shared.events.Upload
    reason: Optional[str]
    position: Any
    obj: Dict[str, Any]  # as a GET Bucket entry: Key, ETag, Size, LastModified
    record_id: str  # of this object version, from the listing fields alone (no HEAD)
    version: Any = None  # shared.identity.ObjectVersion, as listed: older formats' ids of it (RecordStore.exists)

    @property
    def modified(self) -> str:
        return str(self.obj.get("LastModified", ""))


def parse_modified(stamp: str) -> Optional[datetime]:
    from shared.dates import parse_time

    try:
        return parse_time(stamp) if stamp else None
    except ValueError:
        return None


def judge(settings: Settings, bucket: str, obj: Dict[str, Any], position: Any,
          since: Optional[datetime] = None) -> Item:
    from shared.reconcile import listed

    seen = listed(settings, bucket, obj, BACKFILL_EVENT)
    if since is not None:
        when = parse_modified(str(obj.get("LastModified", "")))
        if when is not None and when < since:
            return Item(seen.upload, "before-since", position, obj, seen.record_id, seen.version)
    return Item(seen.upload, seen.reason, position, obj, seen.record_id, seen.version)


class ListingSource:
    """GET Bucket pages under the prefixes, in key order; the position is the last key done."""

    kind = "listing"
    total: Optional[int] = None

    def __init__(self, storage: Any, bucket: str, prefixes: List[str]) -> None:
        self.storage, self.bucket, self.prefixes = storage, bucket, sorted(set(prefixes))

    @property
    def identity(self) -> Dict[str, Any]:
        return {"bucket": self.bucket, "prefixes": self.prefixes}

    def describe(self) -> str:
        return ", ".join(f"{self.bucket}/{p}" for p in self.prefixes)

    @staticmethod
    def start(saved: Any) -> str:
        return str(saved or "")

    def items(self, settings: Settings, start: Any = "", since: Optional[datetime] = None) -> Iterator[Item]:
        for obj in list_objects(self.storage, self.bucket, self.prefixes, self.start(start)):
            yield judge(settings, self.bucket, obj, obj["Key"], since)


def list_objects(storage: Any, bucket: str, prefixes: List[str], start_after: str = "") -> Iterator[Dict[str, Any]]:
    """Every object under the prefixes, in key order, paginated; resuming after `start_after`."""
    for prefix in sorted(set(prefixes)):
        if start_after > prefix and not start_after.startswith(prefix):
            continue  # every key under this prefix sorts before start_after: done
        marker = start_after if start_after.startswith(prefix) else ""
        while True:
            page, marker = storage.list(bucket, prefix, marker)
            yield from page
            if not marker:
                break


class InventorySource:
    """The rows of a COS inventory report; the position is (data file, row)."""

    kind = "inventory"

    def __init__(self, storage: Any, bucket: str, manifest_key: str) -> None:
        self.storage = storage
        self.manifest: Manifest = load_manifest(storage, bucket, manifest_key)
        self.total = self.manifest.total

    @property
    def identity(self) -> Dict[str, Any]:
        return {"inventory": f"{self.manifest.bucket}/{self.manifest.key}"}

    def describe(self) -> str:
        return f"inventory {self.manifest.bucket}/{self.manifest.key}"

    @staticmethod
    def start(saved: Any) -> Position:
        return Position.from_dict(saved) if saved else Position()

    def items(self, settings: Settings, start: Any = None, since: Optional[datetime] = None) -> Iterator[Item]:
        fallback = self.manifest.source_bucket or settings.bucket
        for position, row in rows(self.storage, self.manifest, self.start(start)):
            bucket = row.get("Bucket") or fallback
            if not bucket.rsplit("-", 1)[-1].isdigit():  # a bucket column without -APPID
                bucket = f"{bucket}-{settings.bucket.rsplit('-', 1)[-1]}"
            yield judge(settings, bucket, as_listing(row), position.as_dict(), since)


def open_source(storage: Any, settings: Settings, inventory: Optional[str], prefixes: List[str],
                inventory_bucket: Optional[str] = None) -> Any:
    if inventory:
        return InventorySource(storage, inventory_bucket or settings.bucket, inventory)
    return ListingSource(storage, settings.bucket, prefixes)
