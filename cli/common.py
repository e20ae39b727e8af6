"""Helpers shared by the operations commands: settings from the environment and an
optional `.env` file, clients, the local-cloud switch, captured logs, tables,
and exit codes (tables and prompts: `cli.ui`; progress lines: `cli.progress`).

Exit codes: 0 ok, 1 something failed, 2 usage or configuration (a one-line
message naming the variable; raised as `UsageError`, which `cli.main` prints).
"""
from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import os
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, TextIO
from urllib.parse import urlsplit

from shared.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "COS_MATTING_ENDPOINT"
# What `cos-matting localcloud` accepts by default; used with --local when no keys are exported.
LOCAL_SECRET_ID, LOCAL_SECRET_KEY = "AKIDlocal", "localsecretkey"


class UsageError(ConfigError):
    """A bad flag combination or missing setting: `cli.main` prints it on one line and exits 2."""


# -- environment and settings ---------------------------------------------------------------------

def add_env_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment")
    group.add_argument("--env-file", metavar="FILE",
                       help="read COS_MATTING_* and TENCENTCLOUD_* variables from a .env file "
                            "(KEY=VALUE lines; they override the process environment)")
    group.add_argument("--local", metavar="URL",
                       help="talk to the local cloud at URL (e.g. http://127.0.0.1:9000, see `cos-matting "
                            "localcloud`): sets COS_MATTING_ENDPOINT, and its default keys if none are exported")


def read_env_file(path: str) -> Dict[str, str]:
    """Parse a .env file with the reader the deploy tools use (deploy/dotenv.py: `KEY=VALUE`,
    optional `export `, quotes, `#` comments); a bad line is a usage error naming it."""
    from deploy.dotenv import DotenvError, read

    try:
        return read(path)
    except OSError as exc:
        raise UsageError(f"--env-file {path}: {exc.strerror or exc}") from None
    except DotenvError as exc:
        raise UsageError(f"--env-file {exc}") from None


