"""COS trigger events: the raw SCF shape, and the decoded upload it describes."""
from typing import Any, List, Union
from urllib.parse import unquote, unquote_plus, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from .identity import normalise_etag


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class CosObject(_Loose):
    url: str = ""
    meta: dict = Field(default_factory=dict)
    vid: str = ""
    key: str
    size: int = Field(ge=0)


class CosBucket(_Loose):
    region: str = ""
    name: str = Field(min_length=1)
    appid: str = Field(pattern=r"^\d+$")
    s3Region: str = ""
    cosRegion: str = ""


class CosSection(_Loose):
    cosSchemaVersion: str = "1.0"
    cosObject: CosObject
    cosBucket: CosBucket
    cosNotificationId: str = "unknown"


class EventSection(_Loose):
    eventName: str = Field(min_length=1)
    eventVersion: str = "1.0"
    eventTime: int = 0
    eventSource: str = "qcs::cos"
    requestParameters: dict = Field(default_factory=dict)
    eventQueue: str = ""
    reservedInfo: str = ""
    reqid: int = 0


class CosRecord(_Loose):
    cos: CosSection
    event: EventSection


class CosEvent(_Loose):
    Records: List[CosRecord] = Field(min_length=1)


class Upload(BaseModel):
    """What one record says was uploaded, decoded."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    bucket: str  # name-APPID
    appid: str
    region: str
    key: str
    etag: str
    size: int
    event_name: str
    event_time: int = 0
    content_type: str = ""

    @property
    def created(self) -> bool:
        return self.event_name.startswith("cos:ObjectCreated:")


def decode_key(raw_key: str, url: str, appid: str, bucket_name: str) -> str:
    """The object key, from `/<appid>/<bucket>/<key>`.

    Whether the key part is URL-encoded is undocumented: decode only what the
    `url` field proves was encoded, otherwise keep the key as sent.
    """
    part = raw_key
    for lead in (f"/{appid}/{bucket_name}/", f"{appid}/{bucket_name}/"):
        if part.startswith(lead):
            part = part[len(lead):]
            break
    url_path = urlsplit(url).path.lstrip("/") if url else ""
    if not url_path:
        return part
    for truth in (unquote(url_path), unquote_plus(url_path)):
        for candidate in (part, unquote(part), unquote_plus(part)):
            if candidate == truth:
                return candidate
    return part


def uploads(event: CosEvent, region: str = "") -> List[Upload]:
    """The uploads an event describes. Pass the function's `region` (from settings): a trigger
    only binds buckets of its own region, and the official sample event carries neither
    `s3Region` nor `cosRegion`, only a short `region` such as `cd` (COS trigger, 583/9707)."""
    return [to_upload(r, region) for r in event.Records]


def to_upload(record: CosRecord, region: str = "") -> Upload:
    obj, bucket = record.cos.cosObject, record.cos.cosBucket
    name = bucket.name if bucket.name.endswith("-" + bucket.appid) else f"{bucket.name}-{bucket.appid}"
    short = name[: -len(bucket.appid) - 1]
    meta = {k.lower(): v for k, v in obj.meta.items()}
    return Upload(
        bucket=name,
        appid=bucket.appid,
        region=region or bucket.s3Region or (bucket.cosRegion if "-" in bucket.cosRegion else "") or bucket.region,
        key=decode_key(obj.key, obj.url, bucket.appid, short),
        etag=normalise_etag(meta.get("etag", "")),  # a hint only: the HEAD decides (identity.py)
        size=obj.size,
        event_name=record.event.eventName,
        event_time=record.event.eventTime,
        content_type=str(meta.get("content-type", "")),
    )


def parse_event(data: dict) -> CosEvent:
    return CosEvent.model_validate(data)


class Malformed(BaseModel):
    """One record of an event that is not a COS record we can read: it fails alone."""

    index: int
    error: str


def parse_uploads(data: Any, region: str = "") -> List[Union[Upload, Malformed]]:
    """Every record of a trigger event, decoded one by one: a malformed record becomes a
    `Malformed` entry and the others go on. Raises ValueError only for a body that has no
    `Records` list at all (nothing to go on with)."""
    from pydantic import ValidationError

    records = data.get("Records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise ValueError("event has no Records list: not a COS trigger event")
    out: List[Union[Upload, Malformed]] = []
    for index, raw in enumerate(records):
        try:
            out.append(to_upload(CosRecord.model_validate(raw), region))
        except (ValidationError, TypeError, ValueError) as exc:
            detail = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in detail["loc"]) or "record"
            out.append(Malformed(index=index, error=f"Records[{index}].{where}: {detail['msg']}"))
    return out


# The short region codes events carry in `cosBucket.region` (a captured event: "gz").
SHORT_REGIONS = {"ap-guangzhou": "gz", "ap-shanghai": "sh", "ap-beijing": "bj", "ap-chengdu": "cd",
                 "ap-chongqing": "cq", "ap-nanjing": "nj", "ap-hongkong": "hk", "ap-singapore": "sg"}


def build_event(uploads_: List[Upload], source_ip: str = "127.0.0.1", queue: str = "") -> dict:
    """A COS trigger event shaped like a real one (583/9707's sample plus what delivered events carry): a short
    `region`, the full region in `s3Region` and `cosRegion`, the ETag in `meta`."""
    from urllib.parse import quote

    records = []
    for up in uploads_:
        short = up.bucket[: -len(up.appid) - 1]
        records.append({
            "cos": {
                "cosSchemaVersion": "1.0",
                "cosObject": {
                    "url": f"http://{up.bucket}.cos.{up.region}.myqcloud.com/{quote(up.key, safe='/-_.~')}",
                    "meta": {"Content-Type": up.content_type or "application/octet-stream",
                             "ETag": f'"{up.etag}"', "x-cos-request-id": "local"},
                    "vid": "",
                    "key": f"/{up.appid}/{short}/{up.key}",
                    "size": up.size,
                },
                "cosBucket": {"region": SHORT_REGIONS.get(up.region, up.region), "name": short, "appid": up.appid,
                              "s3Region": up.region, "cosRegion": up.region},
                "cosNotificationId": "unknown",
            },
            "event": {
                "eventName": up.event_name, "eventVersion": "1.0", "eventTime": up.event_time,
                "eventSource": "qcs::cos",
                "requestParameters": {"requestSourceIP": source_ip, "requestHeaders": {}},
                "eventQueue": queue, "reservedInfo": "", "reqid": 0,
            },
        })
    return {"Records": records}


def upload_from_listing(bucket: str, region: str, obj: dict, event_name: str = "cos:ObjectCreated:Put") -> Upload:
    """An Upload for an object found by listing (backfill, reconcile's sweep), as its trigger would say."""
    appid = bucket.rsplit("-", 1)[-1]
    return Upload(bucket=bucket, appid=appid, region=region, key=obj["Key"], etag=normalise_etag(obj.get("ETag", "")),
                  size=int(obj.get("Size") or 0), event_name=event_name)
