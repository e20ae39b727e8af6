"""`cos-matting status [KEY|JOB_ID|RECORD_ID] [--state S] [--all] [--json]`: the records, and the uploads that never became a job.

What it reads follows what is asked, never all history (cli/records_view.py):
by default the open records (the open index: Claimed, Submitted, Running, Pause)
and their totals; with --all, or a final --state (Success, Failed, Cancel, Gone,
Superseded), the history a page at a time from a cursor, stopping after --limit
rows (--since keeps recent ones, --after RECORD_ID goes on where a page ended);
with KEY|JOB_ID|RECORD_ID, just that record. "Never became a job" comes from an
incremental scan of the watched prefixes (or of a COS inventory report with
--inventory): each call reads at most --scan objects from where the last call
stopped and checks only uploads the trigger would take (cli/uploads_scan.py).
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from typing import Any, Dict, List, Optional, Set, Tuple

from cli.errors import UsageError
from cli.env import add_env_options, load
from cli.clients import ThreadClients
from cli.progress import Progress
from cli.ui import age, dump_json, parse_since, size, table

MISSING = "NoRecord"
STATES = ("Open", "Claimed", "Submitted", "Running", "Pause", "Success", "Failed", "Cancel", "Gone", "Superseded",
          MISSING)
FINAL = ("Success", "Failed", "Cancel", "Gone", "Superseded")


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
Rows = List[Dict[str, Any]]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="records as a table with totals by state; uploads that never became a job",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COLUMNS)
    parser.add_argument("query", nargs="?", metavar="KEY|JOB_ID|RECORD_ID",
                        help="show only this source key (or key prefix), job or record; one match prints its record")
    parser.add_argument("--state", type=_state, help=f"only records in this state: {', '.join(STATES)}")
    parser.add_argument("--all", action="store_true",
                        help="the history too (finished records), a page at a time, at most --limit rows")
    parser.add_argument("--limit", type=int, default=100, metavar="N",
                        help="with --all or a final --state: stop after N rows, printing the cursor to go on "
                             "(default: %(default)s; 0: no limit, rows are printed as they are read)")
    parser.add_argument("--since", metavar="DATE", type=parse_since,
                        help="with --all: only records changed at or after DATE (2026-11-01, or with a time and zone)")
    parser.add_argument("--after", metavar="RECORD_ID", default="",
                        help="with --all: start after this record id (the cursor a limited page printed)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-uploads", action="store_true",
                        help="no 'never became a job' check")
    parser.add_argument("--scan", type=int, default=1000, metavar="N",
                        help="objects of the watched prefixes (or --inventory) read per call for the 'never became "
                             "a job' check, resuming where the last call stopped (default: %(default)s)")
    parser.add_argument("--inventory", metavar="MANIFEST_KEY",
                        help="scan this COS inventory report for uploads that never became a job instead of "
                             "listing the bucket")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if an upload never became a job, a claim is stuck, or a job failed (failed jobs "
                             "are history: add --all, e.g. with --since)")
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


def collect(settings: Any, clients: ThreadClients, args: argparse.Namespace, progress: bool = False,
            out: Any = None, follow: Optional[Set[str]] = None) -> Dict[str, Any]:
    """{"records": [...], "missing": [...], "scan": {...}, "next_after": cursor or None, "read": Counter}:
    the records asked for, and the uploads that never became a job."""
    records, next_after, read = read_records(settings, clients, args, progress, out, follow)
    scan, missing = (None, []) if args.no_uploads else missing_uploads(settings, clients, args)
    return {"records": records, "missing": missing, "scan": scan, "next_after": next_after,
            "read": Counter(read) if read else Counter(r["state"] for r in records)}


def read_records(settings: Any, clients: ThreadClients, args: argparse.Namespace, progress: bool = False,
                 out: Any = None, follow: Optional[Set[str]] = None) -> Tuple[Rows, Optional[str], List[str]]:
    """(rows, the cursor to go on from or None, the state of every record read: the "of N" of filtered
    totals) for a query, the history (--all or a final --state), or the open records."""
    from cli import records_view

    bar = Progress(label="reading records", delay=1.0, enabled=progress)
    next_after = None
    read: List[str] = []
    if args.query:
        records = records_view.lookup(settings, clients, args.query)
    elif args.all or (args.state in FINAL):
        records, next_after, read = _history(settings, clients, args, bar, out)
    else:
        # --watch follows what it saw open until the end: a record that finishes stays on screen
        rids = sorted(set(records_view.open_ids(settings, clients)) | (follow or set()))
        bar.total = len(rids)
        records = records_view.open_rows(settings, clients, rids, args.concurrency, on_row=bar.update)
        if follow is not None:
            follow.update(r["record_id"] for r in records)
    bar.finish(len(records))
    return records, next_after, read


def _history(settings: Any, clients: ThreadClients, args: argparse.Namespace, bar: Progress,
             out: Any) -> Tuple[Rows, Optional[str], List[str]]:
    from cli import records_view

    records: Rows = []
    read: List[str] = []
    next_after = None
    for row in records_view.history(settings, clients, args.after, args.since, None, args.concurrency):
        if args.state and row["state"] != args.state:
            read.append(row["state"])
            continue
        if args.limit and len(records) >= args.limit:
            next_after = records[-1]["record_id"]
            break
        read.append(row["state"])
        records.append(row)
        if out is not None:  # --limit 0: every row is printed as it is read
            out(row)
        bar.update(len(records))
    if next_after is None:
        bar.total = len(records)  # the end of the history: now the total is known
    return records, next_after, read


def missing_uploads(settings: Any, clients: ThreadClients, args: argparse.Namespace) -> Tuple[Any, Rows]:
    """(the scan's state, its uploads that never became a job as rows, by key)."""
    scan = uploads(settings, clients, args)
    missing = [{**m, "state": MISSING, "age_s": _age(m.get("modified"))} for m in scan.missing.values()]
    missing.sort(key=lambda r: r["key"])
    return scan, missing


def _age(stamp: Any) -> Optional[float]:
    from shared.records import age_seconds

    return round(age_seconds(stamp), 1) if stamp else None


def uploads(settings: Any, clients: ThreadClients, args: argparse.Namespace) -> Any:
    """One step of the incremental scan for uploads that never became a job (state saved per bucket)."""
    from cli import uploads_scan

    return uploads_scan.step(settings, clients, args.scan, args.concurrency, args.inventory)


def scan_note(scan: Any) -> str:
    where = (f"inventory {scan.source['inventory']}" if "inventory" in scan.source
             else ", ".join(f"{scan.source.get('bucket')}/{p}" for p in scan.source.get("prefixes", [])))
    if scan.complete:
        return f"   (uploads checked: a complete pass over {where}; the next call looks at what changed since)"
    return (f"   (uploads checked so far: {scan.read} object(s) of {where}, pass {scan.passes + 1} in progress; "
            f"each status call reads up to --scan more)")


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
    follow: Set[str] = set()
    clear = sys.stdout.isatty()
    try:
        while True:
            buffer = io.StringIO()
            code = show(args, settings, clients, buffer, progress=False, follow=follow)
            sys.stdout.write(("\x1b[H\x1b[2J" if clear else "\n")
                             + f"every {args.watch:g} s, {time.strftime('%H:%M:%S')} (Ctrl-C to stop)\n"
                             + buffer.getvalue())
            sys.stdout.flush()
            if args.until_done and not getattr(show, "in_progress", 0):
                if not follow:  # finished before the first look (a short clip on a fast machine)
                    sys.stdout.write("nothing in progress: no open record and no upload without one "
                                     "(`cos-matting status --all` lists the finished records)\n")
                return code
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


def _line(row: Dict[str, Any]) -> str:
    """One row as a fixed-width line, for rows printed as they are read (--limit 0)."""
    source = row.get("key") or row["record_id"]
    return (f"{source[:60]:<60}  {row.get('job_id') or '-':<34}  {row['state']:<10}  "
            f"{age(row.get('age_s')):>5}  {_detail(row)}").rstrip()


def show(args: argparse.Namespace, settings: Any, clients: ThreadClients, out, progress: bool = True,
         follow: Optional[Set[str]] = None) -> int:
    streaming = (args.all or args.state in FINAL) and args.limit == 0 and not args.json and not args.query
    if streaming:
        out.write(f"{'SOURCE':<60}  {'JOB':<34}  {'STATE':<10}  {'AGE':>5}  OUTPUT\n")
    data = collect(settings, clients, args, progress=progress and not args.no_progress, follow=follow,
                   out=(lambda row: (out.write(_line(row) + "\n"), out.flush())) if streaming else None)
    everything = data["read"]
    records = [r for r in data["records"] if matches(r, None, args.state)]  # a query's rows are its lookup
    missing = [r for r in data["missing"] if matches(r, args.query, args.state)]
    totals = Counter(r["state"] for r in records)
    stuck = [r for r in records if r.get("stuck")]
    failed = [r for r in records if r.get("state") == "Failed"]
    show.in_progress = sum(totals[s] for s in IN_PROGRESS) + len(missing)  # type: ignore[attr-defined]
    if args.json:
        scan = data["scan"]
        out.write(dump_json({"bucket": settings.bucket, "watch_prefixes": list(settings.watch_prefixes),
                             "totals": dict(sorted(totals.items())), "all_totals": dict(sorted(everything.items())),
                             "never_became_a_job": len(missing), "records": records, "missing": missing,
                             "next_after": data["next_after"],
                             "uploads_scan": None if scan is None else {
                                 k: getattr(scan, k) for k in ("source", "read", "checked", "complete", "passes",
                                                               "position")}}) + "\n")
    else:
        if records and not streaming:
            out.write(table(["SOURCE", "JOB", "STATE", "ATTEMPTS", "AGE", "OUTPUT"],
                            [[r.get("key") or r["record_id"], r.get("job_id") or "-",
                              r["state"] + (" (stuck)" if r.get("stuck") else ""), r.get("attempts", 1),
                              age(r.get("age_s")), _detail(r)] for r in records],
                            {0: 60, 5: 60}, right=(3, 4)) + "\n")
        elif not missing and not records:
            out.write("no records" + (" match" if args.query or args.state else "") + "\n")
        if data["next_after"]:
            out.write(f"(first {len(records)} shown; more: cos-matting status --all --after {data['next_after']}"
                      + (f" --state {args.state}" if args.state else "") + ")\n")
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
        if data["scan"] is not None:
            out.write(scan_note(data["scan"]) + "\n")
    if args.query and not records and not missing:
        print(f"cos-matting: no record matches {args.query!r} (a source key or key prefix, a job id or a record id)",
              file=sys.stderr)
        return 1
    if args.check and (missing or stuck or failed):
        return 1
    return 0
