"""The object store behind the emulated COS buckets.

An in-memory index per bucket (sorted keys for listing), one data file per
object and a per-bucket journal of metadata and tags, so a restart sees the
same objects and tags and per-request work stays small.
"""
from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

from .journal import Journal

CHUNK = 1 << 20
MAX_TAGS = 10
TAG_CHARS = re.compile(r"^[\w +\-=._:/]*$", re.UNICODE)
MAX_KEY_BYTES = 850  # "编码长度最大为850个字节" https://cloud.tencent.com/document/product/436/13324


class CosError(Exception):
    """An error COS/CI would answer with: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class ObjectMeta:
    key: str
    size: int
    etag: str  # md5 hex, unquoted
    content_type: str = "application/octet-stream"
    last_modified: float = 0.0
    meta: Dict[str, str] = field(default_factory=dict)  # x-cos-meta-* headers, lower-case names
    tags: Dict[str, str] = field(default_factory=dict)
    version_id: str = ""  # "" when the bucket never had versioning, "null" while it is suspended
    object_type: str = ""  # "appendable" once made by APPEND Object (x-cos-object-type, 436/7741)


def check_key(key: str) -> None:
    """Refuse a key COS refuses: over 850 bytes of UTF-8 (436/13324). The error code is S3's
    `KeyTooLong`; the COS error-code page was not available to confirm the exact code."""
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise CosError(400, "KeyTooLong", f"The object key is {size} bytes of UTF-8; COS allows at most {MAX_KEY_BYTES}.")


def validate_tags(pairs: List[Tuple[str, str]]) -> Dict[str, str]:
    """Enforce the COS object-tag limits; raise CosError(400) like COS does.

    PUT Object tagging (https://cloud.tencent.com/document/product/436/42997): at most 10 tags,
    key not empty and under 128 bytes, value under 256 bytes, letters, digits, space and
    `+ - _ = . : /`. The object-tag overview (https://cloud.tencent.com/document/product/436/35665)
    gives values as 1-255 characters: an empty value is refused here. It also lists `@`, which
    the API page does not: `@` stays refused (the stricter reading).
    """
    if len(pairs) > MAX_TAGS:
        raise CosError(400, "BadRequest", f"too many tags: {len(pairs)} (at most {MAX_TAGS} per object)")
    tags: Dict[str, str] = {}
    for key, value in pairs:
        if not key or len(key.encode("utf-8")) >= 128:
            raise CosError(400, "InvalidTag", f"tag key must be 1-127 bytes: {key!r}")
        if not value or len(value.encode("utf-8")) >= 256:
            raise CosError(400, "InvalidTag", f"tag value must be 1-255 bytes (key {key!r}, value {value!r})")
        for text in (key, value):
            if not TAG_CHARS.match(text) or "\n" in text or "\t" in text:
                raise CosError(400, "InvalidTag",
                               f"tag {text!r} has a character outside letters, digits, space and + - = . _ : /")
        if key in tags:
            raise CosError(400, "InvalidTag", f"duplicate tag key {key!r}")
        tags[key] = value
    return tags


def copy_tags(directive: Optional[str], tagging: Optional[str]) -> Optional[Dict[str, str]]:
    """The tags a copy gets: None (the source's) for x-cos-tagging-directive Copy, its default, else
    those of `x-cos-tagging` (URL-encoded `k=v&...`) for Replaced (PUT Object - Copy, 436/10881)."""
    directive = (directive or "Copy").strip()
    if directive not in ("Copy", "Replaced"):
        raise CosError(400, "InvalidArgument", f"x-cos-tagging-directive must be Copy or Replaced, got {directive!r}")
    if directive == "Copy":
        return None
    return validate_tags(parse_qsl(tagging, keep_blank_values=True)) if tagging else {}


def copy_stream(read: Callable[[int], bytes], length: Optional[int], write: Callable[[bytes], Any]) -> Tuple[int, str]:
    """Copy a body read in chunks (`length` None = until b"") into `write`: (size, md5 hex).
    A body shorter than its length is refused (CosError IncompleteBody)."""
    md5, size = hashlib.md5(), 0
    while length is None or size < length:
        chunk = read(CHUNK if length is None else min(CHUNK, length - size))
        if not chunk:
            break
        md5.update(chunk)
        write(chunk)
        size += len(chunk)
    if length is not None and size < length:
        raise CosError(400, "IncompleteBody", f"body ended after {size} of {length} bytes")
    return size, md5.hexdigest()


def write_stream(path: str, read: Callable[[int], bytes], length: Optional[int]) -> Tuple[int, str]:
    """`copy_stream` into the file `path`; nothing is left behind when the body is refused."""
    try:
        with open(path, "wb") as fh:
            return copy_stream(read, length, fh.write)
    except CosError:
        os.unlink(path)
        raise


class Clock:
    """COS's own clock: Last-Modified and the Date header. `offset` sets it apart from the
    functions' clocks (a host whose clock is off: the lease tests)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Bucket:
    """One bucket: thread-safe index plus files under `root`."""

    def __init__(self, name: str, region: str, root: str, clock: Optional[Clock] = None) -> None:
        self.name, self.region, self.root = name, region, root
        self.clock = clock or Clock()
        self.lock = threading.Lock()
        self.objects: Dict[str, ObjectMeta] = {}
        self.keys: List[str] = []  # sorted
        self.versioning = ""  # "", "Enabled" or "Suspended": once enabled it can only be suspended
        self.uploads: Any = None  # its MultipartUploads, attached by LocalCloud.add_bucket
        self._load()

    # -- disk layout ------------------------------------------------------
    def _base(self, key: str) -> str:
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        return os.path.join(self.root, digest[:2], digest)

    def data_path(self, key: str) -> str:
        return self._base(key) + ".data"

    def _load(self) -> None:
        self.journal_path = os.path.join(self.root, "objects.jsonl")
        os.makedirs(os.path.join(self.root, "tmp"), exist_ok=True)
        for entry in Journal.replay(self.journal_path):
            if entry["op"] == "put":
                meta = ObjectMeta(**entry["meta"])
                self.objects[meta.key] = meta
            elif entry["op"] == "delete":
                self.objects.pop(entry["key"], None)
            elif entry["op"] == "tags" and entry["key"] in self.objects:
                self.objects[entry["key"]].tags = entry["tags"]
            elif entry["op"] == "versioning":
                self.versioning = entry["status"]
        self.objects = {k: m for k, m in self.objects.items() if os.path.exists(self.data_path(k))}
        self.keys = sorted(self.objects)
        for name in os.listdir(os.path.join(self.root, "tmp")):
            os.unlink(os.path.join(self.root, "tmp", name))
        self.journal = Journal(self.journal_path)
        entries = [{"op": "put", "meta": asdict(m)} for m in self.objects.values()]
        if self.versioning:
            entries.insert(0, {"op": "versioning", "status": self.versioning})
        self.journal.compact(entries)

    # -- versioning -------------------------------------------------------
    def set_versioning(self, status: str) -> None:
        """PUT Bucket versioning: Enabled or Suspended; once enabled never off again (436/19889)."""
        if status not in ("Enabled", "Suspended"):
            raise CosError(400, "MalformedXML", f"versioning Status must be Enabled or Suspended, got {status!r}")
        with self.lock:
            self.versioning = status
            self.journal.append({"op": "versioning", "status": status})

    def _forbids(self, forbid_overwrite: bool, key: str) -> bool:
        # x-cos-forbid-overwrite only works on buckets that never had versioning: on an
        # enabled or suspended bucket it is ignored and the write goes through (COS PUT Object,
        # https://cloud.tencent.com/document/product/436/7749, as read by secondary sources).
        return forbid_overwrite and not self.versioning and key in self.objects

    def commit(self, tmp_data: Any, meta: ObjectMeta, forbid_overwrite: bool) -> ObjectMeta:
        """Move a fully written body (`_stage`) into place, atomically with the index."""
        with self.lock:
            if self._forbids(forbid_overwrite, meta.key):
                self._discard(tmp_data)
                raise CosError(409, "FileAlreadyExists", "The object already exists (x-cos-forbid-overwrite is true).")
            if self.versioning:
                meta.version_id = uuid.uuid4().hex if self.versioning == "Enabled" else "null"
            self._place(tmp_data, meta.key)
            self.journal.append({"op": "put", "meta": asdict(meta)})
            if meta.key not in self.objects:
                bisect.insort(self.keys, meta.key)
            self.objects[meta.key] = meta
        return meta

    # -- operations -------------------------------------------------------
    def put_stream(self, key: str, read: Callable[[int], bytes], length: Optional[int], content_type: str = "",
                   meta: Optional[Dict[str, str]] = None, tags: Optional[Dict[str, str]] = None,
                   forbid_overwrite: bool = False) -> ObjectMeta:
        """Store a body read in chunks (`length` None = read until b"")."""
        check_key(key)
        if self._forbids(forbid_overwrite, key):  # cheap early answer; re-checked at commit
            raise CosError(409, "FileAlreadyExists", "The object already exists (x-cos-forbid-overwrite is true).")
        tmp, size, md5 = self._stage(read, length)
        obj = ObjectMeta(key, size, md5, content_type or "application/octet-stream", self.clock(),
                         dict(meta or {}), dict(tags or {}))
        return self.commit(tmp, obj, forbid_overwrite)

    def put_bytes(self, key: str, data: bytes, content_type: str = "", **kw) -> ObjectMeta:
        view = memoryview(data)
        pos = [0]

        def read(n: int) -> bytes:
            chunk = bytes(view[pos[0]:pos[0] + n])
            pos[0] += len(chunk)
            return chunk

        return self.put_stream(key, read, len(data), content_type, **kw)

    def put_file(self, key: str, path: str, content_type: str = "", **kw) -> ObjectMeta:
        with open(path, "rb") as fh:
            return self.put_stream(key, fh.read, os.path.getsize(path), content_type, **kw)

    def copy_from(self, src: "Bucket", src_key: str, key: str, replace_meta: Optional[Tuple[str, Dict[str, str]]] = None,
                  forbid_overwrite: bool = False, replace_tags: Optional[Dict[str, str]] = None) -> ObjectMeta:
        """Server-side copy; `replace_meta` = (content_type, meta) for x-cos-metadata-directive Replaced,
        `replace_tags` the tags of x-cos-tagging-directive Replaced (else the source's tags are copied:
        the directive's default is Copy, PUT Object - Copy, https://cloud.tencent.com/document/product/436/10881)."""
        check_key(key)
        source = src.head(src_key)
        tmp = self._stage_copy(src, src_key)
        content_type, meta = replace_meta if replace_meta else (source.content_type, source.meta)
        etag = source.etag
        if "-" in etag:  # a copy is stored in one piece: its ETag is the content's MD5 again
            etag = hashlib.md5(self._staged_bytes(tmp)).hexdigest()  # noqa: S324 - an ETag, not security
        obj = ObjectMeta(key, source.size, etag, content_type or source.content_type, self.clock(), dict(meta),
                         dict(source.tags if replace_tags is None else replace_tags))
        return self.commit(tmp, obj, forbid_overwrite)

    def append(self, key: str, data: bytes, position: int, content_type: str = "") -> ObjectMeta:
        """APPEND Object (436/7741): position 0 creates an appendable object, later calls must
        give its current length; a normal object cannot be appended to."""
        check_key(key)
        with self.lock:
            old = self.objects.get(key)
            if old is not None and old.object_type != "appendable":
                raise CosError(409, "ObjectNotAppendable", "This object is not appendable.")
            length = old.size if old is not None else 0
            if position != length:
                raise CosError(409, "PositionNotEqualToLength", f"position {position} is not the length {length}.")
            body = (self.read(key) if old is not None else b"") + data
        tmp, size, md5 = self._stage(io.BytesIO(body).read, len(body))
        # ETag: the MD5 of the whole content (unverified for appendable objects)
        obj = ObjectMeta(key, size, md5,
                         content_type or (old.content_type if old else "application/octet-stream"), self.clock(),
                         dict(old.meta) if old else {}, dict(old.tags) if old else {}, object_type="appendable")
        return self.commit(tmp, obj, False)

    def head(self, key: str) -> ObjectMeta:
        obj = self.objects.get(key)
        if obj is None:
            raise CosError(404, "NoSuchKey", "The specified key does not exist.")
        return obj

    def exists(self, key: str) -> bool:
        return key in self.objects

    def read(self, key: str) -> bytes:
        self.head(key)
        with open(self.data_path(key), "rb") as fh:
            return fh.read()

    def open_body(self, key: str) -> Tuple[ObjectMeta, BinaryIO]:
        """The object's metadata and its body opened together, under the index lock: an overwrite
        replaces the file (`_place`, os.replace), not the one opened here, so a GET never pairs one
        version's length with another version's bytes (COS answers one version whole)."""
        with self.lock:
            obj = self.head(key)
            return obj, open(self.data_path(key), "rb")

    # -- where bodies live: files here, bytes in MemoryBucket ---------------
    def _stage(self, read: Callable[[int], bytes], length: Optional[int]) -> Tuple[Any, int, str]:
        """Write a body aside: (its handle for `commit`, size, md5 hex)."""
        tmp = os.path.join(self.root, "tmp", uuid.uuid4().hex)
        size, md5 = write_stream(tmp, read, length)
        return tmp, size, md5

    def _stage_copy(self, src: "Bucket", src_key: str) -> Any:
        tmp = os.path.join(self.root, "tmp", uuid.uuid4().hex)
        shutil.copyfile(src.data_path(src_key), tmp)
        return tmp

    def _staged_bytes(self, tmp: Any) -> bytes:
        with open(tmp, "rb") as fh:
            return fh.read()

    def _place(self, tmp: Any, key: str) -> None:
        os.makedirs(os.path.dirname(self._base(key)), exist_ok=True)
        os.replace(tmp, self.data_path(key))

    def _discard(self, tmp: Any) -> None:
        os.unlink(tmp)

    def _remove(self, key: str) -> None:
        try:
            os.unlink(self.data_path(key))
        except FileNotFoundError:
            pass

    def delete(self, key: str) -> bool:
        with self.lock:
            if self.objects.pop(key, None) is None:
                return False
            index = bisect.bisect_left(self.keys, key)
            if index < len(self.keys) and self.keys[index] == key:
                self.keys.pop(index)
            self.journal.append({"op": "delete", "key": key})
            self._remove(key)
        return True

    def set_tags(self, key: str, tags: Dict[str, str]) -> None:
        with self.lock:
            obj = self.head(key)
            obj.tags = dict(tags)
            self.journal.append({"op": "tags", "key": key, "tags": obj.tags})

    def list(self, prefix: str = "", marker: str = "", max_keys: int = 1000, delimiter: str = ""
             ) -> Tuple[List[ObjectMeta], List[str], bool, str]:
        """(contents, common prefixes, truncated, next marker) like GET Bucket v1."""
        contents: List[ObjectMeta] = []
        prefixes: List[str] = []
        with self.lock:
            start = bisect.bisect_right(self.keys, marker) if marker else 0
            if marker and delimiter and marker.startswith(prefix) and marker.endswith(delimiter) \
                    and delimiter in marker[len(prefix):]:
                start = bisect.bisect_left(self.keys, marker + "\U0010ffff")  # marker was a common prefix
            index = max(start, bisect.bisect_left(self.keys, prefix))
            last = ""
            truncated = False
            while index < len(self.keys):
                key = self.keys[index]
                if not key.startswith(prefix):
                    break
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                if delimiter:
                    cut = key.find(delimiter, len(prefix))
                    if cut >= 0:
                        common = key[:cut + len(delimiter)]
                        prefixes.append(common)
                        last = common
                        # skip every key under this common prefix
                        index = bisect.bisect_left(self.keys, common + "\U0010ffff")
                        continue
                contents.append(self.objects[key])
                last = key
                index += 1
        return contents, prefixes, truncated, last if truncated else ""


class _NoJournal:
    def append(self, entry: Dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryBucket(Bucket):
    """The same bucket with bodies kept as bytes and nothing persisted (localcloud/memory.py, the fast tiers):
    the rules above are shared; only where a body lives differs. No multipart uploads here (they stage
    parts on disk)."""

    def __init__(self, name: str, region: str, clock: Optional[Clock] = None) -> None:
        self.bodies: Dict[str, bytes] = {}
        super().__init__(name, region, "", clock)

    def _load(self) -> None:
        self.journal = _NoJournal()  # type: ignore[assignment]

    def data_path(self, key: str) -> str:
        raise CosError(501, "NotImplemented", "an in-memory bucket has no files (use the HTTP local cloud)")

    def read(self, key: str) -> bytes:
        self.head(key)
        return self.bodies[key]

    def _stage(self, read: Callable[[int], bytes], length: Optional[int]) -> Tuple[Any, int, str]:
        chunks: List[bytes] = []
        size, md5 = copy_stream(read, length, chunks.append)
        return b"".join(chunks), size, md5

    def _stage_copy(self, src: "Bucket", src_key: str) -> Any:
        return src.read(src_key)

    def _staged_bytes(self, tmp: Any) -> bytes:
        return tmp

    def _place(self, tmp: Any, key: str) -> None:
        self.bodies[key] = tmp

    def _discard(self, tmp: Any) -> None:
        pass

    def _remove(self, key: str) -> None:
        self.bodies.pop(key, None)


class ObjectStore:
    """All buckets of the local cloud, by `name-APPID`; on disk under `root`, or in memory when it is None."""

    def __init__(self, root: Optional[str], region: str) -> None:
        self.root, self.region = root, region
        self.buckets: Dict[str, Bucket] = {}
        self.clock = Clock()  # one clock for every bucket

    def add_bucket(self, name: str) -> Bucket:
        if not re.match(r"^[a-z0-9][a-z0-9-]*-\d+$", name):
            raise ValueError(f"bucket name must be <name>-<APPID>, lower-case: {name!r}")
        if name not in self.buckets:
            self.buckets[name] = Bucket(name, self.region, os.path.join(self.root, name), self.clock) \
                if self.root is not None else MemoryBucket(name, self.region, self.clock)
        return self.buckets[name]

    def close(self) -> None:
        for bucket in self.buckets.values():
            bucket.journal.close()

    def bucket(self, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        return bucket
