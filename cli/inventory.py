"""Read a COS inventory report: the manifest.json, then its gzip CSV data files, streamed row by row
through cos-python-sdk-v5 (never a whole file in memory).

Format facts (and what is unverified) are listed in localcloud/inventory.py, which writes the same
format for the local cloud. The reader relies only on what the manifest itself says:
`fileFormat` must be CSV, `fileSchema` names the columns in order, `files[].key` are the data files
(in the manifest's bucket), and each file's `md5Checksum` (COS, 436/33702; or `md5sum`, S3's
`MD5checksum`) and `size` (a string in COS's sample), when
present, are checked over the compressed bytes as they stream by.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote_plus

from cli.errors import UsageError

CHUNK = 256 << 10


class InventoryError(UsageError):
    """The manifest or a data file is not a usable inventory report (names the field or file)."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a reader stands: `row` rows of data file `file` already read."""

    file: int = 0
    row: int = 0

    def as_dict(self) -> Dict[str, int]:
        return {"file": self.file, "row": self.row}

    @classmethod
    def from_dict(cls, data: Any) -> "Position":
        try:
            return cls(int(data["file"]), int(data["row"]))
        except (TypeError, KeyError, ValueError):
            raise InventoryError(f"inventory position {data!r}: expected {{'file': N, 'row': N}}") from None


@dataclass
class DataFile:
    key: str
    size: Optional[int]
    md5: Optional[str]


@dataclass
class Manifest:
    bucket: str  # where the report lives
    key: str
    schema: List[str]
    files: List[DataFile]
    total: Optional[int]  # objects listed in the report, if the manifest says
    source_bucket: str = ""


def decode_key(cell: str) -> str:
    """Inventory CSV keys are URL-encoded (doc 436/33702). Encoders that write a space as `+` (form
    style, e.g. Java's URLEncoder) and those that write `%20` both write a real `+` as `%2B`, so
    form decoding is right for either."""
    return unquote_plus(cell)


def parse_manifest(bucket: str, key: str, body: bytes) -> Manifest:
    where = f"inventory manifest {bucket}/{key}"
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InventoryError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InventoryError(f"{where}: expected a JSON object")
    fmt = str(data.get("fileFormat", ""))
    if fmt.upper() != "CSV":
        raise InventoryError(f"{where}: fileFormat {fmt!r} is not supported (allowed: CSV)")
    schema = [c.strip() for c in str(data.get("fileSchema", "")).split(",") if c.strip()]
    if "Key" not in schema:
        raise InventoryError(f"{where}: fileSchema {data.get('fileSchema')!r} has no Key column")
    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise InventoryError(f"{where}: files must be a list of {{key, size, md5Checksum}}")
    files = []
    for index, entry in enumerate(raw_files):
        if not isinstance(entry, dict) or not str(entry.get("key") or ""):
            raise InventoryError(f"{where}: files[{index}] has no key")
        # md5Checksum: COS's inventory overview (436/33702); the others as other stores spell it
        md5 = entry.get("md5Checksum") or entry.get("md5sum") or entry.get("MD5checksum") or entry.get("md5Sum")
        size = entry.get("size")
        files.append(DataFile(str(entry["key"]), int(size) if size not in (None, "") else None,
                              str(md5).lower() if md5 else None))
    total = next((data[k] for k in ("filterObjectCount", "listObjectCount") if str(data.get(k, "")).isdigit()), None)
    return Manifest(bucket, key, schema, files, int(total) if total is not None else None,
                    str(data.get("sourceBucket") or ""))


def load_manifest(storage: Any, bucket: str, key: str) -> Manifest:
    """`storage` is a shared.cloud.Storage (the SDK client underneath)."""
    body = storage.get(bucket, key)
    if body is None:
        raise InventoryError(f"--inventory {key}: no such object in bucket {bucket}")
    return parse_manifest(bucket, key, body)


class _Checked:
    """A raw stream that hashes and counts what passes through it."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.md5, self.size = raw, hashlib.md5(), 0

    def read(self, n: int) -> bytes:
        chunk = self.raw.read(n)
        self.md5.update(chunk)
        self.size += len(chunk)
        return chunk


def _lines(stream: _Checked, name: str) -> Iterator[str]:
    """Text lines of a gzip stream, decompressed incrementally."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
    text = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        try:
            data = inflate.decompress(chunk)
            while inflate.eof and inflate.unused_data:  # concatenated gzip members
                rest = inflate.unused_data
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data += inflate.decompress(rest)
            pending += text.decode(data)
        except (zlib.error, UnicodeDecodeError) as exc:
            raise InventoryError(f"inventory data file {name}: not gzip UTF-8 CSV ({exc})") from None
        *done, pending = pending.split("\n")
        yield from done
    if not inflate.eof:
        raise InventoryError(f"inventory data file {name}: truncated (gzip stream ended early)")
    if pending:
        yield pending


def rows(storage: Any, manifest: Manifest, start: Position = Position()) -> Iterator[Tuple[Position, Dict[str, str]]]:
    """Every row from `start` on, as {column: value} with the Key decoded, and the position after it."""
    for index in range(start.file, len(manifest.files)):
        entry = manifest.files[index]
        raw = storage.open(manifest.bucket, entry.key)
        if raw is None:
            raise InventoryError(f"inventory data file {entry.key} (files[{index}] of {manifest.key}) is missing")
        stream = _Checked(raw)
        skip = start.row if index == start.file else 0
        count = 0
        for cells in csv.reader(_lines(stream, entry.key)):
            if not cells or cells == manifest.schema:  # tolerate a header line
                continue
            count += 1
            if count <= skip:
                continue
            if len(cells) != len(manifest.schema):
                raise InventoryError(f"inventory data file {entry.key} row {count}: {len(cells)} columns, "
                                     f"fileSchema has {len(manifest.schema)}")
            row = dict(zip(manifest.schema, cells))
            row["Key"] = decode_key(row["Key"])
            yield Position(index, count), row
        if entry.size is not None and stream.size != entry.size:
            raise InventoryError(f"inventory data file {entry.key}: {stream.size} bytes, manifest says {entry.size}")
        if entry.md5 and stream.md5.hexdigest() != entry.md5:
            raise InventoryError(f"inventory data file {entry.key}: md5 {stream.md5.hexdigest()} does not match "
                                 f"the manifest's {entry.md5}")


def as_listing(row: Dict[str, str]) -> Dict[str, str]:
    """An inventory row in the shape of a GET Bucket entry (Key, ETag, Size, LastModified)."""
    return {"Key": row["Key"], "ETag": row.get("ETag", ""), "Size": row.get("Size", "0"),
            "LastModified": row.get("LastModifiedDate", "")}
