"""COS contract of the local cloud, exercised with the real cos-python-sdk-v5 client."""
import hashlib
import threading

import pytest
import requests
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from helpers import BUCKET, OTHER_BUCKET, REGION, sdk_client
from localcloud import LocalCloud
from shared import xmlcodec

TRICKY_KEYS = ["input/plain.mp4", "input/with space.MP4", "input/plus+sign.mov", "input/100%.mp4",
               "input/中文 视频.mp4", "input/a/b/c/deep.mkv", "input/./dot.mp4"]


def error_of(call, *args, **kwargs) -> CosServiceError:
    with pytest.raises(CosServiceError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_put_get_head_delete_round_trip(cos_client, key):
    body = b"\x00\x00\x00\x18ftypmp42" + key.encode()
    put = cos_client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="video/mp4",
                                Metadata={"x-cos-meta-origin": "camera-1"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    head = cos_client.head_object(Bucket=BUCKET, Key=key)
    assert head["Content-Length"] == str(len(body))
    assert head["Content-Type"] == "video/mp4"
    assert head["ETag"] == put["ETag"]
    assert head["x-cos-meta-origin"] == "camera-1"
    assert head["x-cos-request-id"]
    assert cos_client.get_object(Bucket=BUCKET, Key=key)["Body"].get_raw_stream().read() == body
    listed = cos_client.list_objects(Bucket=BUCKET, Prefix=key)
    assert [c["Key"] for c in listed["Contents"]] == [key]
    cos_client.delete_object(Bucket=BUCKET, Key=key)
    assert error_of(cos_client.head_object, Bucket=BUCKET, Key=key).get_status_code() == 404
    err = error_of(cos_client.get_object, Bucket=BUCKET, Key=key)
    assert (err.get_status_code(), err.get_error_code()) == (404, "NoSuchKey")


def test_range_get(cos_client):
    cos_client.put_object(Bucket=BUCKET, Key="r.bin", Body=b"0123456789")
    part = cos_client.get_object(Bucket=BUCKET, Key="r.bin", Range="bytes=2-5")
    assert part["Content-Range"] == "bytes 2-5/10"
    assert part["Body"].get_raw_stream().read() == b"2345"
    tail = cos_client.get_object(Bucket=BUCKET, Key="r.bin", Range="bytes=-3")
    assert tail["Body"].get_raw_stream().read() == b"789"
    assert error_of(cos_client.get_object, Bucket=BUCKET, Key="r.bin", Range="bytes=20-").get_status_code() == 416


def test_list_pagination_and_delimiter(cos_client):
    keys = [f"input/{i:02d}.mp4" for i in range(7)] + ["input/sub/a.mp4", "input/sub/b.mp4", "other/x.mp4"]
    for key in keys:
        cos_client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    seen, marker, pages = [], "", 0
    while True:
        page = cos_client.list_objects(Bucket=BUCKET, Prefix="input/", Marker=marker, MaxKeys=3)
        pages += 1
        seen += [c["Key"] for c in page.get("Contents", [])]
        if page["IsTruncated"] == "false":
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert seen == sorted(k for k in keys if k.startswith("input/"))
    assert pages == 3
    grouped = cos_client.list_objects(Bucket=BUCKET, Prefix="input/", Delimiter="/", MaxKeys=100)
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["input/sub/"]
    assert len(grouped["Contents"]) == 7
    # a common prefix as NextMarker must not repeat on the next page
    first = cos_client.list_objects(Bucket=BUCKET, Delimiter="/", MaxKeys=1)
    assert first["IsTruncated"] == "true" and first["NextMarker"] == "input/"
    second = cos_client.list_objects(Bucket=BUCKET, Delimiter="/", Marker=first["NextMarker"], MaxKeys=10)
    assert [p["Prefix"] for p in second["CommonPrefixes"]] == ["other/"]


def test_copy_within_and_across_buckets(cos_client):
    cos_client.put_object(Bucket=BUCKET, Key="input/src file.mp4", Body=b"video", ContentType="video/mp4",
                          Metadata={"x-cos-meta-a": "1"})
    source = {"Bucket": BUCKET, "Key": "input/src file.mp4", "Region": REGION}
    cos_client.copy_object(Bucket=BUCKET, Key="copy/same.mp4", CopySource=source)
    head = cos_client.head_object(Bucket=BUCKET, Key="copy/same.mp4")
    assert (head["Content-Type"], head["x-cos-meta-a"]) == ("video/mp4", "1")
    cos_client.copy_object(Bucket=OTHER_BUCKET, Key="elsewhere.mp4", CopySource=source,
                           CopyStatus="Replaced", ContentType="application/x-test")
    assert cos_client.head_object(Bucket=OTHER_BUCKET, Key="elsewhere.mp4")["Content-Type"] == "application/x-test"
    assert cos_client.get_object(Bucket=OTHER_BUCKET, Key="elsewhere.mp4")["Body"].get_raw_stream().read() == b"video"
    missing = dict(source, Key="input/nope.mp4")
    assert error_of(cos_client.copy_object, Bucket=BUCKET, Key="x", CopySource=missing).get_status_code() == 404


def test_forbid_overwrite_gives_409_once(cos_client):
    kw = {"Bucket": BUCKET, "Key": "claims/one", "Metadata": {"x-cos-forbid-overwrite": "true"}}
    cos_client.put_object(Body=b"first", **kw)
    err = error_of(cos_client.put_object, Body=b"second", **kw)
    assert (err.get_status_code(), err.get_error_code()) == (409, "FileAlreadyExists")
    assert cos_client.get_object(Bucket=BUCKET, Key="claims/one")["Body"].get_raw_stream().read() == b"first"
    # the connection stays usable after the refused body
    assert cos_client.head_object(Bucket=BUCKET, Key="claims/one")["Content-Length"] == "5"


def test_forbid_overwrite_race_has_one_winner(cloud):
    results = []

    def claim(i):
        client = sdk_client(cloud)
        try:
            client.put_object(Bucket=BUCKET, Key="claims/race", Body=str(i).encode(),
                              Metadata={"x-cos-forbid-overwrite": "true"})
            results.append("won")
        except CosServiceError as exc:
            results.append(exc.get_status_code())

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == 1 and results.count(409) == 11


def test_a_get_racing_an_overwrite_answers_one_whole_version(cloud):
    """A GET answers one version's length and bytes together, as COS does, even while the object is
    overwritten with a longer body (an outbox entry rescheduled while reconcile reads it): the local
    cloud took the length from the index and read the file later, the other version's, cut short."""
    versions = {b"short", b"a much longer body " * 20}
    writer, reader = sdk_client(cloud), sdk_client(cloud, Timeout=5)  # a body cut short hangs the read
    writer.put_object(Bucket=BUCKET, Key="race/entry.json", Body=b"short")
    stop, seen = threading.Event(), []

    def overwrite():
        while not stop.is_set():
            for body in sorted(versions):
                writer.put_object(Bucket=BUCKET, Key="race/entry.json", Body=body)

    thread = threading.Thread(target=overwrite)
    thread.start()
    try:
        for _ in range(300):
            seen.append(reader.get_object(Bucket=BUCKET, Key="race/entry.json")["Body"].get_raw_stream().read())
    finally:
        stop.set()
        thread.join()
    assert set(seen) <= versions, {len(b) for b in seen}


def tagging(*pairs):
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in pairs]}}


