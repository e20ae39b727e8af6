"""SCF's runtime: warm worker subprocesses, live COS triggers and timers, every invocation, and the
answer a Function URL gives. What was deployed through the API (localcloud/scfbackend.py) runs here
as a `DeployedFunction`.

Functions run out of process, configured only by environment variables, the
way SCF runs them, so a handler that works here does not secretly depend on
the test process (imports, globals, credentials).
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from . import scfenv
from .faults import Faults
from .scfevents import scf_context, timer_event

INIT_TIMEOUT = 60.0
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Invocation:
    """One attempt of one invocation (a retried event gives several records)."""

    function: str
    kind: str  # "cos", "http", "timer", "direct"
    event: Any
    attempt: int = 1
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ok: Optional[bool] = None
    result: Any = None
    error: str = ""
    traceback: str = ""
    logs: List[str] = field(default_factory=list)
    started: float = 0.0
    duration: float = 0.0

    def summary(self) -> Dict[str, Any]:
        return {"function": self.function, "kind": self.kind, "attempt": self.attempt, "ok": self.ok,
                "error": self.error, "logs": self.logs, "request_id": self.request_id, "duration": self.duration,
                "started": self.started}


class WorkerDied(Exception):
    pass


class _Worker:
    """One warm subprocess running `localcloud.worker`."""

    _ids = itertools.count(1)

    def __init__(self, argv: List[str], env: Dict[str, str], function_dir: str) -> None:
        self.proc = subprocess.Popen(argv,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=function_dir, text=True, encoding="utf-8", bufsize=1)
        self.replies: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.stderr_tail: Deque[str] = deque(maxlen=50)
        self.current: Optional[int] = None  # id of the invocation in progress
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        try:  # SCF gives initialisation its own time budget, separate from the invocation timeout
            ready = self.replies.get(timeout=INIT_TIMEOUT)
        except queue.Empty:
            self.kill()
            raise WorkerDied(f"function initialisation took more than {INIT_TIMEOUT:g} s") from None
        if ready is None:
            raise WorkerDied(self._death())

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.replies.put(json.loads(line))
            except ValueError:
                self.stderr_tail.append(line.rstrip("\n"))
        self.replies.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip("\n"))

    def call(self, event: Any, context: Dict[str, Any], timeout: float, kill_after: Optional[float] = None,
             environ: Optional[Dict[str, str]] = None) -> dict:
        ident = next(self._ids)
        assert self.proc.stdin is not None
        message = {"id": ident, "event": event, "context": context, "environ": environ or {}}
        killed = kill_after is not None and kill_after <= 0
        if killed:  # stopped first: under load it could otherwise run the event before this thread kills it
            os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(self._death()) from None
        self.current = ident
        if killed:
            self.kill()  # the event was delivered; the worker dies before it can answer
        elif kill_after is not None:
            threading.Timer(kill_after, lambda: self.current == ident and self.kill()).start()
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise TimeoutError(f"Invocation timed out after {timeout:g} s") from None
        finally:
            self.current = None
        if reply is None:
            raise WorkerDied(self._death())
        return reply

    def _death(self) -> str:
        code = self.proc.wait(timeout=5)
        tail = "\n".join(list(self.stderr_tail)[-10:])
        return f"worker exited with code {code}" + (f":\n{tail}" if tail else "")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except Exception:
            self.kill()


class Function:
    """A deployed function: code dir, environment, a pool of warm workers.

    With `layers` (a function deployed through the SCF API) it runs the way SCF runs
    it (localcloud/scfenv.py): isolated interpreter, path = code dir + layer dirs,
    only its own environment. Without, it runs a source folder of this checkout
    with the repository on PYTHONPATH (the quick local loop).
    """

    def __init__(self, name: str, function_dir: str, env: Mapping[str, str], concurrency: int = 2,
                 timeout: float = 60.0, python: Optional[str] = None,
                 invocation_env: Optional[Callable[[], Dict[str, str]]] = None,
                 layers: Optional[Sequence[str]] = None, handler: str = "main_handler") -> None:
        self.name, self.function_dir = name, resolve_dir(function_dir)
        self.python = python or sys.executable
        if not os.path.isfile(os.path.join(self.function_dir, "index.py")):
            raise ValueError(f"{self.function_dir} has no index.py")
        self.concurrency, self.timeout = concurrency, timeout
        if layers is None:
            self.env = build_env(env, name)
            self.argv = [self.python, "-m", "localcloud.worker", self.function_dir]
        else:
            self.env = scfenv.environment(env, name)
            self.argv = scfenv.command(self.python, self.function_dir, layers, handler=handler)
        self.invocation_env = invocation_env  # variables refreshed per invocation (rotating role credentials)
        self._idle: "queue.LifoQueue[_Worker]" = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._all: List[_Worker] = []
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"scf-{name}")

    def invoke(self, inv: Invocation, kill_after: Optional[float] = None) -> Invocation:
        """Run one invocation synchronously on a warm worker (starting one if needed)."""
        with self._slots:
            inv.started = time.time()
            try:
                worker = self._take()
            except WorkerDied as exc:
                inv.ok, inv.error, inv.duration = False, str(exc), time.time() - inv.started
                return inv
            context = scf_context(self.name, self.timeout, inv.request_id)
            try:
                environ = self.invocation_env() if self.invocation_env else None
                reply = worker.call(inv.event, context, self.timeout, kill_after, environ)
                inv.ok, inv.result = bool(reply.get("ok")), reply.get("result")
                inv.error, inv.traceback = reply.get("error", ""), reply.get("traceback", "")
                inv.logs = list(reply.get("logs") or [])
                if inv.traceback:
                    inv.logs.extend(inv.traceback.rstrip("\n").split("\n"))
            except (WorkerDied, TimeoutError) as exc:
                inv.ok, inv.error = False, str(exc)
            finally:
                inv.duration = time.time() - inv.started
                self._give(worker)
        return inv

    def _take(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = _Worker(self.argv, self.env, self.function_dir)
                with self._lock:
                    self._all.append(worker)
                return worker
            if worker.alive:
                return worker

    def _give(self, worker: _Worker) -> None:
        if worker.alive:
            self._idle.put(worker)
        else:
            with self._lock:
                if worker in self._all:
                    self._all.remove(worker)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.close()


def resolve_dir(function_dir: str) -> str:
    """Relative dirs are looked up from the cwd, then from the repository root."""
    if os.path.isabs(function_dir) or os.path.isdir(function_dir):
        return os.path.abspath(function_dir)
    return os.path.join(REPO_ROOT, function_dir)


def build_env(env: Mapping[str, str], name: str) -> Dict[str, str]:
    merged = dict(os.environ)
    merged.update({"SCF_FUNCTIONNAME": name, "SCF_NAMESPACE": "default", "SCF_FUNCTIONVERSION": "$LATEST",
                   "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    merged.update({k: str(v) for k, v in env.items()})
    paths = [REPO_ROOT] + [p for p in merged.get("PYTHONPATH", "").split(os.pathsep) if p and p != REPO_ROOT]
    merged["PYTHONPATH"] = os.pathsep.join(paths)
    return merged


class DeployedFunction(Function):
    """A function deployed through the API. Reserved concurrency 0 stops it (PutReservedConcurrencyConfig; 583/39464
    does not say so: unverified): an asynchronous event (COS, timer) then waits, as SCF keeps it queued (up to
    MsgTTL), until the reservation is lifted; a synchronous call (Function URL, Invoke) is refused at once. An event
    that waited, or was queued when the function was redeployed, runs on the newest version."""

    def __init__(self, *args: Any, gate: threading.Event, ttl: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.ttl = gate, ttl
        self.successor: Optional["DeployedFunction"] = None
        self.closed = False

    def invoke(self, inv: Any, kill_after: Optional[float] = None) -> Any:
        if not self.gate.is_set() and (inv.kind in ("http", "direct") or not self.gate.wait(self.ttl)):
            inv.ok, inv.error = False, "ResourceInsufficient: reserved concurrency is 0, the function is stopped"
            return inv
        if self.successor is not None:
            return self.successor.invoke(inv, kill_after)
        if self.closed:
            inv.ok, inv.error = False, "the function was deleted or the cloud stopped"
            return inv
        return super().invoke(inv, kill_after)

    def close(self) -> None:
        """Like Function.close, but events already queued here still run (on the successor)."""
        self.closed = True
        self.executor.shutdown(wait=False)
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.close()


@dataclass
class Trigger:
    bucket: str
    function: Function
    prefix: str = ""
    suffix: str = ""
    events: Tuple[str, ...] = ("cos:ObjectCreated:*",)
    retries: int = 2
    retry_delay: float = 0.5
    enabled: bool = True

    def matches(self, bucket: str, key: str, event_name: str) -> bool:
        if not self.enabled or bucket != self.bucket or not key.startswith(self.prefix) or not key.endswith(self.suffix):
            return False
        return any(event_name == e or (e.endswith("*") and event_name.startswith(e[:-1])) for e in self.events)


class Runtime:
    """All functions, triggers and the record of every invocation."""

    def __init__(self, faults: Faults, python: Optional[str] = None) -> None:
        self.faults, self.python = faults, python
        self.functions: Dict[str, Function] = {}
        self.triggers: List[Trigger] = []
        self.invocations: List[Invocation] = []
        self._lock = threading.Condition()
        self._pending = 0
        self._timers: List[threading.Event] = []
        self.on_invocation: Optional[Callable[[Invocation], None]] = None  # e.g. the CLI prints logs
        self.invocation_env: Optional[Callable[[], Dict[str, str]]] = None  # e.g. rotating role credentials

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def function(self, name: str, function_dir: str, env: Mapping[str, str], concurrency: int = 2,
                 timeout: float = 60.0) -> Function:
        if name in self.functions:
            self.functions[name].close()
        fn = Function(name, function_dir, env, concurrency, timeout, self.python, self.invocation_env)
        self.functions[name] = fn
        return fn

    def _record(self, inv: Invocation) -> None:
        with self._lock:
            self.invocations.append(inv)

    def run(self, fn: Function, event: Any, kind: str, attempt: int = 1) -> Invocation:
        """One synchronous attempt, with the `scf.invoke` fault applied."""
        inv = Invocation(fn.name, kind, event, attempt)
        self._record(inv)
        fault = self.faults.take("scf.invoke")
        if fault and fault.status and not fault.drop:
            inv.ok, inv.error = False, f"platform error {fault.status} (fault injection)"
        else:
            kill_after = (fault.delay or 0.0) if fault and fault.drop else None
            fn.invoke(inv, kill_after=kill_after)
        if self.on_invocation is not None:
            try:
                self.on_invocation(inv)
            except Exception:  # a broken observer must not fail the invocation
                pass
        return inv

    def invoke_async(self, fn: Function, event: Any, kind: str, retries: int = 2, retry_delay: float = 0.5) -> None:
        """Queue an event invocation, retried on failure like SCF's async invoke."""
        with self._lock:
            self._pending += 1

        def task() -> None:
            try:
                for attempt in range(1, retries + 2):
                    if self.run(fn, event, kind, attempt).ok:
                        return
                    if attempt <= retries:
                        time.sleep(retry_delay)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._lock.notify_all()

        try:
            fn.executor.submit(task)
        except RuntimeError:  # shut down
            with self._lock:
                self._pending -= 1

    def add_timer(self, fn: Function, every_seconds: float, name: str = "timer") -> None:
        stop = threading.Event()
        self._timers.append(stop)

        def loop() -> None:
            while not stop.wait(every_seconds):
                self.invoke_async(fn, timer_event(name), "timer", retries=0)

        threading.Thread(target=loop, daemon=True, name=f"timer-{name}").start()

    def close(self) -> None:
        for stop in self._timers:
            stop.set()
        for fn in self.functions.values():
            fn.close()


def function_url_reply(inv: Invocation) -> Tuple[int, Dict[str, str], bytes]:
    """Turn the handler's `{statusCode, headers, body, isBase64Encoded}` into an HTTP answer."""
    import base64

    if not inv.ok:
        body = json.dumps({"errorCode": -1, "errorMessage": inv.error, "requestId": inv.request_id}).encode()
        return 502, {"Content-Type": "application/json"}, body
    result = inv.result
    if not isinstance(result, dict) or "statusCode" not in result:
        text = result if isinstance(result, str) else json.dumps(result)
        return 200, {"Content-Type": "application/json"}, text.encode("utf-8")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode("utf-8")
    return int(result.get("statusCode") or 200), headers, body
