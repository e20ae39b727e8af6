"""COS multipart uploads for one emulated bucket: initiate, parts, copy parts, complete, abort, list.

What COS documents, and what is enforced here:
- Initiate `POST /<key>?uploads` answers `InitiateMultipartUploadResult{Bucket,Key,UploadId}`
  (https://cloud.tencent.com/document/product/436/7746).
- Upload Part `PUT /<key>?partNumber=&uploadId=`: part numbers 1-10000, the part's ETag is
  its MD5, the same number uploaded again replaces the part; parts are 1 MB to 5 GB, the last
  one may be smaller (https://cloud.tencent.com/document/product/436/7750; the SDK's
  `complete_multipart_upload` docstring: "除最后一块分块块大小必须大于等于1MB,否则会返回错误").
- Complete `POST /<key>?uploadId=` with `<CompleteMultipartUpload><Part>...`: parts not in
  ascending order -> 400 InvalidPartOrder; part numbers not consecutive (or unknown, or an
  ETag that does not match) -> 400 InvalidPart; unknown UploadId -> 404 NoSuchUpload
  (https://cloud.tencent.com/document/product/436/7742). A part under 1 MB that is not the
  last -> 400 EntityTooSmall (the code S3 and the COS error-code list use).
- The object's ETag is `"<md5 of the concatenated binary part MD5s>-<number of parts>"`
  (S3's multipart rule, which COS follows), not the MD5 of the content.
- Abort `DELETE ?uploadId` (436/7740), List Parts `GET ?uploadId` (436/7747), List Multipart
  Uploads `GET /?uploads` (436/7736), Upload Part - Copy `PUT ?partNumber&uploadId` with
  `x-cos-copy-source` and `x-cos-copy-source-range: bytes=first-last` (436/8287).

Uploads in progress live under `<bucket root>/mpu/<UploadId>/`, so a restarted local cloud
still knows them (the SDK's `upload_file` resumes an upload it finds with ListParts).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from .cos import CHUNK, CosError, ObjectMeta, check_key, write_stream

if TYPE_CHECKING:
    from .cos import Bucket

MIN_PART = 1 << 20  # every part but the last (436/7750)
MAX_PART_NUMBER = 10000


@dataclass
class Part:
    number: int
    size: int
    etag: str  # md5 hex of the part, unquoted
    last_modified: float


@dataclass
class Upload:
    upload_id: str
    key: str
    initiated: float
    content_type: str = ""
    meta: Dict[str, str] = field(default_factory=dict)
    tags: Dict[str, str] = field(default_factory=dict)
    parts: Dict[int, Part] = field(default_factory=dict)


def multipart_etag(part_md5s: List[str]) -> str:
    """`<md5 of the binary part MD5s concatenated>-<n>`, unquoted."""
    joined = b"".join(bytes.fromhex(m) for m in part_md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_md5s)}"


class MultipartUploads:
    """The multipart uploads in progress in one bucket."""

    def __init__(self, bucket: "Bucket") -> None:
        self.bucket = bucket
        self.root = os.path.join(bucket.root, "mpu")
        self.lock = threading.Lock()
        self.uploads: Dict[str, Upload] = {}
        os.makedirs(self.root, exist_ok=True)
        self._load()

    def _dir(self, upload_id: str) -> str:
        return os.path.join(self.root, upload_id)

    def _load(self) -> None:
        for upload_id in os.listdir(self.root):
            try:
                with open(os.path.join(self._dir(upload_id), "upload.json"), encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                shutil.rmtree(self._dir(upload_id), ignore_errors=True)
                continue
            parts = {int(n): Part(**p) for n, p in data.pop("parts", {}).items()
                     if os.path.exists(self._part_path(upload_id, int(n)))}
            self.uploads[upload_id] = Upload(**data, parts=parts)

    def _save(self, upload: Upload) -> None:
        """Caller holds the lock. Written to a temp file and renamed: never half a manifest."""
        path = os.path.join(self._dir(upload.upload_id), "upload.json")
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(asdict(upload), fh)
        os.replace(path + ".tmp", path)

    def _part_path(self, upload_id: str, number: int) -> str:
        return os.path.join(self._dir(upload_id), f"{number}.part")

    def get(self, upload_id: str, key: str) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise CosError(404, "NoSuchUpload", "The specified upload does not exist.")
        return upload

    # -- operations -------------------------------------------------------
    def initiate(self, key: str, content_type: str = "", meta: Optional[Dict[str, str]] = None,
                 tags: Optional[Dict[str, str]] = None) -> Upload:
        check_key(key)
        upload = Upload(time.strftime("%Y%m%d") + uuid.uuid4().hex, key, time.time(), content_type,
                        dict(meta or {}), dict(tags or {}))
        os.makedirs(self._dir(upload.upload_id))
        with self.lock:
            self.uploads[upload.upload_id] = upload
            self._save(upload)
        return upload

    def _store_part(self, upload_id: str, key: str, number: int,
                    write: Callable[[str], Tuple[int, str]]) -> Part:
        if not 1 <= number <= MAX_PART_NUMBER:
            raise CosError(400, "InvalidArgument", f"partNumber must be 1-{MAX_PART_NUMBER}, got {number}")
        self.get(upload_id, key)
        tmp = os.path.join(self._dir(upload_id), f".{uuid.uuid4().hex}.tmp")
        try:
            size, etag = write(tmp)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        with self.lock:
            upload = self.get(upload_id, key)  # aborted meanwhile: NoSuchUpload
            os.replace(tmp, self._part_path(upload_id, number))
            part = Part(number, size, etag, time.time())
            upload.parts[number] = part
            self._save(upload)
        return part

    def upload_part(self, upload_id: str, key: str, number: int, read: Callable[[int], bytes],
                    length: Optional[int]) -> Part:
        return self._store_part(upload_id, key, number, lambda tmp: write_stream(tmp, read, length))

    def copy_part(self, upload_id: str, key: str, number: int, source_path: str, start: int, count: int) -> Part:
        def write(tmp: str) -> Tuple[int, str]:
            md5, left = hashlib.md5(), count
            with open(source_path, "rb") as src, open(tmp, "wb") as out:
                src.seek(start)
                while left > 0:
                    chunk = src.read(min(CHUNK, left))
                    if not chunk:
                        break
                    md5.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
            return count - left, md5.hexdigest()

        return self._store_part(upload_id, key, number, write)

    def abort(self, upload_id: str, key: str) -> None:
        with self.lock:
            self.get(upload_id, key)
            del self.uploads[upload_id]
        shutil.rmtree(self._dir(upload_id), ignore_errors=True)

    def complete(self, upload_id: str, key: str, listed: List[Tuple[int, str]],
                 forbid_overwrite: bool = False) -> ObjectMeta:
        """Check the part list as COS does (436/7742), then assemble the object and commit it."""
        with self.lock:
            upload = self.get(upload_id, key)
            if not listed:
                raise CosError(400, "MalformedXML", "CompleteMultipartUpload lists no <Part>")
            numbers = [n for n, _ in listed]
            if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
                raise CosError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
            if any(b != a + 1 for a, b in zip(numbers, numbers[1:])):
                raise CosError(400, "InvalidPart", "The part numbers are not consecutive.")
            parts: List[Part] = []
            for number, etag in listed:
                part = upload.parts.get(number)
                if part is None or etag.strip().strip('"').lower() != part.etag:
                    raise CosError(400, "InvalidPart",
                                   f"Part {number} was not uploaded or its ETag does not match.")
                parts.append(part)
            for part in parts[:-1]:
                if part.size < MIN_PART:
                    raise CosError(400, "EntityTooSmall",
                                   f"Part {part.number} is {part.size} bytes; every part but the last must be "
                                   f"at least {MIN_PART} bytes.")
            paths = [self._part_path(upload_id, p.number) for p in parts]
            del self.uploads[upload_id]  # taken: a concurrent Complete or Abort sees NoSuchUpload
        tmp = os.path.join(self.bucket.root, "tmp", uuid.uuid4().hex)
        try:
            with open(tmp, "wb") as out:
                for path in paths:
                    with open(path, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
            obj = ObjectMeta(key, sum(p.size for p in parts), multipart_etag([p.etag for p in parts]),
                             upload.content_type or "application/octet-stream", self.bucket.clock(), dict(upload.meta),
                             dict(upload.tags))
            obj = self.bucket.commit(tmp, obj, forbid_overwrite)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            with self.lock:  # refused (e.g. forbid-overwrite): the upload stays, as on COS
                self.uploads[upload_id] = upload
            raise
        shutil.rmtree(self._dir(upload_id), ignore_errors=True)
        return obj

    def list_parts(self, upload_id: str, key: str, marker: int = 0, max_parts: int = 1000
                   ) -> Tuple[Upload, List[Part], bool]:
        with self.lock:
            upload = self.get(upload_id, key)
            parts = [upload.parts[n] for n in sorted(upload.parts) if n > marker]
        return upload, parts[:max_parts], len(parts) > max_parts

    def list_uploads(self, prefix: str = "", key_marker: str = "", upload_id_marker: str = "",
                     max_uploads: int = 1000) -> Tuple[List[Upload], bool]:
        """Uploads by key, then by initiation, after the (key, upload id) markers."""
        with self.lock:
            chosen = sorted((u for u in self.uploads.values() if u.key.startswith(prefix)),
                            key=lambda u: (u.key, u.initiated, u.upload_id))
        if key_marker:
            chosen = [u for u in chosen if u.key > key_marker
                      or (u.key == key_marker and upload_id_marker and u.upload_id > upload_id_marker)]
        return chosen[:max_uploads], len(chosen) > max_uploads