def test_tagging_put_get_delete(cos_client):
    cos_client.put_object(Bucket=BUCKET, Key="t.mp4", Body=b"x")
    cos_client.put_object_tagging(Bucket=BUCKET, Key="t.mp4",
                                  Tagging=tagging(("cm-job", "s0123"), ("state", "Sub mitted+-=._:/")))
    tags = cos_client.get_object_tagging(Bucket=BUCKET, Key="t.mp4")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in tags} == {"cm-job": "s0123", "state": "Sub mitted+-=._:/"}
    cos_client.put_object_tagging(Bucket=BUCKET, Key="t.mp4", Tagging=tagging(("only", "one")))  # replaces the set
    tags = cos_client.get_object_tagging(Bucket=BUCKET, Key="t.mp4")["TagSet"]["Tag"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("only", "one")]
    assert cos_client.head_object(Bucket=BUCKET, Key="t.mp4")["x-cos-tagging-count"] == "1"
    cos_client.delete_object_tagging(Bucket=BUCKET, Key="t.mp4")
    assert not cos_client.get_object_tagging(Bucket=BUCKET, Key="t.mp4").get("TagSet")
    assert error_of(cos_client.get_object_tagging, Bucket=BUCKET, Key="missing").get_status_code() == 404


@pytest.mark.parametrize("pairs, code", [
    ([(f"k{i}", "v") for i in range(11)], "BadRequest"),
    ([("k" * 128, "v")], "InvalidTag"),
    ([("k", "v" * 256)], "InvalidTag"),
    ([("bad@char", "v")], "InvalidTag"),
    ([("k", "semi;colon")], "InvalidTag"),
    ([("", "v")], "InvalidTag"),
])
def test_tagging_limits(cos_client, pairs, code):
    cos_client.put_object(Bucket=BUCKET, Key="t.mp4", Body=b"x")
    err = error_of(cos_client.put_object_tagging, Bucket=BUCKET, Key="t.mp4", Tagging=tagging(*pairs))
    assert (err.get_status_code(), err.get_error_code()) == (400, code)