def quiet_sdk_logs() -> None:
    """The COS SDK logs every non-2xx answer at ERROR (an expected 409 on a duplicate claim, a 404 on a
    missing object); with no logging configured Python would print them all. Outcomes are reported instead."""
    import logging

    for name in ("qcloud_cos", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def environment(args: argparse.Namespace, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment a command (and the handlers it runs) sees: process env + --env-file + --local."""
    quiet_sdk_logs()
    env = dict(os.environ if base is None else base)
    if getattr(args, "env_file", None):
        env.update(read_env_file(args.env_file))
    local = getattr(args, "local", None)
    if local:
        url = urlsplit(local)
        if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
            raise UsageError(f"--local {local!r}: expected a URL like http://127.0.0.1:9000")
        env[ENDPOINT] = local.rstrip("/")
        if not (env.get("TENCENTCLOUD_SECRETID") and env.get("TENCENTCLOUD_SECRETKEY")):
            env.update(TENCENTCLOUD_SECRETID=LOCAL_SECRET_ID, TENCENTCLOUD_SECRETKEY=LOCAL_SECRET_KEY)
    return env


def is_local(env: Mapping[str, str]) -> bool:
    return bool(env.get(ENDPOINT))


def require_local(env: Mapping[str, str], what: str, allow_real: bool = False) -> None:
    """Commands that default to the local cloud refuse to silently reach the real one."""
    if is_local(env) or allow_real:
        return
    raise UsageError(f"{ENDPOINT} is not set: {what} runs against the local cloud by default; start one with "
                     f"`cos-matting localcloud` and pass --local http://127.0.0.1:9000 (or export "
                     f"{ENDPOINT}=http://127.0.0.1:9000), or pass --real-cloud to use Tencent Cloud "
                     f"with your TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY")


def check_reachable(env: Mapping[str, str], timeout: float = 1.0) -> None:
    """Fail fast, in one line, when the endpoint is wrong: a local cloud that is not running (instead of
    the SDK's retries and a traceback), or the local cloud's keys without an endpoint."""
    import socket

    from cli.ui import failure, usage

    endpoint = env.get(ENDPOINT)
    if not endpoint:
        if env.get("TENCENTCLOUD_SECRETID") == LOCAL_SECRET_ID:
            raise usage(ENDPOINT, "not set, but TENCENTCLOUD_SECRETID is the local cloud's AKIDlocal",
                        f"export {ENDPOINT}=http://127.0.0.1:9000 (or pass --local URL) to use the local cloud, "
                        "or export your own keys for Tencent Cloud")
        return
    url = urlsplit(endpoint)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise usage(f"{ENDPOINT}={endpoint}", "the port is not a number 0-65535", "e.g. http://127.0.0.1:9000") from None
    try:
        socket.create_connection((url.hostname or "127.0.0.1", port), timeout=timeout).close()
    except OSError as exc:
        raise failure(f"{ENDPOINT}={endpoint}", f"nothing answers there ({exc.strerror or exc})",
                      "start the local cloud with `cos-matting localcloud` (see README), or fix the URL") from None


def load(args: argparse.Namespace, overrides: Optional[Mapping[str, str]] = None):
    """(env, settings) for a command; ConfigError names the variable; an endpoint that does not answer
    fails at once."""
    from shared.config import load_settings

    env = environment(args)
    env.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = load_settings(env)
    warn_unknown_variables(env)
    check_reachable(env)
    return env, settings


def warn_unknown_variables(env: Mapping[str, str], stream: Optional[TextIO] = None) -> List[str]:
    """A misspelt COS_MATTING_* variable would be silently ignored: say so, with the nearest known name."""
    from shared.config import unknown_variables

    lines = [f"warning: {name} is not a cos-matting setting (ignored)" + (f"; did you mean {near}?" if near else "")
             for name, near in unknown_variables(env)]
    for line in lines:
        print(line, file=stream or sys.stderr)
    return lines


def make_clients(settings: Any, env: Mapping[str, str], pool: int = 0) -> Any:
    """`shared.cloud.Clients` for this environment. With `pool`, the SDK clients get their own
    HTTP session of that size (the SDK otherwise shares one 10-connection pool process-wide,
    which thrashes under more threads)."""
    from shared.cloud import Clients

    clients = Clients(settings, env)
    if pool:
        own_sessions(clients, pool, local=is_local(env))
    return clients


def own_sessions(clients: Any, pool: int, local: bool = False) -> None:
    import requests

    session = requests.Session()
    if local:
        # requests re-reads the proxy variables from os.environ on every request (~1 ms each
        # with a large environment); a loopback endpoint never goes through a proxy.
        session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    for sdk in {id(c): c for c in (clients.storage.client, clients.out_storage.client, clients.ci.client)}.values():
        if hasattr(sdk, "_session"):
            sdk._session = session
            sdk._use_built_in_pool = False


class ThreadClients:
    """One `Clients` per thread (SDK clients keep per-call state; sessions are not shared)."""

    def __init__(self, settings: Any, env: Mapping[str, str], pool: int = 4) -> None:
        self.settings, self.env, self.pool = settings, dict(env), pool
        self._local = threading.local()

    def get(self) -> Any:
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = make_clients(self.settings, self.env, self.pool)
        return clients


# -- captured logs (shared.log's records on the `cos_matting` logger) ------------------------------

_capture: "contextvars.ContextVar[Optional[List[str]]]" = contextvars.ContextVar("cos_matting_capture", default=None)
_aside: List[Optional[TextIO]] = []  # logs_aside targets, innermost last; None drops the lines
_lock = threading.Lock()


class _Router(logging.Handler):
    """The CLI's one handler on the `cos_matting` logger: a line goes to the capture of the
    invocation running in this context (`captured`), else where `logs_aside` sends it, else to
    stdout as a deployed function would print it."""

    prints_lines = True  # shared.log.configure adds no stdout handler next to it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            lines = _capture.get()
            if lines is not None:
                lines.append(line)
                return
            with _lock:
                target = _aside[-1] if _aside else sys.stdout
            if target is not None:
                target.write(line + "\n")
                target.flush()
        except Exception:
            self.handleError(record)


def route_logs() -> None:
    """Install the router (once): it replaces the stdout handler a handler's cold start may have
    added (`shared.log.configure` adds none while the router is there)."""
    from shared.log import JsonFormatter, StdoutHandler, logger

    with _lock:
        if any(isinstance(h, _Router) for h in logger.handlers):
            return
        for old in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
            logger.removeHandler(old)
        router = _Router()
        router.setFormatter(JsonFormatter())
        logger.addHandler(router)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False


@contextlib.contextmanager
def captured() -> Iterator[List[str]]:
    """The log lines written in this context (this thread, this invocation) while it lasts;
    other threads' invocations keep theirs apart."""
    route_logs()
    lines: List[str] = []
    token = _capture.set(lines)
    try:
        yield lines
    finally:
        _capture.reset(token)


@contextlib.contextmanager
def logs_aside(verbose: bool = False) -> Iterator[TextIO]:
    """Keep the pipeline's JSON log lines out of the command's output, from every thread: dropped,
    or with `verbose` sent to stderr. Yields the stdout for the command's output."""
    route_logs()
    target = sys.stderr if verbose else None
    with _lock:
        _aside.append(target)
    try:
        yield sys.stdout
    finally:
        with _lock:
            _aside.remove(target)


def parse_since(text: str) -> datetime:
    """`--since` of backfill, status and retry: an ISO date or date-time, UTC when it has no zone."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date like 2026-11-01 or 2026-11-01T08:00:00+08:00")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="show the pipeline's JSON log lines on stderr")


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly `env` as os.environ (handlers read their settings from it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- output ---------------------------------------------------------------------------------------

def age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def dump_json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, default=str)

