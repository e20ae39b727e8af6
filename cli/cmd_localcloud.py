"""`cos-matting localcloud`: run the local cloud (COS + CI + SCF emulation) until Ctrl-C."""
import argparse
import signal
import threading
from typing import List

DEFAULT_BUCKET = "videos-1250000000"

EPILOG = """\
Point the SDK at it with CosConfig(Region=R, SecretId=ID, SecretKey=KEY, IP=HOST, Port=PORT, Scheme="http"),
or set COS_MATTING_ENDPOINT=http://HOST:PORT for the functions. Buckets are reached by the Host header
<bucket>.cos.<region>.myqcloud.com, CI jobs under /jobs on the same host. Test-only control routes live under
http://HOST:PORT/_localcloud/ (health, jobs, faults, invocations, callbacks).
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
                        help=f"bucket to serve; repeat for several (default: {DEFAULT_BUCKET})")
    parser.add_argument("--region", default="ap-guangzhou", help="region in bucket host names (default: %(default)s)")
    parser.add_argument("--secret-id", default="AKIDlocal", help="accepted SecretId (default: %(default)s)")
    parser.add_argument("--secret-key", default="localsecretkey", help="its SecretKey (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="job workers when an engine runs (default: %(default)s)")
    parser.add_argument("--engine", choices=("none", "matting"), default="none",
                        help="'matting' runs jobs with localcloud.matting; 'none' leaves them Submitted "
                             "(finish them via the control API) (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request to stderr")
    parser.set_defaults(func=run)


def _engine(name: str):
    if name == "none":
        return None
    from localcloud import matting  # provided separately; imported only when asked for

    return getattr(matting, "engine")


def run(args: argparse.Namespace) -> int:
    from localcloud import LocalCloud

    buckets: List[str] = args.buckets or [DEFAULT_BUCKET]
    cloud = LocalCloud(data_dir=args.data, buckets=buckets, region=args.region, secret_id=args.secret_id,
                       secret_key=args.secret_key, host=args.host, port=args.port, job_workers=args.workers,
                       verbose=args.verbose)
    engine = _engine(args.engine)
    cloud.start()
    if engine is not None:
        cloud.set_engine(engine)
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
