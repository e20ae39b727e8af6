"""The local cloud's CI runner with an engine: jobs to Success or Failed, queue order by JobLevel,
jobs surviving a restart."""
import os
import threading
import time

from helpers import BUCKET, REGION, sdk_client
from localcloud import EngineError, LocalCloud
from shared.jobs import background_url
from .ci_support import create, job_dict


def copy_engine(job, request, input_path, background_path, output_path):
    """A real (trivial) engine: the output is the input, reversed, plus the background size."""
    with open(input_path, "rb") as fh:
        data = fh.read()[::-1]
    if background_path:
        data += str(os.path.getsize(background_path)).encode()
    with open(output_path, "wb") as fh:
        fh.write(data)
    return {"Format": {"Duration": "2.5", "Size": str(len(data)), "FormatName": "mp4", "NumStream": "1"},
            "Stream": {"Video": {"Width": "64", "Height": "36", "Fps": "25"}}}


def test_engine_runs_jobs_to_success(cloud, cos_client, receiver):
    cloud.set_engine(copy_engine)
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"abcdef")
    cos_client.put_object(Bucket=BUCKET, Key="bg/b.jpg", Body=b"1234")
    opts = {"Mode": "Combination", "BackgroundLogoUrl": background_url(BUCKET, REGION, "bg/b.jpg")}
    jobs = job_dict(key="input/v.mp4", out="matting/v.mp4", CallBack=receiver.url, CallBackFormat="XML")
    jobs["Operation"]["SegmentVideoBody"] = opts
    job_id = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=jobs)["JobsDetail"][0]["JobId"]
    assert cloud.wait_idle(5)
    assert cos_client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]["State"] == "Success"
    detail = cloud.get_job(BUCKET, job_id)
    assert detail.State == "Success" and detail.StartTime != "-" and detail.EndTime != "-"
    assert detail.Operation.MediaInfo.Format.Duration == 2.5
    assert detail.Operation.MediaResult.OutputFile.ObjectName == "matting/v.mp4"
    assert cos_client.get_object(Bucket=BUCKET, Key="matting/v.mp4")["Body"].get_raw_stream().read() == b"fedcba4"
    assert len(receiver.ok_bodies()) == 1


def test_engine_failures_missing_input_and_background(cloud, cos_client):
    def failing(job, request, input_path, background_path, output_path):
        raise EngineError("InputNotVideo", "cannot decode input")

    cloud.set_engine(failing)
    cos_client.put_object(Bucket=BUCKET, Key="input/v.mp4", Body=b"abc")
    failed = create(cos_client, key="input/v.mp4")["JobId"]
    missing = create(cos_client, key="input/missing.mp4")["JobId"]
    jobs = job_dict(key="input/v.mp4")
    jobs["Operation"]["SegmentVideoBody"] = {"Mode": "Combination",
                                             "BackgroundLogoUrl": background_url(BUCKET, REGION, "bg/none.jpg")}
    no_bg = cos_client.ci_create_media_jobs(Bucket=BUCKET, Jobs=jobs)["JobsDetail"][0]["JobId"]
    assert cloud.wait_idle(5)
    got = {j: cloud.get_job(BUCKET, j) for j in (failed, missing, no_bg)}
    assert (got[failed].State, got[failed].Code, got[failed].Message) == ("Failed", "InputNotVideo",
                                                                          "cannot decode input")
    assert got[missing].State == "Failed" and "input/missing.mp4" in got[missing].Message
    assert got[no_bg].State == "Failed" and "bg/none.jpg" in got[no_bg].Message


def test_job_level_orders_the_queue(tmp_path):
    order, gate = [], threading.Event()

    def engine(job, request, input_path, background_path, output_path):
        gate.wait(5)
        order.append(job.Operation.UserData)
        open(output_path, "wb").close()
        return {}

    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], job_workers=1) as cloud:
        client = sdk_client(cloud)
        client.put_object(Bucket=BUCKET, Key="input/test.mp4", Body=b"x")
        cloud.set_engine(engine)
        for name, level in [("first", 0), ("low", 0), ("high", 2), ("mid", 1), ("high2", 2)]:
            create(client, user_data=name, level=level)  # "first" runs at once and holds the only worker
        gate.set()
        assert cloud.wait_idle(5)
    assert order == ["first", "high", "high2", "mid", "low"]


def test_engine_installed_later_picks_up_submitted_jobs_by_level(tmp_path):
    order = []

    def engine(job, request, input_path, background_path, output_path):
        order.append(job.Operation.UserData)
        open(output_path, "wb").close()
        return {}

    with LocalCloud(str(tmp_path / "c"), buckets=[BUCKET], job_workers=1) as cloud:
        client = sdk_client(cloud)
        client.put_object(Bucket=BUCKET, Key="input/test.mp4", Body=b"x")
        for name, level in [("a", 0), ("b", 1), ("c", 0), ("d", 2)]:
            create(client, user_data=name, level=level)
        time.sleep(0.1)
        assert {j.State for j in cloud.list_jobs()} == {"Submitted"}  # no engine: jobs wait
        cloud.set_engine(engine)
        assert cloud.wait_idle(5)
    assert order == ["d", "b", "a", "c"]


def test_jobs_survive_restart(tmp_path):
    data = str(tmp_path / "c")
    with LocalCloud(data, buckets=[BUCKET]) as cloud:
        client = sdk_client(cloud)
        kept = create(client, user_data="cm:kept")["JobId"]
        done = create(client)["JobId"]
        cloud.set_job_state(BUCKET, done, "Success")
    with LocalCloud(data, buckets=[BUCKET]) as cloud:
        client = sdk_client(cloud)
        detail = client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=kept)["JobsDetail"][0]
        assert (detail["State"], detail["Operation"]["UserData"]) == ("Submitted", "cm:kept")
        assert client.ci_get_media_jobs(Bucket=BUCKET, JobIDs=done)["JobsDetail"][0]["State"] == "Success"
        new = create(client)["JobId"]
        listed = client.ci_list_media_jobs(Bucket=BUCKET, Tag="SegmentVideoBody", Size=10)["JobsDetail"]
        assert [j["JobId"] for j in listed] == [new, done, kept]
