"""`cos-matting reconcile [--older-than SECONDS]`: what the timer function does, from the terminal.

Records still Submitted/Running after --older-than seconds (default
COS_MATTING_RECONCILE_AFTER_SECONDS) are re-read from CI and advanced exactly
as a callback would; claims older than the lease that never became a job are
resubmitted through the idempotent submit path, and so are uploads in the
watched prefixes that have no record at all (unless --no-sweep). A finished
record stays in the open index until its recheck, 120 s after its final stage
(or --older-than, if shorter): its output's and source's tags are put right,
its webhook event is queued unless already sent, and it leaves the index.
Webhook events due are sent.
"""
from __future__ import annotations

import argparse

from cli.errors import UsageError
from cli.env import add_env_options, load, target_line
from cli.clients import ThreadClients, make_clients
from cli.records_view import open_ids
from cli.logcapture import add_verbose, logs_aside
from cli.ui import dump_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconcile", help="advance records whose callback never came; resubmit stale "
                                                     "claims; recheck and close finished ones",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--older-than", type=float, metavar="SECONDS",
                        help="re-read jobs of records unchanged for this long, and recheck finished records "
                             "this long after their final stage if under 120 s (default: "
                             "COS_MATTING_RECONCILE_AFTER_SECONDS)")
    parser.add_argument("--no-sweep", action="store_true",
                        help="do not list the watched prefixes for uploads that never got a record")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_verbose(parser)
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shared.reconcile import RECHECK_AFTER, reconcile

    if args.older_than is not None and args.older_than < 0:
        raise UsageError("--older-than must be >= 0")
    env, settings = load(args)
    clients = make_clients(settings, env)
    older = settings.reconcile_after_seconds if args.older_than is None else args.older_than
    target_line(env, f"reconcile {settings.bucket}")
    with logs_aside(args.verbose) as out:
        open_before = len(open_ids(settings, ThreadClients(settings, env)))
        summary = reconcile(settings, clients, older_than=args.older_than, sweep=not args.no_sweep)
    data = summary.model_dump()
    data["open_before"] = open_before
    data["older_than_s"] = older
    data["recheck_after_s"] = min(older, RECHECK_AFTER)
    if args.json:
        out.write(dump_json(data) + "\n")
    else:
        out.write("\n".join(explain(data, args.no_sweep)) + "\n")
    return 1 if summary.failed else 0


def explain(d: dict, no_sweep: bool) -> list:
    """What reconcile did, and why it left records alone, in sentences (the counts are in --json)."""
    older = f"{d['older_than_s']:g} s"
    lines = [f"reconcile: {d['open_before']} record(s) in the open index (finished ones wait there for their "
             f"recheck); {d['scanned']} looked at"]
    did = [f"{d[k]} {what}" for k, what in (("advanced", "advanced (their callback never came)"),
                                            ("resubmitted", "resubmitted (a claim outlived its lease without a job)"),
                                            ("swept", "uploads with no record submitted"),
                                            ("closed", "closed (source deleted or overwritten)"),
                                            ("finished", "finished records rechecked and out of the open index"),
                                            ("second_jobs", "second jobs noted")) if d.get(k)]
    lines.append("  did: " + ("; ".join(did) if did else "nothing"))
    alone = []
    if d["still_running"]:
        alone.append(f"{d['still_running']} still running at CI (their callback or the next tick will advance them)")
    if d["too_young"]:
        alone.append(f"{d['too_young']} changed less than {older} ago (their callback may still come; "
                     f"--older-than 0 looks now)")
    if d.get("waiting_recheck"):
        alone.append(f"{d['waiting_recheck']} finished less than {d.get('recheck_after_s', d['older_than_s']):g} s "
                     f"ago, waiting in the open index for their recheck (a later run closes them)")
    if d.get("others"):
        alone.append(f"{d['others']} record(s) of other deployments sharing this records store (theirs to reconcile)")
    if d.get("leased"):
        alone.append(f"{d['leased']} claim(s) within their lease (COS_MATTING_CLAIM_LEASE_SECONDS: submit may "
                     f"still be on them)")
    if d["unreadable"]:
        alone.append(f"{len(d['unreadable'])} unreadable: {', '.join(d['unreadable'][:5])}")
    if no_sweep:
        alone.append("uploads with no record: not looked for (--no-sweep)")
    if alone:
        lines.append("  left alone: " + "; ".join(alone))
    if d["failed"]:
        lines.append(f"  {d['failed']} record(s) could not be reconciled (--verbose shows why)")
    if d["stopped_early"]:
        lines.append("  stopped early: the time budget ran out; the next run goes on from there")
    lines.append("reconcile: " + "  ".join(f"{k}={d[k]}" for k in ("scanned", "advanced", "still_running",
                                                                   "resubmitted", "swept", "closed", "finished",
                                                                   "waiting_recheck", "failed")))
    return lines
