"""`cos-matting cancel JOB_ID... | --state Submitted`: cancel jobs in CI and record it.

Each job is cancelled through CI, re-read (`GET /jobs/<id>`), and its record
advanced with that job exactly as a callback would (shared.progress.advance):
the record gets its final Cancel stage and the source object its state tag.
Only jobs that carry a cos-matting correlation id (UserData cm:<record id>)
are touched.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List

from cli.errors import UsageError
from cli.env import add_env_options, load
from cli.clients import ThreadClients
from cli.logcapture import add_verbose, logs_aside
from cli.ui import dump_json
from cli.progress import Progress
from cli.ui import add_yes, confirm, table

CANCELLABLE = ("Submitted", "Running", "Pause")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cancel", help="cancel jobs (by id, or every record in a state) and record it",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="jobs to cancel")
    parser.add_argument("--state", choices=CANCELLABLE, help="cancel the job of every record in this state")
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


def targets_in_state(settings: Any, clients: Any, state: str, concurrency: int = 8,
                     progress: bool = True) -> List[Dict[str, Any]]:
    """The jobs of every record whose newest snapshot is in `state` (records read in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.records import RecordStore

    pool = clients if isinstance(clients, ThreadClients) else None

    def store() -> Any:
        return RecordStore.of(settings, (pool.get() if pool else clients).storage)

    candidates = [newest for newest in store().newest_stages() if newest.rank in (1, 2)]
    bar = Progress(total=len(candidates), label="reading records", delay=1.0, enabled=progress)
    found = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as executor:
        for done, rec in enumerate(executor.map(lambda newest: store().read(newest), candidates), 1):
            bar.update(done)
            if rec is not None and rec.state == state and rec.job_id:
                found.append({"job_id": rec.job_id, "record_id": rec.id, "key": rec.source.key})
    bar.finish(len(candidates))
    return found


def cancel_one(settings: Any, clients: Any, job_id: str, dry_run: bool = False) -> Dict[str, Any]:
    """Cancel one job and advance its record. Returns a result row; `outcome` starts with failed: on error."""
    from shared.cloud import CloudError
    from shared.identity import Correlation
    from shared.progress import WrongJob, advance
    from shared.records import RecordStore

    store = RecordStore.of(settings, clients.storage)
    row: Dict[str, Any] = {"job_id": job_id}
    step = "describe"
    try:
        job = clients.ci.describe(job_id)
        corr = Correlation.parse(job.user_data)
        if corr is None:
            row.update(outcome="failed:not-ours", detail="the job has no cos-matting correlation id (UserData cm:...)")
            return row
        rid = corr.record_id
        row.update(record_id=rid, key=job.Input.Object if job.Input else None, before=job.State)
        if dry_run:
            row["outcome"] = "would-cancel" if job.State in CANCELLABLE else f"skipped:{job.State}"
            return row
        if job.State in CANCELLABLE:
            step = "cancel"
            clients.ci.cancel(job_id)
            step = "describe"
            job = clients.ci.describe(job_id)  # the state we record is the one CI reports
        step = "record"
        record, _ = store.load(rid)
        if record is None:
            row.update(outcome="cancelled" if job.State == "Cancel" else f"skipped:{job.State}",
                       state=job.State, detail="no record for this job")
            return row
        result, record = advance(clients, store, record, job)
        row.update(state=record.state, recorded=result,
                   outcome="cancelled" if job.State == "Cancel" and row["before"] in CANCELLABLE
                   else f"skipped:{job.State}")
    except WrongJob as exc:
        row.update(outcome="failed:record", detail=str(exc))
    except CloudError as exc:
        row.update(outcome=f"failed:{step}", detail=str(exc))
    return row


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
            job_ids = list(dict.fromkeys(args.job_ids))
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
