"""A warm SCF-like worker: `python -m localcloud.worker [--layer DIR]... [--run SCRIPT] [--handler NAME] <function_dir>`.

Run as a file with `python -I -S worker.py ...` (see localcloud/scfenv.py) it is the
runtime of a deployed function: the path is the code folder, then each `--layer`
folder, then the standard library, exactly as SCF sets it; `--run SCRIPT` runs one
script under that path instead of serving invocations (the packaging tests' probes).

Imports `<function_dir>/index.py` once (cold start; the function `--handler` names, default
`main_handler`, SCF's `Handler` is `index.<NAME>`), then serves invocations
as JSON lines: `{"id", "event", "context"}` in on stdin, `{"id", "ok",
"result", "error", "traceback", "logs"}` out on the original stdout. The
handler's prints and log records are captured per invocation, and fd 1 is
pointed at stderr so nothing the handler writes can corrupt the protocol.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import time
import traceback
from typing import Any, Dict, List, NamedTuple, Optional


class _Capture(io.TextIOBase):
    """A stdout/stderr stand-in that collects lines for the current invocation."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.lines: Optional[List[str]] = None
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.lines is None:
            return self.fallback.write(text)
        text = self._partial + text
        *done, self._partial = text.split("\n")
        self.lines.extend(done)
        return len(text)

    def flush(self) -> None:
        if self.lines is None:
            self.fallback.flush()

    def start(self, lines: List[str]) -> None:
        self.lines, self._partial = lines, ""

    def finish(self) -> None:
        if self._partial and self.lines is not None:
            self.lines.append(self._partial)
        self.lines, self._partial = None, ""


class _Args(NamedTuple):
    function_dir: str
    layers: List[str]
    run: Optional[str]
    handler: str


def _args(argv: List[str]) -> _Args:
    layers: List[str] = []
    run: Optional[str] = None
    handler = "main_handler"
    rest = list(argv)
    while rest and rest[0] in ("--layer", "--run", "--handler"):
        flag, value = rest.pop(0), rest.pop(0)
        if flag == "--layer":
            layers.append(os.path.abspath(value))
        elif flag == "--run":
            run = os.path.abspath(value)
        else:
            handler = value
    if len(rest) != 1:
        raise SystemExit("usage: worker.py [--layer DIR]... [--run SCRIPT] [--handler NAME] FUNCTION_DIR")
    return _Args(os.path.abspath(rest[0]), layers, run, handler)


def _cold_start(function_dir: str, name: str, out: _Capture, err: _Capture) -> "tuple[Any, str, List[str]]":
    """Import `<function_dir>/index.py` once: (the handler or None, the traceback if it failed, its logs)."""
    logs: List[str] = []
    out.start(logs)
    err.start(logs)
    handler = None
    init_error = ""
    try:
        spec = importlib.util.spec_from_file_location("index", os.path.join(function_dir, "index.py"))
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["index"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        handler = getattr(module, name)
    except BaseException:
        init_error = traceback.format_exc()
    finally:
        out.finish()
        err.finish()
    return handler, init_error, logs


def _invoke(handler: Any, init_error: str, request: Dict[str, Any], logs: List[str], out: _Capture,
            err: _Capture) -> Dict[str, Any]:
    """One invocation's reply: the handler's result or its error, with what it printed or logged."""
    reply = {"id": request.get("id"), "ok": False, "result": None, "error": "", "traceback": "", "logs": logs}
    if handler is None:
        reply.update(error="function initialisation failed", traceback=init_error)
        return reply
    out.start(logs)
    err.start(logs)
    started = time.time()
    try:
        reply["result"] = handler(request.get("event"), request.get("context") or {})
        reply["ok"] = True
    except BaseException as exc:  # SCF reports any exception as a failed invocation
        reply.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        out.finish()
        err.finish()
    reply["duration"] = time.time() - started
    return reply


def _encode(reply: Dict[str, Any]) -> str:
    try:
        return json.dumps(reply, default=str)
    except (TypeError, ValueError) as exc:
        reply.update(ok=False, result=None, error=f"result is not JSON serialisable: {exc}")
        return json.dumps(reply, default=str)


def _serve(args: _Args) -> int:
    """Cold start, then answer invocations from stdin until it closes."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # stray fd-level output from the handler goes to stderr, never into the protocol
    out, err = _Capture(sys.__stderr__), _Capture(sys.__stderr__)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    handler, init_error, init_logs = _cold_start(args.function_dir, args.handler, out, err)
    proto.write(json.dumps({"ready": handler is not None}) + "\n")  # cold start done: not part of any timeout
    proto.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        os.environ.update(request.get("environ") or {})  # e.g. role credentials rotated since the last call
        logs, init_logs = list(init_logs), []  # the cold start's output goes with the first invocation
        proto.write(_encode(_invoke(handler, init_error, request, logs, out, err)) + "\n")
        proto.flush()
    return 0


def main(argv: List[str]) -> int:
    args = _args(argv)
    sys.path[:0] = [args.function_dir, *args.layers]  # SCF: /var/user, then /opt
    os.chdir(args.function_dir)
    if args.run is not None:
        import runpy

        runpy.run_path(args.run, run_name="__main__")
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
