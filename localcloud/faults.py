"""Fault injection: make a named route fail, stall, or drop, a set number of times.

Retries, timeouts and idempotency are only proven by making the cloud
misbehave on purpose; every injected fault is counted so tests can assert
that the fault really happened.
"""
from __future__ import annotations

import random as _random
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional

ROUTES = ("cos.put", "cos.append", "cos.get", "cos.head", "cos.delete", "cos.list", "cos.copy", "cos.multipart.part",
          "cos.tagging.put", "cos.tagging.get", "cos.tagging.delete",
          "ci.create", "ci.get", "ci.list", "ci.cancel",
          "callback.send", "scf.invoke", "api.scf", "api.cam", "api.monitor")
# What a status code means as a COS/CI error code.
STATUS_CODES: Dict[int, str] = {
    400: "InvalidArgument", 403: "AccessDenied", 404: "NoSuchResource", 409: "Conflict",
    429: "SlowDown", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class Fault:
    """One armed fault. `after=True`: do the real work, then delay/drop the answer."""

    route: str
    count: int = 1
    status: Optional[int] = None
    delay: Optional[float] = None
    drop: bool = False
    after: bool = False
    skip: int = 0  # let this many matching requests pass first ("fail the Nth")
    # callback-only behaviours
    duplicate: bool = False
    reorder: bool = False
    code: Optional[str] = None

    def error_code(self, ci: bool = False) -> str:
        if self.code:
            return self.code
        if self.status == 429 and ci:
            return "TooManyRequests"
        return STATUS_CODES.get(self.status or 500, "InternalError")


@dataclass
class _RandomFaults:
    rate: float
    rng: _random.Random
    routes: List[str]
    kinds: List[str] = field(default_factory=lambda: ["status", "drop", "after_drop"])


class Faults:
    """Armed faults per route, consumed in order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: Dict[str, List[Fault]] = {}
        self._random: Optional[_RandomFaults] = None
        self.injected: Counter = Counter()
        self._stalled = 0  # requests inside a delay fault whose work has not run (or answered) yet
        self._quiet = threading.Condition(self._lock)

    def add(self, route: str, count: int = 1, status: Optional[int] = None, delay: Optional[float] = None,
            drop: bool = False, after: bool = False, duplicate: bool = False, reorder: bool = False,
            code: Optional[str] = None, skip: int = 0) -> Fault:
        """Arm a fault for the next `count` requests on `route` (see ROUTES), after `skip` pass.

        status: answer with this HTTP status and a COS/CI error body (`code` overrides
        the error code); delay: sleep first; drop: close the connection unanswered;
        after: do the real work first, then delay/drop/fail the answer. For
        "callback.send": duplicate, reorder (hold until the next one), drop, delay,
        status (the first attempt counts as failed). For "scf.invoke": drop kills
        the worker (after `delay` seconds) mid-invocation, status fails it unrun. For
        "api.scf" / "api.cam" (the Tencent Cloud API 3.0 front, localcloud/tcapi.py): the
        signed call is answered with error `code` (status 429 without one: RequestLimitExceeded,
        the API's throttling answer) and not run.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {', '.join(ROUTES)}")
        if status is None and delay is None and not (drop or duplicate or reorder):
            status = 500
        fault = Fault(route, count, status, delay, drop, after, skip, duplicate, reorder, code)
        with self._lock:
            self._armed.setdefault(route, []).append(fault)
        return fault

    def random(self, rate: float, seed: int = 0, routes: Optional[Iterable[str]] = None,
               kinds: Iterable[str] = ("status", "drop", "after_drop")) -> None:
        """Fail a `rate` fraction of requests on `routes`, reproducibly from `seed`.

        kinds: "status" (503), "slowdown" (429), "drop" (no answer, nothing done),
        "after_drop" (the work is done, the answer is lost).
        """
        with self._lock:
            self._random = _RandomFaults(rate, _random.Random(seed), list(routes or ROUTES), list(kinds))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._random = None

    def take(self, route: str) -> Optional[Fault]:
        """The fault to apply to this request on `route`, if any (and count it)."""
        with self._lock:
            queue = self._armed.get(route)
            fault: Optional[Fault] = None
            if queue and queue[0].skip > 0:
                queue[0].skip -= 1
            elif queue:
                fault = queue[0]
                fault.count -= 1
                if fault.count <= 0:
                    queue.pop(0)
            elif self._random and route in self._random.routes and self._random.rng.random() < self._random.rate:
                kind = self._random.rng.choice(self._random.kinds)
                fault = {"status": Fault(route, status=503), "slowdown": Fault(route, status=429),
                         "drop": Fault(route, drop=True), "after_drop": Fault(route, drop=True, after=True)}[kind]
            if fault:
                self.injected[route] += 1
            return fault

    @contextmanager
    def stalling(self) -> Iterator[None]:
        """Around a request held by a `delay` fault, from its arrival until its work is done (its reply built)."""
        with self._lock:
            self._stalled += 1
        try:
            yield
        finally:
            with self._lock:
                self._stalled -= 1
                self._quiet.notify_all()

    def wait_stalled(self, timeout: float = 30.0) -> bool:
        """True once no delayed request is in flight: a write COS sits on has landed (or been dropped).
        Tests wait on this, not on a sleep of about the delay that a busy machine can outrun."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._stalled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._quiet.wait(left)
            return True

    def pending(self) -> Dict[str, int]:
        with self._lock:
            return {r: sum(f.count for f in fs) for r, fs in self._armed.items() if fs}

    def total(self) -> int:
        return sum(self.injected.values())
