"""`cos-matting backfill`: submit jobs for videos already in the bucket.

Every listed object becomes an Upload (key, ETag, size) and goes through
`Submitter.process`, the same idempotent path as the COS trigger: its record
id is derived from bucket + key + ETag, so a second backfill (or a rerun after
Ctrl-C) submits nothing twice; objects that already have a record say
`duplicate`. CI throttling (429) is retried with back-off inside the submitter.

Resuming: the run stops cleanly on Ctrl-C (in-flight objects finish) and
prints the key to pass as --start-after; with --checkpoint FILE that key is
saved and picked up by the next run. Rerunning from the start is also safe,
only slower.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.backfill import Summary, backfill, count_objects, read_checkpoint, write_checkpoint
from cli.clients import ThreadClients
from cli.logcapture import add_verbose, logs_aside
from cli.env import add_env_options, is_local, load, require_callback, target_line
from cli.errors import UsageError
from cli.progress import Progress
from cli.sources import open_source
from cli.ui import dump_json, parse_since


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill", help="submit jobs for videos already in the bucket (idempotent, resumable)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", metavar="NAME-APPID", help="bucket (default: COS_MATTING_BUCKET)")
    parser.add_argument("--prefix", action="append", dest="prefixes", metavar="P",
                        help="list under this prefix; repeat for several (default: COS_MATTING_WATCH_PREFIXES)")
    parser.add_argument("--since", metavar="DATE", type=parse_since,
                        help="only objects modified at or after DATE (2026-11-01 or 2026-11-01T08:00:00+08:00; UTC if no zone)")
    parser.add_argument("--concurrency", "-j", type=int, default=8, metavar="N",
                        help="objects processed at once (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list and count what would be submitted (reads the record log; writes nothing)")
    parser.add_argument("--start-after", metavar="KEY", default="", help="resume: skip keys up to and including KEY")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="save the resume key here on Ctrl-C or failure, start from it next time; removed when "
                             "the run completes")
    parser.add_argument("--limit", type=int, metavar="N", help="stop after N listed objects")
    parser.add_argument("--inventory", metavar="MANIFEST_KEY",
                        help="read the objects from this COS inventory report (its manifest.json key) instead of "
                             "listing the bucket")
    parser.add_argument("--inventory-bucket", metavar="NAME-APPID",
                        help="the bucket the inventory report is in (default: the source bucket)")
    via = parser.add_argument_group("where the work runs")
    via.add_argument("--via", choices=("local", "scf"),
                     help="local: this process runs the submit path for every object (the default against the "
                          "local cloud); scf: send batches to the deployed submit function with asynchronous "
                          "SCF Invoke (the default against Tencent Cloud)")
    via.add_argument("--function", metavar="NAME",
                     help="--via scf: the submit function (default: cos-matting-$COS_MATTING_DEPLOY_STAGE-submit)")
    via.add_argument("--namespace", default="default", help="--via scf: SCF namespace (default: %(default)s)")
    via.add_argument("--qualifier", default="$DEFAULT",
                     help="--via scf: version or alias, as the COS trigger uses (default: %(default)s)")
    via.add_argument("--rate", type=float, default=500.0, metavar="N",
                     help="--via scf: objects sent per second at most, to spare CI and the function's "
                          "concurrency (default: %(default)s; the SCF Invoke API itself takes at most 100 calls/s)")
    via.add_argument("--batch", type=int, default=None, metavar="N",
                     help="--via scf: records per invocation, within SCF's 128 KB async payload "
                          "(default: 20)")
    via.add_argument("--restart", action="store_true",
                     help="--via scf: ignore a complete checkpoint and send everything again (the function answers "
                          "duplicate for what already has a record)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument("--no-count", action="store_true",
                        help="do not list the objects once first to know the total (progress then shows listed so far)")
    add_verbose(parser)
    parser.add_argument("--no-callback", action="store_true",
                        help="with --via local and no COS_MATTING_CALLBACK_URL: submit anyway (the jobs never call "
                             "back; only reconcile, after COS_MATTING_RECONCILE_AFTER_SECONDS, advances them)")
    add_env_options(parser)
    parser.set_defaults(func=run)


def print_summary(summary: Summary, out: Any) -> None:
    scope = summary.source or ", ".join(f"{summary.bucket}/{p}" for p in summary.prefixes)
    head = "dry run" if summary.dry_run else ("interrupted" if summary.interrupted else "done")
    totals = "  ".join(f"{k}={v}" for k, v in summary.totals().items())
    out.write(f"backfill {scope}: {head}; listed {summary.listed}, {totals} "
              f"in {summary.elapsed:.1f} s ({summary.rate:.0f}/s)\n")
    detail = {k: v for k, v in sorted(summary.counts.items()) if ":" in k}
    if detail:
        out.write("  " + "  ".join(f"{k}={v}" for k, v in detail.items()) + "\n")
    for failure in summary.failures[:20]:
        out.write(f"  FAILED {failure['key']}: {failure['outcome']} {failure.get('detail') or ''}\n")
    if len(summary.failures) > 20:
        out.write(f"  ... and {len(summary.failures) - 20} more failures (--json lists them all)\n")
    if summary.interrupted or summary.failures:
        if summary.resume_after:
            out.write(f"resume with: --start-after {json.dumps(summary.resume_after, ensure_ascii=False)} "
                      f"(or rerun from the start: finished objects say duplicate)\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or args.concurrency > 256:
        raise UsageError("--concurrency must be between 1 and 256")
    overrides = {"COS_MATTING_BUCKET": args.bucket} if args.bucket else {}
    env, settings = load(args, overrides)
    via = args.via or ("local" if is_local(env) else "scf")
    prefixes = args.prefixes or [p for p in settings.watch_prefixes]
    from shared.config import overlap

    outside = [p for p in prefixes if not any(overlap(p, w) for w in settings.watch_prefixes)]
    if outside and not args.inventory:
        print(f"warning: {', '.join(outside)} is outside COS_MATTING_WATCH_PREFIXES "
              f"({', '.join(settings.watch_prefixes)}): its objects will be skipped:prefix", file=sys.stderr)
    if args.inventory and args.start_after:
        raise UsageError("--start-after is a listing key: with --inventory, resume with --checkpoint")
    clients = ThreadClients(settings, env, pool=4)
    source = open_source(clients.get().storage, settings, args.inventory, prefixes, args.inventory_bucket)
    if via == "scf":
        from cli.backfill_scf import run_scf

        return run_scf(args, env, settings, source)
    if args.batch is not None or args.restart:
        raise UsageError("--batch and --restart apply to --via scf")
    start_after: Any = args.start_after
    if args.checkpoint and not start_after:
        start_after = read_checkpoint(args.checkpoint, source.identity)
        if start_after:
            print(f"resuming after {start_after!r} (from {args.checkpoint})", file=sys.stderr)
    if source.total is None and not args.no_count:
        # one quick listing first (1,000 keys per request) so progress has a total and an ETA
        source.total = count_objects(source, settings, start_after, args.limit)
        if not args.no_progress:
            print(f"{source.total} object(s) in {source.describe()}", file=sys.stderr)
    if not args.dry_run and not settings.callback_url and not args.no_callback:
        # Only refuse when there is something to submit (a dry run: listings and record lookups, no write):
        # a backfill where everything already has a record creates no job and needs no callback.
        probe = backfill(settings, clients, settings.bucket, prefixes, args.since, args.concurrency, True,
                         start_after, args.limit, source=open_source(clients.get().storage, settings, args.inventory,
                                                                     prefixes, args.inventory_bucket))
        if probe.counts["would-submit"]:
            require_callback(settings, f"backfill (here: {probe.counts['would-submit']})")
    if not args.dry_run:
        target_line(env, f"backfill into {settings.bucket}")
    progress = Progress(enabled=not args.no_progress, total=source.total)

    def show(summary: Summary) -> None:
        progress.total = source.total or summary.listed
        progress.update(summary.done, summary.totals())

    with logs_aside(args.verbose) as out:
        summary = backfill(settings, clients, settings.bucket, prefixes, args.since, args.concurrency, args.dry_run,
                           start_after, args.limit, on_progress=show, source=source)
    progress.total = source.total or summary.listed
    progress.finish(summary.done, summary.totals())
    if args.checkpoint and not args.dry_run:
        if summary.interrupted or summary.failures:
            write_checkpoint(args.checkpoint, source.identity, summary)
        else:
            Path(args.checkpoint).unlink(missing_ok=True)
    if args.json:
        out.write(dump_json(summary.as_dict()) + "\n")
    else:
        print_summary(summary, out)
    if summary.interrupted:
        return 130
    return 1 if summary.failures else 0
