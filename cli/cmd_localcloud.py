"""`cos-matting localcloud`: run the local cloud (COS + CI + SCF emulation) until Ctrl-C."""
import argparse
import errno
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple

from cli.errors import require_engine, usage
from cli.env import ROOT, warn_unknown_variables

DEFAULT_BUCKET = "videos-1250000000"
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]*-\d+")  # COS: name-APPID, lower case letters, digits, hyphens

EPILOG = """\
Point the SDK at it with CosConfig(Region=R, SecretId=ID, SecretKey=KEY, IP=HOST, Port=PORT, Scheme="http"),
or set COS_MATTING_ENDPOINT=http://HOST:PORT for the functions. Buckets are reached by the Host header
<bucket>.cos.<region>.myqcloud.com, CI jobs under /jobs on the same host. Function URLs are served at
http://HOST:PORT/_fn/<name>/; a function URL named `callback` is wired into the other functions as
COS_MATTING_CALLBACK_URL (unless --env sets it), so jobs call back with any --port, 0 included.
Every function's environment must pass the settings check (the same as at SCF cold start). Test-only control routes (no auth: keep --host on loopback) live under
http://HOST:PORT/_localcloud/ (health, jobs, jobs/<bucket>/<id>/state, faults, invocations, callbacks, idle).
It also serves the SCF and CAM APIs (Tencent Cloud API 3.0): `cos-matting deploy --local http://HOST:PORT`
deploys into it, and what was deployed runs from its zips (kept under --data, back after a restart).

example:
  cos-matting localcloud --port 9000 --engine matting \\
      --trigger functions/submit --function-url callback=functions/callback \\
      --env COS_MATTING_BUCKET=videos-1250000000 --env COS_MATTING_REGION=ap-guangzhou \\
      --env COS_MATTING_CALLBACK_KEYS=local-callback-key-0123456789
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localcloud", help="run the local COS/CI/SCF emulator on loopback",
        description="Run a local stand-in for COS, Cloud Infinite video matting jobs and SCF on one HTTP port. "
                    "Objects, tags and jobs persist under --data.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=_port, default=9000, help="port to bind, 0 for any free port (default: %(default)s)")
    parser.add_argument("--data", default=".localcloud", metavar="DIR",
                        help="directory for objects, tags and jobs (default: %(default)s)")
    parser.add_argument("--bucket", action="append", dest="buckets", metavar="NAME-APPID", type=_bucket,
                        help=f"bucket to serve; repeat for several; the first is the trigger bucket "
                             f"(default: {DEFAULT_BUCKET})")
    parser.add_argument("--region", default="ap-guangzhou", help="region in bucket host names (default: %(default)s)")
    parser.add_argument("--secret-id", default="AKIDlocal", help="accepted SecretId (default: %(default)s)")
    parser.add_argument("--secret-key", default="localsecretkey", help="its SecretKey (default: %(default)s)")
    parser.add_argument("--workers", type=_positive, default=2, help="job workers when an engine runs (default: %(default)s)")
    parser.add_argument("--engine", choices=("none", "matting"), default="matting",
                        help="'matting' runs jobs with localcloud.matting (real video in, real mattes out); 'none' "
                             "leaves them Submitted until finished through the control API, for tests that drive "
                             "jobs by hand (default: %(default)s)")
    parser.add_argument("--trigger", action="append", default=[], metavar="FUNCTION_DIR",
                        help="COS trigger on the first bucket invoking FUNCTION_DIR/index.py:main_handler; repeatable")
    parser.add_argument("--function-concurrency", type=_positive, default=2, metavar="N",
                        help="instances of each --trigger/--function-url function running at once; further "
                             "asynchronous invocations queue, as they do beyond SCF's concurrency (default: %(default)s)")
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


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give 0-65535 (0 picks a free one)")
    return port


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def _bucket(text: str) -> str:
    if not BUCKET_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a bucket name: give NAME-APPID in lower case letters, "
                                         f"digits and hyphens, e.g. {DEFAULT_BUCKET}")
    return text


def _pairs(values: List[str], what: str) -> List[Tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise usage(f"{what} {value!r}", "expected NAME=VALUE", f"e.g. {what} " +
                        ("COS_MATTING_MODE=Foreground" if what == "--env" else "callback=functions/callback"))
        out.append((key, rest))
    return out


def _function_dir(flag: str, function_dir: str) -> str:
    from localcloud.scf import resolve_dir

    path = resolve_dir(function_dir)
    if not os.path.isfile(os.path.join(path, "index.py")):
        raise usage(f"{flag} {function_dir}", "no such function folder (it needs an index.py with main_handler)",
                    "give one of functions/submit, functions/callback, functions/reconcile")
    return function_dir


def check_function_env(flag: str, function_dir: str, env: Mapping[str, str]) -> None:
    """Refuse one of the project's functions whose environment would fail its cold start, with the
    settings error (a function folder of your own is not checked)."""
    from localcloud.scf import resolve_dir
    from shared.config import ConfigError, load_settings

    if os.path.dirname(os.path.realpath(resolve_dir(function_dir))) != os.path.realpath(ROOT / "functions"):
        return
    try:
        load_settings(env)
    except ConfigError as exc:
        raise usage(f"{flag} {function_dir}", f"its environment fails the settings check: {exc}",
                    "fix the --env values") from None


def _engine(name: str):
    if name == "none":
        return None
    require_engine(f"--engine {name}")
    from localcloud import matting  # provided separately; imported only when asked for

    return matting.engine


def _print_invocation(inv) -> None:
    status = "ok" if inv.ok else f"FAILED: {inv.error.splitlines()[0] if inv.error else '?'}"
    print(f"[{inv.function} {inv.kind} attempt {inv.attempt}] {status} ({inv.duration * 1000:.0f} ms)",
          file=sys.stderr, flush=True)
    for line in inv.logs:
        print(f"  {inv.function}| {line}", file=sys.stderr, flush=True)


@dataclass
class Functions:
    """What --env, --function-url, --trigger and --timer ask for, checked."""

    env: Dict[str, str]
    urls: List[Tuple[str, str]]  # (name, function dir)
    triggers: List[str]
    timers: List[Tuple[str, float]]  # (function dir, seconds)

    @classmethod
    def of(cls, args: argparse.Namespace) -> "Functions":
        env = dict(_pairs(args.env, "--env"))
        urls = [(name, _function_dir("--function-url", d)) for name, d in _pairs(args.function_url, "--function-url")]
        triggers = [_function_dir("--trigger", d) for d in args.trigger]
        timers = []
        for function_dir, seconds in _pairs(args.timer, "--timer"):
            try:
                timers.append((_function_dir("--timer", function_dir), float(seconds)))
            except ValueError:
                raise usage(f"--timer {function_dir}={seconds}", "SECONDS is not a number", "e.g. --timer "
                            "functions/reconcile=60") from None
        return cls(env, urls, triggers, timers)

    def flags(self) -> List[Tuple[str, str]]:
        return ([("--function-url", d) for _, d in self.urls] + [("--trigger", d) for d in self.triggers]
                + [("--timer", d) for d, _ in self.timers])


def run(args: argparse.Namespace) -> int:
    from localcloud import LocalCloud

    buckets: List[str] = args.buckets or [DEFAULT_BUCKET]
    functions = Functions.of(args)
    cloud = LocalCloud(data_dir=args.data, buckets=buckets, region=args.region, secret_id=args.secret_id,
                       secret_key=args.secret_key, host=args.host, port=args.port, job_workers=args.workers,
                       verbose=args.verbose)
    engine = _engine(args.engine)
    _start(cloud, args)
    try:
        if not args.quiet:
            cloud.runtime.on_invocation = _print_invocation
        if engine is not None:
            cloud.set_engine(engine)
        wired = _wire(cloud, args, buckets[0], functions)
        print(f"localcloud listening on {cloud.url} (buckets: {', '.join(buckets)}; region {args.region}; "
              f"data {cloud.data_dir}; engine {args.engine})", flush=True)
        if engine is not None:
            from localcloud.matting import describe_humanseg

            wired = [describe_humanseg()] + list(wired)
        for line in wired:  # stderr: stdout stays the one line above, for scripts
            print(f"  {line}", file=sys.stderr, flush=True)
        if engine is None:  # the matting engine says what it runs above (describe_humanseg)
            print("  engine none: CI jobs stay Submitted until finished through the control API "
                  "(POST /_localcloud/jobs/BUCKET/JOB_ID/state); drop --engine none to matte for real",
                  file=sys.stderr, flush=True)
        _wait_for_stop()
    finally:
        cloud.stop()
    return 0


def _start(cloud, args: argparse.Namespace) -> None:
    try:
        cloud.start()
    except OSError as exc:
        cloud.stop()
        if exc.errno == errno.EADDRINUSE:
            raise usage(f"--port {args.port}", "the port is in use (another localcloud?)",
                        "stop that one, or pass another --port (0 picks a free one)") from None
        raise usage(f"--host {args.host} --port {args.port}", f"cannot listen there ({exc.strerror or exc})",
                    "use --host 127.0.0.1 and another --port") from None


def _wire(cloud, args: argparse.Namespace, bucket: str, functions: Functions) -> List[str]:
    """Check every function's environment, then add the Function URLs, triggers and timers; the
    lines that say what was wired."""
    env, names = functions.env, dict(functions.urls)
    if "callback" in names and not env.get("COS_MATTING_CALLBACK_KEYS"):
        raise usage("--function-url callback", "COS_MATTING_CALLBACK_KEYS is not set: callbacks carry a token "
                    "signed with it", "add --env COS_MATTING_CALLBACK_KEYS=<a key of 16+ characters>")
    if "callback" in names and not env.get("COS_MATTING_CALLBACK_URL"):
        env["COS_MATTING_CALLBACK_URL"] = f"{cloud.url}/_fn/callback"  # what add_function_url serves
    full = {**cloud.function_env(), **env}
    warn_unknown_variables(env)  # a misspelt --env would be silently ignored by the functions
    for flag, function_dir in functions.flags():
        check_function_env(flag, function_dir, full)
    wired = []
    for name, function_dir in functions.urls:
        wired.append(f"{name} <- {cloud.add_function_url(name, function_dir, env, args.function_concurrency)}/")
    for function_dir in functions.triggers:
        cloud.add_trigger(bucket, function_dir, env, prefix=args.trigger_prefix, suffix=args.trigger_suffix,
                          concurrency=args.function_concurrency)
        wired.append(f"{function_dir} <- COS trigger on {bucket}/{args.trigger_prefix}*{args.trigger_suffix}")
    for function_dir, seconds in functions.timers:
        cloud.add_timer(function_dir, env, seconds)
        wired.append(f"{function_dir} <- timer every {seconds:g} s")
    # Visible through the local SCF API as stage `local` (tags app, stage: deploy/stage.py finds them), so
    # `--stage local` works against these functions as against a deployed stage.
    tags = {"app": "cos-matting", "stage": "local"}
    for name, function_dir in functions.urls:
        cloud.scf.expose(name, full_env(cloud, env), tags, url=f"{cloud.url}/_fn/{name}")
    for function_dir in list(functions.triggers) + [d for d, _ in functions.timers]:
        name = os.path.basename(os.path.normpath(function_dir))
        cloud.scf.expose(name, full_env(cloud, env), tags, cos=bucket if function_dir in functions.triggers else None)
    if functions.triggers and not env.get("COS_MATTING_CALLBACK_URL"):
        wired.append("note: no callback function URL (--function-url callback=functions/callback): jobs will not "
                     "call back; `cos-matting reconcile` finishes them")
    elif "callback" in names:
        wired.append(f"jobs call back to {env['COS_MATTING_CALLBACK_URL']}")
    return wired


def full_env(cloud, env: dict) -> dict:
    """The settings a wired function runs with, without what SCF injects (credentials, endpoint, region)."""
    return {k: v for k, v in env.items() if not k.startswith(("TENCENTCLOUD_",)) and k != "COS_MATTING_ENDPOINT"}


def _wait_for_stop() -> None:
    """Until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
