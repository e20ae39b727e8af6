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
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from cli.errors import UsageError
from cli.env import add_env_options, is_local, load
from cli.clients import ThreadClients
from cli.common import add_verbose, logs_aside
from cli.ui import dump_json, parse_since
from cli.progress import Progress
from cli.sources import BACKFILL_EVENT, ListingSource, list_objects, open_source  # noqa: F401 (list_objects: re-exported)
COUNTERS = ("submitted", "duplicate", "skipped", "failed")


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
    add_env_options(parser)
    parser.set_defaults(func=run)


@dataclass
class Summary:
    bucket: str
    prefixes: List[str]
    listed: int = 0
    counts: Counter = field(default_factory=Counter)  # outcome -> n (submitted, duplicate, skipped:*, failed:*)
    failures: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    resume_after: str = ""
    elapsed: float = 0.0
    dry_run: bool = False
    source: str = ""  # what was read: a listing of bucket/prefixes, or an inventory report

    def total(self, group: str) -> int:
        return sum(n for k, n in self.counts.items() if k == group or k.startswith(group + ":"))

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def totals(self) -> Dict[str, int]:
        if self.dry_run:
            return {"would-submit": self.counts["would-submit"], "has-record": self.counts["has-record"],
                    "skipped": self.total("skipped")}
        return {name: self.total(name) for name in COUNTERS}

    def as_dict(self) -> Dict[str, Any]:
        return {"bucket": self.bucket, "prefixes": self.prefixes, "source": self.source, "listed": self.listed,
                "done": self.done,
                "totals": self.totals(), "outcomes": dict(sorted(self.counts.items())),
                "failures": self.failures, "interrupted": self.interrupted, "resume_after": self.resume_after or None,
                "elapsed_s": round(self.elapsed, 3), "per_second": round(self.rate, 1), "dry_run": self.dry_run}


def to_upload(obj: Dict[str, Any], bucket: str, region: str) -> Any:
    """The Upload a trigger would have sent for a listed object (same record id: bucket + key + ETag)."""
    from shared.events import upload_from_listing

    return upload_from_listing(bucket, region, obj, BACKFILL_EVENT)


class Frontier:
    """The last position (listing key, or inventory file/row) such that it and everything read before
    it are finished: where a rerun resumes."""

    def __init__(self) -> None:
        self.keys: List[Any] = []
        self.finished: List[bool] = []
        self.next = 0

    def add(self, key: Any) -> int:
        self.keys.append(key)
        self.finished.append(False)
        return len(self.keys) - 1

    def finish(self, index: int) -> None:
        self.finished[index] = True
        while self.next < len(self.finished) and self.finished[self.next]:
            self.next += 1

    @property
    def key(self) -> Any:
        return self.keys[self.next - 1] if self.next else ""


ProgressHook = Callable[[Summary], None]


