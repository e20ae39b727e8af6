"""SCF Function URL event -> the API-Gateway-v1 shape serverless-wsgi 3.1 reads.

SCF puts the query in `queryString` and the client IP in
`requestContext.sourceIp`; serverless-wsgi looks for `queryStringParameters`
and `requestContext.identity.sourceIp`.
"""
from typing import Any, Dict


def to_wsgi_event(event: Dict[str, Any]) -> Dict[str, Any]:
    adapted = dict(event)
    query = event.get("queryString") or event.get("queryStringParameters") or {}
    single: Dict[str, str] = {}
    multi: Dict[str, list] = {}
    for name, value in query.items():
        values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        multi[name] = values
        single[name] = values[-1] if values else ""
    adapted["queryStringParameters"] = single or None
    adapted["multiValueQueryStringParameters"] = multi or None
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    adapted["headers"] = headers
    adapted.pop("multiValueHeaders", None)
    adapted["httpMethod"] = (event.get("httpMethod") or "GET").upper()
    adapted["path"] = event.get("path") or "/"
    adapted["body"] = event.get("body") or ""
    adapted["isBase64Encoded"] = bool(event.get("isBase64Encoded", False))
    context = dict(event.get("requestContext") or {})
    identity = dict(context.get("identity") or {})
    identity.setdefault("sourceIp", context.get("sourceIp", ""))
    context["identity"] = identity
    adapted["requestContext"] = context
    return adapted
