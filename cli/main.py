"""`cos-matting`: one entry point; each subcommand lives in its own `cli/cmd_<name>.py`.

A command module defines `register(subparsers)` which adds its parser and sets
`func=<callable(args) -> int>`. Exit codes: 0 ok, 1 the work failed, 2 a usage or
configuration mistake, 130 interrupted, 141 output pipe closed (e.g. `| head`).
Errors are one line on stderr (what, which input, what to do); `--debug` (or
COS_MATTING_DEBUG=1) shows the traceback instead.
"""
import argparse
import importlib
import os
import pkgutil
import sys
from typing import List, NoReturn, Optional

import cli

EPILOG = """\
exit codes: 0 ok, 1 the work failed (a job, an event, an unreachable service), 2 a usage or
configuration mistake (a flag, a setting, credentials, an unknown bucket), 130 interrupted,
141 the output pipe was closed (e.g. piped into head)."""


def version() -> str:
    try:
        from importlib.metadata import version as dist_version

        return dist_version("cos-matting")
    except Exception:  # not installed (run from a source tree)
        return "0+unknown"


class Parser(argparse.ArgumentParser):
    """argparse, but a flag mistake is one line (and where to look), exit 2."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cos-matting",
        description="Turn videos uploaded to COS into Cloud Infinite portrait-matting jobs; run it all offline.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cos-matting {version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks instead of one-line errors (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"cli.{info.name}").register(sub)
    return parser


def _split_debug(argv: List[str]) -> "tuple[List[str], bool]":
    """--debug is accepted anywhere before a `--`."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    return [a for i, a in enumerate(argv) if not (i < end and a == "--debug")], debug


def parse(parser: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    """parse_args, but a command with a list of PATHs takes them on both sides of its options
    (`replay A --stop-on-failure B`); argparse alone stops the list at the first option."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "paths", None), list) and not any(e.startswith("-") for e in extra):
        args.paths.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _quiet_broken_pipe() -> int:
    # The reader went away (`status | head`): no message, and no second error when Python flushes
    # stdout at exit (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 141


def main(argv: Optional[List[str]] = None) -> int:
    from cli.errors import explain
    from cli.ui import print_error

    args_in, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    debug = debug or os.environ.get("COS_MATTING_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        args = parse(parser, args_in)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        from cli.logcapture import logs_aside

        # The pipeline's JSON log lines never land in a command's stdout (`--json` stays one document):
        # dropped, or on stderr with --verbose; `invoke`/`replay` capture theirs per invocation.
        with logs_aside(bool(getattr(args, "verbose", False))):
            code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except SystemExit:
        raise  # argparse (exit 2 for a flag mistake, after its usage line), --help, --version
    except Exception as exc:
        if debug:
            raise
        code, line = explain(exc)
        print_error(line)
        return code


if __name__ == "__main__":
    sys.exit(main())
