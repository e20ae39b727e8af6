"""`cos-matting get KEY|RECORD_ID|JOB_ID [DIR] [--url]`: the output of a finished job.

The record is found the way `status` finds one (a source key, a record id or a job id); its
output object (the record's `output`, in COS_MATTING_OUTPUT_BUCKET or the source bucket) is
downloaded into DIR (default: the current folder) under its own file name, with a progress bar
(the COS SDK's `download_file`: ranged parts in parallel). With --url, a presigned GET URL is
printed instead (cos-python-sdk-v5 `get_presigned_url`, valid --expires seconds), e.g. to open it
in a browser or hand it on. With --stage, the stage's own buckets are used.

exit codes: 0 downloaded (or URL printed); 1 no such record, or its job has no output (not
finished, failed or cancelled: the record's state and error are printed); 2 a usage mistake.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.clients import ThreadClients, make_clients
from cli.env import add_env_options, load
from cli.errors import UsageError, failure
from cli.progress import Progress
from cli.ui import dump_json, size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("get", help="download a finished job's output (or print a presigned URL)",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("query", metavar="KEY|RECORD_ID|JOB_ID", help="the source key, record id or job id")
    parser.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where to save it (default: here)")
    parser.add_argument("--url", action="store_true", help="print a presigned download URL instead of downloading")
    parser.add_argument("--expires", type=int, default=3600, metavar="SECONDS",
                        help="with --url: how long the URL is valid (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite a file of the same name in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.records_view import lookup

    if not 1 <= args.expires <= 7 * 86400:
        raise UsageError("--expires SECONDS: 1 to 604800 (7 days)")
    env, settings = load(args)
    rows = lookup(settings, ThreadClients(settings, env), args.query)
    if not rows:
        raise failure(args.query, "no record has this source key, record id or job id",
                      "`cos-matting status` lists the records")
    if len(rows) > 1:
        raise UsageError(f"{args.query!r} is a key prefix of {len(rows)} records: give a whole key, a record id or "
                         "a job id")
    row = rows[0]
    if row.get("state") != "Success" or not row.get("output"):
        error = row.get("error") or {}
        why = f": {error.get('Code')}: {error.get('Message')}" if error.get("Code") else ""
        raise failure(row.get("key") or row["record_id"], f"no output: its job is {row.get('state')}{why}",
                      "`cos-matting status KEY` shows the record; `cos-matting retry KEY` runs it again")
    bucket, key = row.get("output_bucket") or settings.out_bucket, row["output"]
    client = make_clients(settings, env).out_storage.client
    if args.url:
        # Against the local cloud the SDK's URL names its IP:port (the IP/Port config), not the bucket domain
        # it would sign as Host: leave Host out of the signature there (get_presigned_url SignHost).
        url = client.get_presigned_url(Bucket=bucket, Key=key, Method="GET", Expired=args.expires,
                                       **({"SignHost": False} if settings.endpoint else {}))
        print(dump_json({"bucket": bucket, "key": key, "url": url, "expires_s": args.expires}) if args.json else url)
        return 0
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / key.rsplit("/", 1)[-1]
    if dest.exists() and not args.force:
        raise UsageError(f"{dest} exists: pass --force to overwrite it, or another DIR")
    head = client.head_object(Bucket=bucket, Key=key)
    total = int(head.get("Content-Length") or 0)
    bar = Progress(total=max(1, total // 1024), label="download", unit="KiB", enabled=not args.no_progress)
    started = time.monotonic()
    part = dest.with_name(dest.name + ".part")
    client.download_file(Bucket=bucket, Key=key, DestFilePath=str(part),
                         progress_callback=lambda done, _t: bar.update(done // 1024))
    part.replace(dest)  # never a half file under the real name
    bar.finish(max(1, total // 1024))
    took = time.monotonic() - started
    if args.json:
        print(dump_json({"bucket": bucket, "key": key, "file": str(dest), "bytes": total, "seconds": round(took, 3)}))
    else:
        print(f"downloaded {bucket}/{key} ({size(total)}) to {dest} in {took:.2f} s", file=sys.stdout)
    return 0
