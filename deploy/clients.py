"""Tencent Cloud API clients (tencentcloud-sdk-python) for the deploy tools and the CLI: the one place
that builds an SCF or CAM SDK client (`client`) and finds its credentials (`credential`).

`COS_MATTING_ENDPOINT` (the local cloud, e.g. http://127.0.0.1:9000) points every client
there: the SDK's `HttpProfile(protocol, endpoint)` replaces `<service>.tencentcloudapi.com`
and the request is still signed with TC3-HMAC-SHA256 for its service (the SDK's
`abstract_client.py`), which the local cloud verifies.

Credentials, first pair found wins: TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY
(/ TENCENTCLOUD_SESSIONTOKEN), what SCF gives a function; TENCENTCLOUD_SECRET_ID /
TENCENTCLOUD_SECRET_KEY, the names the SDK's `EnvironmentVariableCredential` reads
(tencentcloud/common/credential.py); TENCENT_SECRET_ID / TENCENT_SECRET_KEY (/ TENCENT_TOKEN),
the serverless framework's names used in .env; then the SDK's default chain
(~/.tencentcloud/credentials, a CVM role).

Throttled calls are retried by the SDK's own retryer (`ClientProfile(retryer=...)`,
tencentcloud/common/retry.py `StandardRetryer`), narrowed to throttling: the API answers
`RequestLimitExceeded` when a call is over its rate limit, and a delayed retry is what the
platform advises ("API 频率限制说明", cloud.tencent.com/document/product/1278/109059). A
refused call did nothing, so retrying a write is safe; a network error is not retried (a
write may have happened: the deploy re-reads and converges on its next run instead).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, Optional
from urllib.parse import urlsplit

ENDPOINT = "COS_MATTING_ENDPOINT"
PRODUCTS = {"scf": ("tencentcloud.scf.v20180416", "scf_client", "ScfClient"),
            "cam": ("tencentcloud.cam.v20190116", "cam_client", "CamClient"),
            "cls": ("tencentcloud.cls.v20201016", "cls_client", "ClsClient"),
            "monitor": ("tencentcloud.monitor.v20180724", "monitor_client", "MonitorClient")}


CREDENTIAL_NAMES = (("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"),
                    ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSIONTOKEN"),
                    ("TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_TOKEN"))
TIMEOUT = 120  # seconds per request
# The throttling codes StandardRetryer.should_retry lists (tencentcloud/common/retry.py).
THROTTLED = ("RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded",
             "RequestLimitExceeded.GlobalRegionUinLimitExceeded")
ATTEMPTS = 4  # the limits are per second: waits of about 1, 2 and 4 s cover a burst


class CredentialsError(ValueError):
    """No credentials in the environment or the SDK's default chain (the CLI answers it as a usage error)."""


class ApiCallError(RuntimeError):
    """A call the API refused: `code` is the API's error code (ResourceNotFound.Function, ...)."""

    def __init__(self, action: str, code: str, message: str) -> None:
        super().__init__(f"{action}: {code}: {message}")
        self.action, self.code, self.message = action, code, message


def credential(env: Mapping[str, str]) -> Any:
    from tencentcloud.common import credential as cred

    for sid, key, token in CREDENTIAL_NAMES:
        if env.get(sid) and env.get(key):
            return cred.Credential(env[sid], env[key], env.get(token) or None)
    try:
        return cred.DefaultCredentialProvider().get_credentials()
    except Exception as exc:  # the SDK raises its own exception type when nothing is found
        raise CredentialsError("no Tencent Cloud credentials: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (or "
                         f"TENCENT_SECRET_ID / TENCENT_SECRET_KEY in .env), or ~/.tencentcloud/credentials ({exc})") \
            from None


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): StandardRetryer.backoff's 2^n, with jitter
    so that parallel callers do not come back in the same second."""
    import random

    return 2 ** attempt * random.uniform(0.75, 1.0)


def retryer(attempts: int = ATTEMPTS, wait: Optional[Callable[[int], float]] = None) -> Any:
    """The SDK's StandardRetryer, retrying only throttled calls (THROTTLED), up to `attempts` in all.

    StandardRetryer.send_request (tencentcloud-sdk-python-common 3.1.195) never clears the error of
    a failed attempt, so when a retry succeeds it goes on retrying and raises the first error
    anyway; ours is the same loop with each attempt's error its own (tests/e2e/test_api_throttling.py).
    """
    import time

    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.retry import StandardRetryer

    class ThrottleRetryer(StandardRetryer):
        @staticmethod
        def should_retry(resp: Any, err: Any) -> bool:
            return err is not None and getattr(err, "code", None) in THROTTLED

        def send_request(self, fn: Callable[[], Any]) -> Any:
            for n in range(self._max_attempts):
                try:
                    return fn()
                except TencentCloudSDKException as err:
                    if not self.should_retry(None, err) or n == self._max_attempts - 1:
                        raise
                    sleep = self._backoff_fn(n)
                    self.on_retry(n, sleep, None, err)
                    time.sleep(sleep)

    return ThrottleRetryer(max_attempts=attempts, backoff_fn=wait or backoff)


def client(product: str, env: Mapping[str, str], region: str = "", cred: Any = None, timeout: int = TIMEOUT,
           retry: Any = None) -> Any:
    """An SDK client of `product` ("scf", "cam" or "monitor"), pointed at COS_MATTING_ENDPOINT when it is set;
    throttled calls are retried (`retry`: a retryer, default `retryer()`)."""
    import importlib

    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    package, module, cls = PRODUCTS[product]
    http = HttpProfile(reqTimeout=timeout)
    if env.get(ENDPOINT):
        url = urlsplit(env[ENDPOINT])
        http = HttpProfile(protocol=url.scheme, endpoint=url.netloc, reqTimeout=timeout)
    sdk = importlib.import_module(f"{package}.{module}")
    profile = ClientProfile(httpProfile=http, retryer=retry or retryer())
    return getattr(sdk, cls)(cred or credential(env), region, profile)


class Api:
    """Calls by action name with plain dicts, through the SDK's request models; every call is recorded."""

    def __init__(self, product: str, env: Mapping[str, str], region: str = "", sdk_client: Any = None) -> None:
        import importlib

        self.product = product
        self.models = importlib.import_module(f"{PRODUCTS[product][0]}.models")
        self._client = sdk_client
        self._env, self._region = dict(env), region
        self.sent: List[Dict[str, Any]] = []  # {"action", "params"} of every request, in order

    @property
    def sdk(self) -> Any:
        if self._client is None:
            self._client = client(self.product, self._env, self._region)
        return self._client

    def call(self, action: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        params = {k: v for k, v in params.items() if v is not None}
        self.sent.append({"action": action, "params": params})
        request = getattr(self.models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        try:
            response = getattr(self.sdk, action)(request)
        except TencentCloudSDKException as exc:
            raise ApiCallError(action, exc.get_code() or "ClientError", exc.get_message()) from None
        return json.loads(response.to_json_string())

    def get(self, action: str, params: Mapping[str, Any], missing: tuple = ()) -> Optional[Dict[str, Any]]:
        """A read that answers None when the error code says the thing does not exist."""
        try:
            return self.call(action, params)
        except ApiCallError as exc:
            if exc.code in missing:
                return None
            raise
