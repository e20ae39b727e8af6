"""Callback URL tokens: HMAC-SHA256 over (record id, expiry), rotatable keys, constant-time check."""
import base64
import hashlib
import hmac
from typing import Dict, Sequence
import re
from urllib.parse import urlencode

_RID = re.compile(r"^[\x21-\x7e]{1,64}\Z")
_EXP = re.compile(r"^[0-9]{1,12}\Z")
_MAC = re.compile(r"^[A-Za-z0-9_-]{43}\Z")  # 32 bytes, urlsafe base64 without padding


def sign(key: str, record_id: str, expires: int) -> str:
    mac = hmac.new(key.encode(), f"{record_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(keys: Sequence[str], record_id: str, expires: str, token: str, now: float) -> bool:
    """True when the token was made by any current key for this record and has not expired."""
    # Every field must have its exact shape (ASCII digits, hex id, base64url MAC): anything
    # else is a forgery or damage and gets the same False (401), never an exception (500).
    if not (keys and _RID.match(record_id or "") and _EXP.match(expires or "") and _MAC.match(token or "")):
        return False
    if int(expires) < now:
        return False
    # Check every key so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(sign(k, record_id, int(expires)), token) for k in keys]
    return any(matches)


def callback_query(keys: Sequence[str], record_id: str, ttl: int, now: float) -> Dict[str, str]:
    """The query a callback URL carries: record id, expiry, token (signed with the first key)."""
    expires = int(now) + ttl
    return {"rid": record_id, "exp": str(expires), "t": sign(keys[0], record_id, expires)}


def callback_url(base: str, keys: Sequence[str], record_id: str, ttl: int, now: float) -> str:
    query = urlencode(callback_query(keys, record_id, ttl, now))
    return f"{base}{'&' if '?' in base else '?'}{query}"
