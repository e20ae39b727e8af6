"""Throttled SCF and CAM calls are retried by the Tencent SDK's own retryer (deploy/clients.py), through
the real SDK against the local cloud's API 3.0 front, which answers RequestLimitExceeded on request
(localcloud/faults.py routes "api.scf" / "api.cam")."""
import json

import pytest

from deploy.clients import ATTEMPTS, Api, ApiCallError, backoff, client, retryer
from helpers import REGION

TRUST = json.dumps({"version": "2.0", "statement": [{"effect": "allow", "action": ["name/sts:AssumeRole"],
                                                     "principal": {"service": ["scf.qcloud.com"]}}]})


def env(cloud):
    return {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
            "TENCENTCLOUD_SECRETKEY": "localsecretkey"}


def calls(cloud, action):
    return [c.error for c in cloud.api.calls if c.action == action]


def test_a_throttled_scf_read_and_cam_write_are_retried_with_the_default_client(cloud):
    cloud.faults.add("api.scf", status=429)
    assert Api("scf", env(cloud), REGION).call("ListFunctions", {})["TotalCount"] == 0
    assert calls(cloud, "ListFunctions") == ["RequestLimitExceeded", ""]  # refused once, then answered
    cloud.faults.add("api.cam", code="RequestLimitExceeded.UinLimitExceeded")
    cam = Api("cam", env(cloud))
    role = cam.call("CreateRole", {"RoleName": "throttled-role", "PolicyDocument": TRUST})
    assert calls(cloud, "CreateRole") == ["RequestLimitExceeded.UinLimitExceeded", ""]
    assert cam.call("GetRole", {"RoleName": "throttled-role"})["RoleInfo"]["RoleId"] == role["RoleId"]
    assert cloud.faults.injected["api.scf"] == 1 and cloud.faults.injected["api.cam"] == 1


def test_throttling_that_lasts_ends_in_the_apis_code_after_the_attempts(cloud):
    cloud.faults.add("api.scf", status=429, count=10)
    sdk = client("scf", env(cloud), REGION, retry=retryer(attempts=3, wait=lambda n: 0.0))
    with pytest.raises(ApiCallError) as failed:
        Api("scf", env(cloud), REGION, sdk_client=sdk).call("ListFunctions", {})
    assert failed.value.code == "RequestLimitExceeded" and "frequency limit" in failed.value.message
    assert calls(cloud, "ListFunctions") == ["RequestLimitExceeded"] * 3


def test_other_errors_are_answered_at_once(cloud):
    scf = Api("scf", env(cloud), REGION)
    with pytest.raises(ApiCallError) as missing:
        scf.call("GetFunction", {"FunctionName": "nope"})
    assert missing.value.code == "ResourceNotFound.Function" and calls(cloud, "GetFunction") == ["ResourceNotFound.Function"]
    cloud.faults.add("api.scf", status=500)  # a server error may have done the work: not retried
    with pytest.raises(ApiCallError) as broken:
        scf.call("ListFunctions", {})
    assert broken.value.code == "InternalError" and calls(cloud, "ListFunctions") == ["InternalError"]


def test_the_waits_double_with_jitter_and_none_follows_the_last_attempt(cloud):
    for _ in range(50):
        waits = [backoff(n) for n in range(ATTEMPTS)]
        assert all(0.75 * 2 ** n <= w <= 2 ** n for n, w in enumerate(waits)), waits
    waited = []
    cloud.faults.add("api.cam", status=429, count=10)
    sdk = client("cam", env(cloud), retry=retryer(attempts=3, wait=lambda n: waited.append(n) or 0.0))
    with pytest.raises(ApiCallError):
        Api("cam", env(cloud), sdk_client=sdk).call("GetUserAppId", {})
    assert waited == [0, 1] and calls(cloud, "GetUserAppId") == ["RequestLimitExceeded"] * 3
