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
import sys
from typing import Any, Dict, List, Mapping

from cli.env import command_env, is_local, require_local, target_line
from cli.errors import UsageError
from cli.eventio import Item, expand, kind_of, prepare, seed
from cli.handlers import Result, Runner, add_run_options, check_settings, print_result
from cli.remote import RemoteRunner, scf_client
from cli.ui import dump_json


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
    env = command_env(args)
    items = expand(args.paths)
    deployed = getattr(args, "deployed", None)
    if args.remote and deployed is not None and not args.function:
        args.function = f"{deployed.app}-{deployed.stage}-{{kind}}"  # --stage names the deployed functions
    if args.remote:
        if args.seed or args.subprocess:
            raise UsageError("--seed and --subprocess apply to local replay only, not with --remote")
        if not args.function:
            raise UsageError("--remote needs --stage STAGE or --function NAME (e.g. cos-matting-prod-{kind})")
        region = args.region or env.get("TENCENTCLOUD_REGION") or env.get("COS_MATTING_REGION")
        if not region:
            raise UsageError("--remote needs --region (or TENCENTCLOUD_REGION / COS_MATTING_REGION)")
        # Credentials first: without them nothing can be invoked (exit 2 now, not one failure per event).
        runner: Any = RemoteRunner(env, args.function, region, args.namespace, args.qualifier,
                                   client=scf_client(env, region))
        target_line({**env, "COS_MATTING_REGION": region}, f"replay into {args.function}")
    else:
        if args.function:
            raise UsageError("--function names a deployed function: use it with --remote")
        require_local(env, "replay", allow_real=args.real_cloud)
        check_settings(env)
        runner = Runner(env, subprocess_mode=args.subprocess)
        target_line(env, "replay (the handlers run here)")
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