def test_tagging_at_the_limits_is_accepted(cos_client):
    cos_client.put_object(Bucket=BUCKET, Key="t.mp4", Body=b"x")
    pairs = [(f"{i}" + "k" * 126, "v" * 255) for i in range(10)]
    cos_client.put_object_tagging(Bucket=BUCKET, Key="t.mp4", Tagging=tagging(*pairs))
    assert len(cos_client.get_object_tagging(Bucket=BUCKET, Key="t.mp4")["TagSet"]["Tag"]) == 10


def test_wrong_credentials_are_refused(cloud):
    sdk_client(cloud).put_object(Bucket=BUCKET, Key="k", Body=b"x")
    err = error_of(sdk_client(cloud, SecretKey="not-the-key").get_object, Bucket=BUCKET, Key="k")
    assert (err.get_status_code(), err.get_error_code()) == (403, "SignatureDoesNotMatch")
    err = error_of(sdk_client(cloud, SecretId="AKIDother").put_object, Bucket=BUCKET, Key="k2", Body=b"x")
    assert (err.get_status_code(), err.get_error_code()) == (403, "InvalidAccessKeyId")
    assert error_of(sdk_client(cloud).head_object, Bucket=BUCKET, Key="k2").get_status_code() == 404


def test_temporary_credentials_token_is_accepted(cloud):
    client = sdk_client(cloud, Token="session-token")
    client.put_object(Bucket=BUCKET, Key="with-token", Body=b"x")
    assert client.head_object(Bucket=BUCKET, Key="with-token")["Content-Length"] == "1"


def test_tampered_request_is_refused(cloud):
    """A signature over one path must not authorise another."""
    client = sdk_client(cloud)
    host = f"{BUCKET}.cos.{REGION}.myqcloud.com"
    signed = client.get_auth(Method="GET", Bucket=BUCKET, Key="a.mp4", Headers={"Host": host})
    ok = requests.get(f"{cloud.url}/a.mp4", headers={"Host": host, "Authorization": signed})
    assert ok.status_code == 404  # signature fine, object missing
    bad = requests.get(f"{cloud.url}/b.mp4", headers={"Host": host, "Authorization": signed})
    assert bad.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in bad.content
    anonymous = requests.get(f"{cloud.url}/a.mp4", headers={"Host": host})
    assert anonymous.status_code == 403


