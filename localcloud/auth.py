"""Verify COS request signatures (`q-sign-algorithm=sha1`), written from the spec.

The local cloud checks signatures so that a client configured with the wrong
key fails here exactly as it would against the real service, instead of
passing silently and breaking on the first deploy.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

SAFE = "-_.~"
CLOCK_SKEW = 900  # seconds of tolerated clock difference


class AuthError(Exception):
    """A request that COS would refuse: `code` is the COS error code."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _enc(value: str) -> str:
    return quote(value.encode("utf-8"), SAFE)


def parse_authorization(value: str) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for part in value.split("&"):
        name, _, val = part.partition("=")
        fields[name.strip()] = val.strip()
    return fields


def canonical(method: str, path: str, params: List[Tuple[str, str]], headers: List[Tuple[str, str]]) -> str:
    """The `FormatString` of the COS signature: method, path, params, headers."""
    p = "&".join(f"{k}={v}" for k, v in sorted((_enc(k).lower(), _enc(v)) for k, v in params))
    h = "&".join(f"{k}={v}" for k, v in sorted((_enc(k).lower(), _enc(v)) for k, v in headers))
    return f"{method.lower()}\n{path}\n{p}\n{h}\n"


def signature(secret_key: str, sign_time: str, format_string: str) -> str:
    string_to_sign = f"sha1\n{sign_time}\n{hashlib.sha1(format_string.encode('utf-8')).hexdigest()}\n"
    sign_key = hmac.new(secret_key.encode("utf-8"), sign_time.encode("utf-8"), hashlib.sha1).hexdigest()
    return hmac.new(sign_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).hexdigest()


def presigned(query: Mapping[str, str], headers: Mapping[str, str]) -> Tuple[str, Mapping[str, str]]:
    """(the Authorization value, headers) of a presigned URL: the same fields as query parameters, its
    token as x-cos-security-token (COS "请求签名", 436/7778: the signature goes in the Authorization
    header or in the URL; cos-python-sdk-v5 cos_client.py get_presigned_url appends them so, documented
    for the SDK on 436/31548)."""
    raw = "&".join(f"{k}={v}" for k, v in query.items() if k.startswith("q-"))
    if "x-cos-security-token" in query:
        headers = {**{k.lower(): v for k, v in headers.items()}, "x-cos-security-token": query["x-cos-security-token"]}
    return raw, headers


def verify(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
           credentials: Mapping[str, str], now: Optional[float] = None) -> str:
    """Check the `Authorization` header; return the SecretId or raise AuthError.

    `path` is the decoded object path (`/key`), `query` the decoded query
    parameters, `headers` a case-insensitive mapping, `credentials` maps
    SecretId -> SecretKey.
    """
    raw = headers.get("Authorization") or ""
    if not raw and "q-sign-algorithm" in query:
        raw, headers = presigned(query, headers)
    if not raw:
        raise AuthError("AccessDenied", "Access Denied. (no Authorization header; anonymous access is not allowed)")
    fields = parse_authorization(raw)
    if fields.get("q-sign-algorithm") != "sha1":
        raise AuthError("InvalidArgument", "q-sign-algorithm must be sha1", 400)
    secret_id = fields.get("q-ak", "")
    if secret_id not in credentials:
        if getattr(credentials, "expired", lambda _sid: False)(secret_id):
            # Temporary credentials past their expiry. The code is S3's; COS's exact code for an
            # expired temporary key was not verified.
            raise AuthError("ExpiredToken", "The provided token has expired (temporary credentials).", 400)
        raise AuthError("InvalidAccessKeyId", "The access key Id format you provided is invalid.")
    token_for = getattr(credentials, "token_for", None)
    expected_token = token_for(secret_id) if token_for else None
    if expected_token is not None:  # a temporary key is only good with its session token
        sent = headers.get("x-cos-security-token") or headers.get("x-ci-security-token") or ""
        if not hmac.compare_digest(sent, expected_token):
            raise AuthError("InvalidAccessKeyId" if not sent else "AccessDenied",
                            "Temporary credentials need their session token (x-cos-security-token or "
                            "x-ci-security-token)" + (" and this one does not match." if sent else "."))
    sign_time = fields.get("q-sign-time", "")
    try:
        start, end = (int(x) for x in sign_time.split(";"))
    except ValueError:
        raise AuthError("AccessDenied", "q-sign-time is malformed") from None
    now = time.time() if now is None else now
    if now + CLOCK_SKEW < start or now > end + CLOCK_SKEW:
        raise AuthError("RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.")
    lower_query = {k.lower(): v for k, v in query.items()}
    params: List[Tuple[str, str]] = []
    for name in filter(None, fields.get("q-url-param-list", "").split(";")):
        if name not in lower_query and _unq(name) not in lower_query:
            raise AuthError("SignatureDoesNotMatch", f"signed parameter {name!r} is not in the request")
        params.append((name, lower_query.get(name, lower_query.get(_unq(name), ""))))
    signed_headers: List[Tuple[str, str]] = []
    for name in filter(None, fields.get("q-header-list", "").split(";")):
        value = headers.get(_unq(name))
        if value is None:
            raise AuthError("SignatureDoesNotMatch", f"signed header {name!r} is not in the request")
        signed_headers.append((_unq(name), value))
    expected = signature(credentials[secret_id], fields.get("q-key-time", sign_time), canonical(method, path, params, signed_headers))
    if not hmac.compare_digest(expected, fields.get("q-signature", "")):
        raise AuthError("SignatureDoesNotMatch",
                        "The Signature you specified does not match what we calculated (check SecretKey).")
    return secret_id


def _unq(name: str) -> str:
    from urllib.parse import unquote

    return unquote(name)
