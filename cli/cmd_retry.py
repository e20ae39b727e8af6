"""`cos-matting retry KEY|RECORD_ID... | --state Failed [--since WHEN]`: run failed records again.

Each record is re-run as a new attempt through the same idempotent path a trigger
takes (shared.submit.Submitter.retry): attempt n+1 is claimed create-if-absent,
so two retries at once give one job; the earlier attempts stay in the record's
folder (history). The source must still be the version the record belongs to:
a record whose source is gone or was overwritten is reported, not retried (the
new version has its own record). A KEY means the key's current version: its
record is retried, or, if it never became a record, submitted.

Only final, unsuccessful records are retried (Failed, Cancel, Gone, Superseded
whose source came back). More than one record asks first; `--yes` skips the
question (needed without a terminal).

Only this deployment's records (COS_MATTING_DEPLOYMENT; --stage S acts as stage S):
a KEY or RECORD_ID whose record another deployment made is refused, naming its
deployment and the --stage to use, before anything is written (exit 1; the other
targets given with it are not run either); a record of an older release that names
none is this deployment's if its source is in a prefix this one watches. --state
skips other deployments' records.
"""
from __future__ import annotations

import argparse

from cli.clients import make_clients
from cli.env import add_env_options, load, require_callback, target_line
from cli.errors import UsageError, failure
from cli.logcapture import add_verbose, logs_aside
from cli.retry import NOT_OURS, in_state, resolve, retry_one
from cli.ui import add_yes, confirm, dump_json, is_terminal, parse_since, table
from shared.states import RETRYABLE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("retry", help="run failed records again, as a new attempt (history kept)",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="KEY|RECORD_ID", help="source keys or record ids")
    parser.add_argument("--state", choices=RETRYABLE, help="every record whose current attempt ended in this state")
    parser.add_argument("--since", type=parse_since, metavar="WHEN",
                        help="with --state: only records that ended at or after WHEN (ISO date/time, UTC)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be retried")
    parser.add_argument("--include-new-input", action="store_true",
                        help="also run records whose record says only a new input can help (HINT new-input)")
    add_yes(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_verbose(parser)
    parser.add_argument("--no-callback", action="store_true",
                        help="without COS_MATTING_CALLBACK_URL (and no --stage): retry anyway (the new jobs never "
                             "call back; only reconcile advances them)")
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.targets) == bool(args.state):
        raise UsageError("give KEY|RECORD_ID(s) or --state STATE (one of the two)")
    if args.since and not args.state:
        raise UsageError("--since goes with --state")
    env, settings = load(args)
    clients = make_clients(settings, env)
    with logs_aside(args.verbose) as out:
        if args.state:
            rows = in_state(settings, clients, args.state, args.since)
        else:
            rows = [resolve(settings, clients, t) for t in dict.fromkeys(args.targets)]
            refused = [r["detail"] for r in rows if r.get("outcome") == NOT_OURS]
            if refused:  # before anything is written, this stage's or theirs
                raise failure(None, "; ".join(refused))
        todo = [r for r in rows if "outcome" not in r]
        if todo and not args.dry_run:
            require_callback(settings, "retry", args.no_callback)
            target_line(env, f"retry {len(todo)} record(s) in {settings.bucket}")
        if not args.dry_run and not confirm(args, f"retry {len(todo)} record(s) as new attempts?", len(todo)):
            out.write("nothing retried\n")
            return 1
        rows = [r if "outcome" in r else retry_one(settings, clients, r, args.dry_run, args.include_new_input)
                for r in rows]
    failed = [r for r in rows if r["outcome"].startswith("failed")]
    if args.json:
        out.write(dump_json(rows) + "\n")
    else:
        if rows:
            out.write(table(["SOURCE", "BEFORE", "HINT", "ATTEMPT", "OUTCOME", "JOB", "DETAIL"],
                            [[r.get("key") or r["record_id"], r.get("before") or "", r.get("hint") or "-",
                              r.get("attempt") or "", r["outcome"], r.get("job_id") or "", r.get("detail") or ""]
                             for r in rows], {0: 50, 6: 80} if is_terminal(out) else None, right=(3,)) + "\n")
        done = sum(1 for r in rows if r["outcome"] == "submitted")
        skipped = sum(1 for r in rows if r["outcome"] == "skipped:new-input")
        if skipped:
            out.write(f"{skipped} record(s) skipped: their record says only a new input can help "
                      "(--include-new-input runs them anyway)\n")
        out.write(f"{'would retry' if args.dry_run else 'retried'} "
                  f"{sum(1 for r in rows if r['outcome'].startswith('would')) if args.dry_run else done} of "
                  f"{len(rows)} record(s)" + (f", {len(failed)} failed" if failed else "") + "\n")
    return 1 if failed else 0
