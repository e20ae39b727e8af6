"""`cos-matting status [KEY|JOB_ID|RECORD_ID] [--state S] [--all] [--json]`: the records, and the uploads that never became a job.

What it reads follows what is asked, never all history (cli/records_view.py):
by default the open records (Claimed, Submitted, Running, Pause: the open index, where a
finished record also waits for reconcile's recheck) and the records finished in the last 24 hours
(or since --since), failures always listed, newest first, with a one-line summary;
with --all, or a final --state (Success, Failed, Cancel, Gone, Superseded), the
history a page at a time from a cursor, stopping after --limit rows (--since keeps
recent ones, --after RECORD_ID goes on where a page ended); with KEY|JOB_ID|RECORD_ID,
just that record. "Never became a job" comes from an
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
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from cli.errors import UsageError
from cli.env import add_env_options, load
from cli.clients import ThreadClients
from cli.progress import Progress
from cli.ui import age, colour_states, dump_json, is_terminal, parse_since, size, table
from shared import states

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings

MISSING = "NoRecord"
STATES = ("Open", *states.ALL, MISSING, "Pending")
FINAL = states.FINAL
PENDING = "Pending"
RECENT = 24 * 3600  # the default view's window for finished records (--since changes it)


COLUMNS = """\
columns:
  SOURCE  the uploaded object's key (the record id when the record cannot be read)
  JOB     the Cloud Infinite job id (- before the job exists)
  STATE   Claimed (taken, no job yet), Submitted, Running, Pause, Success, Failed, Cancel,
          Gone / Superseded (a claim closed: the source was deleted / overwritten),
          Open (in the open index with no claim yet: a submit between its two writes, or one that died there);
          "(stuck)" when a claim outlived COS_MATTING_CLAIM_LEASE_SECONDS without a job
  ATTEMPTS how many times the record ran (cos-matting retry adds one; history is kept)
  AGE     time since the record last changed (its newest stage): s seconds, m minutes, h hours, d days
  OUTPUT  the output object, or the error code and message, whole (wrapped); whether a retry
          can help (retry: now | after-fix | new-input) is in the record (KEY, or --json)
  SIZE    (uploads that never became a job) the object's size, KiB/MiB/GiB
totals count the rows shown (after KEY/--state filters); "of N" gives all records.

