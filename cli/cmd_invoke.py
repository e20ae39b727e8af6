"""`cos-matting invoke submit|callback|reconcile --event FILE|-`: run the real handler locally.

The handler (`functions/<name>/index.py:main_handler`) runs with the configured
environment, in this process (warm, like a reused SCF container) or with
`--subprocess` in a fresh interpreter (a cold start). It talks to whatever
COS_MATTING_ENDPOINT points at: the local cloud by default.
"""
from __future__ import annotations

import argparse
import base64
import copy
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from cli.errors import UsageError
from cli.env import ROOT, add_env_options, environment, patched_environ, require_local
from cli.common import LogSink, captured_stdout, parse_log_line
from cli.ui import dump_json, table

KINDS = ("submit", "callback", "reconcile")
PLACEHOLDER_JOB = "s0000000000000000000000000000000"
TOKEN_PLACEHOLDERS = ("RECORD", "EXP", "TOKEN")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invoke", help="run a real function handler locally with an event",
        description="Run functions/<FUNCTION>/index.py:main_handler with an event, against the configured endpoints "
                    "(the local cloud: set COS_MATTING_ENDPOINT or pass --local URL). Prints the per-record outcomes "
                    "on stdout and the handler's log lines on stderr. Exit 1 when the handler raised (or the "
                    "callback answered an error status).",
        epilog="callback events: a Function URL request (events/funcurl/*) or a bare callback body "
               "(events/callbacks/*, JSON or XML), which is wrapped into a Function URL request. Placeholder tokens "
               "(rid=RECORD, t=TOKEN) are replaced by a valid token for --record-id, or for the record named in "
               "the job's UserData when the job exists.",
    )
    parser.add_argument("function", choices=KINDS, help="which handler to run")
    parser.add_argument("--event", metavar="FILE", help="event file, or - for stdin (reconcile: optional)")
    add_run_options(parser)
    parser.set_defaults(func=run)


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


# -- events ---------------------------------------------------------------------------------------

