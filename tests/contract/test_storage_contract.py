"""The COS contract of shared.cloud.Storage, on the stand-in and on the local cloud via the SDK.

Sources: PUT Object with x-cos-forbid-overwrite answers 409 FileAlreadyExists
(https://cloud.tencent.com/document/product/436/7749); GET Bucket v1 pages with marker /
max-keys / NextMarker (https://cloud.tencent.com/document/product/436/7734); object tagging
limits (https://cloud.tencent.com/document/product/436/42997); keys up to 850 bytes
(https://cloud.tencent.com/document/product/436/13324).
"""
import hashlib

import pytest

from helpers import BUCKET, REGION
from shared.cloud import CloudError
from shared.records import age_seconds

OTHER_BUCKET = "outputs-1250000000"


def test_create_only_write_never_overwrites(backend):
    s = backend.storage
    assert s.put_json(BUCKET, "records/r/0-claim-1.json", b'{"n": 1}', create_only=True) is True
    assert s.put_json(BUCKET, "records/r/0-claim-1.json", b'{"n": 2}', create_only=True) is False
    assert s.get(BUCKET, "records/r/0-claim-1.json") == b'{"n": 1}'
    assert s.put_json(BUCKET, "records/r/0-claim-1.json", b'{"n": 3}') is True  # a plain write overwrites
    assert s.get(BUCKET, "records/r/0-claim-1.json") == b'{"n": 3}'


def test_missing_objects_and_buckets_read_as_none(backend):
    s = backend.storage
    assert s.get(BUCKET, "nope.json") is None
    assert s.open(BUCKET, "nope.json") is None
    assert s.head(BUCKET, "nope.json") is None
    assert s.get("missing-1250000000", "a.json") is None  # Storage reads any 404 as "not there"


def test_head_and_open_describe_the_uploaded_bytes(backend):
    body = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    etag = backend.upload(BUCKET, "input/a.mp4", body)
    assert etag == hashlib.md5(body).hexdigest()
    head = backend.storage.head(BUCKET, "input/a.mp4")
    assert head["ETag"] == f'"{etag}"' and int(head["Content-Length"]) == len(body)
    assert 0 <= age_seconds(head["Last-Modified"]) < 60
    stream = backend.storage.open(BUCKET, "input/a.mp4")
    assert stream.read(10) + stream.read() == body


def test_list_pages_in_key_order_with_markers(backend):
    keys = [f"input/k{i:02d}.mp4" for i in (5, 1, 3, 0, 6, 2, 4)]
    for key in keys:
        backend.upload(BUCKET, key, key.encode())
    backend.upload(BUCKET, "other/x.mp4", b"x")
    pages, marker = [], ""
    while True:
        page, marker = backend.storage.list(BUCKET, "input/", marker, max_keys=3)
        pages.append([o["Key"] for o in page])
        if not marker:
            break
    assert pages == [sorted(keys)[:3], sorted(keys)[3:6], sorted(keys)[6:]]
    first = backend.storage.list(BUCKET, "input/k00", "", 10)[0][0]
    assert first["ETag"] == f'"{hashlib.md5(b"input/k00.mp4").hexdigest()}"' and int(first["Size"]) == 13
    assert 0 <= age_seconds(first["LastModified"]) < 60
    assert [o["Key"] for o in backend.storage.list_all(BUCKET, "input/")] == sorted(keys)
    assert backend.storage.list(BUCKET, "input/k03.mp4", "input/k03.mp4") == ([], "")
    assert backend.storage.list(BUCKET, "nothing/") == ([], "")


def test_list_of_a_missing_bucket_is_an_error(backend):
    with pytest.raises(CloudError) as err:
        backend.storage.list("missing-1250000000", "")
    assert (err.value.operation, err.value.status, err.value.code) == ("cos.list", 404, "NoSuchBucket")


def test_tags_round_trip_and_missing_objects(backend):
    s = backend.storage
    backend.upload(BUCKET, "input/t.mp4", b"t")
    assert s.get_tags(BUCKET, "input/t.mp4") == {}
    tags = {"owner": "ana", "cos-matting:job": "s123", "cos-matting:state": "Submitted"}
    s.put_tags(BUCKET, "input/t.mp4", tags)
    assert s.get_tags(BUCKET, "input/t.mp4") == tags
    assert s.get_tags(BUCKET, "input/gone.mp4") is None
    with pytest.raises(CloudError) as err:
        s.put_tags(BUCKET, "input/gone.mp4", {"a": "b"})
    assert (err.value.operation, err.value.status, err.value.code) == ("cos.tagging.put", 404, "NoSuchKey")


@pytest.mark.parametrize("tags, code", [
    ({f"k{i}": "v" for i in range(11)}, "BadRequest"),   # at most 10 per object
    ({"a": ""}, "InvalidTag"),                           # values are 1-255 characters
    ({"a@b": "c"}, "InvalidTag"),                        # outside letters, digits, space and + - = . _ : /
    ({"k" * 128: "v"}, "InvalidTag"),                    # keys under 128 bytes
])
def test_tags_cos_refuses(backend, tags, code):
    backend.upload(BUCKET, "input/t.mp4", b"t")
    backend.storage.put_tags(BUCKET, "input/t.mp4", {"keep": "me"})
    with pytest.raises(CloudError) as err:
        backend.storage.put_tags(BUCKET, "input/t.mp4", tags)
    assert (err.value.status, err.value.code) == (400, code) and not err.value.retryable
    assert backend.storage.get_tags(BUCKET, "input/t.mp4") == {"keep": "me"}  # nothing half-written