exit codes: 0 ok; 1 nothing matches the KEY|JOB_ID|RECORD_ID given (like grep), or with --check a
problem was found; 2 a usage or configuration mistake."""
IN_PROGRESS = states.OPEN
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
                        help="all the history (finished records of any age), newest first, a page at a time, at "
                             "most --limit rows")
    parser.add_argument("--limit", type=int, default=100, metavar="N",
                        help="with --all or a final --state: stop after N rows, printing the cursor to go on; by "
                             "default: the finished records listed besides failures "
                             "(default: %(default)s; 0: no limit, rows are printed as they are read)")
    parser.add_argument("--since", metavar="WHEN", type=parse_since,
                        help="finished records changed at or after WHEN: a duration back (10m, 24h, 7d) or a date "
                             "(2026-11-01, or with a time and zone); default view: 24h, --all: any age")
    parser.add_argument("--grace", type=float, default=300.0, metavar="SECONDS",
                        help="an upload younger than this with no record is 'pending' (the trigger may still be on "
                             "it), not 'never became a job' (default: %(default)g)")
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
                        help="exit 1 if an upload never became a job, a claim is stuck, or a job shown failed (by "
                             "default: in the last 24 hours, or --since)")
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


def collect(settings: Settings, clients: ThreadClients, args: argparse.Namespace, progress: bool = False,
            out: Any = None, follow: Optional[Set[str]] = None) -> Dict[str, Any]:
    """{"records": [...], "missing": [...], "scan": {...}, "next_after": cursor or None, "read": Counter}:
    the records asked for, and the uploads that never became a job."""
    # Uploads first, records second: an upload whose claim lands in between is seen as a record, never
    # as neither (a `--watch --until-done` right after an upload would otherwise see nothing to wait for).
    scan, missing = (None, []) if args.no_uploads else missing_uploads(settings, clients, args)
    records, next_after, read = read_records(settings, clients, args, progress, out, follow)
    return {"records": records, "missing": missing, "scan": scan, "next_after": next_after,
            "read": Counter(read) if read else Counter(r["state"] for r in records)}


def read_records(settings: Settings, clients: ThreadClients, args: argparse.Namespace, progress: bool = False,
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
        followed = set(follow or ())
        rids = sorted(set(records_view.open_ids(settings, clients)) | followed)
        bar.total = len(rids)
        records = records_view.open_rows(settings, clients, rids, args.concurrency, on_row=bar.update)
        # a finished record waits in the open index for reconcile's recheck (shared/reconcile.py): it is
        # listed with the other finished ones (--since, --limit), unless --watch saw it open
        records = [r for r in records if r["state"] not in FINAL or r["record_id"] in followed]
        if follow is not None:
            follow.update(r["record_id"] for r in records)
        if not args.state or args.state not in IN_PROGRESS:
            records = records + _recent(settings, clients, args, {r["record_id"] for r in records})
    bar.finish(len(records))
    return records, next_after, read


def since_of(args: argparse.Namespace) -> Any:
    from datetime import datetime, timedelta, timezone

    return args.since or datetime.now(timezone.utc) - timedelta(seconds=RECENT)


def _recent(settings: Settings, clients: ThreadClients, args: argparse.Namespace, seen: Set[str]) -> Rows:
    """The records finished since --since (24 h by default), newest first: every failure, and the others up to
    --limit (the listing gives each record's newest time, so only the recent ones are read)."""
    from cli import records_view

    finished = [r for r in records_view.recent_finished(settings, clients, since_of(args), args.concurrency,
                                                        records_view.cache_path(settings))
                if r["record_id"] not in seen]
    finished.sort(key=lambda r: (r.get("age_s") is None, r.get("age_s") or 0))
    rest = [r for r in finished if r["state"] != "Failed"]
    keep = {r["record_id"] for r in rest[:args.limit or len(rest)]} | \
        {r["record_id"] for r in finished if r["state"] == "Failed"}
    args._hidden = len(finished) - len(keep)
    return [r for r in finished if r["record_id"] in keep]


def _history(settings: Settings, clients: ThreadClients, args: argparse.Namespace, bar: Progress,
             out: Any) -> Tuple[Rows, Optional[str], List[str]]:
    """--all (or a final --state): newest first a page of --limit rows; --limit 0 streams every row as it is
    read, in record-id order (no sort: memory stays one batch)."""
    from cli import records_view

    if args.limit:
        only = (args.state,) if args.state else None
        records, next_after, read = records_view.newest_first(settings, clients, args.after, args.since, only,
                                                              args.limit, args.concurrency)
        bar.total = len(records)
        return records, next_after, read
    records: Rows = []
    read: List[str] = []
    for row in records_view.history(settings, clients, args.after, args.since, None, args.concurrency):
        read.append(row["state"])
        if args.state and row["state"] != args.state:
            continue
        records.append(row)
        if out is not None:  # --limit 0: every row is printed as it is read
            out(row)
        bar.update(len(records))
    bar.total = len(records)
    return records, None, read


def missing_uploads(settings: Settings, clients: ThreadClients, args: argparse.Namespace) -> Tuple[Any, Rows]:
    """(the scan's state, its uploads that never became a job as rows, by key)."""
    scan = uploads(settings, clients, args)
    missing = [{**m, "age_s": _age(m.get("modified"))} for m in scan.missing.values()]
    for m in missing:  # a fresh upload is the trigger's to take: not (yet) a problem
        m["state"] = PENDING if m["age_s"] is not None and m["age_s"] < args.grace else MISSING
    missing.sort(key=lambda r: r["key"])
    return scan, missing


def _age(stamp: Any) -> Optional[float]:
    from shared.records import age_seconds

    return round(age_seconds(stamp), 1) if stamp else None


def uploads(settings: Settings, clients: ThreadClients, args: argparse.Namespace) -> Any:
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
    """The OUTPUT column: the output key of a job that succeeded, or why there is none."""
    state = row.get("state")
    if row.get("output") and state not in states.UNSUCCESSFUL:
        return row["output"]
    error = row.get("error") or {}
    if (state in states.UNSUCCESSFUL or state == "?") and error:
        code = error.get("Code", "")
        if state != "Failed" and code in ("Success", ""):  # a cancelled job's CI code can read "Success"
            code = {"Cancel": "cancelled", "Gone": "source deleted", "Superseded": "source overwritten"}.get(state, "")
        return f"{code}: {error.get('Message', '')}".strip(": ")
    return {"Cancel": "cancelled", "Gone": "source deleted", "Superseded": "source overwritten"}.get(state or "", "")


def summary(totals: Counter, missing: int, pending: int, default_view: bool, args: argparse.Namespace,
            hidden: int = 0) -> str:
    """The one-line summary: what is open, what finished (in the window), what failed, what needs a look."""
    open_n = sum(totals[s] for s in IN_PROGRESS)
    done = {s: totals[s] for s in FINAL if totals.get(s)}
    done_n = sum(done.values()) + hidden
    window = ""
    if default_view:
        window = " in the last 24 h" if not args.since else f" since {args.since:%Y-%m-%d %H:%M} UTC"
    parts = [f"{open_n} open", f"{done_n} finished{window}"
             + (f" ({', '.join(f'{n} {s}' for s, n in done.items())}" + (f", {hidden} more not listed" if hidden else "")
                + ")" if done_n else "")]
    if pending:
        parts.append(f"{pending} upload(s) pending")
    if missing:
        parts.append(f"{missing} upload(s) never became a job")
    verdict = "FAILURES" if totals.get("Failed") else "attention" if missing else "ok"
    return f"summary: {'; '.join(parts)}: {verdict}"


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
    empty_looks = 0
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
                empty_looks += 1
                if not follow and empty_looks < 2:  # one more look: a trigger may be between upload and claim
                    time.sleep(args.watch)
                    continue
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


def show(args: argparse.Namespace, settings: Settings, clients: ThreadClients, out, progress: bool = True,
         follow: Optional[Set[str]] = None) -> int:
    streaming = (args.all or args.state in FINAL) and args.limit == 0 and not args.json and not args.query
    if streaming:
        out.write(f"{'SOURCE':<60}  {'JOB':<34}  {'STATE':<10}  {'AGE':>5}  OUTPUT\n")
    data = collect(settings, clients, args, progress=progress and not args.no_progress, follow=follow,
                   out=(lambda row: (out.write(_line(row) + "\n"), out.flush())) if streaming else None)
    everything = data["read"]
    records = [r for r in data["records"] if matches(r, None, args.state)]  # a query's rows are its lookup
    found = [r for r in data["missing"] if matches(r, args.query, None)]
    pending = [r for r in found if r["state"] == PENDING and args.state in (None, PENDING)]
    missing = [r for r in found if r["state"] == MISSING and args.state in (None, MISSING)]
    totals = Counter(r["state"] for r in records)
    stuck = [r for r in records if r.get("stuck")]
    failed = [r for r in records if r.get("state") == "Failed"]
    show.in_progress = sum(totals[s] for s in IN_PROGRESS) + len(missing) + len(pending)  # type: ignore[attr-defined]
    default_view = not (args.query or args.all or args.state in FINAL)
    line = summary(totals, len(missing), len(pending), default_view, args, getattr(args, "_hidden", 0))
    if args.json:
        scan = data["scan"]
        out.write(dump_json({"bucket": settings.bucket, "watch_prefixes": list(settings.watch_prefixes),
                             "totals": dict(sorted(totals.items())), "all_totals": dict(sorted(everything.items())),
                             "never_became_a_job": len(missing), "pending_uploads": len(pending),
                             "summary": line, "records": records, "missing": missing, "pending": pending,
                             "next_after": data["next_after"],
                             "uploads_scan": None if scan is None else {
                                 k: getattr(scan, k) for k in ("source", "read", "checked", "complete", "passes",
                                                               "position")}}) + "\n")
    else:
        tty = is_terminal(out)  # piped: one line per row, whole (no wrapping) for grep and awk
        if records and not streaming:
            headers = ["SOURCE", "JOB", "STATE", "ATTEMPTS", "AGE", "OUTPUT"]
            text = table(headers, [[r.get("key") or r["record_id"], r.get("job_id") or "-",
                                    r["state"] + (" (stuck)" if r.get("stuck") else ""), r.get("attempts", 1),
                                    age(r.get("age_s")), _detail(r)] for r in records],
                         {0: 60, 5: 60} if tty else None, right=(3, 4))
            out.write(colour_states(text, text.splitlines()[0].index("STATE"), out) + "\n")
        elif not missing and not records and not pending:
            out.write("no records" + (" match" if args.query or args.state else "") + "\n")
        if data["next_after"]:
            out.write(f"(first {len(records)} shown; more: cos-matting status --all --after {data['next_after']}"
                      + (f" --state {args.state}" if args.state else "") + ")\n")
        if args.query and len(records) == 1:
            out.write("\n" + dump_json(records[0]) + "\n")
        if pending:
            out.write(f"\n{len(pending)} upload(s) pending (younger than {args.grace:g} s with no record yet: the COS "
                      "trigger is still on them):\n")
            out.write(table(["SOURCE", "SIZE", "AGE"], [[r["key"], size(r["size"]), age(r.get("age_s"))]
                                                       for r in pending], None, right=(1, 2)) + "\n")
        if missing:
            out.write(f"\n!! {len(missing)} upload(s) in {', '.join(settings.watch_prefixes)} never became a job:\n")
            out.write(table(["SOURCE", "SIZE", "AGE", "RECORD ID"],
                            [[r["key"], size(r["size"]), age(r.get("age_s")), r["record_id"]] for r in missing],
                            {0: 70} if tty else None, right=(1, 2)) + "\n")
            out.write("   submit them with: cos-matting backfill" + "".join(
                f" --prefix {p}" for p in settings.watch_prefixes) + "\n")
        for r in stuck:
            out.write(f"!! {r.get('key')}: {r['stuck']}\n")
        detail = "  ".join(f"{s}={totals[s]}" for s in STATES if totals.get(s))
        shown = sum(totals.values())
        of = f" of {sum(everything.values())}" if (args.query or args.state) else ""
        out.write(f"\ntotals: {shown} record(s){of}" + (f": {detail}" if detail else "")
                  + ("" if args.no_uploads else f"  never-became-a-job={len(missing)}") + "\n")
        out.write(line + "\n")
        if data["scan"] is not None:
            out.write(scan_note(data["scan"]) + "\n")
    if args.query and not records and not missing and not pending:
        print(f"cos-matting: no record matches {args.query!r} (a source key or key prefix, a job id or a record id)",
              file=sys.stderr)
        return 1
    if args.check and (missing or stuck or failed):
        return 1
    return 0