def read_event_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--event {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--event {path}: not UTF-8 text") from None


def decode_event(text: str) -> Any:
    """JSON events as objects; anything else (an XML callback body) stays text."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return text  # a malformed callback body is still something to replay
    return text


def kind_of(event: Any) -> Optional[str]:
    """Which function an event is for, from its shape."""
    if isinstance(event, dict):
        if "Records" in event:
            return "submit"
        if "httpMethod" in event:
            return "callback"
        if "EventName" in event or "Response" in event or "JobsDetail" in event:
            return "callback"
        if event.get("Type") == "Timer" or "TriggerName" in event:
            return "reconcile"
        return None
    if isinstance(event, str) and event.lstrip().startswith("<"):
        return "callback"
    return None


def timer_event(name: str = "reconcile") -> Dict[str, Any]:
    return {"Type": "Timer", "TriggerName": name, "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Message": ""}


def _body_of(event: Dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            return body.encode("utf-8")
    return body.encode("utf-8")


def _set_body(event: Dict[str, Any], body: bytes) -> None:
    event["body"] = base64.b64encode(body).decode() if event.get("isBase64Encoded") else body.decode("utf-8")


def prepare_callback(event: Any, env: Mapping[str, str], record_id: Optional[str] = None,
                     job_id: Optional[str] = None, lookup=None) -> Tuple[Dict[str, Any], List[str]]:
    """A Function URL event for the callback handler, with a valid token where the event has placeholders.

    `lookup(job_id) -> record id or None` finds the record from the job's UserData (CI re-read).
    Returns (event, notes).
    """
    from cli.cmd_generate_event import callback_keys, funcurl_event, token_query

    notes: List[str] = []
    if isinstance(event, dict) and "httpMethod" in event:
        ev = copy.deepcopy(event)
    else:
        text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
        xml = text.lstrip().startswith("<")
        ev = funcurl_event(text, "application/xml" if xml else "application/json",
                           {"rid": "RECORD", "exp": "EXP", "t": "TOKEN"})
        notes.append("wrapped the callback body in a Function URL POST request")
    body = _body_of(ev)
    if job_id and PLACEHOLDER_JOB.encode() in body:
        body = body.replace(PLACEHOLDER_JOB.encode(), job_id.encode())
        _set_body(ev, body)
        notes.append(f"JobId placeholder -> {job_id}")
    if record_id and b"cm:RECORD" in body:
        body = body.replace(b"cm:RECORD", f"cm:{record_id}".encode())
        _set_body(ev, body)
    query = ev.get("queryString") or {}
    placeholders = any(_is_placeholder(v) for v in query.values())
    if ev.get("httpMethod", "GET").upper() != "POST" or not (placeholders or record_id):
        return ev, notes
    rid = record_id
    if not rid and lookup is not None:
        from shared.callback import BadCallback, job_ids

        try:
            ids = job_ids(body)
        except BadCallback:
            ids = []
        rid = lookup(ids[0]) if ids else None
        if rid:
            notes.append(f"record {rid} from the UserData of job {ids[0]}")
    if not rid:
        notes.append("no record id (pass --record-id or --job-id of an existing job): the token stays a placeholder")
        return ev, notes
    ttl = int(env.get("COS_MATTING_CALLBACK_TOKEN_TTL") or 7 * 86400)
    fresh = token_query(callback_keys(env), rid, ttl)
    ev["queryString"] = {k: ([fresh[k]] if isinstance(query.get(k), list) else fresh[k]) for k in fresh}
    for k, v in query.items():
        if k not in fresh:
            ev["queryString"][k] = v
    notes.append(f"signed a callback token for record {rid}")
    return ev, notes


def _is_placeholder(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(str(v) in TOKEN_PLACEHOLDERS for v in values)


# -- running a handler ----------------------------------------------------------------------------

@dataclass
class Result:
    """One invocation: what the handler returned or raised, and what it logged."""

    function: str
    ok: bool = False
    result: Any = None
    error: str = ""
    traceback: str = ""
    logs: List[str] = field(default_factory=list)
    duration: float = 0.0
    notes: List[str] = field(default_factory=list)
    ran: bool = True  # False: never handed to a handler (unreadable file, wrong shape, usage problem)

    @property
    def outcomes(self) -> List[Dict[str, Any]]:
        return outcomes_of(self)

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


def outcomes_of(res: Result) -> List[Dict[str, Any]]:
    """Per-record outcomes: submit from its `submit.outcome` log lines (present even when it raised)."""
    if res.function == "submit":
        out = []
        for line in res.logs:
            data = parse_log_line(line)
            if data and data.get("event") == "submit.outcome":
                out.append({k: data[k] for k in ("key", "outcome", "record_id", "job_id", "detail") if k in data})
        if not out and isinstance(res.result, dict) and isinstance(res.result.get("outcomes"), list):
            out = [dict(o) for o in res.result["outcomes"]]  # e.g. a remote run whose log tail was cut
        return out
    if res.function == "callback" and isinstance(res.result, dict):
        status = res.result.get("statusCode")
        body = res.result.get("body") or ""
        if res.result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"body": body}
        if isinstance(answer, dict) and answer.get("results"):
            return [{"status": status, "record_id": answer.get("record_id"), **r} for r in answer["results"]]
        outcome = {"status": status}
        if isinstance(answer, dict):
            outcome.update({k: v for k, v in answer.items() if k in ("error", "ok", "service", "record_id")})
        return [outcome]
    if res.function == "reconcile" and isinstance(res.result, dict):
        return [dict(res.result)]
    return []


def handler_file(name: str) -> Path:
    try:
        spec = importlib.util.find_spec(f"functions.{name}.index")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin)
    return ROOT / "functions" / name / "index.py"


_counter = itertools.count(1)


def context_for(name: str, timeout_s: float = 60.0) -> Dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "function_name": f"cos-matting-{name}", "function_version": "$LATEST",
            "namespace": "default", "memory_limit_in_mb": 128, "time_limit_in_ms": int(timeout_s * 1000),
            "environ": "local"}


class Runner:
    """Runs handlers with one environment. In-process modules are imported once and kept
    warm (SCF reuses containers too); `subprocess=True` starts a fresh interpreter per call."""

    def __init__(self, env: Mapping[str, str], subprocess_mode: bool = False, echo=None) -> None:
        self.env, self.subprocess_mode, self.echo = dict(env), subprocess_mode, echo
        self._modules: Dict[str, Any] = {}
        self._init_logs: Dict[str, List[str]] = {}

    def invoke(self, name: str, event: Any) -> Result:
        if name not in KINDS:
            raise UsageError(f"unknown function {name!r}; one of {', '.join(KINDS)}")
        res = self._child(name, event) if self.subprocess_mode else self._in_process(name, event)
        if self.echo is not None:
            for line in res.logs:
                self.echo(line)
        return res

    def _in_process(self, name: str, event: Any) -> Result:
        res = Result(function=name)
        sink = LogSink()
        started = time.perf_counter()
        with patched_environ(self.env), captured_stdout(sink, stderr_too=True):
            try:
                module = self._modules.get(name)
                if module is None:
                    module = self._modules[name] = _load(name)
                res.result = _jsonable(module.main_handler(event, context_for(name)))
                res.ok = True
            except Exception as exc:  # SCF reports any exception as a failed invocation
                res.error = f"{type(exc).__name__}: {exc}"
                res.traceback = traceback.format_exc()
                if name not in self._modules:
                    res.error = f"function initialisation failed: {res.error}"
        res.duration = time.perf_counter() - started
        res.logs = sink.lines
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
    """`python -m cli.cmd_invoke --child`: one invocation; the reply is the last line of stdout."""
    request = json.loads(sys.stdin.read())
    proto = sys.stdout
    res = Runner(dict(os.environ)).invoke(request["name"], request["event"])
    proto.write(json.dumps({"ok": res.ok, "result": res.result, "error": res.error, "traceback": res.traceback,
                            "logs": res.logs}, default=str) + "\n")
    proto.flush()
    return 0


# -- the command ----------------------------------------------------------------------------------

def record_lookup(env: Mapping[str, str]):
    """job id -> record id, from the job's UserData (cm:<record id>), via the real CI client."""
    def lookup(job_id: str) -> Optional[str]:
        from shared.cloud import CloudError, Clients
        from shared.config import load_settings

        try:
            settings = load_settings(env)
            job = Clients(settings, env).ci.describe(job_id)
        except (CloudError, ValueError):
            return None
        from shared.identity import Correlation

        corr = Correlation.parse(job.user_data)
        return corr.record_id if corr else None

    return lookup


def prepare(name: str, event: Any, env: Mapping[str, str], record_id: Optional[str] = None,
            job_id: Optional[str] = None) -> Tuple[Any, List[str]]:
    """The event as the handler gets it (callbacks wrapped and signed); raises UsageError on a wrong shape."""
    if name == "callback":
        return prepare_callback(event, env, record_id, job_id, lookup=record_lookup(env))
    if name == "submit" and not (isinstance(event, dict) and "Records" in event):
        raise UsageError("submit needs a COS trigger event with Records (see events/cos/ or "
                         "`cos-matting generate-event cos-put`)")
    return event, []


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
        # "?": the event was never run (unreadable file, unknown shape, a usage problem)
        out.write(f"{'handler raised' if res.ran else 'not run'}: {res.error}\n")
        if res.traceback and not quiet:
            err.write(res.traceback)
    out.write(f"{'FAILED' if res.failed else 'ok'} ({res.duration * 1000:.0f} ms)\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    env = environment(args)
    require_local(env, "invoke", allow_real=args.real_cloud)
    check_settings(env)
    if args.event is None:
        if args.function != "reconcile":
            raise UsageError(f"invoke {args.function} needs --event FILE (or - for stdin)")
        event: Any = timer_event()
    else:
        event = decode_event(read_event_text(args.event))
    event, notes = prepare(args.function, event, env, args.record_id, args.job_id)
    res = Runner(env, subprocess_mode=args.subprocess).invoke(args.function, event)
    res.notes = notes + res.notes
    if args.json:
        print(dump_json(res.as_dict()))
    else:
        print_result(res, sys.stdout, sys.stderr, args.quiet)
    return 1 if res.failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        sys.exit(child_main())
    from cli.main import main

    sys.exit(main(["invoke"] + sys.argv[1:]))
