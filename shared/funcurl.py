"""SCF Function URL event -> the API-Gateway-v1 shape serverless-wsgi 3.1 reads.

SCF (doc 583/96099, 2025) sends `httpMethod`, `path`, `headers`, `body` and the
query in `queryString`, with no `requestContext` and no `isBase64Encoded`; the
client address is the header `x-scf-remote-addr`. Older events carried
`requestContext.sourceIp` and `queryStringParameters`: both shapes are accepted.
serverless-wsgi looks for `queryStringParameters` and `requestContext.identity.sourceIp`.
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
    identity.setdefault("sourceIp", context.get("sourceIp") or headers.get("x-scf-remote-addr")
                        or headers.get("X-Scf-Remote-Addr", ""))
    context["identity"] = identity
    adapted["requestContext"] = context
    return adapted
