"""`cos-matting replay PATH...`: replay event files, folders or recorded streams, in order.

Locally (the default) every event goes through the same path as `invoke`: the
real handler, warm in this process, against COS_MATTING_ENDPOINT. With
`--remote` each event is sent to the deployed function through the SCF
`Invoke` API (RequestResponse), credentials from TENCENTCLOUD_SECRETID /
TENCENTCLOUD_SECRETKEY (or TENCENTCLOUD_SECRET_ID / _KEY, the
~/.tencentcloud/credentials profile, or an instance role).

A recorded stream is a file of JSON lines (`.jsonl`/`.ndjson`, or any file
that is not one JSON document): each line an event, or an envelope
`{"function": "submit|callback|reconcile", "event": {...}}`.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from cli.cmd_invoke import KINDS, Result, Runner, add_run_options, check_settings, kind_of, prepare, print_result
from cli.errors import UsageError
from cli.env import credentials, environment, is_local, require_local
from cli.ui import dump_json

EVENT_SUFFIXES = (".json", ".xml", ".jsonl", ".ndjson")
STREAM_SUFFIXES = (".jsonl", ".ndjson")
SYNC_LIMIT = 6 * 1024 * 1024  # SCF RequestResponse payload limit
SEED_BODY = b"\x00\x00\x00\x18ftypmp42 cos-matting replay placeholder"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay event files, folders or recorded streams, locally or against the deployed function",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  cos-matting replay events/cos --local http://127.0.0.1:9000 --seed\n"
               "  cos-matting replay recorded.jsonl --remote --function cos-matting-prod-{kind} --region ap-guangzhou")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="event file, folder (replayed sorted) or JSON-lines stream")
    parser.add_argument("--seed", action="store_true",
                        help="local cloud only: upload a placeholder for every object a COS event names that does not "
                             "exist, and rewrite the event's ETag to the object's real ETag (the submit path reads the "
                             "object's tags: without it the outcome is skipped:gone)")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first failed event")
    remote = parser.add_argument_group("remote (SCF Invoke API)")
    remote.add_argument("--remote", action="store_true", help="invoke the deployed function instead of running locally")
    remote.add_argument("--function", metavar="NAME",
                        help="deployed function name; {kind} is replaced by submit/callback/reconcile "
                             "(e.g. cos-matting-prod-{kind})")
    remote.add_argument("--region", help="SCF region (default: TENCENTCLOUD_REGION or COS_MATTING_REGION)")
    remote.add_argument("--namespace", default="default", help="SCF namespace (default: %(default)s)")
    remote.add_argument("--qualifier", default="$LATEST", help="version or alias (default: %(default)s)")
    add_run_options(parser)
    parser.set_defaults(func=run)


# -- reading ---------------------------------------------------------------------------------------

@dataclass
class Item:
    source: str
    event: Any
    function: Optional[str] = None  # from an envelope; else from the event's shape
    error: Optional[str] = None  # the file could not be read as an event: reported by name, not run


def expand(paths: List[str]) -> List[Item]:
    items: List[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES),
                           key=lambda p: p.relative_to(path).as_posix())
            if not files:
                raise UsageError(f"{raw}: no event files ({', '.join(EVENT_SUFFIXES)}) in this folder")
            for file in files:
                items.extend(read_file(file))
        elif path.is_file() or raw == "-":
            items.extend(read_file(path if raw != "-" else None))
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return items


def _json_lines(text: str) -> Optional[List[Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines] if len(lines) > 1 else None
    except ValueError:
        return None


def read_file(path: Optional[Path]) -> List[Item]:
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


# -- seeding (local cloud only) --------------------------------------------------------------------

def seed(event: Any, clients: Any, settings: Any) -> Any:
    """Make the objects a COS event names exist, and point the event at their real ETag.

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


# -- remote ----------------------------------------------------------------------------------------

def function_name(template: str, kind: str) -> str:
    return template.replace("{kind}", kind)


def _scf(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"tencentcloud.scf.v20180416.{module}")
    except ImportError:
        raise UsageError("--remote needs tencentcloud-sdk-python-scf: pip install 'cos-matting[local]' "
                         "(or pip install tencentcloud-sdk-python-scf)") from None


def build_invoke_request(function: str, event: Any, namespace: str = "default", qualifier: str = "$LATEST") -> Any:
    """The SCF v20180416 InvokeRequest for a synchronous invocation (plain: no credentials, no I/O)."""
    models = _scf("models")

    payload = json.dumps(event, ensure_ascii=False)
    if len(payload.encode("utf-8")) > SYNC_LIMIT:
        raise UsageError(f"event is {len(payload.encode('utf-8'))} bytes; a synchronous invocation takes at most 6 MB")
    request = models.InvokeRequest()
    request.FunctionName = function
    request.InvocationType = "RequestResponse"
    request.ClientContext = payload
    request.Namespace = namespace
    request.Qualifier = qualifier
    request.LogType = "Tail"
    return request


def scf_client(env: Mapping[str, str], region: str) -> Any:
    """COS_MATTING_ENDPOINT points it at the local cloud's SCF API, like every other client."""
    from deploy.clients import client

    _scf("scf_client")  # a clear message when the SDK is missing
    return client("scf", env, region, credentials(env))


