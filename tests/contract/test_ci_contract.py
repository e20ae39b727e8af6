"""The Cloud Infinite job contract of shared.cloud.CI, on the stand-in and on the local cloud
via the SDK, as the local cloud implements it.

Sources: SegmentVideoBody job create/describe/list/cancel
(https://cloud.tencent.com/document/product/460/83973, 460/84790 DescribeMediaJob,
460/84766 DescribeMediaJobs, 460/84793 CancelMediaJob); the SDK calls are
`ci_create_media_jobs`, `ci_get_media_jobs`, `ci_list_media_jobs`, `ci_cancel_jobs` in
qcloud_cos/cos_client.py. Callback body: the TaskFinish notification
(https://cloud.tencent.com/document/product/460/84795).
"""
import time

import pytest

from helpers import BUCKET, REGION
from localcloud.ci import ci_time, parse_ci_time
from shared.callback import job_ids
from shared.cloud import CloudError
from shared.identity import Correlation
from shared.jobs import JobRequest

OUT = "outputs-1250000000"


def request(n: int = 0, user_data: str = "", callback: str = "", fmt: str = "XML", **body) -> JobRequest:
    return JobRequest.model_validate({
        "Tag": "SegmentVideoBody", "Input": {"Object": f"input/clip-{n}.mp4"},
        "Operation": {"SegmentVideoBody": body,
                      "Output": {"Region": REGION, "Bucket": OUT, "Object": f"matting/clip-{n}.mask.mp4"},
                      "UserData": user_data or f"cm:{n:032x}"},
        "CallBack": callback or None, "CallBackFormat": fmt,
    }, context={"bucket": BUCKET})


def test_create_then_describe(backend):
    job = backend.ci.create(request(1, Mode="Foreground", SegmentType="GreenScreenSeg"))
    assert job.JobId.startswith("s") and job.State == "Submitted" and not job.terminal
    assert abs(parse_ci_time(job.CreationTime) - time.time()) < 60 and job.EndTime == "-"
    assert job.Input.Object == "input/clip-1.mp4" and job.Input.BucketId == BUCKET
    assert job.user_data == f"cm:{1:032x}"
    assert job.Operation.Output.Object == "matting/clip-1.mask.mp4"
    assert job.Operation.SegmentVideoBody.SegmentType == "GreenScreenSeg"
    assert backend.ci.describe(job.JobId) == job


def test_describe_of_an_unknown_job(backend):
    with pytest.raises(CloudError) as err:
        backend.ci.describe("s" + "0" * 32)
    # CI answers 200 and names the id in <NonExistJobIds>; CI.describe makes that a 404
    assert (err.value.operation, err.value.status, err.value.code) == ("ci.get", 404, "NoSuchJob")


def test_create_refuses_a_background_outside_the_source_bucket(backend):
    url = f"https://{OUT}.cos.{REGION}.myqcloud.com/bg.png"
    bad = JobRequest.model_validate({
        "Tag": "SegmentVideoBody", "Input": {"Object": "input/a.mp4"},
        "Operation": {"SegmentVideoBody": {"Mode": "Combination", "BackgroundLogoUrl": url},
                      "Output": {"Region": REGION, "Bucket": OUT, "Object": "o.mp4"}}})  # no bucket context here
    with pytest.raises(CloudError) as err:
        backend.ci.create(bad)
    assert (err.value.operation, err.value.status, err.value.code) == ("ci.create", 400, "InvalidArgument")
    assert "BackgroundLogoUrl" in err.value.message and not err.value.retryable
    assert backend.ci.list()[0] == []


def test_list_is_newest_first_and_pages_with_tokens(backend):
    made = [backend.ci.create(request(n)).JobId for n in range(5)]
    pages, token = [], ""
    while True:
        page, token = backend.ci.list(size=2, next_token=token)
        pages.append([j.JobId for j in page])
        if not token:
            break
    assert pages == [made[4:2:-1], made[2:0:-1], made[:1]]
    with pytest.raises(CloudError) as err:
        backend.ci.list(next_token="not-a-token")
    assert (err.value.status, err.value.code) == (400, "InvalidArgument")
    with pytest.raises(CloudError) as err:
        backend.ci.list(size=0)
    assert (err.value.status, err.value.code) == (400, "InvalidArgument")


def test_list_filters_by_state_and_creation_time(backend):
    first, second = (backend.ci.create(request(n)).JobId for n in range(2))
    backend.ci.cancel(first)
    assert [j.JobId for j in backend.ci.list(states="Cancel")[0]] == [first]
    assert [j.JobId for j in backend.ci.list(states="Submitted,Running")[0]] == [second]
    assert len(backend.ci.list(start=ci_time(time.time() - 3600))[0]) == 2
    assert backend.ci.list(start=ci_time(time.time() + 3600))[0] == []
    assert len(backend.ci.list(start=time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() - 60)))[0]) == 2
    with pytest.raises(CloudError) as err:
        backend.ci.list(start="yesterday")
    assert (err.value.status, err.value.code) == (400, "InvalidArgument")