def test_key_over_850_bytes_is_refused(backend):
    with pytest.raises(CloudError) as err:
        backend.storage.put_json(BUCKET, "records/" + "é" * 430, b"{}")
    assert (err.value.operation, err.value.status, err.value.code) == ("cos.put", 400, "KeyTooLong")


def test_server_error_is_retryable_with_unknown_outcome(backend):
    backend.cloud.faults.add("cos.put", status=503)
    with pytest.raises(CloudError) as err:
        backend.storage.put_json(BUCKET, "records/f.json", b"{}", create_only=True)
    assert (err.value.status, err.value.code) == (503, "ServiceUnavailable")
    assert err.value.retryable and err.value.unknown_outcome
    assert backend.storage.get(BUCKET, "records/f.json") is None  # a fault before the work: nothing written


def test_lost_answer_after_a_create_only_write(backend):
    """The write happened, the answer was lost: the retry sees 409, not a second write."""
    backend.cloud.faults.add("cos.put", drop=True, after=True)
    with pytest.raises(CloudError) as err:
        backend.storage.put_json(BUCKET, "records/d.json", b'{"n": 1}', create_only=True)
    assert err.value.status == 0 and err.value.unknown_outcome
    assert backend.storage.put_json(BUCKET, "records/d.json", b'{"n": 2}', create_only=True) is False
    assert backend.storage.get(BUCKET, "records/d.json") == b'{"n": 1}'


def test_sdk_retries_absorb_one_server_error(backend):
    backend.cloud.faults.add("cos.get", status=500)
    backend.upload(OTHER_BUCKET, "out.json", b"{}")
    assert backend.retrying.get(OTHER_BUCKET, "out.json") == b"{}"  # the SDK retried (real: after 1 s)
    assert backend.cloud.faults.injected["cos.get"] == 1
    backend.cloud.faults.add("cos.get", status=404, code="NoSuchKey")
    assert backend.retrying.get(OTHER_BUCKET, "out.json") is None  # 4xx: never retried


def test_list_all_pages_past_a_thousand_keys(backend):
    """GET Bucket answers at most 1000 keys a page: list_all follows the markers."""
    for n in range(1003):
        backend.cloud.upload(BUCKET, f"records/{n:04d}/0-claim-1.json", b"{}")
    page, marker = backend.storage.list(BUCKET, "records/")
    assert len(page) == 1000 and marker == "records/0999/0-claim-1.json"
    keys = [o["Key"] for o in backend.storage.list_all(BUCKET, "records/")]
    assert len(keys) == 1003 and keys == sorted(keys)


def test_copy_makes_the_same_object_under_another_key(backend):
    """PUT Object - Copy (https://cloud.tencent.com/document/product/436/10881): metadata is copied by default
    ("默认情况下元数据将被复制到目标对象中"), so the content type follows. So are the tags: x-cos-tagging-directive
    "默认为 Copy ... 复制源对象的标签信息" (the page's request-header table)."""
    body = b"mask video " * 100
    backend.storage.put_json(BUCKET, "matting/.versions/r-1.json", body)
    backend.storage.put_tags(BUCKET, "matting/.versions/r-1.json", {"cm-role": "output"})
    backend.storage.copy(OTHER_BUCKET, "matting/r.json", BUCKET, REGION, "matting/.versions/r-1.json")
    head = backend.storage.head(OTHER_BUCKET, "matting/r.json")
    assert head["ETag"] == f'"{hashlib.md5(body).hexdigest()}"' and head["Content-Type"] == "application/json"
    assert backend.storage.get(OTHER_BUCKET, "matting/r.json") == body
    assert backend.storage.get_tags(OTHER_BUCKET, "matting/r.json") == {"cm-role": "output"}
    with pytest.raises(CloudError) as err:  # a copy of nothing
        backend.storage.copy(OTHER_BUCKET, "matting/s.json", BUCKET, REGION, "matting/.versions/none.json")
    assert err.value.status == 404


def test_a_copy_can_carry_its_own_tags(backend):
    """x-cos-tagging-directive Replaced: the copy gets the request's x-cos-tagging (URL-encoded) instead of
    the source's tags, in the same request (PUT Object - Copy, 436/10881): publishing needs no tag write."""
    backend.storage.put_json(BUCKET, "matting/.versions/r-2.json", b"x" * 10)
    backend.storage.put_tags(BUCKET, "matting/.versions/r-2.json", {"from": "source"})
    ours = {"cos-matting:record": "r/2", "team": "a b+c", "k:x": "v=1/2.3"}
    backend.storage.copy(BUCKET, "matting/r2.json", BUCKET, REGION, "matting/.versions/r-2.json", tags=ours)
    assert backend.storage.get_tags(BUCKET, "matting/r2.json") == ours
    backend.storage.copy(BUCKET, "matting/r3.json", BUCKET, REGION, "matting/.versions/r-2.json", tags={})
    assert backend.storage.get_tags(BUCKET, "matting/r3.json") == {}
    with pytest.raises(CloudError) as err:  # COS's tag rules hold for a copy's tags too
        backend.storage.copy(BUCKET, "matting/r4.json", BUCKET, REGION, "matting/.versions/r-2.json",
                             tags={f"k{i}": "v" for i in range(11)})
    assert err.value.status == 400
