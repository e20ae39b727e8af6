"""shared.cloud.CI over the real SDK: create, describe, list, cancel, and CI errors mapped clearly."""
import pytest

from helpers import BUCKET, clients_for, put, settings_for
from shared.cloud import CloudError
from shared.identity import Correlation
from shared.jobs import JobRequest


def request(key="input/a.mp4", **body):
    return JobRequest.model_validate({
        "Tag": "SegmentVideoBody", "Input": {"Object": key},
        "Operation": {"SegmentVideoBody": body, "UserData": "cm:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.1",
                      "Output": {"Region": "ap-guangzhou", "Bucket": BUCKET, "Object": "matting/a.mp4"}}})


@pytest.fixture
def ci(cloud):
    settings = settings_for(cloud)
    return clients_for(cloud, settings).ci


def test_create_describe_list_cancel(ci, cos_client):
    put(cos_client, "input/a.mp4")
    job = ci.create(request(Mode="Foreground", BackgroundGreen=200))
    assert job.State == "Submitted" and job.Operation.SegmentVideoBody.BackgroundGreen == 200
    assert ci.describe(job.JobId).JobId == job.JobId
    jobs, _ = ci.list()
    assert [j.JobId for j in jobs] == [job.JobId]
    assert ci.find(Correlation("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")).JobId == job.JobId and ci.find(Correlation("dddddddddddddddddddddddddddddddd")) is None
    ci.cancel(job.JobId)
    assert ci.describe(job.JobId).State == "Cancel"


def test_ci_errors_without_resource_are_mapped(ci):
    with pytest.raises(CloudError) as err:
        ci.describe("s" + "0" * 32)
    assert err.value.status in (400, 404) and err.value.code not in ("", "Unknown") and err.value.message
    assert not err.value.retryable


@pytest.mark.parametrize("status, retryable, unknown", [(429, True, False), (503, True, True), (400, False, False)])
def test_error_classes(cloud, ci, status, retryable, unknown):
    cloud.faults.add("ci.create", count=1, status=status)
    with pytest.raises(CloudError) as err:
        ci.create(request())
    assert (err.value.status, err.value.retryable, err.value.unknown_outcome) == (status, retryable, unknown)
    assert err.value.code != "Unknown"


def test_dropped_connection_is_an_unknown_outcome(cloud, ci):
    cloud.faults.add("ci.create", count=1, drop=True)
    with pytest.raises(CloudError) as err:
        ci.create(request())
    assert err.value.status == 0 and err.value.unknown_outcome