def test_cancel_only_before_the_job_starts(backend):
    """Only jobs not yet run can be cancelled (https://cloud.tencent.com/document/api/1246/109264)."""
    job = backend.ci.create(request(1))
    backend.ci.cancel(job.JobId)
    cancelled = backend.ci.describe(job.JobId)
    assert cancelled.State == "Cancel" and cancelled.terminal and cancelled.EndTime != "-"
    for job_id, status, code in ((job.JobId, 400, "InvalidArgument"), ("s" + "1" * 32, 404, "InvalidJobId")):
        with pytest.raises(CloudError) as err:
            backend.ci.cancel(job_id)
        assert (err.value.operation, err.value.status, err.value.code) == ("ci.cancel", status, code)
    paused = backend.ci.create(request(2)).JobId
    backend.set_job_state(paused, "Pause")
    backend.ci.cancel(paused)
    assert backend.ci.describe(paused).State == "Cancel"
    for n, state in ((3, "Running"), (4, "Success")):
        started = backend.ci.create(request(n)).JobId
        backend.set_job_state(started, state)
        with pytest.raises(CloudError) as err:
            backend.ci.cancel(started)
        assert (err.value.status, err.value.code) == (400, "InvalidArgument")
        assert backend.ci.describe(started).State == state


def test_find_by_correlation(backend):
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    backend.ci.create(request(1, user_data=f"cm:{a}.1@dep-1"))
    theirs = backend.ci.create(request(2, user_data=f"cm:{b}.1@dep-2")).JobId
    mine = backend.ci.create(request(2, user_data=f"cm:{b}.1@dep-1|the user's own data")).JobId
    old = backend.ci.create(request(3, user_data=f"cm:{c}")).JobId  # the previous release's spelling
    assert theirs != mine and backend.ci.find(Correlation(b, 1, "dep-1")).JobId == mine
    assert backend.ci.find(Correlation(b, 1, "dep-2")).JobId == theirs  # each deployment finds its own
    assert backend.ci.find(Correlation(b, 2, "dep-1")) is None  # another attempt
    assert backend.ci.find(Correlation(c, 1, "dep-1")).JobId == old  # no deployment named: the record decides
    assert backend.ci.find(Correlation(b, 1, "dep-1"), start=ci_time(time.time() + 3600)) is None
    assert backend.ci.find(Correlation(b, 1, "dep-1"), input_object="input/clip-2.mp4").JobId == mine
    assert backend.ci.find(Correlation(b, 1, "dep-1"), input_object="input/clip-1.mp4") is None


def test_the_ai_queue_is_the_queue_jobs_go_to(backend):
    queue = backend.ci.ai_queue()
    assert queue and backend.ci.create(request(1)).QueueId == queue


def test_success_failure_and_their_callbacks(backend):
    ok = backend.ci.create(request(1, callback="http://127.0.0.1:9/cb?rid=r1", fmt="JSON")).JobId
    bad = backend.ci.create(request(2, callback="http://127.0.0.1:9/cb?rid=r2")).JobId
    quiet = backend.ci.create(request(3)).JobId
    backend.set_job_state(ok, "Running")
    assert backend.callbacks == []  # only the end of a job is called back
    backend.set_job_state(ok, "Success")
    backend.set_job_state(bad, "Failed", code="InvalidInput", message="not a video")
    backend.set_job_state(quiet, "Success")
    done = backend.ci.describe(ok)
    assert done.State == "Success" and done.StartTime != "-" and done.EndTime != "-"
    assert done.Operation.MediaResult.OutputFile.ObjectName == "matting/clip-1.mask.mp4"
    assert done.Operation.MediaInfo.Stream.Video.Width
    assert backend.storage.head(OUT, "matting/clip-1.mask.mp4") is not None  # the output exists
    failed = backend.ci.describe(bad)
    assert (failed.State, failed.Code, failed.Message) == ("Failed", "InvalidInput", "not a video")
    calls = {c.job_id: c for c in backend.callbacks}
    assert set(calls) == {ok, bad}  # a job without CallBack is not called back
    assert (calls[ok].url, calls[ok].state, calls[ok].fmt) == ("http://127.0.0.1:9/cb?rid=r1", "Success", "JSON")
    assert calls[bad].fmt == "XML" and calls[bad].body.lstrip().startswith(b"<")
    assert job_ids(calls[ok].body) == [ok] and job_ids(calls[bad].body) == [bad]
    with pytest.raises(ValueError):
        backend.set_job_state(ok, "Failed")  # finished jobs stay finished


def test_lost_answer_to_create_leaves_a_findable_job(backend):
    """What submit's retry relies on: after an unknown outcome the job can be looked up."""
    backend.cloud.faults.add("ci.create", drop=True, after=True)
    with pytest.raises(CloudError) as err:
        backend.ci.create(request(7, user_data="cm:11111111111111111111111111111111.1"))
    assert err.value.status == 0 and err.value.unknown_outcome
    assert backend.ci.find(Correlation("11111111111111111111111111111111")).State == "Submitted"


def test_throttling_is_retryable(backend):
    backend.cloud.faults.add("ci.create", status=429)
    with pytest.raises(CloudError) as err:
        backend.ci.create(request(1))
    assert (err.value.status, err.value.code) == (429, "TooManyRequests") and err.value.retryable
    assert not err.value.unknown_outcome and backend.ci.list()[0] == []


def test_lookup_pages_through_the_queue(backend):
    """The job searched for is older than the first page of 100 (newest first)."""
    backend.ci.create(request(0, user_data="cm:00000000000000000000000000000000.1"))
    for n in range(1, 105):  # in-process, as a busy bucket would have them
        backend.cloud.jobs.create(BUCKET, request(n))
    assert backend.ci.find(Correlation("00000000000000000000000000000000")).Input.Object == "input/clip-0.mp4"
    assert backend.ci.find(Correlation("ffffffffffffffffffffffffffffffff")) is None