_JSON_IN_LINE = re.compile(r"\{.*\}")


def result_from_response(kind: str, response: Any) -> Result:
    """Map an InvokeResponse (or its .Result) to the same Result a local run gives."""
    result = getattr(response, "Result", response)
    res = Result(function=kind)
    log_text = getattr(result, "Log", "") or ""
    res.logs = [m.group(0) if (m := _JSON_IN_LINE.search(line)) else line for line in log_text.splitlines()]
    res.duration = float(getattr(result, "Duration", 0) or 0) / 1000
    err = getattr(result, "ErrMsg", "") or ""
    ret = getattr(result, "RetMsg", "") or ""
    res.ok = getattr(result, "InvokeResult", 0) == 0 and not err
    try:
        res.result = json.loads(ret) if ret else None
    except ValueError:
        res.result = ret
    if not res.ok:
        res.error = err or ret or "invocation failed"
    request_id = getattr(result, "FunctionRequestId", "")
    if request_id:
        res.notes.append(f"SCF request {request_id}")
    return res


class RemoteRunner:
    def __init__(self, env: Mapping[str, str], template: str, region: str, namespace: str, qualifier: str,
                 client: Any = None) -> None:
        self.env, self.template, self.region = env, template, region
        self.namespace, self.qualifier = namespace, qualifier
        self._client = client

    def invoke(self, kind: str, event: Any) -> Result:
        if self._client is None:
            self._client = scf_client(self.env, self.region)
        request = build_invoke_request(function_name(self.template, kind), event, self.namespace, self.qualifier)
        try:
            return result_from_response(kind, self._client.Invoke(request))
        except Exception as exc:  # TencentCloudSDKException: auth, not found, throttled, network
            code = exc.get_code() if hasattr(exc, "get_code") else type(exc).__name__
            message = exc.get_message() if hasattr(exc, "get_message") else str(exc)
            return Result(function=kind, ok=False, error=f"SCF Invoke {request.FunctionName}: {code}: {message}")


# -- the command ------------------------------------------------------------------------------------

def replay(items: List[Item], runner: Any, env: Mapping[str, str], args: argparse.Namespace,
           seed_with: Any = None, on_result=None) -> List[Dict[str, Any]]:
    results = []
    for item in items:
        kind = item.function or (kind_of(item.event) if item.error is None else None)
        if item.error is not None:
            res = Result(function="?", ok=False, error=item.error, ran=False)
        elif kind is None:
            res = Result(function="?", ok=False, ran=False,
                         error="unknown event shape (not a COS event, a callback, a Function URL request or a timer "
                               "event)")
        else:
            try:
                event, notes = prepare(kind, item.event, env, args.record_id, args.job_id)
                if seed_with is not None and kind == "submit":
                    event = seed(event, *seed_with)
                res = runner.invoke(kind, event)
                res.notes = notes + res.notes
            except UsageError as exc:
                res = Result(function=kind, ok=False, error=str(exc), ran=False)
        entry = {"source": item.source, **res.as_dict()}
        results.append(entry)
        if on_result is not None:
            on_result(item, res)
        if args.stop_on_failure and res.failed:
            break
    return results


def run(args: argparse.Namespace) -> int:
    env = environment(args)
    items = expand(args.paths)
    if args.remote:
        if args.seed or args.subprocess:
            raise UsageError("--seed and --subprocess apply to local replay only, not with --remote")
        if not args.function:
            raise UsageError("--remote needs --function NAME (e.g. cos-matting-prod-{kind})")
        region = args.region or env.get("TENCENTCLOUD_REGION") or env.get("COS_MATTING_REGION")
        if not region:
            raise UsageError("--remote needs --region (or TENCENTCLOUD_REGION / COS_MATTING_REGION)")
        # Credentials first: without them nothing can be invoked (exit 2 now, not one failure per event).
        runner: Any = RemoteRunner(env, args.function, region, args.namespace, args.qualifier,
                                   client=scf_client(env, region))
    else:
        if args.function:
            raise UsageError("--function names a deployed function: use it with --remote")
        require_local(env, "replay", allow_real=args.real_cloud)
        check_settings(env)
        runner = Runner(env, subprocess_mode=args.subprocess)
    seed_with = None
    if args.seed:
        if not is_local(env):
            raise UsageError("--seed uploads placeholder objects: only against a local cloud (COS_MATTING_ENDPOINT "
                             "or --local)")
        from cli.clients import make_clients
        from shared.config import load_settings

        settings = load_settings(env)
        seed_with = (make_clients(settings, env), settings)
    out, err = sys.stdout, sys.stderr

    def show(item: Item, res: Result) -> None:
        if not args.json:
            print_result(res, out, err, args.quiet, title=f"{item.source} ({res.function})")

    results = replay(items, runner, env, args, seed_with, on_result=show)
    failed = sum(1 for r in results if r["failed"])
    if args.json:
        print(dump_json(results))
    else:
        print(f"replayed {len(results)} of {len(items)} event(s): {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0
