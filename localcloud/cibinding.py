"""Which buckets are bound to Cloud Infinite, have media processing on, and AI content recognition.

`GET /cibuckets` (DescribeCIBuckets, https://cloud.tencent.com/document/product/460/97527): the
buckets bound to CI; query `bucketName` (prefix), `tagKey`, `region`, `pageNumber`, `pageSize`;
answer `CIBucketList` entries BucketId, BucketName, AppId, CreateTime, Region, Status (the names
of cos-go-sdk-v5 ci.go `DescribeCIBuckets` / `CIBucketList`; cos-python-sdk-v5 has no method of
its own: `ci_get_bucket(Path="/cibuckets")` sends it, signed). Status is "on" here, the word
of "查询存储桶绑定数据万象状态" (460/97481, CIStatus on/off/unbinding); not checked live.

`GET /mediabucket` (DescribeMediaBuckets, https://cloud.tencent.com/document/product/460/38914)
and `GET /ai_bucket` (https://cloud.tencent.com/document/product/460/79594) on the host
`ci.<region>.myqcloud.com`, COS-signed, with `regions`, `bucketNames`, `bucketName`,
`pageNumber`, `pageSize` in the query: what cos-python-sdk-v5 sends from
`ci_get_media_bucket` / `ci_get_ai_bucket` (qcloud_cos/cos_client.py `ci_get_bucket`).
The answer lists `MediaBucketList` (resp. `AiBucketList`) entries with BucketId, Name,
Region, CreateTime; the element names are the documented ones, not checked against
the live service. Every bucket of the local cloud is bound and AI-enabled, except the
names in `LocalCloud.ci_unbound` (not bound: in no list) and `LocalCloud.ci_ai_off` (bound,
AI content recognition off), so `cos-matting doctor` can be shown failing each way.
"""
from __future__ import annotations

import time
from typing import Any

from shared import xmlcodec

from .auth import AuthError, verify
from .replies import Reply

PATHS = ("/cibuckets", "/mediabucket", "/ai_bucket")  # served on ci.<region>.myqcloud.com


class _Headers(dict):
    """Case-insensitive, with the port cut from Host: with no Host header of its own (no bucket) the SDK
    signs the URL's hostname, and only a client pointed at a non-default port (this cloud) sends one."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


def describe(handler: Any, cloud: Any) -> Reply:
    headers = _Headers({k.lower(): v for k, v in handler.headers.items()})
    headers["host"] = (headers.get("host") or "").split(":")[0]
    try:
        verify(handler.command, handler.raw_path, handler.query, headers, cloud.credentials)
    except AuthError as exc:
        body = xmlcodec.dump("Response", {"Code": exc.code, "Message": exc.message, "RequestId": handler.request_id})
        return Reply(exc.status, {"Content-Type": "application/xml"}, body)
    q = handler.query
    names = [n for n in (q.get("bucketNames") or "").split(",") if n]
    regions = [r for r in (q.get("regions") or "").split(",") if r]
    off = set(getattr(cloud, "ci_unbound", set()))
    if handler.raw_path == "/ai_bucket":
        off |= set(getattr(cloud, "ci_ai_off", set()))
    regions += [r for r in [q.get("region") or ""] if r]  # /cibuckets names it `region`
    found = [b for b in sorted(cloud.store.buckets) if b not in off
             and (not names or b in names) and b.startswith(q.get("bucketName") or "")
             and (not regions or cloud.region in regions)]
    page, size = int(q.get("pageNumber") or 1), int(q.get("pageSize") or 10)
    created = time.strftime("%Y-%m-%dT%H:%M:%S+0800")
    if handler.raw_path == "/cibuckets":
        listed = [{"BucketId": b, "BucketName": b, "AppId": b.rsplit("-", 1)[-1], "CreateTime": created,
                   "Region": cloud.region, "Status": "on"} for b in found[(page - 1) * size:page * size]]
    else:
        listed = [{"BucketId": b, "Name": b, "Region": cloud.region, "CreateTime": created}
                  for b in found[(page - 1) * size:page * size]]
    field = {"/ai_bucket": "AiBucketList", "/cibuckets": "CIBucketList"}.get(handler.raw_path, "MediaBucketList")
    content = {"RequestId": handler.request_id, "TotalCount": str(len(found)), "PageNumber": str(page),
               "PageSize": str(size), field: listed or None}
    return Reply(200, {"Content-Type": "application/xml"}, xmlcodec.dump("Response", content))
