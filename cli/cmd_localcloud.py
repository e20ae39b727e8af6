"""`cos-matting localcloud`: run the local cloud (COS + CI + SCF emulation) until Ctrl-C."""
import argparse
import signal
import sys
import threading
from typing import Dict, List, Tuple

DEFAULT_BUCKET = "videos-1250000000"

EPILOG = """\
Point the SDK at it with CosConfig(Region=R, SecretId=ID, SecretKey=KEY, IP=HOST, Port=PORT, Scheme="http"),
or set COS_MATTING_ENDPOINT=http://HOST:PORT for the functions. Buckets are reached by the Host header
<bucket>.cos.<region>.myqcloud.com, CI jobs under /jobs on the same host. Function URLs are served at
http://HOST:PORT/_fn/<name>/. Test-only control routes (no auth: keep --host on loopback) live under
http://HOST:PORT/_localcloud/ (health, jobs, jobs/<bucket>/<id>/state, faults, invocations, callbacks, idle).

example:
  cos-matting localcloud --port 9000 --engine matting \\
      --trigger functions/submit --function-url callback=functions/callback \\
      --env COS_MATTING_BUCKET=videos-1250000000 --env COS_MATTING_REGION=ap-guangzhou
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localcloud", help="run the local COS/CI/SCF emulator on loopback",
        description="Run a local stand-in for COS, Cloud Infinite video matting jobs and SCF on one HTTP port. "
                    "Objects, tags and jobs persist under --data.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind, 0 for any free port (default: %(default)s)")
    parser.add_argument("--data", default=".localcloud", metavar="DIR",
                        help="directory for objects, tags and jobs (default: %(default)s)")
    parser.add_argument("--bucket", action="append", dest="buckets", metavar="NAME-APPID",
                        help=f"bucket to serve; repeat for several; the first is the trigger bucket "
                             f"(default: {DEFAULT_BUCKET})")
    parser.add_argument("--region", default="ap-guangzhou", help="region in bucket host names (default: %(default)s)")
    parser.add_argument("--secret-id", default="AKIDlocal", help="accepted SecretId (default: %(default)s)")
    parser.add_argument("--secret-key", default="localsecretkey", help="its SecretKey (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="job workers when an engine runs (default: %(default)s)")
    parser.add_argument("--engine", choices=("none", "matting"), default="none",
                        help="'matting' runs jobs with localcloud.matting; 'none' leaves them Submitted "
                             "(finish them via the control API) (default: %(default)s)")
    parser.add_argument("--trigger", action="append", default=[], metavar="FUNCTION_DIR",
                        help="COS trigger on the first bucket invoking FUNCTION_DIR/index.py:main_handler; repeatable")
    parser.add_argument("--trigger-prefix", default="input/", help="trigger prefix filter (default: %(default)s)")
    parser.add_argument("--trigger-suffix", default="", help="trigger suffix filter (default: none)")
    parser.add_argument("--function-url", action="append", default=[], metavar="NAME=FUNCTION_DIR",
                        help="serve FUNCTION_DIR at http://HOST:PORT/_fn/NAME/; repeatable")
    parser.add_argument("--timer", action="append", default=[], metavar="FUNCTION_DIR=SECONDS",
                        help="invoke FUNCTION_DIR every SECONDS; repeatable")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment variable for every function (on top of credentials, region and "
                             "COS_MATTING_ENDPOINT, which are set for you); repeatable")
    parser.add_argument("--quiet", action="store_true", help="do not print function invocations and their logs")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request to stderr")
    parser.set_defaults(func=run)


def _pairs(values: List[str], what: str) -> List[Tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {what} must look like A=B, got {value!r}")
        out.append((key, rest))
    return out


def _engine(name: str):
    if name == "none":
        return None
    from localcloud import matting  # provided separately; imported only when asked for

    return matting.engine


def _print_invocation(inv) -> None:
    status = "ok" if inv.ok else f"FAILED: {inv.error.splitlines()[0] if inv.error else '?'}"
    print(f"[{inv.function} {inv.kind} attempt {inv.attempt}] {status} ({inv.duration * 1000:.0f} ms)",
          file=sys.stderr, flush=True)
    for line in inv.logs:
        print(f"  {inv.function}| {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from localcloud import LocalCloud

    buckets: List[str] = args.buckets or [DEFAULT_BUCKET]
    env: Dict[str, str] = dict(_pairs(args.env, "--env"))
    urls = _pairs(args.function_url, "--function-url")
    timers = [(d, float(s)) for d, s in _pairs(args.timer, "--timer")]
    cloud = LocalCloud(data_dir=args.data, buckets=buckets, region=args.region, secret_id=args.secret_id,
                       secret_key=args.secret_key, host=args.host, port=args.port, job_workers=args.workers,
                       verbose=args.verbose)
    engine = _engine(args.engine)
    cloud.start()
    try:
        if not args.quiet:
            cloud.runtime.on_invocation = _print_invocation
        if engine is not None:
            cloud.set_engine(engine)
        for name, function_dir in urls:
            cloud.add_function_url(name, function_dir, env)
        for function_dir in args.trigger:
            cloud.add_trigger(buckets[0], function_dir, env, prefix=args.trigger_prefix, suffix=args.trigger_suffix)
        for function_dir, seconds in timers:
            cloud.add_timer(function_dir, env, seconds)
        print(f"localcloud listening on {cloud.url} (buckets: {', '.join(buckets)}; region {args.region}; "
              f"data {cloud.data_dir})", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        cloud.stop()
    return 0
