"""What a log line costs, before and after issue 15 moved shared/log.py onto `logging`.

    .venv/bin/python benchmarks/log_lines.py [--lines N]

Prints microseconds per `log()` line, measured in one run, for:
- the previous implementation (json.dumps + sys.stdout.write + flush, reproduced here),
- `shared.log.log` through the `cos_matting` logger and its stdout handler (a deployed function),
- the same inside the CLI's per-invocation capture (`cli.logcapture.captured`, `invoke`/`replay`),
and the ratio of each to the previous one. Output goes to an in-memory stream (no terminal cost).
"""
import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIELDS = {"key": "input/团队/clip.mp4", "outcome": "submitted", "record_id": "r" * 32, "job_id": "s" + "0" * 31,
          "attempt": 1, "detail": None}
SECRETS = ("authorization", "token", "secret", "secret_key", "secretkey", "callback_keys", "t")


def previous_log(event, level="info", **fields):
    """shared/log.py before issue 15 (commit d5f545a), for the ratio."""
    line = {"ts": round(time.time(), 3), "level": level, "event": event}
    line.update({k: v for k, v in fields.items() if v is not None and k.lower() not in SECRETS})
    sys.stdout.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def per_line(fn, lines):
    """CPU microseconds per line (process time: the machine is shared), and the lines written."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        started = time.process_time()
        for _ in range(lines):
            fn("submit.outcome", **FIELDS)
        elapsed = time.process_time() - started
    return elapsed / lines * 1e6, sink.getvalue().count("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each is kept")
    args = parser.parse_args()
    from cli.logcapture import captured
    from shared.log import configure, log, logger

    configure()
    printer = logger.handlers[:]

    def in_capture(event, **fields):
        with captured():
            log(event, **fields)

    best = {"previous": [], "logging": [], "capture": []}
    for _ in range(args.rounds):
        logger.handlers[:] = printer  # the deployed setup: the stdout handler
        for name, fn in (("previous", previous_log), ("logging", log)):
            us, printed = per_line(fn, args.lines)
            assert printed == args.lines
            best[name].append(us)
        us, printed = per_line(in_capture, args.lines)  # installs the CLI's router; nothing printed
        assert printed == 0
        best["capture"].append(us)
    before, after, capture = (min(best[k]) for k in ("previous", "logging", "capture"))
    print(f"lines per case        {args.lines} x {args.rounds} rounds (best round, CPU time)")
    print(f"previous (stdout)     {before:7.2f} us/line")
    print(f"logging, stdout       {after:7.2f} us/line   x{after / before:.2f} of previous")
    print(f"logging, CLI capture  {capture:7.2f} us/line   x{capture / before:.2f} of previous "
          "(one capture per line: enter, log, leave)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
