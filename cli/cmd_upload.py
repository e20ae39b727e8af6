"""`cos-matting upload FILE [KEY]`: upload your own video into the watched prefix.

Uses the COS SDK's `upload_file`: one PUT up to --part-size, a multipart upload (parts sent in
parallel, resumable by the SDK) above it, with a progress bar on stderr. KEY defaults to the
first watched prefix + the file's name; a KEY ending in `/` gets the file's name appended.
The COS trigger then makes the job: follow it with `cos-matting status KEY`.

Ctrl-C stops at once (exit 130): the parts still queued are not sent and the multipart upload
is aborted (COS AbortMultipartUpload), so no parts are left behind to be billed; nothing of the
object exists afterwards. With --json, one JSON object says what was uploaded.
"""
from __future__ import annotations

import argparse
import mimetypes
import os
import threading
import sys
import time
from pathlib import Path

from cli.env import add_env_options, load, target_line
from cli.clients import make_clients
from cli.progress import Progress
from cli.errors import usage
from cli.ui import dump_json, size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("upload", help="upload a video (multipart for large files, with progress)",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="the local file")
    parser.add_argument("key", nargs="?", metavar="KEY",
                        help="object key (default: the first watched prefix + the file name)")
    parser.add_argument("--bucket", metavar="NAME-APPID", help="bucket (default: COS_MATTING_BUCKET)")
    parser.add_argument("--part-size", type=int, default=8, metavar="MB",
                        help="multipart above this size, in parts of this size, in MiB (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=4, help="parts sent in parallel (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print what was uploaded as JSON")
    add_env_options(parser)
    parser.set_defaults(func=run)


def target_key(settings, file: Path, key: str | None) -> str:
    if not key:
        return settings.watch_prefixes[0] + file.name
    key = key.lstrip("/")
    return key + file.name if key.endswith("/") or not key else key


def run(args: argparse.Namespace) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise usage(f"FILE {args.file}", "no such file" if not file.exists() else "not a file",
                    "give the path of a video to upload")
    if args.part_size < 1 or not 1 <= args.threads <= 32:
        raise usage("--part-size/--threads", "out of range", "give --part-size >= 1 (MiB) and --threads 1-32")
    env, settings = load(args)
    target_line(env, "upload")
    bucket = args.bucket or settings.bucket
    key = target_key(settings, file, args.key)
    total = file.stat().st_size
    if not any(key.startswith(p) for p in settings.watch_prefixes) or bucket != settings.bucket:
        print(f"note: {bucket}/{key} is outside the watched prefixes ({', '.join(settings.watch_prefixes)} in "
              f"{settings.bucket}): no job will be made for it", file=sys.stderr, flush=True)
    client = make_clients(settings, env).storage.client
    progress = Progress(total=max(1, total // 1024), label="upload", unit="KiB", enabled=not args.no_progress)
    lock = threading.Lock()
    stop = threading.Event()

    def on_progress(consumed: int, _total: int) -> None:  # called from the SDK's part threads
        if stop.is_set():
            return  # interrupted: the process is about to end, the bar stays as it was
        with lock:
            progress.update(consumed // 1024)

    started = time.monotonic()
    multipart = total > args.part_size * 1024 * 1024
    outcome: dict = {}

    def upload() -> None:
        try:
            client.upload_file(Bucket=bucket, Key=key, LocalFilePath=str(file), PartSize=args.part_size,
                               MAXThread=args.threads, progress_callback=on_progress,
                               ContentType=mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    # The SDK's upload runs on a thread so the main thread stays free for Ctrl-C: blocked inside the
    # SDK's pool.wait_completion (qcloud_cos/cos_threadpool.py), a KeyboardInterrupt would wait for
    # every queued part first.
    worker = threading.Thread(target=upload, name="upload", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        return interrupted(client, bucket, key, multipart)
    if "error" in outcome:
        raise outcome["error"]
    progress.finish(max(1, total // 1024))
    took = max(time.monotonic() - started, 1e-6)
    parts = -(-total // (args.part_size * 1024 * 1024)) if multipart else 1
    how = f"multipart, {parts} parts of {args.part_size} MiB" if multipart else "one PUT"
    if args.json:
        print(dump_json({"file": str(file), "bucket": bucket, "key": key, "bytes": total, "parts": parts,
                         "seconds": round(took, 3)}))
    else:
        print(f"uploaded {file} ({size(total)}, {how}) to {bucket}/{key} in {took:.2f} s "
              f"({size(total / took)}/s)")
        print(f"follow its job with: cos-matting status {_quote(key)}")
    return 0


def interrupted(client, bucket: str, key: str, multipart: bool) -> int:
    """Ctrl-C: abort the multipart upload of `key` (COS AbortMultipartUpload: its parts are deleted), say
    so, and exit 130 now. os._exit because the SDK's part threads are not daemons and wait on their
    queue for ever once the upload stops half way (qcloud_cos/cos_threadpool.py WorkerThread)."""
    sys.stderr.write("\ninterrupted: ")
    aborted = []
    if multipart:
        try:
            listing = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
            for up in listing.get("Upload") or []:
                if up.get("Key") == key:
                    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"])
                    aborted.append(up["UploadId"])
        except Exception as exc:  # the network may be what was slow: say how to clean up by hand
            sys.stderr.write(f"could not abort the multipart upload ({exc}); its parts stay until aborted: run "
                             f"`cos-matting upload` again with the same FILE and KEY to resume it (the COS SDK "
                             f"resumes an unfinished multipart upload of the same key)\n")
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(130)
    sys.stderr.write((f"aborted multipart upload {', '.join(aborted)} of {bucket}/{key}: no parts left behind"
                      if aborted else f"{bucket}/{key} was not uploaded") + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(130)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text) if os.name != "nt" else f'"{text}"'
