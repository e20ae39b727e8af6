"""The COS XML API requests of one bucket, answered for the HTTP handler (`route`).

Each function takes the request handler (`h`: headers, query, body readers, the cloud) and
returns a `Reply`. Wire shapes follow the COS API pages cited next to each request (objects,
listing, tags), in `localcloud.multipart` (multipart uploads), and what cos-python-sdk-v5
reads back (`put_object`, `get_object`, `head_object`, `copy_object`, `list_objects`,
`put/get/delete_object_tagging`, `create_multipart_upload`, `upload_part`, `upload_part_copy`,
`complete_multipart_upload`, `list_parts`, `list_multipart_uploads`, `put/get_bucket_versioning`
in qcloud_cos/cos_client.py).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote

from shared import xmlcodec

from .cos import Bucket, CosError, ObjectMeta, check_key, copy_tags, validate_tags
from .replies import Reply, http_date, iso_date, xml_reply

# The SDK connects to ip:port and still sends `Host: <bucket>.cos.<region>.myqcloud.com` (CI too).
# `<bucket>.cos.<region>.localhost` is the local cloud's own alias, for browsers: they resolve every
# *.localhost name to loopback (RFC 6761 section 6.3), so a presigned URL (`cos-matting dashboard`)
# can name the bucket in its Host as COS's does.
HOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]*-\d+)\.(?:cos|ci)\.(?P<region>[a-z0-9-]+)\.(?:myqcloud\.com|localhost)$")
OWNER = {"ID": "qcs::cam::uin/1250000000:uin/1250000000", "DisplayName": "1250000000"}
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")


def route(h: Any, bucket: str, path: str) -> Tuple[str, Callable[[], Reply]]:
    """(the route's name, counted in `LocalCloud.requests` and matched by faults; the call answering it)."""
    key = path[1:]
    method, q = h.command, h.query
    if not key:
        if method == "GET" and "uploads" in q:
            return "cos.multipart.list_uploads", lambda: list_uploads(h, bucket)
        if "versioning" in q and method in ("GET", "PUT"):
            return f"cos.versioning.{method.lower()}", lambda: versioning(h, bucket)
        if method == "GET":
            return "cos.list", lambda: _list(h, bucket)
        if method == "HEAD":  # HeadBucket (436/7735): 200 when it exists and the caller may read it
            return "cos.head_bucket", lambda: Reply(200)
        raise CosError(405, "MethodNotAllowed", f"{method} on the bucket is not supported by the local cloud")
    if "tagging" in q:
        route = {"PUT": "cos.tagging.put", "GET": "cos.tagging.get", "DELETE": "cos.tagging.delete"}.get(method)
        if route is None:
            raise CosError(405, "MethodNotAllowed", f"{method} ?tagging")
        return route, lambda: _tagging(h, bucket, key)
    if method in ("PUT", "POST"):
        check_key(key)
    if "uploadId" in q:
        multipart = {"PUT": ("cos.multipart.part", upload_part),
                     "POST": ("cos.multipart.complete", complete),
                     "DELETE": ("cos.multipart.abort", abort),
                     "GET": ("cos.multipart.list_parts", list_parts)}
        if method not in multipart or (method == "PUT" and "partNumber" not in q):
            raise CosError(405, "MethodNotAllowed", f"{method} ?uploadId")
        route, fn = multipart[method]
        return route, lambda: fn(h, bucket, key)
    if method == "POST" and "uploads" in q:
        return "cos.multipart.initiate", lambda: initiate(h, bucket, key)
    if method == "PUT" and h.headers.get("x-cos-copy-source"):
        return "cos.copy", lambda: _copy(h, bucket, key)
    if method == "POST" and "append" in q:
        return "cos.append", lambda: _append(h, bucket, key)
    actions = {"PUT": ("cos.put", _put), "GET": ("cos.get", _get), "HEAD": ("cos.head", _head),
               "DELETE": ("cos.delete", _delete)}
    if method not in actions:
        raise CosError(405, "MethodNotAllowed", f"{method} on an object is not supported by the local cloud")
    route, fn = actions[method]
    return route, lambda: fn(h, bucket, key)


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


# -- objects, listing, tags -----------------------------------------------------
def object_headers(obj: ObjectMeta) -> Dict[str, str]:
    headers = {"ETag": f'"{obj.etag}"', "Content-Type": obj.content_type, "Last-Modified": http_date(obj.last_modified),
               "Accept-Ranges": "bytes", "x-cos-storage-class": "STANDARD"}
    headers.update(obj.meta)
    if obj.tags:
        headers["x-cos-tagging-count"] = str(len(obj.tags))
    if obj.version_id:  # HEAD/GET Object on a versioned bucket (436/7745)
        headers["x-cos-version-id"] = obj.version_id
    if obj.object_type:
        headers["x-cos-object-type"] = obj.object_type
    return headers


def _put(h: Any, bucket: str, key: str) -> Reply:
    tags = None
    if h.headers.get("x-cos-tagging"):
        tags = validate_tags(parse_qsl(h.headers["x-cos-tagging"], keep_blank_values=True))
    read, length = h.body_reader()
    obj = h.cloud.store.bucket(bucket).put_stream(
        key, read, length, h.headers.get("Content-Type") or "", h.user_meta(), tags, h.forbid_overwrite())
    h.close_connection = False  # whole body read: keep-alive is safe
    h.cloud.object_created(bucket, obj, "cos:ObjectCreated:Put")
    return Reply(200, {"ETag": f'"{obj.etag}"', **_version_header(obj.version_id)})


def _append(h: Any, bucket: str, key: str) -> Reply:
    """APPEND Object (436/7741). No trigger event: the SCF COS trigger's event list (583/9707)
    has Put, Post, Copy, CompleteMultipartUpload, Origin and Replication, no append."""
    try:
        position = int(h.query.get("position") or "")
    except ValueError:
        raise CosError(400, "InvalidArgument", "position must be an integer") from None
    read, length = h.body_reader()
    data = read(length) if length is not None else b"".join(iter(lambda: read(1 << 16), b""))
    h.close_connection = False
    obj = h.cloud.store.bucket(bucket).append(key, data, position, h.headers.get("Content-Type") or "")
    return Reply(200, {"ETag": f'"{obj.etag}"', "x-cos-next-append-position": str(obj.size)})


def _copy(h: Any, bucket: str, key: str) -> Reply:
    src, src_key = copy_source(h)
    replace = None
    if (h.headers.get("x-cos-metadata-directive") or "Copy").lower() == "replaced":
        replace = (h.headers.get("Content-Type") or "", h.user_meta())
    tags = copy_tags(h.headers.get("x-cos-tagging-directive"), h.headers.get("x-cos-tagging"))
    obj = h.cloud.store.bucket(bucket).copy_from(src, src_key, key, replace, h.forbid_overwrite(), tags)
    h.cloud.object_created(bucket, obj, "cos:ObjectCreated:Copy")
    return xml_reply(200, "CopyObjectResult", {"ETag": f'"{obj.etag}"', "LastModified": iso_date(obj.last_modified)},
                     _version_header(obj.version_id))


def _head(h: Any, bucket: str, key: str) -> Reply:
    obj = h.cloud.store.bucket(bucket).head(key)
    return Reply(200, object_headers(obj), file=(h.cloud.store.bucket(bucket).data_path(key), 0, obj.size))


def _get(h: Any, bucket: str, key: str) -> Reply:
    obj, body = h.cloud.store.bucket(bucket).open_body(key)
    try:
        return _get_range(h, obj, body)
    except CosError:
        body.close()
        raise


def _get_range(h: Any, obj: ObjectMeta, body: Any) -> Reply:
    headers = object_headers(obj)
    start, count, status = 0, obj.size, 200
    rng = h.headers.get("Range")
    if rng:
        match = re.match(r"^bytes=(\d*)-(\d*)$", rng.strip())
        if not match or (not match.group(1) and not match.group(2)):
            raise CosError(416, "InvalidRange", f"Range {rng!r} is not satisfiable")
        first, last = match.group(1), match.group(2)
        if first:
            start = int(first)
            end = min(int(last), obj.size - 1) if last else obj.size - 1
        else:
            start = max(obj.size - int(last), 0)
            end = obj.size - 1
        if start >= obj.size or end < start:
            raise CosError(416, "InvalidRange", f"Range {rng!r} is not satisfiable for {obj.size} bytes")
        count, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
    return Reply(status, headers, file=(body, start, count))


def _delete(h: Any, bucket: str, key: str) -> Reply:
    h.cloud.store.bucket(bucket).delete(key)
    return Reply(204)


def _list(h: Any, bucket: str) -> Reply:
    q = h.query
    try:
        max_keys = int(q.get("max-keys") or 1000)
    except ValueError:
        raise CosError(400, "InvalidArgument", "max-keys must be an integer") from None
    max_keys = max(0, min(max_keys, 1000))
    prefix, marker, delimiter = q.get("prefix", ""), q.get("marker", ""), q.get("delimiter", "")
    contents, prefixes, truncated, next_marker = h.cloud.store.bucket(bucket).list(prefix, marker, max_keys, delimiter)
    enc = _enc(h)
    result: Dict[str, Any] = {"Name": bucket, "EncodingType": q.get("encoding-type") or None,
                              "Prefix": enc(prefix), "Marker": enc(marker), "MaxKeys": str(max_keys),
                              "Delimiter": enc(delimiter) or None, "IsTruncated": "true" if truncated else "false"}
    if truncated:
        result["NextMarker"] = enc(next_marker)
    result["CommonPrefixes"] = [{"Prefix": enc(p)} for p in prefixes] or None
    result["Contents"] = [{"Key": enc(o.key), "LastModified": iso_date(o.last_modified), "ETag": f'"{o.etag}"',
                           "Size": str(o.size), "Owner": {"ID": "1250000000", "DisplayName": "1250000000"},
                           "StorageClass": "STANDARD"} for o in contents] or None
    return xml_reply(200, "ListBucketResult", result)


def _tagging(h: Any, bucket: str, key: str) -> Reply:
    b = h.cloud.store.bucket(bucket)
    if h.command == "GET":
        tags = b.head(key).tags
        return xml_reply(200, "Tagging", {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}})
    if h.command == "DELETE":
        b.set_tags(key, {})
        return Reply(204)
    raw = h.body()
    try:
        root, content = xmlcodec.parse(raw)
    except xmlcodec.XMLError as exc:
        raise CosError(400, "MalformedXML", str(exc)) from None
    tag_set = content.get("TagSet") if isinstance(content, dict) else None
    if root != "Tagging" or not isinstance(tag_set, (dict, str)):
        raise CosError(400, "MalformedXML", "body must be <Tagging><TagSet><Tag>...</Tag></TagSet></Tagging>")
    items = (tag_set.get("Tag") if isinstance(tag_set, dict) else None) or []
    items = items if isinstance(items, list) else [items]
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise CosError(400, "MalformedXML", "each <Tag> needs <Key> and <Value>")
        value = item.get("Value", "")
        pairs.append((item["Key"], value if isinstance(value, str) else ""))
    b.head(key)
    b.set_tags(key, validate_tags(pairs))
    return Reply(200)


