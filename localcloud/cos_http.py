"""The COS multipart-upload and bucket-versioning requests, answered for the HTTP handler.

Each function takes the request handler (`h`: headers, query, body readers, the cloud) and
returns a `Reply`. Wire shapes follow the COS API pages cited in `localcloud.multipart` and
what cos-python-sdk-v5 reads back (`create_multipart_upload`, `upload_part`,
`upload_part_copy`, `complete_multipart_upload`, `list_parts`, `list_multipart_uploads`,
`put/get_bucket_versioning` in qcloud_cos/cos_client.py).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote

from shared import xmlcodec

from .cos import Bucket, CosError, validate_tags
from .replies import Reply, _iso, _xml

# The SDK connects to ip:port and still sends `Host: <bucket>.cos.<region>.myqcloud.com` (CI too).
HOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]*-\d+)\.(?:cos|ci)\.(?P<region>[a-z0-9-]+)\.myqcloud\.com$")
OWNER = {"ID": "qcs::cam::uin/1250000000:uin/1250000000", "DisplayName": "1250000000"}
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _int(h: Any, name: str, default: int, low: int, high: int) -> int:
    raw = h.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CosError(400, "InvalidArgument", f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise CosError(400, "InvalidArgument", f"{name} must be {low}-{high}, got {value}")
    return value


def _enc(h: Any):
    return (lambda s: quote(s, safe="/")) if h.query.get("encoding-type") == "url" else (lambda s: s)


def _version_header(version_id: str) -> Dict[str, str]:
    return {"x-cos-version-id": version_id} if version_id else {}


def copy_source(h: Any) -> Tuple[Bucket, str]:
    """The bucket and key named by `x-cos-copy-source` (`<bucket>.cos.<region>.myqcloud.com/<key>`)."""
    source = unquote(h.headers["x-cos-copy-source"]).split("?")[0]
    host, _, src_key = source.partition("/")
    match = HOST_RE.match(host.lower().split(":")[0])  # a port only appears when a test points the SDK here
    if not match or not src_key:
        raise CosError(400, "InvalidArgument", f"x-cos-copy-source is malformed: {source!r}")
    return h.cloud.store.bucket(match.group("bucket")), src_key


# -- multipart ------------------------------------------------------------------
def initiate(h: Any, bucket: str, key: str) -> Reply:
    tags = validate_tags(parse_qsl(h.headers["x-cos-tagging"], keep_blank_values=True)) \
        if h.headers.get("x-cos-tagging") else None
    upload = h.cloud.store.bucket(bucket).uploads.initiate(key, h.headers.get("Content-Type") or "", h._user_meta(),
                                                           tags)
    return _xml(200, "InitiateMultipartUploadResult", {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id})


def upload_part(h: Any, bucket: str, key: str) -> Reply:
    number = _int(h, "partNumber", 0, 1, 10000)
    uploads = h.cloud.store.bucket(bucket).uploads
    if h.headers.get("x-cos-copy-source"):
        return _copy_part(h, uploads, key, number)
    read, length = h.body_reader()
    part = uploads.upload_part(h.query["uploadId"], key, number, read, length)
    h.close_connection = False  # whole body read: keep-alive is safe
    return Reply(200, {"ETag": f'"{part.etag}"'})


def _copy_part(h: Any, uploads: Any, key: str, number: int) -> Reply:
    src, src_key = copy_source(h)
    obj = src.head(src_key)
    start, count = 0, obj.size
    rng = (h.headers.get("x-cos-copy-source-range") or "").strip()
    if rng:  # 436/8287: bytes=first-last, both given, inside the source
        match = RANGE_RE.match(rng)
        if not match or int(match.group(1)) > int(match.group(2)) or int(match.group(2)) >= obj.size:
            raise CosError(400, "InvalidArgument", f"x-cos-copy-source-range {rng!r} is not valid for "
                                                   f"{obj.size} bytes (bytes=first-last)")
        start, count = int(match.group(1)), int(match.group(2)) - int(match.group(1)) + 1
    part = uploads.copy_part(h.query["uploadId"], key, number, src.data_path(src_key), start, count)
    return _xml(200, "CopyPartResult", {"ETag": f'"{part.etag}"', "LastModified": _iso(part.last_modified)})


def complete(h: Any, bucket: str, key: str) -> Reply:
    try:
        root, content = xmlcodec.parse(h.body())
    except xmlcodec.XMLError as exc:
        raise CosError(400, "MalformedXML", str(exc)) from None
    items = content.get("Part") if isinstance(content, dict) else None
    if root != "CompleteMultipartUpload" or items is None:
        raise CosError(400, "MalformedXML", "body must be <CompleteMultipartUpload><Part>...</Part></CompleteMultipartUpload>")
    listed: List[Tuple[int, str]] = []
    for item in items if isinstance(items, list) else [items]:
        try:
            listed.append((int(item["PartNumber"]), str(item["ETag"])))
        except (TypeError, KeyError, ValueError):
            raise CosError(400, "MalformedXML", "each <Part> needs <PartNumber> and <ETag>") from None
    b = h.cloud.store.bucket(bucket)
    obj = b.uploads.complete(h.query["uploadId"], key, listed, h._forbid())
    h.cloud._object_created(bucket, obj, "cos:ObjectCreated:CompleteMultipartUpload")
    location = f"{bucket}.cos.{b.region}.myqcloud.com/{quote(key, safe='/')}"
    return _xml(200, "CompleteMultipartUploadResult",
                {"Location": location, "Bucket": bucket, "Key": key, "ETag": f'"{obj.etag}"'},
                _version_header(obj.version_id))


def abort(h: Any, bucket: str, key: str) -> Reply:
    h.cloud.store.bucket(bucket).uploads.abort(h.query["uploadId"], key)
    return Reply(204)


def list_parts(h: Any, bucket: str, key: str) -> Reply:
    marker = _int(h, "part-number-marker", 0, 0, 10000)
    max_parts = _int(h, "max-parts", 1000, 1, 1000)
    upload, parts, truncated = h.cloud.store.bucket(bucket).uploads.list_parts(h.query["uploadId"], key, marker,
                                                                               max_parts)
    enc = _enc(h)
    result: Dict[str, Any] = {
        "Bucket": bucket, "EncodingType": h.query.get("encoding-type") or None, "Key": enc(key),
        "UploadId": upload.upload_id, "Initiator": OWNER, "Owner": OWNER, "StorageClass": "STANDARD",
        "PartNumberMarker": str(marker), "MaxParts": str(max_parts), "IsTruncated": "true" if truncated else "false",
        "NextPartNumberMarker": str(parts[-1].number) if truncated else None,
        "Part": [{"PartNumber": str(p.number), "LastModified": _iso(p.last_modified), "ETag": f'"{p.etag}"',
                  "Size": str(p.size)} for p in parts] or None,
    }
    return _xml(200, "ListPartsResult", result)


def list_uploads(h: Any, bucket: str) -> Reply:
    q = h.query
    max_uploads = _int(h, "max-uploads", 1000, 1, 1000)
    uploads, truncated = h.cloud.store.bucket(bucket).uploads.list_uploads(
        q.get("prefix", ""), q.get("key-marker", ""), q.get("upload-id-marker", ""), max_uploads)
    enc = _enc(h)
    result: Dict[str, Any] = {
        "Bucket": bucket, "EncodingType": q.get("encoding-type") or None, "Prefix": enc(q.get("prefix", "")),
        "KeyMarker": enc(q.get("key-marker", "")), "UploadIdMarker": q.get("upload-id-marker", ""),
        "MaxUploads": str(max_uploads), "IsTruncated": "true" if truncated else "false",
        "NextKeyMarker": enc(uploads[-1].key) if truncated else None,
        "NextUploadIdMarker": uploads[-1].upload_id if truncated else None,
        "Upload": [{"Key": enc(u.key), "UploadId": u.upload_id, "StorageClass": "STANDARD", "Initiator": OWNER,
                    "Owner": OWNER, "Initiated": _iso(u.initiated)} for u in uploads] or None,
    }
    return _xml(200, "ListMultipartUploadsResult", result)


# -- versioning -----------------------------------------------------------------
def versioning(h: Any, bucket: str) -> Reply:
    """GET/PUT /?versioning (https://cloud.tencent.com/document/product/436/19889 and 436/19888):
    a bucket that never had versioning answers with no <Status>."""
    b = h.cloud.store.bucket(bucket)
    if h.command == "GET":
        return _xml(200, "VersioningConfiguration", {"Status": b.versioning or None})
    try:
        root, content = xmlcodec.parse(h.body())
    except xmlcodec.XMLError as exc:
        raise CosError(400, "MalformedXML", str(exc)) from None
    status: Optional[str] = content.get("Status") if isinstance(content, dict) else None
    if root != "VersioningConfiguration" or not isinstance(status, str):
        raise CosError(400, "MalformedXML", "body must be <VersioningConfiguration><Status>Enabled|Suspended</Status>")
    b.set_versioning(status)
    return Reply(200)
