"""Running the real handlers locally (`invoke`, `replay`) and reporting a run.

`functions/<name>/index.py:main_handler` runs with the configured environment, in this
process (warm, like a reused SCF container) or with `subprocess_mode` in a fresh interpreter
per call (a cold start). The per-record outcomes come from what the handler returned, or
from the `SubmitFailed` it raised; its log lines are captured per invocation through the
`cos_matting` logger (`cli.logcapture.captured`), never by swapping stdout.
"""
from __future__ import annotations

import argparse
import base64
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping

from cli.env import ROOT, add_env_options, patched_environ
from cli.errors import UsageError
from cli.eventio import KINDS, PLACEHOLDER_JOB
from cli.logcapture import captured
from cli.ui import table

SUBMIT_FIELDS = ("key", "outcome", "record_id", "job_id", "detail")  # what a submit outcome row shows
CALLBACK_FIELDS = ("error", "ok", "service", "record_id")


@dataclass
class Result:
    """One invocation: what the handler returned or raised, its per-record outcomes, what it logged."""

    function: str
    ok: bool = False
    result: Any = None
    error: str = ""
    traceback: str = ""
    logs: List[str] = field(default_factory=list)
    duration: float = 0.0
    notes: List[str] = field(default_factory=list)
    ran: bool = True  # False: never handed to a handler (unreadable file, wrong shape, usage problem)
    outcomes: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        if not self.ok:
            return True
        if self.function == "callback" and isinstance(self.result, dict):
            return int(self.result.get("statusCode") or 0) >= 400
        return False

    def as_dict(self) -> Dict[str, Any]:
        return {"function": self.function, "ok": self.ok, "failed": self.failed, "outcomes": self.outcomes,
                "result": self.result, "error": self.error or None, "notes": self.notes,
                "duration": round(self.duration, 4), "logs": self.logs}


def submit_rows(outcomes: Any) -> List[Dict[str, Any]]:
    """Submit outcomes (the handler's `outcomes`, `SubmitFailed.outcomes`) as report rows."""
    rows = outcomes if isinstance(outcomes, list) else []
    return [{k: o[k] for k in SUBMIT_FIELDS if k in o} for o in rows if isinstance(o, dict)]


def outcomes_of(function: str, result: Any) -> List[Dict[str, Any]]:
    """Per-record outcomes from a handler's return value."""
    if not isinstance(result, dict):
        return []
    if function == "submit":
        return submit_rows(result.get("outcomes"))
    if function == "callback":
        status = result.get("statusCode")
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"body": body}
        if isinstance(answer, dict) and answer.get("results"):
            return [{"status": status, "record_id": answer.get("record_id"), **r} for r in answer["results"]]
        outcome = {"status": status}
        if isinstance(answer, dict):
            outcome.update({k: v for k, v in answer.items() if k in CALLBACK_FIELDS})
        return [outcome]
    if function == "reconcile":
        return [dict(result)]
    return []


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record-id", help="callback: sign the token for this record id")
    parser.add_argument("--job-id", help=f"callback: put this JobId where the body has the placeholder {PLACEHOLDER_JOB}")
    parser.add_argument("--subprocess", action="store_true",
                        help="run the handler in a fresh interpreter (a cold start) instead of in this process")
    parser.add_argument("--real-cloud", action="store_true",
                        help="allow running without COS_MATTING_ENDPOINT, i.e. against Tencent Cloud")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not echo the handler's log lines")
    add_env_options(parser)


def handler_file(name: str) -> Path:
    try:
        spec = importlib.util.find_spec(f"functions.{name}.index")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin)
    return ROOT / "functions" / name / "index.py"


_counter = itertools.count(1)


