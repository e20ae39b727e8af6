"""COS inventory: the local cloud writes manifest.json + gzip CSV files in the documented format
(doc 436/33702 columns and URL-encoded keys, doc 436/46869 report path), and the CLI's reader streams
them back through the real cos-python-sdk-v5 client, checking each file's md5 and resuming mid-file."""
import csv
import gzip
import hashlib
import io
import json
import urllib.request
from datetime import datetime
from urllib.parse import unquote

import pytest

from cli.inventory import InventoryError, Position, parse_manifest, rows
from cli.sources import InventorySource
from helpers import BUCKET, OTHER_BUCKET
from helpers import clients_for, settings_for

TRICKY = ["input/a b.mp4", "input/a+b.mp4", "input/100%.mp4", "input/视频/片段.MP4", "input/x,\"y\".mp4"]


def control(cloud, path, payload):
    request = urllib.request.Request(f"{cloud.url}/_localcloud/{path}", data=json.dumps(payload).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def put_all(cloud, keys, body=b"\x00\x00\x00\x18ftypmp42 fake"):
    bucket = cloud.bucket(BUCKET)
    return {key: bucket.put_bytes(key, body + key.encode()) for key in keys}


def sdk_get(cos_client, bucket, key):
    return cos_client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def test_report_format_through_the_sdk(cloud, cos_client):
    metas = put_all(cloud, TRICKY + [f"input/clip-{i}.mp4" for i in range(5)])
    status, report = control(cloud, "inventory", {"bucket": BUCKET, "destination": OTHER_BUCKET,
                                                  "inventory_id": "daily-1", "rows_per_file": 4})
    assert status == 200, report
    key = report["manifest_key"]
    # doc 436/46869: <prefix>/<appid>/<bucket without appid>/<id>/<YYYYMMDD>/manifest.json
    parts = key.split("/")
    assert parts[:4] == ["cos_bucket_inventory", "1250000000", "videos", "daily-1"] and parts[-1] == "manifest.json"
    assert len(parts[4]) == 8 and parts[4].isdigit()
    body = sdk_get(cos_client, OTHER_BUCKET, key)
    manifest = json.loads(body)
    checksum = sdk_get(cos_client, OTHER_BUCKET, key.replace("manifest.json", "manifest.checksum")).decode()
    assert checksum == hashlib.md5(body).hexdigest()
    assert manifest["fileFormat"] == "CSV"
    assert manifest["fileSchema"] == "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded"
    assert manifest["listObjectCount"] == manifest["filterObjectCount"] == len(metas) == report["objects"]
    assert manifest["listStorageSize"] == sum(m.size for m in metas.values())
    assert len(manifest["files"]) == 3  # 10 rows, 4 per file
    seen = {}
    for entry in manifest["files"]:
        data = sdk_get(cos_client, OTHER_BUCKET, entry["key"])
        # COS inventory overview (436/33702): files[] are {key, size (a string), md5Checksum}
        assert set(entry) == {"key", "size", "md5Checksum"} and isinstance(entry["size"], str)
        assert int(entry["size"]) == len(data) and entry["md5Checksum"] == hashlib.md5(data).hexdigest()
        text = gzip.decompress(data).decode("utf-8")
        assert text.startswith('"videos-1250000000","')  # every field quoted; no header line
        for row in csv.reader(io.StringIO(text)):
            bucket, encoded, size, modified, etag, storage_class, multipart = row
            assert bucket == BUCKET and storage_class == "STANDARD" and multipart == "false"
            assert " " not in encoded and "+" not in encoded and "/" not in encoded  # URL-encoded
            seen[unquote(encoded)] = (int(size), etag, modified)
    assert set(seen) == set(metas)
    for key_, meta in metas.items():
        assert seen[key_][:2] == (meta.size, meta.etag)
        stamp = datetime.fromisoformat(seen[key_][2].replace("Z", "+00:00"))  # ISO 8601 UTC
        assert abs(stamp.timestamp() - meta.last_modified) < 1.0


def test_filter_prefix_and_refusals(cloud):
    put_all(cloud, ["input/a.mp4", "other/b.mp4"])
    status, report = control(cloud, "inventory", {"bucket": BUCKET, "filter_prefix": "input/"})
    assert status == 200 and report["objects"] == 1
    again = control(cloud, "inventory", {"bucket": BUCKET, "filter_prefix": "input/"})
    assert again[0] == 409 and again[1]["error"] == "InventoryAlreadyExists"  # doc 46869: one id per day
    assert control(cloud, "inventory", {"bucket": BUCKET, "inventory_id": "bad id"})[0] == 400
    assert control(cloud, "inventory", {"bucket": BUCKET, "inventory_id": "x", "fields": ["Crc64"]})[0] == 400
    assert control(cloud, "inventory", {"bucket": "nope-1250000000", "inventory_id": "y"})[0] == 404
    assert control(cloud, "inventory", {"bucket": BUCKET, "inventory_id": "z", "colour": "red"})[0] == 400


def test_reader_streams_decodes_and_resumes(cloud):
    metas = put_all(cloud, TRICKY + [f"input/clip-{i}.mp4" for i in range(7)])
    report = cloud.generate_inventory(BUCKET, inventory_id="r", rows_per_file=5)
    settings = settings_for(cloud)
    storage = clients_for(cloud, settings).storage
    source = InventorySource(storage, BUCKET, report["manifest_key"])
    assert source.total == len(metas)
    everything = list(rows(storage, source.manifest))
    assert [r["Key"] for _, r in everything] == sorted(metas)  # decoded, in listing order
    assert {r["Key"]: r["ETag"] for _, r in everything} == {k: m.etag for k, m in metas.items()}
    positions = [p for p, _ in everything]
    assert positions[0] == Position(0, 1) and positions[5] == Position(1, 1) and positions[-1] == Position(2, 2)
    for cut in (3, 5, 6, 11):  # resume after the cut-th row: the rest, exactly once
        rest = list(rows(storage, source.manifest, positions[cut - 1]))
        assert [r["Key"] for _, r in rest] == [r["Key"] for _, r in everything[cut:]]


def test_reader_applies_the_trigger_filter(cloud):
    put_all(cloud, ["input/ok.mp4", "input/notes.txt", "input/empty.mp4", "elsewhere/x.mp4",
                    "matting/matted.mp4", ".cos-matting/records/abc/0-claim-1.json"])
    cloud.bucket(BUCKET).put_bytes("input/empty.mp4", b"")
    report = cloud.generate_inventory(BUCKET, inventory_id="f")
    settings = settings_for(cloud)
    source = InventorySource(clients_for(cloud, settings).storage, BUCKET, report["manifest_key"])
    verdicts = {item.upload.key: item.reason for item in source.items(settings)}
    # the inventory itself lists under cos_bucket_inventory/ (same bucket): prefix, like the trigger would say
    assert {k: v for k, v in verdicts.items() if not k.startswith("cos_bucket_inventory/")} == {
        "input/ok.mp4": None, "input/notes.txt": "suffix", "input/empty.mp4": "empty", "elsewhere/x.mp4": "prefix",
        "matting/matted.mp4": "loop-guard", ".cos-matting/records/abc/0-claim-1.json": "loop-guard"}


def test_corrupt_reports_fail_with_one_clear_error(cloud):
    put_all(cloud, [f"input/c{i}.mp4" for i in range(3)])
    report = cloud.generate_inventory(BUCKET, inventory_id="c")
    settings = settings_for(cloud)
    storage = clients_for(cloud, settings).storage
    manifest = InventorySource(storage, BUCKET, report["manifest_key"]).manifest
    data_key = manifest.files[0].key
    data = cloud.bucket(BUCKET).read(data_key)
    cloud.bucket(BUCKET).put_bytes(data_key, data[:-9])  # truncated upload
    with pytest.raises(InventoryError, match="truncated|md5|bytes"):
        list(rows(storage, manifest))
    cloud.bucket(BUCKET).delete(data_key)
    with pytest.raises(InventoryError, match="missing"):
        list(rows(storage, manifest))
    # the documented checksum field is checked: same bytes count, other bytes
    put_all(cloud, ["input/c0.mp4"])
    fresh = InventorySource(storage, BUCKET, cloud.generate_inventory(BUCKET, inventory_id="d")["manifest_key"])
    entry = fresh.manifest.files[0]
    doc = {"fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, "
           "IsMultipartUploaded", "files": [{"key": entry.key, "size": str(entry.size), "md5Checksum": "0" * 32}]}
    with pytest.raises(InventoryError, match="md5"):
        list(rows(storage, parse_manifest(BUCKET, "m.json", json.dumps(doc).encode())))
    with pytest.raises(InventoryError, match="fileFormat 'ORC'.*allowed: CSV"):
        parse_manifest(BUCKET, "m.json", json.dumps({"fileFormat": "ORC", "fileSchema": "Key", "files": []}).encode())
    with pytest.raises(InventoryError, match="no Key column"):
        parse_manifest(BUCKET, "m.json", json.dumps({"fileFormat": "CSV", "fileSchema": "Bucket", "files": []}).encode())
    with pytest.raises(InventoryError, match=r"files\[0\] has no key"):
        parse_manifest(BUCKET, "m.json", b'{"fileFormat": "CSV", "fileSchema": "Key", "files": [{}]}')
    with pytest.raises(InventoryError, match="no such object"):
        InventorySource(storage, BUCKET, "cos_bucket_inventory/nothing/manifest.json")
