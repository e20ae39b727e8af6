"""The keys the local cloud accepts: the account's own, and SCF role credentials that rotate.

SCF gives a function its role's temporary credentials as TENCENTCLOUD_SECRETID,
TENCENTCLOUD_SECRETKEY and TENCENTCLOUD_SESSIONTOKEN (built-in variables, 583/32748).
Temporary credentials expire; whether a warm instance gets fresh ones between
invocations is unverified, so the local SCF hands every invocation the current ones
(`rotate_every` seconds apart) and the old ones stop working `lifetime` seconds after
they were issued. A temporary SecretId is only good with its own session token.
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple

LOCAL_TOKEN = "localcloud-session-token"  # the token functions get when nothing rotates


class RoleCredentials(Mapping[str, str]):
    """SecretId -> SecretKey of every credential valid now (a Mapping, as `auth.verify` reads it)."""

    def __init__(self, static: Mapping[str, str], rotate_every: Optional[float] = None,
                 lifetime: Optional[float] = None, clock: Callable[[], float] = time.time) -> None:
        if rotate_every is not None and rotate_every <= 0:
            raise ValueError(f"rotate_every must be > 0 seconds, got {rotate_every}")
        self.static = dict(static)
        self.rotate_every = rotate_every
        self.lifetime = lifetime if lifetime is not None else (3 * rotate_every if rotate_every else None)
        if self.lifetime is not None and rotate_every is not None and self.lifetime < rotate_every:
            raise ValueError("lifetime must be at least rotate_every, or functions would hold expired keys")
        self.clock = clock
        self._lock = threading.Lock()
        self._roles: Dict[str, Tuple[str, str, float]] = {}  # SecretId -> (SecretKey, token, issued at)
        self._current = ""
        self.issued = 0

    @property
    def rotating(self) -> bool:
        return self.rotate_every is not None

    def _issue(self) -> str:
        secret_id = "AKIDrole" + secrets.token_hex(8)
        self._roles[secret_id] = (secrets.token_hex(16), "token-" + secrets.token_hex(16), self.clock())
        self._current = secret_id
        self.issued += 1
        return secret_id

    def role_env(self, static_id: str = "") -> Dict[str, str]:
        """The TENCENTCLOUD_* variables a function gets now, rotating if they are due."""
        if not self.rotating:
            sid = static_id or next(iter(self.static))
            return {"TENCENTCLOUD_SECRETID": sid, "TENCENTCLOUD_SECRETKEY": self.static[sid],
                    "TENCENTCLOUD_SESSIONTOKEN": LOCAL_TOKEN}
        with self._lock:
            current = self._roles.get(self._current)
            if current is None or self.clock() - current[2] >= (self.rotate_every or 0):
                self._issue()
            key, token, _ = self._roles[self._current]
            return {"TENCENTCLOUD_SECRETID": self._current, "TENCENTCLOUD_SECRETKEY": key,
                    "TENCENTCLOUD_SESSIONTOKEN": token}

    def _valid(self, secret_id: str) -> Optional[Tuple[str, str, float]]:
        role = self._roles.get(secret_id)
        if role is None or (self.lifetime is not None and self.clock() - role[2] > self.lifetime):
            return None
        return role

    def expired(self, secret_id: str) -> bool:
        return secret_id in self._roles and self._valid(secret_id) is None

    def token_for(self, secret_id: str) -> Optional[str]:
        """The session token a temporary SecretId must come with; None for the account's own keys."""
        role = self._roles.get(secret_id)
        return role[1] if role else None

    def add(self, secret_id: str, secret_key: str) -> None:
        """Accept another long-term key (e.g. a second account's)."""
        self.static[secret_id] = secret_key

    __setitem__ = add

    def __getitem__(self, secret_id: str) -> str:
        if secret_id in self.static:
            return self.static[secret_id]
        role = self._valid(secret_id)
        if role is None:
            raise KeyError(secret_id)
        return role[0]

    def __contains__(self, secret_id: object) -> bool:
        return isinstance(secret_id, str) and (secret_id in self.static or self._valid(secret_id) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter([*self.static, *(s for s in list(self._roles) if self._valid(s))])

    def __len__(self) -> int:
        return sum(1 for _ in self)