def test_presigned_url_is_accepted_and_a_tampered_one_refused(cloud):
    """The SDK's presigned GET (cos_client.py get_presigned_url: the signature fields in the query, COS
    "请求签名" 436/7778), sent to the *.localhost alias a browser uses; another key or a changed
    signature is refused, as are its fields without the signature."""
    client = sdk_client(cloud)
    client.put_object(Bucket=BUCKET, Key="in/a b.mp4", Body=b"video bytes")
    url = client.get_presigned_url(Bucket=BUCKET, Key="in/a b.mp4", Method="GET", SignHost=False)
    query = url.split("?", 1)[1]
    alias = {"Host": f"{BUCKET}.cos.{REGION}.localhost:{cloud.port}"}
    ok = requests.get(f"{cloud.url}/in/a%20b.mp4?{query}", headers=alias)
    assert ok.status_code == 200 and ok.content == b"video bytes"
    client.put_object(Bucket=BUCKET, Key="in/other.mp4", Body=b"x")
    other = requests.get(f"{cloud.url}/in/other.mp4?{query}", headers=alias)
    assert other.status_code == 403 and b"SignatureDoesNotMatch" in other.content
    forged = query.replace("q-signature=", "q-signature=0")
    assert requests.get(f"{cloud.url}/in/a%20b.mp4?{forged}", headers=alias).status_code == 403
    unsigned = "&".join(p for p in query.split("&") if not p.startswith("q-signature="))
    assert requests.get(f"{cloud.url}/in/a%20b.mp4?{unsigned}", headers=alias).status_code == 403


def test_unknown_bucket_and_error_body_shape(cloud, cos_client):
    err = error_of(cos_client.put_object, Bucket="nope-1250000000", Key="k", Body=b"x")
    assert (err.get_status_code(), err.get_error_code()) == (404, "NoSuchBucket")
    root, body = xmlcodec.parse(err.get_origin_msg())
    assert root == "Error" and set(body) == {"Code", "Message", "Resource", "RequestId", "TraceId"}
    other_region = sdk_client(cloud, Region="ap-beijing")
    assert error_of(other_region.head_object, Bucket=BUCKET, Key="k").get_status_code() == 404


def test_objects_and_tags_survive_restart(tmp_path):
    data = str(tmp_path / "persist")
    with LocalCloud(data, buckets=[BUCKET]) as first:
        client = sdk_client(first)
        client.put_object(Bucket=BUCKET, Key="input/keep me.mp4", Body=b"kept", ContentType="video/mp4")
        client.put_object_tagging(Bucket=BUCKET, Key="input/keep me.mp4", Tagging=tagging(("a", "b")))
        client.put_object(Bucket=BUCKET, Key="gone", Body=b"x")
        client.delete_object(Bucket=BUCKET, Key="gone")
    with LocalCloud(data, buckets=[BUCKET]) as second:
        client = sdk_client(second)
        assert client.get_object(Bucket=BUCKET, Key="input/keep me.mp4")["Body"].get_raw_stream().read() == b"kept"
        assert client.head_object(Bucket=BUCKET, Key="input/keep me.mp4")["Content-Type"] == "video/mp4"
        assert client.get_object_tagging(Bucket=BUCKET, Key="input/keep me.mp4")["TagSet"]["Tag"] == [
            {"Key": "a", "Value": "b"}]
        assert [c["Key"] for c in client.list_objects(Bucket=BUCKET)["Contents"]] == ["input/keep me.mp4"]


