"""Who is who: the object version, the record id and the correlation id, one home each.

A record belongs to one *object version*, read from a `HEAD` of the object
(never from the event, which can be late, spell the ETag in any case, or lack
it: the COS trigger's sample event has no ETag, 583/9707). The version is the version id where versioning is
on, otherwise ETag + size + Last-Modified: re-uploading the same bytes after a
delete gets a new Last-Modified, so it is a new upload with its own record.
Listings carry the same three fields (ISO `LastModified` instead of an HTTP
date), so the sweep and `status` compute the same record id without a HEAD.

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
from typing import Any, Mapping, Optional

from .dates import epoch_of

RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
DEPLOYMENT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # COS_MATTING_DEPLOYMENT (shared/config.py)
_MARKER = re.compile(r"^cm:(?P<rid>[0-9a-f]{32})(?:\.(?P<attempt>\d{1,4}))?(?:@(?P<dep>%s))?(?:\||$)" % DEPLOYMENT)


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
    modified: int  # Last-Modified, epoch seconds
    version_id: str = ""

    @property
    def token(self) -> str:
        """What tells this version from every other version of the key."""
        if self.version_id and self.version_id != "null":
            return f"v:{self.version_id}"
        return f"{self.etag}:{self.size}:{self.modified}"

    @property
    def record_id(self) -> str:
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{self.token}".encode()).hexdigest()[:32]

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


def legacy_record_id(bucket: str, key: str, etag: str) -> str:
    """The record id the release before the per-attempt layout gave (records.py, format 1): from the
    ETag alone. Kept to find that release's records (records.RecordStore.exists, `is_record`)."""
    return hashlib.sha256(f"{bucket}\n{key}\n{normalise_etag(etag)}".encode()).hexdigest()[:32]


def is_record(version: ObjectVersion, rid: str) -> bool:
    """Whether record `rid` belongs to `version`: today's id, or a format 1 record of the same bytes."""
    return rid in (version.record_id, legacy_record_id(version.bucket, version.key, version.etag))
