"""`cos-matting cancel JOB_ID... | --state Submitted`: cancel jobs in CI and record it.

Each job is cancelled through CI, re-read (`GET /jobs/<id>`), and its record
advanced with that job exactly as a callback would (shared.lifecycle.Lifecycle.advance):
the record gets its final Cancel stage and the source object its state tag.
Only this deployment's jobs are touched: UserData cm:<record id>.<attempt>@<deployment>
naming COS_MATTING_DEPLOYMENT (use --stage to act as a deployed stage), or an older
release's cm:<record id> whose record this deployment keeps.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Dict, List

from cli.cancel import cancel_one, targets_in_state
from cli.clients import ThreadClients
from cli.env import add_env_options, load, target_line
from cli.errors import UsageError
from cli.logcapture import add_verbose, logs_aside
from cli.progress import Progress
from cli.ui import add_yes, confirm, dump_json, table
from shared.states import CANCELLABLE

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cancel", help="cancel jobs (by id, or every record in a state) and record it",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID|KEY|RECORD_ID",
                        help="jobs to cancel: a job id, or a source key or record id (its record's current job)")
    parser.add_argument("--state", choices=CANCELLABLE, help="cancel the job of every record in this state (CI cancels only jobs that have "
                        "not started)")
    parser.add_argument("--prefix", metavar="KEY_PREFIX", default="",
                        help="with --state: only records whose source key starts with this")
    parser.add_argument("--dry-run", action="store_true", help="show what would be cancelled")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--concurrency", "-j", type=int, default=8, metavar="N",
                        help="jobs cancelled in parallel (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    add_yes(parser)
    add_verbose(parser)
    add_env_options(parser)
    parser.set_defaults(func=run)


def jobs_of(settings: Settings, clients: ThreadClients, target: str) -> List[str]:
    """A job id as given; a source key or record id: its record's job (status's lookup, cli/records_view.py)."""
    from cli.records_view import lookup

    rows = [r for r in lookup(settings, clients, target) if r.get("job_id")]
    if any(r["job_id"] == target for r in rows) or not rows:
        return [target]  # a job id (or nothing known by that name: cancel_one says what CI answers)
    if rows[0].get("key") != target and rows[0]["record_id"] != target:
        raise UsageError(f"{target!r} is a key prefix of {len(rows)} record(s): give a whole key, a record id or a "
                         "job id (or --state with --prefix)")
    return [rows[0]["job_id"]]


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    if bool(args.job_ids) == bool(args.state):
        raise UsageError("give JOB_ID(s) or --state STATE (one of the two)")
    if args.prefix and not args.state:
        raise UsageError("--prefix goes with --state")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be >= 1")
    env, settings = load(args)
    clients = ThreadClients(settings, env, pool=max(4, args.concurrency))
    progress = not args.no_progress
    with logs_aside(args.verbose) as out:
        if args.state:
            targets = [t for t in targets_in_state(settings, clients, args.state, args.concurrency, progress)
                       if t["key"].startswith(args.prefix)]
            job_ids = [t["job_id"] for t in targets]
            if not args.dry_run and not confirm(args, f"cancel {len(job_ids)} job(s) in state {args.state}?",
                                                len(job_ids), threshold=1):
                out.write("nothing cancelled\n")
                return 1
        else:
            job_ids = list(dict.fromkeys(j for target in args.job_ids for j in jobs_of(settings, clients, target)))
        if job_ids and not args.dry_run:
            target_line(env, f"cancel {len(job_ids)} job(s) in {settings.bucket}")
        bar = Progress(total=len(job_ids), label="dry run" if args.dry_run else "cancel", delay=1.0,
                       enabled=progress)
        rows: List[Dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=args.concurrency) as executor:
            for row in executor.map(lambda j: cancel_one(settings, clients.get(), j, args.dry_run), job_ids):
                rows.append(row)
                bar.update(len(rows), {"failed": sum(1 for r in rows if r["outcome"].startswith("failed"))})
        bar.finish(len(rows))
    failed = [r for r in rows if r["outcome"].startswith("failed")]
    if args.json:
        out.write(dump_json(rows) + "\n")
    else:
        if rows:
            out.write(table(["JOB", "SOURCE", "BEFORE", "OUTCOME", "RECORD", "DETAIL"],
                            [[r["job_id"], r.get("key") or "", r.get("before") or "", r["outcome"],
                              f"{r.get('state', '')} ({r['recorded']})" if r.get("recorded") else "",
                              r.get("detail") or ""] for r in rows], {1: 50, 5: 60}) + "\n")
        cancelled = sum(1 for r in rows if r["outcome"] == "cancelled")
        verb = "would cancel" if args.dry_run else "cancelled"
        count = sum(1 for r in rows if r["outcome"] == "would-cancel") if args.dry_run else cancelled
        out.write(f"{verb} {count} of {len(rows)} job(s)" + (f", {len(failed)} failed" if failed else "") + "\n")
    return 1 if failed else 0
