"""The fast tiers' rule, enforced: no socket and no child process in tests/unit and tests/functional.

Their conftest.py files import `no_io` (an autouse fixture), so every test there runs with
socket connect/bind and process creation raising `IsolationError`. A test that needs the
network or a subprocess belongs in tests/contract or tests/e2e (or the existing top-level
modules), not in the fast tier.
"""
import os
import socket
import subprocess

import pytest


class IsolationError(AssertionError):
    """A fast-tier test tried to open a socket or start a process."""


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise IsolationError(f"{what} in a fast-tier test (tests/unit, tests/functional): "
                             "use the in-memory stand-ins (localcloud/memory.py) or move the test to tests/contract")
    return refuse


@pytest.fixture(autouse=True)
def no_io(monkeypatch):
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", _refuse("socket.create_connection"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("subprocess.Popen"))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve", "spawnv"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"os.{name}"))
    yield
