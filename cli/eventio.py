"""Events for the local handlers (`invoke`, `replay`): read from files and streams, told apart
by shape, and prepared the way the handler gets them (callbacks wrapped in a Function URL
request and signed; COS events seeded in the local cloud). The shapes themselves live in
`localcloud/scfevents.py` (Function URL, timer, context) and `shared/events.py` (COS).
"""
from __future__ import annotations

import base64
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from cli.errors import UsageError

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.cloud import Clients
    from shared.config import Settings

KINDS = ("submit", "callback", "reconcile")
PLACEHOLDER_JOB = "s0000000000000000000000000000000"
PLACEHOLDER_QUERY = {"rid": "RECORD", "exp": "EXP", "t": "TOKEN"}
EVENT_SUFFIXES = (".json", ".xml", ".jsonl", ".ndjson")
STREAM_SUFFIXES = (".jsonl", ".ndjson")
SEED_BODY = b"\x00\x00\x00\x18ftypmp42 cos-matting replay placeholder"


# -- reading -------------------------------------------------------------------------------------

def read_event_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--event {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--event {path}: not UTF-8 text") from None


def decode_event(text: str) -> Any:
    """JSON events as objects; anything else (an XML callback body) stays text."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return text  # a malformed callback body is still something to replay
    return text


def kind_of(event: Any) -> Optional[str]:
    """Which function an event is for, from its shape."""
    if isinstance(event, dict):
        if "Records" in event:
            return "submit"
        if "httpMethod" in event:
            return "callback"
        if "EventName" in event or "Response" in event or "JobsDetail" in event:
            return "callback"
        if event.get("Type") == "Timer" or "TriggerName" in event:
            return "reconcile"
        return None
    if isinstance(event, str) and event.lstrip().startswith("<"):
        return "callback"
    return None


@dataclass
class Item:
    source: str
    event: Any
    function: Optional[str] = None  # from an envelope; else from the event's shape
    error: Optional[str] = None  # the file could not be read as an event: reported by name, not run


def expand(paths: List[str]) -> List[Item]:
    """Files, folders (sorted) and streams -> events in order."""
    items: List[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES),
                           key=lambda p: p.relative_to(path).as_posix())
            if not files:
                raise UsageError(f"{raw}: no event files ({', '.join(EVENT_SUFFIXES)}) in this folder")
            for file in files:
                items.extend(read_items(file))
        elif path.is_file() or raw == "-":
            items.extend(read_items(path if raw != "-" else None))
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return items


def _json_lines(text: str) -> Optional[List[Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines] if len(lines) > 1 else None
    except ValueError:
        return None


def read_items(path: Optional[Path]) -> List[Item]:
    """One file (None: stdin): an event, a JSON array of events, or JSON lines."""
    name = str(path) if path is not None else "<stdin>"
    try:
        text = path.read_text(encoding="utf-8") if path is not None else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip():
        return [Item(name, None, error="empty file: no event in it")]
    if path is not None and path.suffix.lower() in STREAM_SUFFIXES:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(_item(f"{name}:{number}", json.loads(line)))
            except ValueError as exc:
                items.append(Item(f"{name}:{number}", None, error=f"not a JSON line ({exc})"))
        return items
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            events = _json_lines(text)  # JSON lines in a file without the .jsonl suffix
            if events is None:
                return [Item(name, None, error=f"not valid JSON ({exc})")]
            return [_item(f"{name}:{i}", e) for i, e in enumerate(events, 1)]
        if isinstance(data, list):  # a JSON array of events is a stream too
            return [_item(f"{name}[{i}]", e) for i, e in enumerate(data)]
        return [_item(name, data)]
    if path is not None and path.suffix.lower() == ".json":
        return [Item(name, None, error=f"not valid JSON (it starts with {stripped[:20]!r})")]
    return [_item(name, text)]  # an XML callback body


def _item(source: str, event: Any) -> Item:
    if isinstance(event, dict) and set(event) <= {"function", "event", "name", "source"} and "event" in event:
        function = event.get("function") or event.get("name")
        return Item(source, event["event"], function if function in KINDS else None)
    return Item(source, event)


# -- preparing -----------------------------------------------------------------------------------

def prepare(name: str, event: Any, env: Mapping[str, str], record_id: Optional[str] = None,
            job_id: Optional[str] = None) -> Tuple[Any, List[str]]:
    """The event as the handler gets it (callbacks wrapped and signed); raises UsageError on a wrong shape."""
    if name == "callback":
        return prepare_callback(event, env, record_id, job_id, lookup=record_lookup(env))
    if name == "submit" and not (isinstance(event, dict) and "Records" in event):
        raise UsageError("submit needs a COS trigger event with Records (see events/cos/ or "
                         "`cos-matting generate-event cos-put`)")
    return event, []


def callback_keys(env: Mapping[str, str]) -> List[str]:
    raw = env.get("COS_MATTING_CALLBACK_KEYS", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise UsageError("COS_MATTING_CALLBACK_KEYS is not set: it is needed to sign the callback token "
                         "(use the deployment's keys, or any 16+ character key for the local cloud)")
    return keys


def signed_query(env: Mapping[str, str], record_id: str) -> Dict[str, str]:
    """rid/exp/t for a record, with the deployment's first key and token TTL."""
    from shared.tokens import callback_query

    ttl = int(env.get("COS_MATTING_CALLBACK_TOKEN_TTL") or 7 * 86400)
    return callback_query(callback_keys(env), record_id, ttl, time.time())


def _body_of(event: Dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            return body.encode("utf-8")
    return body.encode("utf-8")


def _set_body(event: Dict[str, Any], body: bytes) -> None:
    event["body"] = base64.b64encode(body).decode() if event.get("isBase64Encoded") else body.decode("utf-8")


def prepare_callback(event: Any, env: Mapping[str, str], record_id: Optional[str] = None,
                     job_id: Optional[str] = None, lookup=None) -> Tuple[Dict[str, Any], List[str]]:
    """A Function URL event for the callback handler, with a valid token where the event has placeholders.

    `lookup(job_id) -> record id or None` finds the record from the job's UserData (CI re-read).
    Returns (event, notes).
    """
    from localcloud.scfevents import callback_request

    notes: List[str] = []
    if isinstance(event, dict) and "httpMethod" in event:
        ev = copy.deepcopy(event)
    else:
        text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
        xml = text.lstrip().startswith("<")
        ev = callback_request(text, "application/xml" if xml else "application/json", PLACEHOLDER_QUERY)
        notes.append("wrapped the callback body in a Function URL POST request")
    body = _body_of(ev)
    if job_id and PLACEHOLDER_JOB.encode() in body:
        body = body.replace(PLACEHOLDER_JOB.encode(), job_id.encode())
        _set_body(ev, body)
        notes.append(f"JobId placeholder -> {job_id}")
    if record_id and b"cm:RECORD" in body:
        body = body.replace(b"cm:RECORD", f"cm:{record_id}".encode())
        _set_body(ev, body)
    query = ev.get("queryString") or {}
    placeholders = any(_is_placeholder(v) for v in query.values())
    if ev.get("httpMethod", "GET").upper() != "POST" or not (placeholders or record_id):
        return ev, notes
    rid = record_id
    if not rid and lookup is not None:
        from shared.callback import BadCallback, job_ids

        try:
            ids = job_ids(body)
        except BadCallback:
            ids = []
        rid = lookup(ids[0]) if ids else None
        if rid:
            notes.append(f"record {rid} from the UserData of job {ids[0]}")
    if not rid:
        notes.append("no record id (pass --record-id or --job-id of an existing job): the token stays a placeholder")
        return ev, notes
    fresh = signed_query(env, rid)
    ev["queryString"] = {k: ([fresh[k]] if isinstance(query.get(k), list) else fresh[k]) for k in fresh}
    for k, v in query.items():
        if k not in fresh:
            ev["queryString"][k] = v
    notes.append(f"signed a callback token for record {rid}")
    return ev, notes


def _is_placeholder(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(str(v) in PLACEHOLDER_QUERY.values() for v in values)


def record_lookup(env: Mapping[str, str]):
    """job id -> record id, from the job's UserData (cm:<record id>), via the real CI client."""
    def lookup(job_id: str) -> Optional[str]:
        from shared.cloud import CloudError, Clients
        from shared.config import load_settings
        from shared.identity import Correlation

        try:
            settings = load_settings(env)
            job = Clients(settings, env).ci.describe(job_id)
        except (CloudError, ValueError):
            return None
        corr = Correlation.parse(job.user_data)
        return corr.record_id if corr else None

    return lookup


def seed(event: Any, clients: Clients, settings: Settings) -> Any:
    """Make the objects a COS event names exist (local cloud), and point the event at their real ETag.

    Only records the submit path would act on (no skip reason from the event alone): never an
    object under the output or records prefix, which would corrupt the pipeline's own data."""
    from shared.cloud import CloudError
    from shared.events import parse_event, to_upload
    from shared.submit import skip_reason

    if not (isinstance(event, dict) and isinstance(event.get("Records"), list)):
        return event
    event = copy.deepcopy(event)
    for raw in event["Records"]:
        try:
            up = to_upload(parse_event({"Records": [raw]}).Records[0])
        except ValueError:
            continue  # the handler reports it
        if skip_reason(settings, up):
            continue
        try:
            head = clients.storage.head(up.bucket, up.key)
            if head is None:
                clients.storage.client.put_object(Bucket=up.bucket, Key=up.key, Body=SEED_BODY,
                                                  ContentType=up.content_type or "application/octet-stream")
                head = clients.storage.head(up.bucket, up.key) or {}
        except CloudError:
            continue  # e.g. the bucket does not exist here: the handler reports it
        etag = str(head.get("ETag", "")).strip('"')
        meta = raw["cos"]["cosObject"].setdefault("meta", {})
        name = next((k for k in meta if k.lower() == "etag"), "ETag")
        meta[name] = f'"{etag}"'
    return event
