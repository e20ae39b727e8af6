"""tests/functional: the deployed code driven through the in-memory stand-ins
(localcloud/memory.py); no socket, no subprocess (see tests/isolation.py)."""
import pytest

from helpers import BUCKET, KEYS
from isolation import no_io  # noqa: F401 - an autouse fixture for this folder
from localcloud.memory import MemoryCloud
from shared.config import load_settings

OUT_BUCKET = "outputs-1250000000"
ENV = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": "ap-guangzhou", "COS_MATTING_TIMEOUT_SECONDS": "3",
       "TENCENTCLOUD_SECRETID": "AKIDmemory", "TENCENTCLOUD_SECRETKEY": "memorysecret",
       "COS_MATTING_CALLBACK_KEYS": KEYS}


@pytest.fixture
def memory_cloud():
    return MemoryCloud(buckets=(BUCKET, OUT_BUCKET))


class _SettingsOf:
    """settings_of(**extra): settings as a deployed function loads them from ENV plus `extra`."""

    env = ENV

    def __call__(self, **extra: str):
        return load_settings({**ENV, **extra})


@pytest.fixture
def settings_of():
    return _SettingsOf()
