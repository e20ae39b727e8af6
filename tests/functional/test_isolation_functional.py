"""The functional tier is isolated too (tests/isolation.py), so the stand-ins are all it talks to."""
import socket
import subprocess
import sys

import pytest

from isolation import IsolationError


def test_functional_tier_has_no_sockets_or_processes():
    with pytest.raises(IsolationError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    with pytest.raises(IsolationError):
        subprocess.Popen([sys.executable, "-c", "pass"])
