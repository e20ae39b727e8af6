"""The local cloud behaves like COS as its documents and the SDK sources say (CI and SCF:
tests/e2e/test_fidelity_ci_scf.py).

Every assertion names its source. The real cos-python-sdk-v5 is the client throughout: a
local cloud that only agrees with a client we wrote proves nothing about the service.
"""
import hashlib
import os
import socket
import struct

import pytest
from qcloud_cos.cos_exception import CosServiceError

from helpers import REGION, sdk_client
from helpers import BUCKET, ROOT, function_env, settings_for, clients_for, wait_for
from localcloud.matting import engine
from localcloud.matting.samples import write_green_screen_clip
from shared import xmlcodec
from shared.records import RecordStore

MB = 1 << 20


def error_of(call, **kw) -> CosServiceError:
    with pytest.raises(CosServiceError) as info:
        call(**kw)
    return info.value


def code_of(err: CosServiceError) -> str:
    _, body = xmlcodec.parse(err.get_origin_msg())
    return body["Code"]


def padded_video(path, size: int) -> bytes:
    """A real (tiny) MP4 grown to `size` bytes with a trailing ISO-BMFF `free` box, which
    players and decoders skip (ISO/IEC 14496-12 8.1.2): a valid video of a real upload's size."""
    write_green_screen_clip(str(path), 96, 64, 12, 12, audio=False)
    data = path.read_bytes()
    pad = size - len(data)
    data += struct.pack(">I4s", pad, b"free") + os.urandom(pad - 8)
    path.write_bytes(data)
    return data


