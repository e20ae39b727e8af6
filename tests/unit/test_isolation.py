"""The fast tier really is isolated: these calls must fail here (tests/isolation.py)."""
import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from isolation import IsolationError


def test_no_socket_connect():
    with pytest.raises(IsolationError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    with socket.socket() as sock, pytest.raises(IsolationError):
        sock.connect(("127.0.0.1", 9))


def test_no_server_socket():
    with socket.socket() as sock, pytest.raises(IsolationError):
        sock.bind(("127.0.0.1", 0))


def test_no_http_through_the_stdlib_or_the_cos_sdk():
    with pytest.raises(IsolationError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=0.1)
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_exception import CosClientError

    client = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId="a", SecretKey="b", IP="127.0.0.1", Port=9,
                                   Scheme="http"), retry=0)
    with pytest.raises((IsolationError, CosClientError), match="fast-tier"):  # the SDK wraps what it catches
        client.head_object(Bucket="videos-1250000000", Key="a")


def test_no_subprocess():
    with pytest.raises(IsolationError):
        subprocess.run([sys.executable, "-c", "pass"])
    with pytest.raises(IsolationError):
        os.system("true")


def test_both_fast_tiers_install_the_guard():
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for tier in (here, here.parent / "functional"):
        text = (tier / "conftest.py").read_text()
        assert "from isolation import no_io" in text, f"{tier.name}/conftest.py must import the no_io guard"
