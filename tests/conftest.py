"""Shared fixtures: a LocalCloud on a free loopback port, and real SDK clients for it."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers import BUCKET, OTHER_BUCKET, REGION, sdk_client  # noqa: E402
from localcloud import LocalCloud  # noqa: E402


def pytest_sessionstart(session):
    """Under pytest-xdist, in the controller before any worker starts (xdist's own hook runs last):
    fill the layer's wheel cache (.cache/wheels) once. Several workers build the layer, and two
    `pip download`s into one folder at once could leave a half-written wheel for the other to read."""
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    from deploy import package

    try:
        package.fetch_wheels(package.read_lock(), package.DEFAULT_CACHE, log=lambda m: None)
        package.fetch_crcmod(package.DEFAULT_CACHE, log=lambda m: None)
    except package.PackageError:
        pass  # offline with no cache: the tests that need the wheels skip or fail, each with pip's reason


def pytest_collection_modifyitems(config, items):
    """Modules holding a `slow` test run first, each module's tests kept together and in order.
    Under `make test` (--dist loadfile --no-loadscope-reorder) the long modules start at once
    instead of trailing alone at the end; xdist's default order puts the 1-test modules last."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The CLI keeps small state (backfill checkpoints, the uploads scan) under XDG_CACHE_HOME: per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def cloud(tmp_path):
    """A started LocalCloud with two buckets, fast callback retries, stopped after the test.
    CI waits 30 s for a callback's answer: the first one a Function URL gets is a cold start, which
    took 2.4-3.5 s under load (the 2.0 s this waited timed out; the retry met a second cold worker and
    only the third of three tries got through). No test here needs a callback receiver that hangs."""
    instance = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET, OTHER_BUCKET], region=REGION,
                          secret_id="AKIDlocal", secret_key="localsecretkey", port=0,
                          callback_backoff=(0.05, 0.1, 0.2), callback_timeout=30.0)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def cos_client(cloud):
    return sdk_client(cloud)