@pytest.fixture
def cos_dns(monkeypatch, cloud):
    """Resolve `*.myqcloud.com` to the local cloud, like a hosts file would. Needed only by
    `CosS3Client.copy()`, whose HEAD of the source builds its own URL and ignores
    `CosConfig(IP=...)` (`_head_object_when_copy` in qcloud_cos/cos_client.py)."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if str(host).endswith(".myqcloud.com") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return {"Bucket": BUCKET, "Region": REGION, "Endpoint": f"cos.{REGION}.myqcloud.com:{cloud.port}"}


# -- COS: multipart upload --------------------------------------------------------------------

def test_upload_file_above_1mb_is_multipart_with_a_multipart_etag(cloud, cos_client, tmp_path):
    data = os.urandom(3 * MB + 5)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    # cos_client.py upload_file: PartSize=1 (MB) by default; files <= 1 MB go through
    # put_object, larger ones through create_multipart_upload/upload_part/complete.
    etag = cos_client.upload_file(Bucket=BUCKET, Key="input/a.bin", LocalFilePath=str(path))["ETag"]
    parts = [hashlib.md5(data[i:i + MB]).digest() for i in range(0, len(data), MB)]
    # A multipart object's ETag is "<md5 of the binary part md5s>-<parts>" (S3's rule, which COS follows).
    assert etag == f'"{hashlib.md5(b"".join(parts)).hexdigest()}-4"'
    assert cos_client.head_object(Bucket=BUCKET, Key="input/a.bin")["ETag"] == etag
    assert cos_client.get_object(Bucket=BUCKET, Key="input/a.bin")["Body"].get_raw_stream().read() == data
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * MB)
    plain = cos_client.upload_file(Bucket=BUCKET, Key="input/small.bin", LocalFilePath=str(small))["ETag"]
    assert plain == f'"{hashlib.md5(small.read_bytes()).hexdigest()}"'  # exactly 1 MB: one PUT


def test_upload_file_resumes_an_interrupted_upload(cloud, cos_client, tmp_path):
    data = os.urandom(3 * MB + 7)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="input/r.bin")["UploadId"]
    cos_client.upload_part(Bucket=BUCKET, Key="input/r.bin", Body=data[:MB], PartNumber=1, UploadId=up)
    before = cloud.requests["cos.multipart.part"]
    # upload_file: list_multipart_uploads(Prefix=key), then ListParts, compares each part's
    # quoted MD5 (get_raw_md5) and uploads only what is missing (_check_all_upload_parts).
    etag = cos_client.upload_file(Bucket=BUCKET, Key="input/r.bin", LocalFilePath=str(path))["ETag"]
    assert cloud.requests["cos.multipart.part"] - before == 3 and etag.endswith('-4"')
    assert cloud.bucket(BUCKET).read("input/r.bin") == data


def test_complete_checks_the_part_list_as_cos_documents(cloud, cos_client):
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="input/m.bin")["UploadId"]
    etags = {n: cos_client.upload_part(Bucket=BUCKET, Key="input/m.bin", Body=body, PartNumber=n,
                                       UploadId=up)["ETag"]
             for n, body in ((1, b"a" * MB), (2, b"b" * 100), (3, b"c" * 10))}

    def complete(numbers, tag=None):
        parts = [{"PartNumber": n, "ETag": tag or etags[n]} for n in numbers]
        return error_of(cos_client.complete_multipart_upload, Bucket=BUCKET, Key="input/m.bin", UploadId=up,
                        MultipartUpload={"Part": parts})

    # https://cloud.tencent.com/document/product/436/7742: parts out of order -> 400 InvalidPartOrder,
    # numbers not consecutive -> 400 InvalidPart, unknown UploadId -> 404 NoSuchUpload.
    err = complete([2, 1])
    assert (err.get_status_code(), code_of(err)) == (400, "InvalidPartOrder")
    err = complete([1, 3])
    assert (err.get_status_code(), code_of(err)) == (400, "InvalidPart")
    err = complete([1], tag='"' + "0" * 32 + '"')
    assert (err.get_status_code(), code_of(err)) == (400, "InvalidPart")
    # 436/7750 and the SDK's complete_multipart_upload docstring: every part but the last >= 1 MB.
    err = complete([1, 2, 3])
    assert (err.get_status_code(), code_of(err)) == (400, "EntityTooSmall")
    err = error_of(cos_client.complete_multipart_upload, Bucket=BUCKET, Key="input/m.bin", UploadId="nosuch",
                   MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etags[1]}]})
    assert (err.get_status_code(), code_of(err)) == (404, "NoSuchUpload")
    # 436/7750: part numbers are 1-10000.
    err = error_of(cos_client.upload_part, Bucket=BUCKET, Key="input/m.bin", Body=b"x", PartNumber=10001, UploadId=up)
    assert err.get_status_code() == 400
    assert not cloud.bucket(BUCKET).exists("input/m.bin")  # nothing half-written
    # ListParts (436/7747) and ListMultipartUploads (436/7736) show the upload in progress.
    listed = cos_client.list_parts(Bucket=BUCKET, Key="input/m.bin", UploadId=up)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Part"]] == [
        ("1", etags[1], str(MB)), ("2", etags[2], "100"), ("3", etags[3], "10")]
    uploads = cos_client.list_multipart_uploads(Bucket=BUCKET, Prefix="input/")["Upload"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("input/m.bin", up)]
    ok = cos_client.complete_multipart_upload(Bucket=BUCKET, Key="input/m.bin", UploadId=up,
                                              MultipartUpload={"Part": [{"PartNumber": n, "ETag": etags[n]}
                                                                        for n in (1, 2)]})
    assert ok["ETag"].endswith('-2"') and cloud.bucket(BUCKET).head("input/m.bin").size == MB + 100
    assert "Upload" not in cos_client.list_multipart_uploads(Bucket=BUCKET, Prefix="input/")


def test_two_completes_of_one_upload_make_one_object_and_one_event(cloud, cos_client, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    fn = tmp_path / "count"
    fn.mkdir()
    (fn / "index.py").write_text("def main_handler(event, context):\n    return 'ok'\n")
    cloud.add_trigger(BUCKET, str(fn), prefix="input/")
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="input/twice.mp4")["UploadId"]
    etag = cos_client.upload_part(Bucket=BUCKET, Key="input/twice.mp4", Body=b"v" * 10, PartNumber=1,
                                  UploadId=up)["ETag"]

    def complete(client):
        try:
            return client.complete_multipart_upload(Bucket=BUCKET, Key="input/twice.mp4", UploadId=up,
                                                    MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]})
        except CosServiceError as exc:
            return code_of(exc)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(complete, [sdk_client(cloud), sdk_client(cloud)]))
    assert sorted(str(type(r).__name__) for r in results) == ["dict", "str"] and "NoSuchUpload" in results
    assert cloud.wait_idle(20) and len(cloud.invocations) == 1


def test_abort_discards_the_parts(cloud, cos_client):
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="input/gone.bin")["UploadId"]
    cos_client.upload_part(Bucket=BUCKET, Key="input/gone.bin", Body=b"x" * 10, PartNumber=1, UploadId=up)
    cos_client.abort_multipart_upload(Bucket=BUCKET, Key="input/gone.bin", UploadId=up)  # 436/7740
    err = error_of(cos_client.list_parts, Bucket=BUCKET, Key="input/gone.bin", UploadId=up)
    assert (err.get_status_code(), code_of(err)) == (404, "NoSuchUpload")
    assert not cloud.bucket(BUCKET).exists("input/gone.bin")


def test_large_object_download_and_copy_through_the_sdk(cloud, cos_client, cos_dns, tmp_path):
    data = os.urandom(20 * MB + 4321)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    cos_client.upload_file(Bucket=BUCKET, Key="input/big.bin", LocalFilePath=str(src), PartSize=4)
    out = tmp_path / "out.bin"
    # download_file: objects over PartSize MB go through ResumableDownLoader, i.e. ranged GETs.
    gets = cloud.requests["cos.get"]
    cos_client.download_file(Bucket=BUCKET, Key="input/big.bin", DestFilePath=str(out), PartSize=5)
    assert out.read_bytes() == data and cloud.requests["cos.get"] - gets == 5  # five ranges of <= 5 MB
    # copy(): sources under the copy threshold use copy_object; at or above it, UploadPartCopy
    # with x-cos-copy-source-range (436/8287). The threshold is lowered to 10 MB to take that path.
    copier = sdk_client(cloud)
    copier._conf.set_copy_part_threshold_size(10 * MB)
    etag = copier.copy(Bucket=BUCKET, Key="copies/big.bin", CopySource={**cos_dns, "Key": "input/big.bin"},
                       PartSize=8)["ETag"]
    assert etag.endswith('-3"')  # 8 + 8 + 4 MB parts
    assert cloud.bucket(BUCKET).read("copies/big.bin") == data
    whole = cos_client.copy(Bucket=BUCKET, Key="copies/one.bin", CopySource={**cos_dns, "Key": "input/big.bin"})
    assert whole["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # one piece: the content's MD5
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="copies/bad.bin")["UploadId"]
    err = error_of(cos_client.upload_part_copy, Bucket=BUCKET, Key="copies/bad.bin", PartNumber=1, UploadId=up,
                   CopySource={**cos_dns, "Key": "input/big.bin"}, CopySourceRange=f"bytes=0-{len(data)}")
    assert err.get_status_code() == 400  # the range ends past the object


# -- COS: documented limits --------------------------------------------------------------------

def test_key_over_850_bytes_is_refused(cloud, cos_client):
    # https://cloud.tencent.com/document/product/436/13324: "编码长度最大为850个字节".
    key = "input/" + "视" * 282  # 6 + 846 = 852 bytes of UTF-8
    err = error_of(cos_client.put_object, Bucket=BUCKET, Key=key, Body=b"x")
    assert (err.get_status_code(), code_of(err)) == (400, "KeyTooLong")
    err = error_of(cos_client.create_multipart_upload, Bucket=BUCKET, Key=key)
    assert err.get_status_code() == 400
    cos_client.put_object(Bucket=BUCKET, Key="input/" + "a" * 844, Body=b"x")  # exactly 850 bytes


@pytest.mark.parametrize("tags, reason", [
    ({f"k{i}": "v" for i in range(11)}, "more than 10 tags"),
    ({"k" * 128: "v"}, "key of 128 bytes"),
    ({"k": "v" * 256}, "value of 256 bytes"),
    ({"k": ""}, "empty value"),
    ({"k": "a&b"}, "character outside the allowed set"),
])
def test_tags_cos_refuses_are_refused(cloud, cos_client, tags, reason):
    cos_client.put_object(Bucket=BUCKET, Key="input/t.mp4", Body=b"x")
    # 436/42997 (PUT Object tagging): <= 10 tags, key < 128 bytes, value < 256 bytes, letters,
    # digits, space and + - _ = . : /; 436/35665 (object tags): values are 1-255 characters.
    err = error_of(cos_client.put_object_tagging, Bucket=BUCKET, Key="input/t.mp4",
                   Tagging={"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}})
    assert err.get_status_code() == 400, reason
    assert cloud.bucket(BUCKET).head("input/t.mp4").tags == {}


# -- COS: versioning and x-cos-forbid-overwrite ------------------------------------------------

def test_forbid_overwrite_is_ignored_once_versioning_was_enabled(cloud, cos_client):
    create_only = {"x-cos-forbid-overwrite": "true"}
    # 436/19889: a bucket that never had versioning returns no Status.
    assert not (cos_client.get_bucket_versioning(Bucket=BUCKET) or {}).get("Status")
    cos_client.put_object(Bucket=BUCKET, Key="r.json", Body=b"1", Metadata=create_only)
    err = error_of(cos_client.put_object, Bucket=BUCKET, Key="r.json", Body=b"2", Metadata=create_only)
    assert (err.get_status_code(), code_of(err)) == (409, "FileAlreadyExists")
    assert "x-cos-version-id" not in cos_client.head_object(Bucket=BUCKET, Key="r.json")
    up = cos_client.create_multipart_upload(Bucket=BUCKET, Key="r.json")["UploadId"]  # Complete honours it too
    etag = cos_client.upload_part(Bucket=BUCKET, Key="r.json", Body=b"m", PartNumber=1, UploadId=up)["ETag"]
    err = error_of(cos_client.complete_multipart_upload, Bucket=BUCKET, Key="r.json", UploadId=up,
                   MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]}, Metadata=create_only)
    assert (err.get_status_code(), code_of(err)) == (409, "FileAlreadyExists")
    assert [u["UploadId"] for u in cos_client.list_multipart_uploads(Bucket=BUCKET, Prefix="r.json")["Upload"]] == [up]
    cos_client.put_bucket_versioning(Bucket=BUCKET, Status="Enabled")
    assert cos_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    # PUT Object (436/7749) as secondary sources read it: on a bucket
    # that has (or ever had) versioning the header is ignored: the second writer wins silently.
    cos_client.put_object(Bucket=BUCKET, Key="r.json", Body=b"2", Metadata=create_only)
    first = cos_client.head_object(Bucket=BUCKET, Key="r.json")["x-cos-version-id"]  # 436/7745
    cos_client.put_object(Bucket=BUCKET, Key="r.json", Body=b"3", Metadata=create_only)
    assert cos_client.head_object(Bucket=BUCKET, Key="r.json")["x-cos-version-id"] not in ("", first)
    cos_client.put_bucket_versioning(Bucket=BUCKET, Status="Suspended")  # only suspended, never off
    cos_client.put_object(Bucket=BUCKET, Key="r.json", Body=b"4", Metadata=create_only)
    assert cos_client.head_object(Bucket=BUCKET, Key="r.json")["x-cos-version-id"] == "null"  # 436/7742
    assert cloud.bucket(BUCKET).read("r.json") == b"4"


# -- end to end: a real-sized upload -------------------------------------------------------------

@pytest.mark.slow
def test_a_20mb_video_uploaded_with_upload_file_becomes_one_job_and_one_output(cloud, cos_client, tmp_path):
    env = function_env(cloud)
    env["COS_MATTING_CALLBACK_URL"] = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env)
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="input/")
    cloud.set_engine(engine)
    data = padded_video(tmp_path / "clip.mp4", 20 * MB)
    etag = cos_client.upload_file(Bucket=BUCKET, Key="input/big.mp4", LocalFilePath=str(tmp_path / "clip.mp4"))["ETag"]
    assert etag.endswith('-20"')  # 20 parts of 1 MB
    settings = settings_for(cloud)
    store = RecordStore.of(settings, clients_for(cloud, settings).storage)

    def finished():
        cloud.wait_idle(timeout=5)
        records = list(store.newest_records())
        return records if records and all(r.terminal for r in records) else None

    [record] = wait_for(finished, timeout=120, interval=0.5)
    assert record.state == "Success", record.error
    assert record.source.etag == etag.strip('"') and record.source.size == len(data)
    submits = [i for i in cloud.invocations if i.function == "submit"]
    # The trigger's event name for a multipart upload (COS trigger event types, 583/9707).
    assert {i.event["Records"][0]["event"]["eventName"] for i in submits} == \
        {"cos:ObjectCreated:CompleteMultipartUpload"}
    assert len(cloud.list_jobs(BUCKET)) == 1
    outputs = [o.key for o in cloud.bucket(BUCKET).list("matting/")[0]]
    # the job's own per-version key, and its copy under the predictable name (README "How it works")
    assert sorted(outputs) == sorted([record.output["key"], record.output["staging"]])
