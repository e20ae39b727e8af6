"""COS inventory, generated on demand: a manifest.json plus gzip CSV files written into a bucket.

What the real service does, and where it says so:
- Inventory overview (https://cloud.tencent.com/document/product/436/33702, English
  https://www.tencentcloud.com/document/product/436/30622): the report is CSV files; the manifest
  carries `fileFormat`, `listObjectCount`, `listStorageSize`, `filterObjectCount`,
  `filterStorageSize`; the columns are chosen among Bucket, Key, VersionId, IsLatest,
  IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded,
  ReplicationStatus, Tag, Crc64, x-cos-meta-*; "使用 CSV 文件格式时,对象文件名称采用 URL 编码形式,
  必须解码然后才能使用" (in CSV the key is URL-encoded and must be decoded).
- One-time inventory, POST Bucket inventory (https://www.tencentcloud.com/document/product/436/46869):
  with destination Prefix `cos_bucket_inventory` the report for examplebucket-1250000000 lands at
  `cos_bucket_inventory/1250000000/examplebucket/disposable/20221120/manifest.json` (and
  `manifest.checksum`); the same id twice in one day is refused.
- PUT Bucket inventory (https://www.tencentcloud.com/document/product/436/30625): Filter Prefix and
  the OptionalFields names above.
- The manifest's `files[]` entries are `{key, size, md5Checksum}` with `size` a string (inventory
  overview "清单功能概述", 436/33702, its manifest sample).
- Not seen in a stored Tencent page (unverified): where the data files sit (here
  `<report dir>/data/<n>.csv.gz`), whether rows are quoted (here every field, like S3), the ETag
  without quotes and LastModifiedDate as ISO 8601 UTC. The reader (`cli/inventory.py`) follows
  `files[].key` and `fileSchema` and accepts other checksum spellings too, so none of these
  choices is baked into it.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence
from urllib.parse import quote

from .cos import Bucket, CosError, ObjectMeta
from .replies import iso_date

# Bucket and Key are always present; the rest are the documented OptionalFields we can fill.
FIELDS = ("Size", "LastModifiedDate", "ETag", "StorageClass", "IsMultipartUploaded")
ROWS_PER_FILE = 50_000
ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")  # 30625: a-z A-Z 0-9 - _ .


@dataclass
class Report:
    manifest_key: str
    objects: int  # rows written (filterObjectCount)
    files: List[str]

    def as_dict(self) -> Dict[str, object]:
        return {"manifest_key": self.manifest_key, "objects": self.objects, "files": self.files}


def encode_key(key: str) -> str:
    """The key as a CSV inventory carries it: percent-encoded, `+` and `/` included, so a decoder that
    treats `+` as a space (form encoding) and one that does not both get the key back."""
    return quote(key, safe="")


def _cell(obj: ObjectMeta, bucket: str, name: str) -> str:
    if name == "Bucket":
        return bucket
    if name == "Key":
        return encode_key(obj.key)
    if name == "Size":
        return str(obj.size)
    if name == "LastModifiedDate":
        return iso_date(obj.last_modified)
    if name == "ETag":
        return obj.etag
    if name == "StorageClass":
        return "STANDARD"
    if name == "IsMultipartUploaded":
        return "true" if "-" in obj.etag else "false"
    raise ValueError(f"field {name!r}: this local inventory fills {', '.join(FIELDS)}")


def report_dir(source: str, dest_prefix: str, inventory_id: str, when: float) -> str:
    """`<prefix>/<appid>/<bucket without appid>/<id>/<YYYYMMDD>` (doc 46869's example path)."""
    short, _, appid = source.rpartition("-")
    day = time.strftime("%Y%m%d", time.gmtime(when))
    return "/".join(p for p in (dest_prefix.strip("/"), appid, short, inventory_id, day) if p)


def generate(source: Bucket, destination: Bucket, dest_prefix: str = "cos_bucket_inventory",
             inventory_id: str = "disposable", filter_prefix: str = "", fields: Sequence[str] = FIELDS,
             rows_per_file: int = ROWS_PER_FILE, now: Optional[float] = None) -> Report:
    """Scan `source` (under `filter_prefix`) and write the report into `destination`.

    Like the real scan, it reads metadata only and is a rolling snapshot: objects written
    while it runs may or may not appear.
    """
    if not inventory_id or set(inventory_id) - ID_CHARS:
        raise CosError(400, "InvalidArgument", f"inventory id {inventory_id!r}: letters, digits, - _ . only")
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise CosError(400, "InvalidArgument", f"OptionalFields {unknown}: this local inventory fills "
                                               f"{', '.join(FIELDS)}")
    if rows_per_file < 1:
        raise CosError(400, "InvalidArgument", "rows_per_file must be >= 1")
    when = time.time() if now is None else now
    base = report_dir(source.name, dest_prefix, inventory_id, when)
    manifest_key = f"{base}/manifest.json"
    if destination.exists(manifest_key):  # doc 46869: one report per id and day
        raise CosError(409, "InventoryAlreadyExists",
                       f"an inventory {inventory_id!r} of {source.name} already exists today ({manifest_key})")
    schema = ("Bucket", "Key") + tuple(fields)
    files: List[Dict[str, object]] = []
    listed = listed_size = 0
    with tempfile.TemporaryDirectory(dir=os.path.join(destination.root, "tmp")) as tmp:
        writer = _Part(tmp, len(files))
        marker = ""
        while True:
            page, _, truncated, marker = source.list(filter_prefix, marker, 1000)
            for obj in page:
                listed += 1
                listed_size += obj.size
                writer.row([_cell(obj, source.name, name) for name in schema])
                if writer.rows >= rows_per_file:
                    files.append(_store(writer, destination, f"{base}/data/{len(files)}.csv.gz"))
                    writer = _Part(tmp, len(files))
            if not truncated:
                break
        if writer.rows or not files:
            files.append(_store(writer, destination, f"{base}/data/{len(files)}.csv.gz"))
    manifest = {
        "sourceBucket": source.name, "destinationBucket": destination.name,
        "fileFormat": "CSV", "fileSchema": ", ".join(schema),
        "creationTimestamp": str(int(when)),
        "listObjectCount": listed, "listStorageSize": listed_size,
        "filterObjectCount": listed, "filterStorageSize": listed_size,
        "files": files,
    }
    body = json.dumps(manifest, indent=1).encode("utf-8")
    destination.put_bytes(f"{base}/manifest.checksum", hashlib.md5(body).hexdigest().encode(), "text/plain")
    destination.put_bytes(manifest_key, body, "application/json")  # last: a reader never sees a partial report
    return Report(manifest_key, listed, [str(f["key"]) for f in files])


class _Part:
    """One gzip CSV data file being written to a temp path."""

    def __init__(self, tmp: str, index: int) -> None:
        self.path = os.path.join(tmp, f"{index}.csv.gz")
        self._gz = gzip.open(self.path, "wt", encoding="utf-8", newline="")
        self._csv = csv.writer(self._gz, quoting=csv.QUOTE_ALL, lineterminator="\n")
        self.rows = 0

    def row(self, cells: List[str]) -> None:
        self._csv.writerow(cells)
        self.rows += 1

    def close(self) -> None:
        self._gz.close()


def _store(part: _Part, destination: Bucket, key: str) -> Dict[str, object]:
    part.close()
    md5 = hashlib.md5()
    with open(part.path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
    destination.put_file(key, part.path, "application/x-gzip")
    return {"key": key, "size": str(os.path.getsize(part.path)), "md5Checksum": md5.hexdigest()}

