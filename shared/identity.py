"""Who is who: the object version, the record id and the correlation id, one home each.

A record belongs to one *object version*, read from a `HEAD` of the object
(never from the event, which can be late, spell the ETag in any case, or lack
it: the COS trigger's sample event has no ETag, 583/9707). A version is its *content*: bucket + key + ETag + size.
That is what a trigger, a HEAD, a bucket listing and an inventory row all carry
(GET Bucket lists Key, LastModified, ETag, Size and no version id: COS API
"GET Bucket (List Objects)", 436/7734; inventory rows: 436/33702), on versioned and
unversioned buckets alike. Not part of it:
- the version id: a listing has none, so `status`, backfill and the sweep could
  never find a versioned upload's record;
- Last-Modified: a copy onto itself (new metadata, a storage-class change: PUT Object -
  Copy, 436/10881) keeps ETag and size and only moves Last-Modified. That is an edit,
  not a new video to matte. Deleting and uploading the same bytes again is the same
  version too: a done record stays done (its output is published again if a newer
  version had replaced it); a failed one gets a new attempt (submit.Submitter._existing).
A new ETag or size is a new version. (A copy of a multipart upload gets a plain MD5
ETag, so it counts as new: COS does not tell us the bytes are the same.) Records of older
releases keep the ids their rule gave (`OLDER_IDS`: format 2 from the version id or ETag +
size + Last-Modified, format 1 from the ETag).

The correlation id travels in the job's UserData as `cm:<record id>.<attempt>@<deployment>`
(then `|user data`): a callback or reconcile tells this record's job from a
rival's, a retry's job from the failed attempt's, and this deployment's jobs from
another deployment's on the same bucket (`foreign`). Older spellings stay readable:
`cm:<record id>` (the release before the per-attempt layout: attempt 1) and
`cm:<record id>.<attempt>` (no deployment id) carry no owner; their record decides.
"""
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from .dates import epoch_of

RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
DEPLOYMENT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # COS_MATTING_DEPLOYMENT (shared/config.py)
_MARKER = re.compile(r"^cm:(?P<rid>[0-9a-f]{32})(?:\.(?P<attempt>\d{1,4}))?(?:@(?P<dep>%s))?(?:\||$)" % DEPLOYMENT)


def _id(bucket: str, key: str, token: str) -> str:
    return hashlib.sha256(f"{bucket}\n{key}\n{token}".encode()).hexdigest()[:32]


def normalise_etag(value: Any) -> str:
    """`"ABC"`, `abc`, `W/"abc"` -> `abc` (COS ETags are hex, case carries no meaning)."""
    text = str(value or "").strip()
    if text[:2] in ("W/", "w/"):
        text = text[2:]
    return text.strip('"').strip().lower()


@dataclass(frozen=True)
class ObjectVersion:
    """One version of one object, as COS reports it now."""

    bucket: str
    key: str
    etag: str
    size: int
    modified: int  # Last-Modified, epoch seconds (kept for people; not part of the identity)
    version_id: str = ""  # likewise

    @property
    def token(self) -> str:
        """What tells this version from every other version of the key: its content (see above)."""
        return f"{self.etag}:{self.size}"

    @property
    def record_id(self) -> str:
        return _id(self.bucket, self.key, self.token)

    @classmethod
    def from_head(cls, bucket: str, key: str, headers: Mapping[str, Any]) -> "ObjectVersion":
        h = {str(k).lower(): v for k, v in (headers or {}).items()}
        return cls(bucket, key, normalise_etag(h.get("etag")), int(h.get("content-length") or 0),
                   epoch_of(h.get("last-modified")), str(h.get("x-cos-version-id") or ""))

    @classmethod
    def from_listing(cls, bucket: str, obj: Mapping[str, Any]) -> "ObjectVersion":
        return cls(bucket, str(obj["Key"]), normalise_etag(obj.get("ETag")), int(obj.get("Size") or 0),
                   epoch_of(obj.get("LastModified")), str(obj.get("VersionId") or ""))


@dataclass(frozen=True)
class Correlation:
    """The record and attempt a job belongs to."""

    record_id: str
    attempt: int = 1
    deployment: str = ""  # "" : made without a deployment id (an older release, or none configured)

    @property
    def marker(self) -> str:
        return f"cm:{self.record_id}.{self.attempt}" + (f"@{self.deployment}" if self.deployment else "")

    def foreign(self, deployment: Optional[str]) -> bool:
        """Made by another deployment: it names one that is not `deployment`. A job naming none is
        not foreign here: whether it is ours is for its record to say (it is in our store or not)."""
        return bool(self.deployment) and self.deployment != (deployment or "")

    @classmethod
    def parse(cls, user_data: str) -> Optional["Correlation"]:
        match = _MARKER.match(user_data or "")
        if not match:
            return None
        return cls(match["rid"], int(match["attempt"] or 1), match["dep"] or "")


def id_format2(version: ObjectVersion) -> str:
    """The id records of format 2 carry (releases up to 279d89d, and main before the content id): the
    version id where versioning is on, otherwise ETag + size + Last-Modified. A HEAD carries all of
    it; a listing has no version id (436/7734), so on a versioned bucket only a HEAD finds them."""
    vid = version.version_id
    token = f"v:{vid}" if vid and vid != "null" else f"{version.etag}:{version.size}:{version.modified}"
    return _id(version.bucket, version.key, token)


def id_format1(version: ObjectVersion) -> str:
    """The id records of format 1 carry (release a5737e5, before the per-attempt layout): the ETag alone."""
    return _id(version.bucket, version.key, version.etag)


# Record format -> the id rule its records were written under, newest first: the one home of the older
# releases' ids (records.RecordStore.find_older, `is_record`). A format that changes the id adds its
# predecessor's rule here (ARCHITECTURE.md, "Record formats").
OLDER_IDS: Dict[int, Callable[[ObjectVersion], str]] = {2: id_format2, 1: id_format1}
# Those whose id a listing cannot always tell: format 2 took the version id where versioning is on,
# and GET Bucket carries none (436/7734); a HEAD does (x-cos-version-id, HEAD Object 436/7745).
HEAD_ONLY = frozenset({2})


def older_record_ids(version: ObjectVersion) -> Dict[int, str]:
    """{record format: the id that format gave `version`}, today's id and repeats left out."""
    found: Dict[int, str] = {}
    for fmt, rule in OLDER_IDS.items():
        rid = rule(version)
        if rid != version.record_id and rid not in found.values():
            found[fmt] = rid
    return found


def is_record(version: ObjectVersion, rid: str) -> bool:
    """Whether record `rid` belongs to `version`: today's id, or an older format's id of it."""
    return rid == version.record_id or rid in older_record_ids(version).values()
