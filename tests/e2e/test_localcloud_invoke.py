"""The local cloud's SCF `Invoke` through tencentcloud-sdk-python-scf: the 128 KB async / 6 MB sync
ClientContext limits (InvalidParameter.RequestTooLarge), InvocationType values, SCF's async retries
of a failing event, and the function's concurrency bounding how many run at once."""
import json

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.scf.v20180416 import models

from cli.remote import scf_client
from helpers import function_env
from .cli_support import BUCKET

LIMIT = 128 * 1024


@pytest.fixture
def scf(cloud):
    cloud.add_trigger(BUCKET, "functions/submit", function_env(cloud), prefix="input/", name="submit",
                      concurrency=1)
    return scf_client(function_env(cloud), "ap-guangzhou"), cloud


def invoke(client, body, kind="Event", name="submit"):
    request = models.InvokeRequest()
    request.FunctionName, request.InvocationType, request.ClientContext = name, kind, body
    return client.Invoke(request)


def padded(size):
    """A JSON event of exactly `size` bytes (UTF-8) that the submit handler refuses (no Records)."""
    base = json.dumps({"pad": ""})
    return json.dumps({"pad": "x" * (size - len(base))})


def test_async_payload_limit_is_128_kb(scf):
    client, cloud = scf
    assert invoke(client, padded(LIMIT)).Result.FunctionRequestId  # exactly 128 KB: accepted
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(client, padded(LIMIT + 1))
    assert err.value.get_code() == "InvalidParameter.RequestTooLarge" and "131073 bytes" in err.value.get_message()
    unicode_body = json.dumps({"pad": "视" * (LIMIT // 3)}, ensure_ascii=False)  # bytes, not characters, count
    assert len(unicode_body) < LIMIT < len(unicode_body.encode())
    with pytest.raises(TencentCloudSDKException, match="RequestTooLarge"):
        invoke(client, unicode_body)
    result = invoke(client, padded(LIMIT + 1), kind="RequestResponse").Result  # sync allows 6 MB
    assert result.InvokeResult == -1  # it ran (and the handler refused the event)
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(client, padded(6 * 1024 * 1024 + 1), kind="RequestResponse")
    assert err.value.get_code() == "InvalidParameter.RequestTooLarge"
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(client, "{}", kind="Later")
    assert err.value.get_code() == "InvalidParameterValue.InvokeType"
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(client, "{}", name="nosuch")
    assert err.value.get_code() == "ResourceNotFound.Function"


def test_failing_async_event_is_retried_twice(scf):
    client, cloud = scf
    invoke(client, json.dumps({"Records": []}))  # the handler rejects it: SCF retries the event
    assert cloud.wait_idle(30)
    attempts = [i for i in cloud.invocations if i.kind == "direct"]
    assert [i.attempt for i in attempts] == [1, 2, 3] and not any(i.ok for i in attempts)


def test_concurrency_bounds_how_many_run_at_once(scf):
    client, cloud = scf
    for _ in range(4):
        invoke(client, json.dumps({"Records": []}))
    assert cloud.wait_idle(60)
    runs = sorted((i.started, i.started + i.duration) for i in cloud.invocations if i.kind == "direct")
    assert len(runs) == 12  # 4 events x 3 attempts
    assert all(later[0] >= earlier[1] - 0.01 for earlier, later in zip(runs, runs[1:]))  # concurrency 1: in turn
