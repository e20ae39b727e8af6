"""The environment a command runs in: the process environment, an optional `.env` file
(read by deploy/dotenv.py, the reader the deploy tools share), the `--local` switch to the
local cloud, settings loaded once, and a fail-fast check that the endpoint answers; and the
environment `deploy` and `doctor` resolve serverless.yml with.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, TextIO
from urllib.parse import urlsplit

from cli.errors import UsageError, failure, usage

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "COS_MATTING_ENDPOINT"
# What `cos-matting localcloud` accepts by default; used with --local when no keys are exported.
LOCAL_SECRET_ID, LOCAL_SECRET_KEY = "AKIDlocal", "localsecretkey"


def add_env_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment")
    group.add_argument("--env-file", metavar="FILE",
                       help="read COS_MATTING_* and TENCENTCLOUD_* variables from a .env file "
                            "(KEY=VALUE lines; they override the process environment)")
    group.add_argument("--stage", metavar="STAGE",
                       help="the deployed stage to act on: its functions are found in the cloud (SCF) and their own "
                            "settings are used, not the shell's (deploy/doctor: the stage to deploy or check; "
                            "default COS_MATTING_DEPLOY_STAGE, else dev)")
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
    fails at once. With `--stage`, the settings are the deployed stage's own (deploy/stage.py)."""
    from shared.config import load_settings

    env = environment(args)
    warn_unknown_variables(env)
    check_reachable(env)
    if getattr(args, "stage", None):
        env = stage_env(args.stage, env)
    env.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = load_settings(env)
    return env, settings


def stage_env(stage: str, env: Mapping[str, str], stream: Optional[TextIO] = None) -> Dict[str, str]:
    """The environment the deployed `stage`'s submit function runs with, plus the user's credentials and
    endpoint; the target goes to stderr first, and every shell setting the stage overrides is named."""
    from deploy.clients import ApiCallError, CredentialsError
    from deploy.stage import StageNotFound, differing, operator_env, resolve

    try:
        deployed = resolve(env, stage)
    except StageNotFound as exc:
        raise usage("--stage", str(exc)) from None
    except CredentialsError as exc:
        raise usage("credentials", str(exc)) from None
    except ApiCallError as exc:
        raise failure(f"--stage {stage}", f"SCF refused {exc.action}: {exc.code}: {exc.message}") from None
    out = stream or sys.stderr
    source = deployed.functions.get("submit") or next(iter(deployed.functions.values()))
    print(f"stage {stage} on {deployed.target}: the settings {source.name} runs with", file=out)
    for name, deployed_value, shell_value in differing(deployed.settings_env(), env):
        print(f"warning: {name} in your shell/.env ({shell_value!r}) differs from stage {stage}'s "
              f"({deployed_value!r}); the stage's is used", file=out)
    return operator_env(deployed, env)


def warn_unknown_variables(env: Mapping[str, str], stream: Optional[TextIO] = None) -> List[str]:
    """A misspelt COS_MATTING_* variable would be silently ignored: say so, with the nearest known name."""
    from shared.config import unknown_variables

    lines = [f"warning: {name} is not a cos-matting setting (ignored)" + (f"; did you mean {near}?" if near else "")
             for name, near in unknown_variables(env)]
    for line in lines:
        print(line, file=stream or sys.stderr)
    return lines


def deploy_env(args: argparse.Namespace) -> dict:
    """The process environment, then .env (unless --env-file names another), then --local."""
    if not getattr(args, "env_file", None) and (Path.cwd() / ".env").is_file():
        args.env_file = str(Path.cwd() / ".env")
    from deploy.spec import deploy_environ

    return deploy_environ(environment(args), args.stage)


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