class Runner:
    """Runs handlers with one environment. In-process modules are imported once and kept
    warm (SCF reuses containers too); `subprocess_mode` starts a fresh interpreter per call."""

    def __init__(self, env: Mapping[str, str], subprocess_mode: bool = False) -> None:
        self.env, self.subprocess_mode = dict(env), subprocess_mode
        self._modules: Dict[str, Any] = {}

    def invoke(self, name: str, event: Any) -> Result:
        if name not in KINDS:
            raise UsageError(f"unknown function {name!r}; one of {', '.join(KINDS)}")
        return self._child(name, event) if self.subprocess_mode else self._in_process(name, event)

    def _in_process(self, name: str, event: Any) -> Result:
        from localcloud.scfevents import scf_context
        from shared.submit import SubmitFailed

        res = Result(function=name)
        started = time.perf_counter()
        with patched_environ(self.env), captured() as lines:
            try:
                module = self._modules.get(name)
                if module is None:
                    module = self._modules[name] = _load(name)
                context = scf_context(f"cos-matting-{name}", 60.0, environ="local")
                res.result = _jsonable(module.main_handler(event, context))
                res.ok = True
                res.outcomes = outcomes_of(name, res.result)
            except Exception as exc:  # SCF reports any exception as a failed invocation
                res.error = f"{type(exc).__name__}: {exc}"
                res.traceback = traceback.format_exc()
                if name not in self._modules:
                    res.error = f"function initialisation failed: {res.error}"
                if isinstance(exc, SubmitFailed):
                    res.outcomes = submit_rows(_jsonable([o.model_dump(exclude_none=True) for o in exc.outcomes]))
        res.duration = time.perf_counter() - started
        res.logs = lines
        return res

    def _child(self, name: str, event: Any) -> Result:
        env = {**self.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH", "")]))}
        payload = json.dumps({"name": name, "event": event})
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "cli.cmd_invoke", "--child"], input=payload, env=env,
                              cwd=str(ROOT), capture_output=True, text=True, encoding="utf-8")
        res = Result(function=name, duration=time.perf_counter() - started)
        lines = proc.stdout.splitlines()
        reply = None
        if lines:
            try:
                reply = json.loads(lines[-1])
            except ValueError:
                reply = None
        if not isinstance(reply, dict) or "ok" not in reply:
            res.error = f"handler process exited with code {proc.returncode}"
            res.logs = lines + proc.stderr.splitlines()
            return res
        res.ok, res.result, res.error, res.traceback = reply["ok"], reply.get("result"), reply.get("error", ""), \
            reply.get("traceback", "")
        res.outcomes = list(reply.get("outcomes") or [])
        res.logs = reply.get("logs", []) + proc.stderr.splitlines()
        return res


def _load(name: str) -> Any:
    path = handler_file(name)
    spec = importlib.util.spec_from_file_location(f"_cos_matting_invoke_{name}_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def child_main() -> int:
    """`python -m cli.cmd_invoke --child`: one invocation; the reply (with the outcomes) is the
    last line of stdout."""
    request = json.loads(sys.stdin.read())
    res = Runner(dict(os.environ)).invoke(request["name"], request["event"])
    sys.stdout.write(json.dumps({"ok": res.ok, "result": res.result, "error": res.error, "traceback": res.traceback,
                                 "outcomes": res.outcomes, "logs": res.logs}, default=str) + "\n")
    sys.stdout.flush()
    return 0


def check_settings(env: Mapping[str, str]) -> None:
    """Fail before running anything (exit 2, naming the variable) if the handlers could not start."""
    from shared.config import load_settings

    from cli.env import check_reachable, warn_unknown_variables

    load_settings(env)
    if not (env.get("TENCENTCLOUD_SECRETID") and env.get("TENCENTCLOUD_SECRETKEY")):
        raise UsageError("TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY are not set (with --local they default "
                         "to the local cloud's keys)")
    warn_unknown_variables(env)
    check_reachable(env)


def print_result(res: Result, out, err, quiet: bool = False, title: str = "") -> None:
    if title:
        out.write(f"== {title}\n")
    for note in res.notes:
        err.write(f"note: {note}\n")
    if not quiet:
        for line in res.logs:
            err.write(f"  log | {line}\n")
    rows = res.outcomes
    if res.function == "submit" and rows:
        out.write(table(["KEY", "OUTCOME", "JOB", "DETAIL"],
                        [[r.get("key"), r.get("outcome"), r.get("job_id") or "", r.get("detail") or ""] for r in rows],
                        {0: 60, 3: 80}) + "\n")
    elif res.function == "callback" and rows:
        out.write(table(["STATUS", "JOB", "RESULT", "STATE", "ERROR"],
                        [[r.get("status"), r.get("job_id") or "", r.get("result") or "", r.get("state") or "",
                          r.get("error") or ""] for r in rows], {4: 80}) + "\n")
    elif res.function == "reconcile" and rows:
        out.write("  ".join(f"{k}={v}" for k, v in rows[0].items()) + "\n")
    if not res.ok:
        # "not run": the event was never run (unreadable file, unknown shape, a usage problem)
        out.write(f"{'handler raised' if res.ran else 'not run'}: {res.error}\n")
        if res.traceback and not quiet:
            err.write(res.traceback)
    out.write(f"{'FAILED' if res.failed else 'ok'} ({res.duration * 1000:.0f} ms)\n")
    out.flush()
