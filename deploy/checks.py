"""Project rules for serverless.yml beyond the component schema, run offline.

    python -m deploy.checks            # serverless.yml against .env (before `scf deploy`)
    python -m deploy.checks --example  # against .env.example + placeholders (what the tests do)

Checks: every function's handler file exists and defines main_handler; every
variable set is one `shared.config` knows (and COS_MATTING_ENDPOINT is never set);
the settings each function will see load (required ones present, `Settings._guards`
pass); the COS trigger watches exactly the configured bucket and a watched prefix;
its prefix cannot overlap the output or records prefix in the same bucket (the
recursion guard, checked statically); the Function URL and the timer exist;
timeouts stay below the claim lease and the timer period.
"""
import argparse
import ast
import posixpath
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

from . import dotenv
from .components import (ConfigFileError, CosTrigger, HttpTrigger, ServerlessFile, TimerTrigger, cos_domain_parts,
                         env_references, function_environment, load_layer, load_serverless, read_yaml)

ROOT = Path(__file__).resolve().parents[1]
SERVERLESS = ROOT / "serverless.yml"
LAYER = ROOT / "deploy" / "layer" / "serverless.yml"
ENV_EXAMPLE = ROOT / ".env.example"
EXPECTED_FUNCTIONS = ("submit", "callback", "reconcile")

# Stand-ins for the values only a real account has (used with .env.example by the tests).
PLACEHOLDERS: Dict[str, str] = {
    "COS_MATTING_BUCKET": "videos-1250000000",
    "COS_MATTING_REGION": "ap-guangzhou",
    "COS_MATTING_DEPLOY_STAGE": "dev",
    "COS_MATTING_DEPLOY_ROLE": "cos-matting-scf",
    "COS_MATTING_CALLBACK_URL": "https://1250000000-abcdefgh.ap-guangzhou.tencentscf.com",
    "COS_MATTING_CALLBACK_KEYS": "placeholder-key-0123456789abcdef",
    "COS_MATTING_DEPLOY_OWNER_UIN": "100000000001",
}
NEVER_DEPLOYED = ("COS_MATTING_ENDPOINT",)
CLAIMING = ("submit", "reconcile")  # functions that create claims (reconcile resubmits through Submitter)


def read_dotenv(path: Path) -> Dict[str, str]:
    """The variables of a .env file, read as the CLI reads them (deploy/dotenv.py)."""
    return dotenv.read(path)


def example_environ() -> Dict[str, str]:
    env = read_dotenv(ENV_EXAMPLE)
    for key, value in PLACEHOLDERS.items():
        if not env.get(key):
            env[key] = value
    return env


