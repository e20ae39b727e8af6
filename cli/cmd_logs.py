"""`cos-matting logs [FUNCTION] [--stage S] [--follow] [--since 10m] [--filter KEY|RECORD|JOB]`: the functions' logs.

With --stage, the deployed stage's logs from CLS (Cloud Log Service), where SCF delivers every
line a function prints: SCF's GetFunctionLogs is retired ("该接口已下线", tencentcloud-sdk-python
scf_client.py) and points to CLS log search (https://cloud.tencent.com/document/product/583/52637):
the CLS `SearchLog` API on the topic `GetFunction` names (ClsLogsetId / ClsTopicId), one log per
line with the SCF_* keys of https://cloud.tencent.com/document/product/583/60336. The local cloud
serves the same API for a stage deployed into it (`cos-matting deploy --local`).

Without --stage, the invocations of the local cloud's own functions (`cos-matting localcloud
--trigger ... --function-url ...`; --local URL or COS_MATTING_ENDPOINT): function, how it was
invoked, attempt, outcome and duration, then its log lines.

FUNCTION is short (submit, callback, reconcile) or the full name. Times are wall-clock, local time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.request import urlopen

from cli.errors import failure, usage
from cli.env import ENDPOINT, add_env_options, command_env
from cli.ui import parse_since

PAGE = 1000  # SearchLogRequest.Limit: at most 1000 (tencentcloud/cls/v20201016/models.py)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("logs", help="the functions' logs: a deployed stage's (CLS), or the local cloud's",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", nargs="?", metavar="FUNCTION",
                        help="only this function: submit, callback, reconcile (or its full name)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument("--since", metavar="WHEN", type=parse_since,
                        help="lines from WHEN on: a duration back (10m, 1h, 2d) or a date (default: 1h with --stage; "
                             "without, --tail decides)")
    parser.add_argument("--filter", metavar="KEY|RECORD|JOB",
                        help="only the requests whose lines mention this source key, record id or job id")
    parser.add_argument("--tail", "-n", type=int, default=20, metavar="N",
                        help="without --stage: start with the last N finished invocations (default: %(default)s; 0: "
                             "none, only new ones with --follow)")
    parser.add_argument("--all", action="store_true", help="without --stage: start with every finished invocation")
    parser.add_argument("--failed", action="store_true", help="without --stage: only failed invocations")
    parser.add_argument("--json", action="store_true", help="one JSON object per invocation")
    parser.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    add_env_options(parser)
    parser.set_defaults(func=run)


def short(name: str) -> str:
    """`cos-matting-dev-submit` -> `submit` (the kind is the name's last part, deploy/stage.py)."""
    return name.rsplit("-", 1)[-1]


def stamp(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def search(cls: Any, topic: str, query: str, start_ms: int, end_ms: int) -> Iterator[Dict[str, Any]]:
    """Every log of `topic` matching `query` in [start, end), oldest first, paged by Context."""
    context = None
    while True:
        page = cls.call("SearchLog", {"TopicId": topic, "From": start_ms, "To": end_ms, "QueryString": query,
                                      "SyntaxRule": 1, "Limit": PAGE, "Sort": "asc", "Context": context})
        for item in page.get("Results") or []:
            try:
                log = json.loads(item.get("LogJson") or "{}")
            except ValueError:
                log = {"SCF_Message": item.get("LogJson")}
            log.setdefault("SCF_LogTime", item.get("Time"))
            yield log
        context = page.get("Context")
        if page.get("ListOver") or not context or not page.get("Results"):
            return


def related(needle: str, env: Dict[str, str]) -> List[str]:
    """The filter and what names the same record in other lines: a key's record id and job ids (the
    callback logs the job and record, not the key). Best effort: the filter alone if no record is found."""
    from cli.clients import ThreadClients
    from cli.records_view import lookup
    from shared.config import ConfigError, load_settings

    found = [needle]
    try:
        settings = load_settings(env)
        rows = lookup(settings, ThreadClients(settings, env), needle)
    except (ConfigError, Exception):  # a record store we cannot read must not stop the logs
        return found
    for row in rows[:1]:
        found += [v for v in (row.get("record_id"), row.get("key"), row.get("job_id")) if v and v not in found]
    return found


def stage_logs(args: argparse.Namespace, env: Dict[str, str], out: Any) -> int:
    """The deployed stage's lines from CLS SearchLog, on the topic its functions' GetFunction names."""
    from deploy.clients import Api, ApiCallError

    deployed = args.deployed
    functions = deployed.functions
    if args.function:
        wanted = {k: f for k, f in functions.items() if args.function in (k, f.name)}
        if not wanted:
            raise usage(f"FUNCTION {args.function}", f"not a function of stage {deployed.stage}",
                        f"one of {', '.join(sorted(functions))}")
        functions = wanted
    topics: Dict[str, List[str]] = {}
    for fn in functions.values():
        if not fn.cls_topic_id:
            raise failure(f"function {fn.name}", "has no log topic (GetFunction ClsTopicId is empty)",
                          "turn on log delivery for it in the SCF console (its logs are kept in CLS)")
        topics.setdefault(fn.cls_topic_id, []).append(fn.name)
    cls = Api("cls", env, deployed.region)
    start = args.since.timestamp() if args.since else time.time() - 3600
    seen: set = set()

    def query(names: List[str]) -> str:
        terms = [f'SCF_Namespace:"{deployed.namespace}"']
        if len(names) == 1:
            terms.append(f'SCF_FunctionName:"{names[0]}"')
        return " AND ".join(terms)

    needles = related(args.filter, env) if args.filter else []

    def requests_with(topic: str, names: List[str], lo: int, hi: int) -> Optional[set]:
        """The requests whose lines mention the filter (or its record's id and job ids)."""
        if not args.filter:
            return None
        found: set = set()
        for needle in needles:
            term = json.dumps(needle, ensure_ascii=False)
            found |= {log.get("SCF_RequestId") for log in search(cls, topic, f"{query(names)} AND {term}", lo, hi)}
        return found

    def lines_of(topic: str, names: List[str], lo: int, hi: int) -> Iterator[Dict[str, Any]]:
        """The topic's lines of these functions; with --filter only the matching requests' lines, asked for
        by request id (a few small searches, not the whole window)."""
        keep = requests_with(topic, names, lo, hi)
        if keep is None:
            yield from search(cls, topic, query(names), lo, hi)
            return
        for request_id in sorted(r for r in keep if r):
            yield from search(cls, topic, f'{query(names)} AND SCF_RequestId:"{request_id}"', lo, hi)

    def pull(lo: int, hi: int) -> int:
        lines: List[Tuple[float, Dict[str, Any]]] = []
        for topic, names in topics.items():
            for log in lines_of(topic, names, lo, hi):
                if log.get("SCF_FunctionName") not in names:  # the topic is shared with other functions
                    continue
                ident = (log.get("SCF_RequestId"), log.get("SCF_LogTime"), log.get("SCF_Message"))
                if ident in seen:
                    continue
                seen.add(ident)
                lines.append((float(log.get("SCF_LogTime") or 0), log))
        lines.sort(key=lambda t: t[0])
        for ms, log in lines:
            if args.json:
                out.write(json.dumps(log, ensure_ascii=False) + "\n")
            else:
                out.write(f"{stamp(ms)}  {short(log.get('SCF_FunctionName') or '?'):<9}  "
                          f"{(log.get('SCF_RequestId') or '-')[:8]}  {log.get('SCF_Message', '')}\n")
        out.flush()
        return len(lines)

    try:
        lo, hi = int(start * 1000), int(time.time() * 1000) + 1
        shown = pull(lo, hi)
        if not args.follow:
            if not shown and not args.json:
                print(f"no log lines of stage {deployed.stage} since {stamp(lo)}", file=sys.stderr)
            return 0
        while True:
            time.sleep(max(args.interval, 0.2) * 4)
            # SCF delivers a request's lines as it ends: look a minute back, the seen set drops repeats
            lo, hi = max(lo, int(time.time() * 1000) - 60_000), int(time.time() * 1000) + 1
            pull(lo, hi)
    except ApiCallError as exc:
        raise failure(f"CLS {exc.action}", f"{exc.code}: {exc.message}") from None
    except KeyboardInterrupt:
        return 0


def fetch(endpoint: str) -> List[Dict[str, Any]]:
    try:
        with urlopen(f"{endpoint}/_localcloud/invocations", timeout=10) as reply:
            return json.loads(reply.read())
    except OSError as exc:
        raise failure(f"{ENDPOINT}={endpoint}", f"cannot read the invocations ({exc})",
                      "is it a `cos-matting localcloud`?") from None


def show(inv: Dict[str, Any], out, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(inv, ensure_ascii=False) + "\n")
        return
    state = "ok" if inv.get("ok") else "running" if inv.get("ok") is None else f"FAILED: {inv.get('error') or '?'}"
    when = f"{stamp(float(inv['started']) * 1000)}  " if inv.get("started") else ""
    out.write(f"{when}[{inv['function']} {inv['kind']} attempt {inv['attempt']}] {state} "
              f"({float(inv.get('duration') or 0) * 1000:.0f} ms, request {inv.get('request_id', '?')})\n")
    for line in inv.get("logs") or []:
        out.write(f"  {line}\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    env = command_env(args)
    if getattr(args, "deployed", None) is not None:
        return stage_logs(args, env, sys.stdout)
    endpoint = env.get(ENDPOINT)
    if not endpoint:
        raise usage(ENDPOINT, "not set: without --stage, `logs` reads the local cloud's invocations",
                    "pass --stage STAGE for a deployed stage's logs (CLS), or --local http://127.0.0.1:9000")
    endpoint = endpoint.rstrip("/")
    since = args.since.timestamp() if args.since else None

    def wanted(inv: Dict[str, Any]) -> bool:
        name = inv.get("function") or ""
        return ((not args.function or args.function in (name, short(name)))
                and (not args.failed or inv.get("ok") is False)
                and (since is None or float(inv.get("started") or 0) >= since)
                and (not args.filter or any(args.filter in line for line in inv.get("logs") or [])))

    out = sys.stdout
    items = fetch(endpoint)
    names = sorted({i.get("function") for i in items})
    if args.function and names and args.function not in names + [short(n) for n in names] and not args.follow:
        raise usage(f"FUNCTION {args.function}", "no invocations of it", f"functions seen: {', '.join(names)}")
    # Invocations are listed from their start (ok is None while running): print finished ones, in
    # order, and keep the cursor at the first one still running.
    cursor = next((i for i, inv in enumerate(items) if inv.get("ok") is None), len(items))
    selected = [inv for inv in items[:cursor] if wanted(inv)]
    for inv in selected if args.all else selected[len(selected) - max(0, args.tail):]:
        show(inv, out, args.json)
    if not args.follow:
        if not selected and not args.json:
            out.write("no finished invocations yet\n")
        return 0
    try:
        while True:
            time.sleep(args.interval)
            items = fetch(endpoint)
            while cursor < len(items) and items[cursor].get("ok") is not None:
                if wanted(items[cursor]):
                    show(items[cursor], out, args.json)
                cursor += 1
    except KeyboardInterrupt:
        return 0
