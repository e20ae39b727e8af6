"""`cos-matting invoke submit|callback|reconcile --event FILE|-`: run the real handler locally.

The handler (`functions/<name>/index.py:main_handler`) runs with the configured
environment, in this process (warm, like a reused SCF container) or with
`--subprocess` in a fresh interpreter (a cold start). It talks to whatever
COS_MATTING_ENDPOINT points at: the local cloud by default.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.env import command_env, require_local, target_line
from cli.errors import UsageError
from cli.eventio import KINDS, decode_event, prepare, read_event_text
from cli.handlers import Runner, add_run_options, check_settings, child_main, print_result
from cli.ui import dump_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invoke", help="run a real function handler locally with an event",
        description="Run functions/<FUNCTION>/index.py:main_handler with an event, against the configured endpoints "
                    "(the local cloud: set COS_MATTING_ENDPOINT or pass --local URL). Prints the per-record outcomes "
                    "on stdout and the handler's log lines on stderr. Exit 1 when the handler raised (or the "
                    "callback answered an error status).",
        epilog="callback events: a Function URL request (events/funcurl/*) or a bare callback body "
               "(events/callbacks/*, JSON or XML), which is wrapped into a Function URL request. Placeholder tokens "
               "(rid=RECORD, t=TOKEN) are replaced by a valid token for --record-id, or for the record named in "
               "the job's UserData when the job exists.",
    )
    parser.add_argument("function", choices=KINDS, help="which handler to run")
    parser.add_argument("--event", metavar="FILE", help="event file, or - for stdin (reconcile: optional)")
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    env = command_env(args)
    require_local(env, "invoke", allow_real=args.real_cloud)
    check_settings(env)
    if args.event is None:
        if args.function != "reconcile":
            raise UsageError(f"invoke {args.function} needs --event FILE (or - for stdin)")
        from localcloud.scfevents import timer_event  # lazy: `localcloud` costs ~0.1 s to import

        event: Any = timer_event("reconcile")
    else:
        event = decode_event(read_event_text(args.event))
    event, notes = prepare(args.function, event, env, args.record_id, args.job_id)
    target_line(env, f"invoke {args.function} (the handler runs here)")
    res = Runner(env, subprocess_mode=args.subprocess).invoke(args.function, event)
    res.notes = notes + res.notes
    if args.json:
        print(dump_json(res.as_dict()))
    else:
        print_result(res, sys.stdout, sys.stderr, args.quiet)
    return 1 if res.failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        sys.exit(child_main())
    from cli.main import main

    sys.exit(main(["invoke"] + sys.argv[1:]))
