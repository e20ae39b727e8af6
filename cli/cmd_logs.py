"""`cos-matting logs [FUNCTION] [--follow]`: the functions' invocation logs from the local cloud.

Each invocation: function, how it was invoked (cos trigger, http Function URL, timer, direct),
attempt, outcome and duration, then its log lines (the pipeline's JSON lines). With --follow,
new invocations are printed as they happen until Ctrl-C.

Against Tencent Cloud, function logs live in CLS (Cloud Log Service), not in an SCF API:
SCF's GetFunctionLogs is retired ("该接口已下线", tencentcloud-sdk-python scf_client.py) and
points to GetRequestStatus (one request's status, return value, duration and memory:
https://cloud.tencent.com/document/product/583/65348) and to CLS log search
(https://cloud.tencent.com/document/product/583/52637): the SCF console's log tab, or the CLS
console / SearchLog API on the function's log topic, filtered e.g. by SCF_RequestId or by the
record id in our JSON lines. `cos-matting replay --remote` prints the tail of each request's log.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List
from urllib.request import urlopen

from cli.errors import failure, usage
from cli.env import ENDPOINT, add_env_options, check_reachable, environment


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("logs", help="the functions' invocation logs (local cloud); --follow",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", nargs="?", metavar="FUNCTION", help="only this function (e.g. submit, callback)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new invocations until Ctrl-C")
    parser.add_argument("--tail", "-n", type=int, default=20, metavar="N",
                        help="start with the last N finished invocations (default: %(default)s; 0: none, only new "
                             "ones with --follow)")
    parser.add_argument("--all", action="store_true", help="start with every finished invocation")
    parser.add_argument("--failed", action="store_true", help="only failed invocations")
    parser.add_argument("--json", action="store_true", help="one JSON object per invocation")
    parser.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    add_env_options(parser)
    parser.set_defaults(func=run)


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
    out.write(f"[{inv['function']} {inv['kind']} attempt {inv['attempt']}] {state} "
              f"({float(inv.get('duration') or 0) * 1000:.0f} ms, request {inv.get('request_id', '?')})\n")
    for line in inv.get("logs") or []:
        out.write(f"  {line}\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    env = environment(args)
    endpoint = env.get(ENDPOINT)
    if not endpoint:
        raise usage(ENDPOINT, "not set: `logs` reads the local cloud's invocations",
                    "pass --local http://127.0.0.1:9000; for deployed functions, logs are in CLS (see `cos-matting "
                    "logs --help`)")
    check_reachable(env)
    endpoint = endpoint.rstrip("/")

    def wanted(inv: Dict[str, Any]) -> bool:
        return ((not args.function or inv.get("function") == args.function)
                and (not args.failed or inv.get("ok") is False))

    out = sys.stdout
    items = fetch(endpoint)
    names = sorted({i.get("function") for i in items})
    if args.function and names and args.function not in names and not args.follow:
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
