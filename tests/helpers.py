"""Shared test plumbing: settings and clients that point at a running LocalCloud."""
import time
from pathlib import Path
from typing import Dict

from shared.cloud import Clients
from shared.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent  # the repository: tests/helpers.py is one level down
BUCKET = "videos-1250000000"
OTHER_BUCKET = "outputs-1250000000"
REGION = "ap-guangzhou"
KEYS = "k" * 32


def sdk_client(cloud, retry: int = 0, **overrides):
    """The real cos-python-sdk-v5 client pointed at `cloud` (overrides change CosConfig kwargs)."""
    from qcloud_cos import CosConfig, CosS3Client

    return CosS3Client(CosConfig(**{**cloud.cos_config_kwargs(), **overrides}), retry=retry)


def function_env(cloud, **extra: str) -> Dict[str, str]:
    """The environment a deployed function would get, pointed at the local cloud."""
    kw = cloud.cos_config_kwargs()
    env = {
        "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
        "COS_MATTING_ENDPOINT": cloud.url, "COS_MATTING_TIMEOUT_SECONDS": "3",
        "TENCENTCLOUD_SECRETID": kw["SecretId"], "TENCENTCLOUD_SECRETKEY": kw["SecretKey"],
        "COS_MATTING_CALLBACK_KEYS": KEYS,
    }
    env.update(extra)
    return env


def settings_for(cloud, **extra: str) -> Settings:
    return load_settings(function_env(cloud, **extra))


def clients_for(cloud, settings: Settings) -> Clients:
    return Clients(settings, function_env(cloud))


def put(client, key: str, body: bytes = b"\x00\x00\x00\x18ftypmp42 fake video", **kw) -> str:
    """Upload like a user would; returns the ETag without quotes."""
    return client.put_object(Bucket=BUCKET, Key=key, Body=body, **kw)["ETag"].strip('"')


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
