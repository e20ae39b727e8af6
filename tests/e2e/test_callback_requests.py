"""What one Success callback costs, counted by the local cloud (benchmarks/requests_per_video.py
prints the figures): the source is HEADed twice, the published name's tags are read once (the copy
writes them), and the source's tags are read a second time only when the first read did not show
submit's own tag write (the race `Lifecycle.settle_source_tags` fixes)."""
import time
from collections import Counter

from helpers import BUCKET, KEYS, REGION, clients_for, put, settings_for
from shared import tags, tokens
from shared.callback import handle
from shared.events import Upload
from shared.submit import Submitter


def submit_and_finish(cloud, cos_client, key):
    # CI calls back to a loopback port nothing listens on: the callback is handled here instead
    settings = settings_for(cloud, COS_MATTING_CALLBACK_URL="http://127.0.0.1:9/cb")
    clients = clients_for(cloud, settings)
    body = b"\x00\x00\x00\x18ftypmp42 " + key.encode()
    etag = put(cos_client, key, body)
    out = Submitter(settings, clients, sleep=lambda s: None).process(
        Upload(bucket=BUCKET, appid="1250000000", region=REGION, key=key, etag=etag, size=len(body),
               event_name="cos:ObjectCreated:Put"))
    assert out.outcome == "submitted"
    cloud.set_job_state(BUCKET, out.job_id, "Success")
    query = tokens.callback_query([KEYS], out.record_id, 3600, time.time())
    callback = f'{{"EventName": "TaskFinish", "JobsDetail": [{{"JobId": "{out.job_id}"}}]}}'.encode()
    return lambda: handle(settings, clients, query, callback), out


def answer_record(cloud, out):
    from helpers import settings_for
    from shared.records import RecordStore

    settings = settings_for(cloud)
    return RecordStore.of(settings, clients_for(cloud, settings).storage).load(out.record_id)[0]


def counted(cloud, fn):
    before = Counter(cloud.requests)
    result = fn()
    return result, Counter(cloud.requests) - before


def test_a_success_callback_heads_the_source_twice_and_reads_its_tags_once(cloud, cos_client):
    callback, out = submit_and_finish(cloud, cos_client, "input/cost.mp4")
    (status, answer), used = counted(cloud, callback)
    assert status == 200 and answer["results"][0]["state"] == "Success"
    # source: publish's HEAD before and after its copy (the tagging reuses the second); tags: the published
    # name before its copy (the user's tags it keeps), the source once; no write but the source's tags
    assert (used["cos.head"], used["cos.tagging.get"], used["ci.get"]) == (2, 2, 1)
    assert (used["cos.tagging.put"], used["cos.copy"], used["cos.list"], used["cos.delete"]) == (1, 1, 1, 0)
    staged = answer_record(cloud, out).output
    published = cos_client.get_object_tagging(Bucket=BUCKET, Key=staged["key"])["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in published}[tags.JOB] == out.job_id  # written with the copy
    got = cos_client.get_object_tagging(Bucket=BUCKET, Key="input/cost.mp4")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in got}[tags.STATE] == "Success"


def test_without_submits_tag_seen_the_callback_reads_the_source_again_after_its_final_stage(cloud, cos_client):
    callback, out = submit_and_finish(cloud, cos_client, "input/late.mp4")
    cos_client.delete_object_tagging(Bucket=BUCKET, Key="input/late.mp4")  # as if submit's tag write were still on its way
    (status, _), used = counted(cloud, callback)
    assert status == 200 and used["cos.tagging.get"] == 3
    got = cos_client.get_object_tagging(Bucket=BUCKET, Key="input/late.mp4")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in got}[tags.STATE] == "Success"
