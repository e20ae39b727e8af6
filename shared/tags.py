"""COS object tags: ours merged into the user's, within COS limits, never dropping a user's tag."""
import re
from typing import Dict, List, Optional, Tuple

from .states import RANK, Rank

MAX_TAGS = 10
MAX_KEY = 127
MAX_VALUE = 255
_BAD = re.compile(r"[^A-Za-z0-9 +\-=._:/]")

PREFIX = "cos-matting:"  # every tag of ours starts with it
ROLE = "cos-matting:role"      # "output" on what we wrote: the loop guard reads it
RECORD = "cos-matting:record"  # links an output (or a source) to its record id
JOB = "cos-matting:job"
STATE = "cos-matting:state"
ATTEMPT = "cos-matting:attempt"
_PROGRESS = (JOB, STATE, ATTEMPT)
# The job tag of an attempt that never got a job (CI refused its submit): COS refuses an empty tag
# value (object tags, 1-255 characters: https://cloud.tencent.com/document/product/436/35665).
NO_JOB = "-"


def job_value(job_id: Optional[str]) -> str:
    """What the job tag says for `job_id`."""
    return job_id or NO_JOB


def clean(value: str, limit: int = MAX_VALUE) -> str:
    """A value COS accepts: disallowed characters become '_', cut to the limit."""
    return _BAD.sub("_", value)[:limit]


def merge(existing: Dict[str, str], ours: Dict[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """Existing tags plus ours (ours win on our own keys). Returns (merged, our keys that did not fit)."""
    merged = dict(existing)
    skipped: List[str] = []
    for key, value in ours.items():
        key, value = clean(key, MAX_KEY), clean(value)
        if key in merged or len(merged) < MAX_TAGS:
            merged[key] = value
        else:
            skipped.append(key)
    return merged, skipped


def merge_progress(existing: Dict[str, str], ours: Dict[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """`merge`, except that the state tags of one record never move backwards: a Submitted
    written after the callback's Success (or an old attempt's Failed after a retry's Submitted)
    leaves the newer state in place. Call it on tags read right before the write."""
    def order(tags: Dict[str, str]) -> Tuple[int, int]:
        attempt = tags.get(ATTEMPT, "")
        state = tags.get(STATE, "")
        return (int(attempt) if attempt.isdigit() else 0), RANK.get(state, Rank.FINAL if state else Rank.CLAIM)

    if existing.get(RECORD) == ours.get(RECORD) and order(existing) > order(ours):
        ours = {k: v for k, v in ours.items() if k not in _PROGRESS}
    return merge(existing, ours)


def names_attempt(existing: Dict[str, str], record_id: str, attempt: int) -> bool:
    """Whether the state tags name `record_id` at `attempt` or a later one (any state: they only move forward)."""
    tagged = existing.get(ATTEMPT, "")
    return existing.get(RECORD) == record_id and tagged.isdigit() and int(tagged) >= attempt


def from_sdk(response: dict) -> Dict[str, str]:
    tags = ((response or {}).get("TagSet") or {}).get("Tag") or []
    if isinstance(tags, dict):
        tags = [tags]
    return {t["Key"]: t.get("Value") or "" for t in tags}


def to_sdk(tags: Dict[str, str]) -> dict:
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}


def user_tags(tags: Dict[str, str]) -> Dict[str, str]:
    """The tags that are not ours."""
    return {k: v for k, v in tags.items() if not k.startswith(PREFIX)}


def is_output(tags: Dict[str, str]) -> bool:
    return tags.get(ROLE) == "output"