def add_env_options(parser: argparse.ArgumentParser, example: bool = False) -> None:
    """--env FILE for every deploy tool; --example where placeholder values make sense."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--env", type=Path, default=ROOT / ".env", help="dotenv file to resolve ${env:...} (default .env)")
    if example:
        group.add_argument("--example", action="store_true", help="use .env.example plus placeholder account values")


def environ_from(args: argparse.Namespace) -> Optional[Dict[str, str]]:
    """The variables the deploy tools resolve; None, after saying why, when the file is missing."""
    if getattr(args, "example", False):
        return example_environ()
    if not args.env.is_file():
        print(f"error: {args.env} not found (copy .env.example)", file=sys.stderr)
        return None
    try:
        return read_dotenv(args.env)
    except dotenv.DotenvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _defines_main_handler(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main_handler"
               for node in tree.body)


def handler_source(sf: ServerlessFile, key: str, root: Path = ROOT) -> Path:
    """Where the handler module of function `key` comes from in the checkout."""
    fn = sf.inputs.functions[key]
    module = (fn.handler or "index.main_handler").split(".")[0]
    folder = posixpath.basename(posixpath.normpath(fn.src or key))
    return root / "functions" / folder / f"{module}.py"


def _overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _timer_period_seconds(cron: str) -> Optional[int]:
    """Period of simple SCF crons ('0 */10 * * * * *', '0 0 * * * * *'); None when irregular."""
    sec, minute, hour, *_ = cron.split()
    if not sec.isdigit():
        return None
    m = re.fullmatch(r"\*/(\d+)", minute)
    if m and hour == "*" and 60 % int(m.group(1)) == 0:
        return int(m.group(1)) * 60
    if minute.isdigit() and hour == "*":
        return 3600
    m = re.fullmatch(r"\*/(\d+)", hour)
    if minute.isdigit() and m and 24 % int(m.group(1)) == 0:
        return int(m.group(1)) * 3600
    return None


def problems(sf: ServerlessFile, root: Path = ROOT) -> List[str]:
    from shared.config import ConfigError, env_name, known_variables, load_settings

    out: List[str] = []
    known = set(known_variables())
    functions = sf.inputs.functions
    if set(functions) != set(EXPECTED_FUNCTIONS):
        out.append(f"inputs.functions: expected {', '.join(EXPECTED_FUNCTIONS)}, found {', '.join(sorted(functions))}")

    settings = {}
    for key, fn in functions.items():
        where = f"inputs.functions.{key}"
        if fn.handler != "index.main_handler":
            out.append(f"{where}.handler: SCF handlers here are index.main_handler (got {fn.handler!r})")
        src = handler_source(sf, key, root)
        if not src.is_file():
            out.append(f"{where}: handler file {src.relative_to(root)} does not exist")
        elif not _defines_main_handler(src):
            out.append(f"{where}: {src.relative_to(root)} defines no top-level main_handler")
        if fn.src != f"./{key}":
            out.append(f"{where}.src: must be ./{key} (dist/scf/{key} is what `cos-matting package` builds)")
        env = function_environment(sf, key)
        unknown = sorted(set(env) - known)
        if unknown:
            out.append(f"{where}: sets variables the settings do not know: {', '.join(unknown)}")
        for name in NEVER_DEPLOYED:
            if env.get(name):
                out.append(f"{where}: {name} points the functions at the local cloud; never set it in a deploy")
        try:
            settings[key] = load_settings({k: v for k, v in env.items() if k in known})
        except ConfigError as exc:
            out.append(f"{where}: settings would not load at cold start: {exc}")
    src_top = sf.inputs.src if isinstance(sf.inputs.src, str) else sf.inputs.src.src
    if posixpath.normpath(src_top or "") != "dist/scf":
        out.append("inputs.src: must be ./dist/scf (the folder `cos-matting package` builds)")
    if not sf.inputs.layers:
        out.append("inputs.layers: the dependency layer is missing (the COS SDK is not in the Python3.10 runtime)")
    if sf.inputs.runtime != "Python3.10":
        out.append(f"inputs.runtime: must be Python3.10 (got {sf.inputs.runtime!r})")

    triggers = sf.inputs.triggers
    cos = [(i, t) for i, t in enumerate(triggers) if isinstance(t, CosTrigger)]
    http = [(i, t) for i, t in enumerate(triggers) if isinstance(t, HttpTrigger)]
    timer = [(i, t) for i, t in enumerate(triggers) if isinstance(t, TimerTrigger)]

    if not any(t.function == "submit" for _, t in cos):
        out.append("inputs.triggers: no COS trigger for submit")
    for i, t in cos:
        where = f"inputs.triggers[{i}].parameters"
        if t.function != "submit":
            out.append(f"inputs.triggers[{i}].function: only submit handles COS events (got {t.function!r})")
            continue
        s = settings.get("submit")
        if s is None:
            continue
        parts = cos_domain_parts(t.parameters.bucket)
        prefix, suffix = t.parameters.filter.prefix, t.parameters.filter.suffix
        if parts["bucket"] != s.bucket or parts["region"] != s.region:
            out.append(f"{where}.bucket: {t.parameters.bucket} is not COS_MATTING_BUCKET/COS_MATTING_REGION "
                       f"({s.bucket} in {s.region})")
        if not t.parameters.events.startswith("cos:ObjectCreated:"):
            out.append(f"{where}.events: submit handles uploads only (cos:ObjectCreated:*)")
        if not prefix:
            out.append(f"{where}.filter.prefix: empty = the whole bucket, outputs and records included; "
                       "set the watched prefix")
        elif not any(prefix.startswith(w) for w in s.watch_prefixes):
            out.append(f"{where}.filter.prefix: {prefix!r} is not under {env_name('watch_prefixes')} "
                       f"{list(s.watch_prefixes)}: the code would ignore every upload it delivers")
        if suffix and suffix.lower() not in s.suffixes:
            out.append(f"{where}.filter.suffix: {suffix!r} is not in {env_name('suffixes')} {list(s.suffixes)}")
        for label, bucket, guarded in (("output", s.out_bucket, s.output_prefix),
                                       ("records", s.rec_bucket, s.records_prefix)):
            if bucket == parts["bucket"] and _overlaps(prefix, guarded):
                out.append(f"{where}.filter.prefix: {prefix!r} overlaps the {label} prefix {guarded!r} in the same "
                           "bucket: the pipeline's own writes would trigger new jobs")

    submit_fn = functions.get("submit")
    if submit_fn is not None and submit_fn.deadLetter is None:
        out.append("inputs.functions.submit.deadLetter: missing: an upload whose every retry failed must land in "
                   "a dead-letter queue (COS_MATTING_DEPLOY_DEAD_LETTER_TYPE / _NAME)")

    if len(http) != 1 or http[0][1].function != "callback":
        out.append("inputs.triggers: exactly one Function URL (type: http) is expected, on callback")
    else:
        i, t = http[0]
        if t.parameters.authType != "NONE" or not t.parameters.netConfig.enableExtranet:
            out.append(f"inputs.triggers[{i}].parameters: the callback URL must be public (authType: NONE, "
                       "netConfig.enableExtranet: true): CI calls it from outside, the HMAC token authenticates")

    if len(timer) != 1 or timer[0][1].function != "reconcile":
        out.append("inputs.triggers: exactly one timer is expected, on reconcile")
    else:
        i, t = timer[0]
        period = _timer_period_seconds(t.parameters.cronExpression)
        timeout = functions["reconcile"].timeout or sf.inputs.timeout or 3
        if period is not None and timeout >= period:
            out.append(f"inputs.functions.reconcile.timeout: {timeout}s is not below the timer period {period}s: "
                       "runs could overlap")

    lease = min((s.claim_lease_seconds for s in settings.values()), default=None)
    if lease is not None:
        for key, fn in functions.items():
            timeout = fn.timeout or sf.inputs.timeout or 3
            if key in CLAIMING and timeout >= lease:
                out.append(f"inputs.functions.{key}.timeout: {timeout}s is not below COS_MATTING_CLAIM_LEASE_SECONDS "
                           f"({lease}s): a claim held by a live {key} run could be taken over")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.checks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_env_options(parser, example=True)
    args = parser.parse_args(argv)
    environ = environ_from(args)
    if environ is None:
        return 2
    try:
        sf = load_serverless(SERVERLESS, environ)
        load_layer(LAYER, environ)
    except ConfigFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    found = problems(sf)
    missing = [v for v in env_references(read_yaml(SERVERLESS)) if v not in environ]
    found += [f"{v}: referenced by serverless.yml but not in the env file" for v in missing]
    for line in found:
        print(f"serverless.yml: {line}", file=sys.stderr)
    if not found:
        print("serverless.yml: ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
