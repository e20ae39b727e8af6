"""`cos-matting reconcile [--older-than SECONDS]`: what the timer function does, from the terminal.

Records still Submitted/Running after --older-than seconds (default
COS_MATTING_RECONCILE_AFTER_SECONDS) are re-read from CI and advanced exactly
as a callback would; claims older than the lease that never became a job are
resubmitted through the idempotent submit path, and so are uploads in the
watched prefixes that have no record at all (unless --no-sweep).
"""
from __future__ import annotations

import argparse

from cli.errors import UsageError
from cli.env import add_env_options, load
from cli.clients import make_clients
from cli.logcapture import add_verbose, logs_aside
from cli.ui import dump_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconcile", help="advance records whose callback never came; resubmit stale claims",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--older-than", type=float, metavar="SECONDS",
                        help="re-read jobs of records unchanged for this long (default: COS_MATTING_RECONCILE_AFTER_SECONDS)")
    parser.add_argument("--no-sweep", action="store_true",
                        help="do not list the watched prefixes for uploads that never got a record")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_verbose(parser)
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shared.reconcile import reconcile

    if args.older_than is not None and args.older_than < 0:
        raise UsageError("--older-than must be >= 0")
    env, settings = load(args)
    clients = make_clients(settings, env)
    with logs_aside(args.verbose) as out:
        summary = reconcile(settings, clients, older_than=args.older_than, sweep=not args.no_sweep)
    data = summary.model_dump()
    if args.json:
        out.write(dump_json(data) + "\n")
    else:
        out.write("reconcile: " + "  ".join(f"{k}={v}" for k, v in data.items()) + "\n")
        if summary.failed:
            out.write(f"{summary.failed} record(s) could not be reconciled (--verbose shows why)\n")
    return 1 if summary.failed else 0
