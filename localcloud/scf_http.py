"""The Function URLs of the local SCF, answered for the HTTP handler: `/_url/<id>/...` for a deployed
function's `http` trigger (the SCF backend), `/_fn/<name>/...` for a function the local cloud runs
without a deploy (`LocalCloud.add_function_url`). The request becomes SCF's Function URL event
(localcloud/scfevents.py), the handler's answer an HTTP reply (`scf.function_url_reply`).
"""
from __future__ import annotations

import json
from typing import Any

from .replies import Reply, json_reply
from .scf import Function, Runtime, function_url_reply
from .scfbackend import ScfBackend
from .scfevents import function_url_event

BODY_LIMIT = 6 << 20  # 6 MB: the synchronous payload limit (InvokeRequest.ClientContext, scf/v20180416/models.py)


def deployed(h: Any, backend: ScfBackend) -> Reply:
    """`/_url/<id>/...`: the Function URL of an `http` trigger; CAM auth asks for a signature."""
    url_id, _, rest = h.raw_path[len("/_url/"):].partition("/")
    trig, fn = backend.function_url(url_id)
    if trig is None or fn is None or not trig.enabled:
        return json_reply(404, {"errorCode": 404, "errorMessage": f"no Function URL {url_id!r}"})
    if json.loads(trig.desc).get("AuthType") == "CAM" and not h.headers.get("Authorization"):
        return json_reply(403, {"errorCode": 403, "errorMessage": "this Function URL requires CAM authentication"})
    return _run(h, backend.runtime, fn, rest)


def added(h: Any, runtime: Runtime) -> Reply:
    """`/_fn/<name>/...`: a function added with `LocalCloud.add_function_url`."""
    name, _, rest = h.raw_path[len("/_fn/"):].partition("/")
    fn = runtime.functions.get(name)
    if fn is None:
        return json_reply(404, {"errorCode": 404, "errorMessage": f"no function URL named {name!r}"})
    return _run(h, runtime, fn, rest)


def _run(h: Any, runtime: Runtime, fn: Function, rest: str) -> Reply:
    event = function_url_event(h.command, "/" + rest, h.query_pairs, dict(h.headers.items()), h.body(BODY_LIMIT),
                               h.client_address[0])
    status, headers, body = function_url_reply(runtime.run(fn, event, "http"))
    return Reply(status, headers, body)
