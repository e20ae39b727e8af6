"""`cos-matting`: one entry point; each subcommand lives in its own `cli/cmd_<name>.py`.

A command module defines `register(subparsers)` which adds its parser and sets
`func=<callable(args) -> int>`. Exit codes: 0 ok, 1 something failed, 2 usage.
"""
import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

import cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cos-matting",
        description="Turn videos uploaded to COS into Cloud Infinite portrait-matting jobs; run it all offline.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"cli.{info.name}").register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error, not a traceback, for expected failures
        from shared.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
