"""`cos-matting dashboard [--stage S | --local URL] [--port P]`: the records in a browser, live.

Serves a page on loopback and prints its URL, which carries a random access token: without it
(or the cookie the first visit sets) every request is refused, as is a request from another
origin; retry and cancel ask first and need the page's CSRF token. It shows the open records,
the recently finished and the failed ones (filters: state, key prefix, time; search: key,
record id, job id), totals and records per minute, and per record its stages and attempts,
notes, timings, retry hint, error and the source and output videos (presigned COS URLs).

It reads what `status` reads, a page at a time (cli/records_view.py), and acts as `retry` and
`cancel` do (cli/retry.py, cli/cancel.py), with the same settings (the environment options
below, as for every command).
"""
from __future__ import annotations

import argparse
import sys

from cli.errors import UsageError
from cli.env import add_env_options, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="the records in a browser, live, with retry and cancel",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765, metavar="P",
                        help="port to serve on (default: %(default)s; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: %(default)s, this machine only; another address of this "
                             "machine shows the records to whoever can reach it and holds the URL; the page "
                             "answers only to the name it is bound to, so not 0.0.0.0)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                        help="how often the page refreshes what it shows (default: %(default)s)")
    parser.add_argument("--concurrency", "-j", type=int, default=16, metavar="N",
                        help="parallel record reads (default: %(default)s)")
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.clients import ThreadClients
    from cli.dashboard import Dashboard, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a port 0-65535")
    if args.host in ("0.0.0.0", "::", ""):
        raise UsageError(f"--host {args.host!r}: give one address of this machine (the page answers only to the "
                         "address it is bound to)")
    if args.poll < 0.5:
        raise UsageError(f"--poll {args.poll:g}: at least 0.5 seconds")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be >= 1")
    env, settings = load(args)
    board = Dashboard(settings, env, ThreadClients(settings, env, pool=max(4, args.concurrency)), args.concurrency)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host}: reachable from other machines; the token is all that guards it",
              file=sys.stderr)

    def announce(url: str) -> None:
        print(f"dashboard: {url}\n(open it in a browser; Ctrl-C to stop)", flush=True)

    try:
        serve(board, args.host, args.port, args.poll, announce)
    except OSError as exc:
        raise UsageError(f"--port {args.port}: cannot listen there ({exc.strerror or exc})") from None
    except KeyboardInterrupt:
        pass
    return 0