# -- multipart ------------------------------------------------------------------
def initiate(h: Any, bucket: str, key: str) -> Reply:
    tags = validate_tags(parse_qsl(h.headers["x-cos-tagging"], keep_blank_values=True)) \
        if h.headers.get("x-cos-tagging") else None
    upload = h.cloud.store.bucket(bucket).uploads.initiate(key, h.headers.get("Content-Type") or "", h.user_meta(),
                                                           tags)
    return xml_reply(200, "InitiateMultipartUploadResult", {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id})


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
    return xml_reply(200, "CopyPartResult", {"ETag": f'"{part.etag}"', "LastModified": iso_date(part.last_modified)})


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
    obj = b.uploads.complete(h.query["uploadId"], key, listed, h.forbid_overwrite())
    h.cloud.object_created(bucket, obj, "cos:ObjectCreated:CompleteMultipartUpload")
    location = f"{bucket}.cos.{b.region}.myqcloud.com/{quote(key, safe='/')}"
    return xml_reply(200, "CompleteMultipartUploadResult",
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
        "Part": [{"PartNumber": str(p.number), "LastModified": iso_date(p.last_modified), "ETag": f'"{p.etag}"',
                  "Size": str(p.size)} for p in parts] or None,
    }
    return xml_reply(200, "ListPartsResult", result)


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
                    "Owner": OWNER, "Initiated": iso_date(u.initiated)} for u in uploads] or None,
    }
    return xml_reply(200, "ListMultipartUploadsResult", result)


# -- versioning -----------------------------------------------------------------
def versioning(h: Any, bucket: str) -> Reply:
    """GET/PUT /?versioning (https://cloud.tencent.com/document/product/436/19889 and 436/19888):
    a bucket that never had versioning answers with no <Status>."""
    b = h.cloud.store.bucket(bucket)
    if h.command == "GET":
        return xml_reply(200, "VersioningConfiguration", {"Status": b.versioning or None})
    try:
        root, content = xmlcodec.parse(h.body())
    except xmlcodec.XMLError as exc:
        raise CosError(400, "MalformedXML", str(exc)) from None
    status: Optional[str] = content.get("Status") if isinstance(content, dict) else None
    if root != "VersioningConfiguration" or not isinstance(status, str):
        raise CosError(400, "MalformedXML", "body must be <VersioningConfiguration><Status>Enabled|Suspended</Status>")
    b.set_versioning(status)
    return Reply(200)
