"""Callback URL tokens: HMAC-SHA256 over (record id, expiry), rotatable keys, constant-time check."""
import base64
import hashlib
import hmac
from typing import Sequence
from urllib.parse import urlencode


def sign(key: str, record_id: str, expires: int) -> str:
    mac = hmac.new(key.encode(), f"{record_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(keys: Sequence[str], record_id: str, expires: str, token: str, now: float) -> bool:
    """True when the token was made by any current key for this record and has not expired."""
    if not (keys and record_id and token and expires.isdigit()) or int(expires) < now:
        return False
    # Check every key so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(sign(k, record_id, int(expires)), token) for k in keys]
    return any(matches)


def callback_url(base: str, keys: Sequence[str], record_id: str, ttl: int, now: float) -> str:
    expires = int(now) + ttl
    query = urlencode({"rid": record_id, "exp": expires, "t": sign(keys[0], record_id, expires)})
    return f"{base}{'&' if '?' in base else '?'}{query}"
