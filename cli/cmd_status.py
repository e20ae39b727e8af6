"""`cos-matting status [KEY|JOB_ID|RECORD_ID] [--state S] [--json]`: the records, and the uploads that never became a job.

Reads the record log (one listing of the records prefix, then the newest
snapshot of every record, concurrently) and lists the watched prefixes: every
upload the trigger should have turned into a job (same filters as the submit
path) whose record id (bucket + key + object version) has no record is reported as
"never became a job" (run `cos-matting backfill` to submit them).
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

from cli.common import ThreadClients, UsageError, add_env_options, age, dump_json, load
from cli.progress import Progress
from cli.ui import size, table

MISSING = "NoRecord"
STATES = ("Claimed", "Submitted", "Running", "Pause", "Success", "Failed", "Cancel", "Gone", "Superseded", MISSING)


COLUMNS = """\
columns:
  SOURCE  the uploaded object's key (the record id when the record cannot be read)
  JOB     the Cloud Infinite job id (- before the job exists)
  STATE   Claimed (taken, no job yet), Submitted, Running, Pause, Success, Failed, Cancel,
          Gone / Superseded (a claim closed: the source was deleted / overwritten);
          "(stuck)" when a claim outlived COS_MATTING_CLAIM_LEASE_SECONDS without a job
  ATTEMPTS how many times the record ran (cos-matting retry adds one; history is kept)
  AGE     time since the record last changed (its newest stage): s seconds, m minutes, h hours, d days
  OUTPUT  the output object, or the error code and message, whole (wrapped); whether a retry
          can help (retry: now | after-fix | new-input) is in the record (KEY, or --json)
  SIZE    (uploads that never became a job) the object's size, KiB/MiB/GiB
totals count the rows shown (after KEY/--state filters); "of N" gives all records.

