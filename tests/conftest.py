"""Shared fixtures: a LocalCloud on a free loopback port, and real SDK clients for it."""
import sys
from pathlib import Path

import pytest
from qcloud_cos import CosConfig, CosS3Client

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localcloud import LocalCloud  # noqa: E402

BUCKET = "videos-1250000000"
OTHER_BUCKET = "outputs-1250000000"
REGION = "ap-guangzhou"


def sdk_client(cloud: LocalCloud, retry: int = 0, **overrides) -> CosS3Client:
    """The real cos-python-sdk-v5 client pointed at `cloud` (overrides change CosConfig kwargs)."""
    return CosS3Client(CosConfig(**{**cloud.cos_config_kwargs(), **overrides}), retry=retry)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The CLI keeps small state (backfill checkpoints, the uploads scan) under XDG_CACHE_HOME: per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def cloud(tmp_path):
    """A started LocalCloud with two buckets, fast callback retries, stopped after the test."""
    instance = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET, OTHER_BUCKET], region=REGION,
                          secret_id="AKIDlocal", secret_key="localsecretkey", port=0,
                          callback_backoff=(0.05, 0.1, 0.2), callback_timeout=2.0)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def cos_client(cloud):
    return sdk_client(cloud)
