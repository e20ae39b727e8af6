"""One contract, two implementations: every test here runs against the in-memory stand-in
(localcloud/memory.py) and against the HTTP local cloud through the real cos-python-sdk-v5.

A difference between the two is a bug in one of them: the fast tiers (tests/unit,
tests/functional) are only worth what this suite proves about the stand-in.
"""
from dataclasses import dataclass
from typing import Any, Callable, List

import pytest

from helpers import BUCKET, REGION
from localcloud import LocalCloud
from localcloud.memory import MemoryCloud
from shared.cloud import CI, Storage

OTHER_BUCKET = "outputs-1250000000"


def sdk_client(cloud: LocalCloud, retry: int):
    from qcloud_cos import CosConfig, CosS3Client

    return CosS3Client(CosConfig(**cloud.cos_config_kwargs()), retry=retry)


@dataclass
class Backend:
    name: str
    storage: Storage          # a client with retry=0: every injected fault is seen
    retrying: Storage         # retry=2, as shared.cloud.Clients builds the COS client
    ci: CI
    cloud: Any                # LocalCloud or MemoryCloud: the control surface they share
    upload: Callable[[str, str, bytes], str]

    def set_job_state(self, job_id: str, state: str, **kw: Any):
        return self.cloud.set_job_state(BUCKET, job_id, state, **kw)

    @property
    def callbacks(self) -> List[Any]:
        return list(self.cloud.callbacks)


@pytest.fixture(params=["memory", "localcloud"])
def backend(request, tmp_path):
    if request.param == "memory":
        cloud = MemoryCloud(buckets=(BUCKET, OTHER_BUCKET), region=REGION)
        yield Backend("memory", Storage(cloud.client(retry=0)), Storage(cloud.client(retry=2)),
                      CI(cloud.client(retry=0), BUCKET), cloud, cloud.upload)
        return
    cloud = LocalCloud(data_dir=str(tmp_path / "cloud"), buckets=[BUCKET, OTHER_BUCKET], region=REGION, port=0,
                       callback_retries=1, callback_backoff=(0.01,), callback_timeout=0.5)
    cloud.start()
    try:
        yield Backend("localcloud", Storage(sdk_client(cloud, retry=0)), Storage(sdk_client(cloud, retry=2)),
                      CI(sdk_client(cloud, retry=0), BUCKET), cloud,
                      lambda bucket, key, data: cloud.upload(bucket, key, data).etag)
    finally:
        cloud.stop()