exit codes: 0 ok; 1 nothing matches the KEY|JOB_ID|RECORD_ID given (like grep), or with --check a
problem was found; 2 a usage or configuration mistake."""
IN_PROGRESS = ("Claimed", "Submitted", "Running", "Pause")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="records as a table with totals by state; uploads that never became a job",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COLUMNS)
    parser.add_argument("query", nargs="?", metavar="KEY|JOB_ID|RECORD_ID",
                        help="show only this source key (or key prefix), job or record; one match prints its record")
    parser.add_argument("--state", type=_state, help=f"only records in this state: {', '.join(STATES)}")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-uploads", action="store_true",
                        help="skip listing the watched prefixes (no 'never became a job' check)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if an upload never became a job, a claim is stuck, or a job failed")
    parser.add_argument("--concurrency", "-j", type=int, default=16, metavar="N",
                        help="parallel record reads (default: %(default)s)")
    parser.add_argument("--watch", "-w", type=float, nargs="?", const=2.0, metavar="SECONDS",
                        help="refresh every SECONDS (default 2) until Ctrl-C")
    parser.add_argument("--until-done", action="store_true",
                        help="with --watch: stop once no row shown is still in progress (Claimed, Submitted, "
                             "Running, Pause); exit as without --watch")
    parser.add_argument("--no-progress", action="store_true", help="no progress line while reading records")
    add_env_options(parser)
    parser.set_defaults(func=run)


def _state(text: str) -> str:
    for state in STATES:
        if text.lower() == state.lower() or (state == MISSING and text.lower() in ("missing", "none", "no-record")):
            return state
    raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(STATES)}")


def collect(settings: Any, clients: ThreadClients, concurrency: int = 16, uploads: bool = True,
            progress: bool = False) -> Dict[str, Any]:
    """{"records": [...], "missing": [...]} with one row per record and per upload without a record."""
    from shared.records import RecordStore, age_seconds, latest
    from shared.submit import skip_reason

    from cli.cmd_backfill import to_upload

    def store() -> RecordStore:
        return RecordStore(clients.get().storage, settings.rec_bucket, settings.records_prefix)

    groups = list(store().scan())

    def read(stages):
        newest = latest(stages)
        try:
            return stages, newest, store().load(newest.record_id)[0], None
        except ValueError as exc:  # a corrupt snapshot: show it, do not stop the report
            return stages, newest, None, str(exc).splitlines()[0]

    # Shown only when reading takes more than a second (thousands of records), on stderr.
    bar = Progress(total=len(groups), label="reading records", delay=1.0, enabled=progress)
    snapshots = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for snapshot in pool.map(read, groups):
            snapshots.append(snapshot)
            bar.update(len(snapshots))
    bar.finish(len(snapshots))
    rows = []
    for stages, newest, rec, problem in snapshots:
        row: Dict[str, Any] = {"record_id": newest.record_id, "state": rec.state if rec else "?",
                               "age_s": round(age_seconds(newest.last_modified), 1) if newest.last_modified else None,
                               "stages": [s.key.rsplit("/", 1)[-1] for s in sorted(stages, key=lambda s: s.order)],
                               "attempts": max(s.attempt for s in stages)}
        if rec is not None:
            row.update(bucket=rec.source.bucket, key=rec.source.key, etag=rec.source.etag, size=rec.source.size,
                       job_id=rec.job_id, output=(rec.output or {}).get("key"), error=rec.error,
                       attempt=rec.attempt, retry=rec.retry.value if rec.retry else None, notes=rec.notes or None)
        if problem:
            row["error"] = {"Code": "Unreadable", "Message": problem}
        if newest.rank == 0 and row["age_s"] is not None and row["age_s"] >= settings.claim_lease_seconds:
            row["stuck"] = "claim expired without a job (reconcile resubmits it)"
        rows.append(row)
    rows.sort(key=lambda r: (r.get("key") or "", r["record_id"]))
    missing = []
    if uploads:
        have = {r["record_id"] for r in rows}
        from shared.identity import ObjectVersion

        storage = clients.get().storage
        for prefix in settings.watch_prefixes:
            for obj in storage.list_all(settings.bucket, prefix):
                up = to_upload(obj, settings.bucket, settings.region)
                if skip_reason(settings, up):
                    continue
                rid = ObjectVersion.from_listing(settings.bucket, obj).record_id
                if rid not in have:
                    missing.append({"record_id": rid, "state": MISSING, "bucket": up.bucket, "key": up.key,
                                    "etag": up.etag, "size": up.size,
                                    "age_s": round(age_seconds(str(obj.get("LastModified", ""))), 1)
                                    if obj.get("LastModified") else None})
    return {"records": rows, "missing": missing}


def matches(row: Dict[str, Any], query: Optional[str], state: Optional[str]) -> bool:
    if state and row.get("state") != state:
        return False
    if query:
        key = row.get("key") or ""
        return query in (row.get("record_id"), row.get("job_id"), key) or key.startswith(query)
    return True


def _detail(row: Dict[str, Any]) -> str:
    """The OUTPUT column: the output key, or why there is none."""
    if row.get("output"):
        return row["output"]
    error = row.get("error") or {}
    if row.get("state") in ("Failed", "Cancel", "Gone", "Superseded", "?") and error:
        return f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ")
    return ""


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be >= 1")
    if args.watch is not None and args.watch <= 0:
        raise UsageError("--watch SECONDS must be > 0")
    if args.until_done and args.watch is None:
        raise UsageError("--until-done goes with --watch")
    env, settings = load(args)
    clients = ThreadClients(settings, env, pool=max(4, args.concurrency))
    if args.watch is None:
        return show(args, settings, clients, sys.stdout)
    clear = sys.stdout.isatty()
    try:
        while True:
            buffer = io.StringIO()
            code = show(args, settings, clients, buffer, progress=False)
            sys.stdout.write(("\x1b[H\x1b[2J" if clear else "\n")
                             + f"every {args.watch:g} s, {time.strftime('%H:%M:%S')} (Ctrl-C to stop)\n"
                             + buffer.getvalue())
            sys.stdout.flush()
            if args.until_done and not getattr(show, "in_progress", 0):
                return code
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def show(args: argparse.Namespace, settings: Any, clients: ThreadClients, out, progress: bool = True) -> int:
    data = collect(settings, clients, args.concurrency, uploads=not args.no_uploads,
                   progress=progress and not args.no_progress)
    everything = Counter(r["state"] for r in data["records"])
    records = [r for r in data["records"] if matches(r, args.query, args.state)]
    missing = [r for r in data["missing"] if matches(r, args.query, args.state)]
    totals = Counter(r["state"] for r in records)
    stuck = [r for r in records if r.get("stuck")]
    failed = [r for r in records if r.get("state") == "Failed"]
    show.in_progress = sum(totals[s] for s in IN_PROGRESS) + len(missing)  # type: ignore[attr-defined]
    if args.json:
        out.write(dump_json({"bucket": settings.bucket, "watch_prefixes": list(settings.watch_prefixes),
                             "totals": dict(sorted(totals.items())), "all_totals": dict(sorted(everything.items())),
                             "never_became_a_job": len(missing), "records": records, "missing": missing}) + "\n")
    else:
        if records:
            out.write(table(["SOURCE", "JOB", "STATE", "ATTEMPTS", "AGE", "OUTPUT"],
                            [[r.get("key") or r["record_id"], r.get("job_id") or "-",
                              r["state"] + (" (stuck)" if r.get("stuck") else ""), r.get("attempts", 1),
                              age(r.get("age_s")), _detail(r)] for r in records],
                            {0: 60, 5: 60}, right=(3, 4)) + "\n")
        elif not missing:
            out.write("no records" + (" match" if args.query or args.state else "") + "\n")
        if args.query and len(records) == 1:
            out.write("\n" + dump_json(records[0]) + "\n")
        if missing:
            out.write(f"\n!! {len(missing)} upload(s) in {', '.join(settings.watch_prefixes)} never became a job:\n")
            out.write(table(["SOURCE", "SIZE", "AGE", "RECORD ID"],
                            [[r["key"], size(r["size"]), age(r.get("age_s")), r["record_id"]] for r in missing],
                            {0: 70}, right=(1, 2)) + "\n")
            out.write("   submit them with: cos-matting backfill" + "".join(
                f" --prefix {p}" for p in settings.watch_prefixes) + "\n")
        for r in stuck:
            out.write(f"!! {r.get('key')}: {r['stuck']}\n")
        summary = "  ".join(f"{s}={totals[s]}" for s in STATES if totals.get(s))
        shown = sum(totals.values())
        of = f" of {sum(everything.values())}" if (args.query or args.state) else ""
        out.write(f"\ntotals: {shown} record(s){of}" + (f": {summary}" if summary else "")
                  + ("" if args.no_uploads else f"  never-became-a-job={len(missing)}") + "\n")
    if args.query and not records and not missing:
        print(f"cos-matting: no record matches {args.query!r} (a source key or key prefix, a job id or a record id)",
              file=sys.stderr)
        return 1
    if args.check and (missing or stuck or failed):
        return 1
    return 0
