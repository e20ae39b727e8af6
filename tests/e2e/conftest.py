"""tests/e2e fixtures shared by several modules."""
import pytest

from .ci_support import Receiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