def backfill(settings: Any, clients: ThreadClients, bucket: str, prefixes: List[str], since: Optional[datetime] = None,
             concurrency: int = 8, dry_run: bool = False, start_after: Any = "", limit: Optional[int] = None,
             on_progress: Optional[ProgressHook] = None, source: Any = None) -> Summary:
    """Read (a listing of the prefixes, or `source`: see cli/sources.py), filter and push every object
    through Submitter.process with at most `concurrency` in flight.

    A KeyboardInterrupt (Ctrl-C, or raised by `on_progress`) stops listing and submitting, lets the
    objects in flight finish, and returns the summary with `interrupted` and `resume_after` set.
    """
    from shared.records import RecordStore
    from shared.submit import Submitter

    summary = Summary(bucket=bucket, prefixes=sorted(set(prefixes)), dry_run=dry_run, resume_after=start_after)
    started = time.monotonic()
    frontier = Frontier()
    local = threading.local()

    def submitter() -> Submitter:
        sub = getattr(local, "submitter", None)
        if sub is None:
            sub = local.submitter = Submitter(settings, clients.get())
        return sub

    def work(up: Any) -> Any:
        return submitter().process(up)

    def record(index: int, key: str, outcome: str, detail: Optional[str] = None) -> None:
        summary.counts[outcome] += 1
        if outcome.startswith("failed"):  # the resume point stays before it, so a rerun retries it
            summary.failures.append({"key": key, "outcome": outcome, "detail": detail})
        else:
            frontier.finish(index)

    known = set()
    if dry_run:
        store = RecordStore(clients.get().storage, settings.rec_bucket, settings.records_prefix)
        known = {stages[0].record_id for stages in store.scan()}

    storage = clients.get().storage
    pending: Dict[Future, Tuple[int, str]] = {}
    window = max(1, concurrency) * 4
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="backfill")

    def drain(block: bool) -> None:
        if not pending:
            return
        done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            index, key = pending.pop(fut)
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None:
                record(index, key, "failed:error", f"{type(exc).__name__}: {exc}")
            else:
                out = fut.result()
                record(index, key, out.outcome, out.detail)

    source = source or ListingSource(storage, bucket, prefixes)
    summary.source = source.describe()
    try:
        try:
            for item in source.items(settings, start_after, since):
                if limit is not None and summary.listed >= limit:
                    break
                summary.listed += 1
                up, reason = item.upload, item.reason
                index = frontier.add(item.position)
                if reason:
                    record(index, up.key, f"skipped:{reason}")
                elif dry_run:
                    rid = item.record_id
                    record(index, up.key, "has-record" if rid in known else "would-submit")
                else:
                    pending[pool.submit(work, up)] = (index, up.key)
                    while len(pending) >= window:
                        drain(block=True)
                    drain(block=False)
                if on_progress is not None:
                    on_progress(summary)
            while pending:
                drain(block=True)
                if on_progress is not None:
                    on_progress(summary)
        except KeyboardInterrupt:
            summary.interrupted = True
            for fut in list(pending):
                if fut.cancel():
                    pending.pop(fut)
            while pending:  # in-flight objects finish: their outcome is known, not half-done
                drain(block=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        summary.elapsed = time.monotonic() - started
    summary.resume_after = frontier.key or start_after
    if on_progress is not None and not summary.interrupted:
        on_progress(summary)
    return summary


def read_checkpoint(path: str, identity: Dict[str, Any]) -> Any:
    """The saved resume position (a key for a listing, {file, row} for an inventory), checked to belong
    to this source (`identity`: bucket + prefixes, or the inventory)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        raise UsageError(f"--checkpoint {path}: unreadable ({exc})") from None
    saved = {k: sorted(data.get(k) or []) if k == "prefixes" else data.get(k) for k in identity}
    if saved != identity:
        raise UsageError(f"--checkpoint {path} belongs to {' '.join(str(data.get(k)) for k in identity)}, not "
                         f"{' '.join(str(v) for v in identity.values())}: remove it or use another file")
    return data.get("start_after") or ""


def write_checkpoint(path: str, identity: Dict[str, Any], summary: Summary) -> None:
    Path(path).write_text(json.dumps({**identity, "start_after": summary.resume_after, "saved_at": time.time()})
                          + "\n", encoding="utf-8")


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


def count_objects(source: Any, settings: Any, start: Any = "", limit: Optional[int] = None) -> int:
    """How many objects the run will list (a listing without the work)."""
    count = 0
    for _ in source.items(settings, start):
        count += 1
        if limit is not None and count >= limit:
            break
    return count


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1 or args.concurrency > 256:
        raise UsageError("--concurrency must be between 1 and 256")
    overrides = {"COS_MATTING_BUCKET": args.bucket} if args.bucket else {}
    env, settings = load(args, overrides)
    via = args.via or ("local" if is_local(env) else "scf")
    prefixes = args.prefixes or [p for p in settings.watch_prefixes]
    outside = [p for p in prefixes if not any(p.startswith(w) or w.startswith(p) for w in settings.watch_prefixes)]
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
