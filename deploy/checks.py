"""Project rules for serverless.yml beyond the component schema, run offline.

    python -m deploy.checks            # serverless.yml against .env (before `scf deploy`)
    python -m deploy.checks --example  # against .env.example + placeholders (what the tests do)

The rules are in deploy/rules.py, one function each with where it comes from: every
function's handler file exists and defines main_handler; every variable set is one
`shared.config` knows (and COS_MATTING_ENDPOINT is never set); the settings each function
will see load (required ones present, `Settings._guards` pass); the COS trigger watches
exactly the configured bucket and a watched prefix; its prefix cannot overlap the output or
records prefix in the same bucket (the recursion guard, checked statically); the Function
URL and the timer exist; timeouts stay below the claim lease and the timer period.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

from . import dotenv, rules
from .components import ServerlessFile
from .files import ConfigFileError, env_references, load_layer, load_serverless, read_yaml

ROOT = Path(__file__).resolve().parents[1]
SERVERLESS = ROOT / "serverless.yml"
LAYER = ROOT / "deploy" / "layer" / "serverless.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# Stand-ins for the values only a real account has (used with .env.example by the tests).
PLACEHOLDERS: Dict[str, str] = {
    "COS_MATTING_BUCKET": "videos-1250000000",
    "COS_MATTING_REGION": "ap-guangzhou",
    "COS_MATTING_DEPLOY_STAGE": "dev",
    "COS_MATTING_CALLBACK_URL": "https://1250000000-abcdefgh.ap-guangzhou.tencentscf.com",
    "COS_MATTING_CALLBACK_KEYS": "placeholder-key-0123456789abcdef",
    "COS_MATTING_DEPLOY_OWNER_UIN": "100000000001",
}


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


def problems(sf: ServerlessFile, root: Path = ROOT) -> List[str]:
    """What the project's rules (deploy/rules.py, one function each) find wrong in `sf`."""
    return rules.problems(sf, root)


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