def test_fault_status_slowdown_and_sdk_retry(cloud, cos_client):
    cloud.faults.add("cos.put", status=503)
    err = error_of(cos_client.put_object, Bucket=BUCKET, Key="f", Body=b"x")
    assert (err.get_status_code(), err.get_error_code()) == (503, "ServiceUnavailable")
    assert error_of(cos_client.head_object, Bucket=BUCKET, Key="f").get_status_code() == 404  # nothing stored
    cloud.faults.add("cos.put", status=429)
    err = error_of(cos_client.put_object, Bucket=BUCKET, Key="f", Body=b"x")
    assert (err.get_status_code(), err.get_error_code()) == (429, "SlowDown")
    cloud.faults.add("cos.put", status=500)
    sdk_client(cloud, retry=1).put_object(Bucket=BUCKET, Key="f", Body=b"x")  # the SDK retries a 5xx
    assert cloud.faults.injected["cos.put"] == 3


def test_fault_drop_and_delay(cloud, cos_client):
    cloud.faults.add("cos.get", drop=True)
    cos_client.put_object(Bucket=BUCKET, Key="d", Body=b"x")
    with pytest.raises(CosClientError):
        cos_client.get_object(Bucket=BUCKET, Key="d")
    cloud.faults.add("cos.head", delay=1.0)
    with pytest.raises(CosClientError):  # the SDK times out
        sdk_client(cloud, Timeout=0.3).head_object(Bucket=BUCKET, Key="d")
    # after=True: the write happens, the answer is lost
    cloud.faults.add("cos.put", drop=True, after=True)
    with pytest.raises(CosClientError):
        cos_client.put_object(Bucket=BUCKET, Key="after", Body=b"stored anyway")
    assert cos_client.get_object(Bucket=BUCKET, Key="after")["Body"].get_raw_stream().read() == b"stored anyway"
    assert cloud.faults.total() == 3


def test_random_faults_are_reproducible(cloud):
    def run(seed):
        cloud.faults.clear()
        cloud.faults.random(0.5, seed=seed, routes=["cos.head"], kinds=["status"])
        client = sdk_client(cloud)
        outcome = []
        for _ in range(20):
            try:
                client.head_object(Bucket=BUCKET, Key="x")
            except CosServiceError as exc:
                outcome.append(exc.get_status_code())
        return outcome

    first, second = run(7), run(7)
    assert first == second and 503 in first and 404 in first


def test_restart_on_the_same_port_cuts_pooled_connections(tmp_path):
    data = str(tmp_path / "same-port")
    first = LocalCloud(data, buckets=[BUCKET]).start()
    port = first.port
    client = sdk_client(first, retry=1)  # keeps a pooled keep-alive connection
    client.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    first.stop()
    with pytest.raises(CosClientError):
        sdk_client(first).head_object(Bucket=BUCKET, Key="a")  # nobody listens now
    with LocalCloud(data, buckets=[BUCKET], port=port) as second:
        second.add_bucket("late-1250000000")  # only the new instance knows this bucket
        client.put_object(Bucket="late-1250000000", Key="b", Body=b"2")  # same client, old pool
        assert second.bucket("late-1250000000").read("b") == b"2"


def test_torn_journal_line_after_a_crash_is_ignored(tmp_path):
    data = str(tmp_path / "crash")
    with LocalCloud(data, buckets=[BUCKET]) as first:
        sdk_client(first).put_object(Bucket=BUCKET, Key="safe", Body=b"ok")
    with open(f"{data}/cos/{BUCKET}/objects.jsonl", "a") as fh:
        fh.write('{"op": "put", "meta": {"key": "torn"')  # the process died mid-write
    with LocalCloud(data, buckets=[BUCKET]) as second:
        client = sdk_client(second)
        assert [c["Key"] for c in client.list_objects(Bucket=BUCKET)["Contents"]] == ["safe"]
        client.put_object(Bucket=BUCKET, Key="after", Body=b"x")  # the journal is usable again
    with LocalCloud(data, buckets=[BUCKET]) as third:
        assert sorted(third.bucket(BUCKET).objects) == ["after", "safe"]
