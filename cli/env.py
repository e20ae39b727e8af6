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
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, TextIO
from urllib.parse import urlsplit

from cli.errors import UsageError, failure, usage

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "COS_MATTING_ENDPOINT"
# What `cos-matting localcloud` accepts by default; used with --local when no keys are exported.
LOCAL_SECRET_ID, LOCAL_SECRET_KEY = "AKIDlocal", "localsecretkey"


def add_env_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment")
    group.add_argument("--env-file", metavar="FILE",
                       help="read settings from this .env file instead of ./.env (KEY=VALUE lines; as with "
                            "python-dotenv, a variable exported in the shell wins, and empty values are ignored)")
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


def dotenv_path(args: argparse.Namespace) -> Optional[str]:
    """--env-file, else ./.env when there is one: every command reads the same file."""
    if getattr(args, "env_file", None):
        return args.env_file
    found = Path.cwd() / ".env"
    return str(found) if found.is_file() else None


def merged(process: Mapping[str, str], dotenv: Mapping[str, str]) -> Dict[str, str]:
    """The one configuration rule: .env under the process environment (python-dotenv's `override=False`),
    and an empty value is no value (an empty `COS_MATTING_ENDPOINT=` copied from .env.example must not
    override an exported endpoint, nor an empty export hide a .env value)."""
    env = {k: v for k, v in dotenv.items() if v.strip()}
    env.update({k: v for k, v in process.items() if v.strip() or k not in env})
    return {k: v for k, v in env.items() if v.strip() or not k.startswith(("COS_MATTING_", "TENCENT"))}


def credential_aliases(env: Dict[str, str]) -> Dict[str, str]:
    """The credential names deploy accepts (deploy/clients.py CREDENTIAL_NAMES: TENCENT_SECRET_ID, ...) work
    for every command: the first complete pair is copied to the TENCENTCLOUD_SECRETID names the COS commands
    and the handlers read."""
    from deploy.clients import CREDENTIAL_NAMES

    sid, key, token = CREDENTIAL_NAMES[0]
    if env.get(sid) and env.get(key):
        return env
    for other_sid, other_key, other_token in CREDENTIAL_NAMES[1:]:
        if env.get(other_sid) and env.get(other_key):
            env.update({sid: env[other_sid], key: env[other_key]})
            if env.get(other_token):
                env[token] = env[other_token]
            break
    return env


def environment(args: argparse.Namespace, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment a command (and the handlers it runs) sees: ./.env (or --env-file) under the process
    environment, credential aliases, then --local. A misspelt COS_MATTING_* name is warned about once."""
    quiet_sdk_logs()
    path = dotenv_path(args)
    env = merged(dict(os.environ if base is None else base), read_env_file(path) if path else {})
    credential_aliases(env)
    local = getattr(args, "local", None)
    if local:
        url = urlsplit(local)
        if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
            raise UsageError(f"--local {local!r}: expected a URL like http://127.0.0.1:9000")
        env[ENDPOINT] = local.rstrip("/")
        if not (env.get("TENCENTCLOUD_SECRETID") and env.get("TENCENTCLOUD_SECRETKEY")):
            env.update(TENCENTCLOUD_SECRETID=LOCAL_SECRET_ID, TENCENTCLOUD_SECRETKEY=LOCAL_SECRET_KEY)
    if not getattr(args, "_warned", False):
        warn_unknown_variables(env)
        try:
            args._warned = True
        except AttributeError:
            pass
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


def command_env(args: argparse.Namespace) -> Dict[str, str]:
    """The one path every command takes to learn where it works: environment() (./.env, the shell,
    --local), a fail-fast reachability check, and with `--stage` the deployed stage's own settings
    (deploy/stage.py; kept on `args.deployed` for commands that need its functions, e.g. `logs`)."""
    env = environment(args)
    check_reachable(env)
    if getattr(args, "stage", None):
        env = stage_env(args.stage, env, keep=args)
    return env


def load(args: argparse.Namespace, overrides: Optional[Mapping[str, str]] = None):
    """(env, settings) for a command; ConfigError names the variable; an endpoint that does not answer
    fails at once. With `--stage`, the settings are the deployed stage's own (deploy/stage.py)."""
    from shared.config import load_settings

    env = command_env(args)
    env.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = load_settings(env)
    return env, settings


def require_callback(settings: Settings, what: str, allowed: bool = False) -> None:
    """Jobs made without a callback URL sit Submitted until reconcile re-reads them (after its grace
    period): a command that creates jobs refuses that unless asked (--no-callback). `replay`, `invoke`
    (running the handlers with the shell's settings, for debugging) and `reconcile` (whose jobs it
    re-reads itself) do not ask."""
    if settings.callback_url or allowed:
        return
    raise usage("COS_MATTING_CALLBACK_URL", f"not set: the jobs {what} creates would never call back (they would "
                "sit Submitted until reconcile re-reads them)", "pass --stage STAGE to use a deployed stage's "
                "settings (its callback URL included), set COS_MATTING_CALLBACK_URL, or pass --no-callback")


def target_line(env: Mapping[str, str], what: str, stream: Optional[TextIO] = None) -> None:
    """Where a write goes, on stderr before it is made: the local cloud's URL, or Tencent Cloud's region."""
    from deploy.stage import target_label

    print(f"{what} on {target_label(env)}", file=stream or sys.stderr)


def stage_env(stage: str, env: Mapping[str, str], stream: Optional[TextIO] = None, keep: Any = None) -> Dict[str, str]:
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
    if keep is not None:
        keep.deployed = deployed
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
    """environment() (./.env under the process environment, --local) over .env.example's defaults."""
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
