"""The local SCF's backend (localcloud/scfbackend.py) on its own: no HTTP, no LocalCloud, no process (a function
is deployed, never invoked, here); and its typed state, which still loads a data_dir kept from before it was typed."""
import base64
import io
import json
import sys
import time
import zipfile

import pytest

from localcloud.cos import ObjectStore
from localcloud.faults import Faults
from localcloud.scf import Runtime
from localcloud.scfbackend import FunctionState, LayerVersion, Platform, ScfBackend
from localcloud.scftriggers import parse_trigger
from localcloud.tcapi import ApiError

BUCKET = "videos-1250000000"


def _zip() -> dict:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("index.py", "def main_handler(event, context):\n    return event\n")
    return {"ZipFile": base64.b64encode(raw.getvalue()).decode()}


@pytest.fixture
def backend(tmp_path):
    store = ObjectStore(None, "ap-guangzhou")
    store.add_bucket(BUCKET)
    platform = Platform("ap-guangzhou", lambda: "http://127.0.0.1:9", lambda: {"TENCENTCLOUD_SECRETID": "AKIDrole",
                        "TENCENTCLOUD_SESSIONTOKEN": "token"}, lambda role: role == "trusted-role", clock=lambda: 0.0)
    runtime = Runtime(Faults(), python=sys.executable)  # no CPython 3.10 lookup (a subprocess)
    scf = ScfBackend(str(tmp_path / "scf"), platform, runtime, store)
    scf.settle_seconds = 3600  # stays Creating / Updating for the whole test
    yield scf
    scf.stop()


def _create(scf, name, **config):
    return scf.create_function({"FunctionName": name, "Handler": "index.main_handler", "Runtime": "Python3.10",
                                "Code": _zip(), **config})


def test_role_credentials_only_for_a_role_that_trusts_scf(backend):
    trusted = _create(backend, "with-role", Role="trusted-role", Environment={"Variables": [{"Key": "A", "Value": "1"}]})
    untrusted = _create(backend, "other-role", Role="someone-elses")
    env = backend.running[trusted.key].env
    assert (env["TENCENTCLOUD_SECRETID"], env["TENCENTCLOUD_REGION"], env["COS_MATTING_ENDPOINT"], env["A"]) == \
        ("AKIDrole", "ap-guangzhou", "http://127.0.0.1:9", "1")
    assert "TENCENTCLOUD_SECRETID" not in backend.running[untrusted.key].env
    assert trusted.add_time == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(0))  # the clock it was given


def test_a_write_while_the_last_one_is_applied_is_refused(backend):
    fn = _create(backend, "busy")
    assert fn.status == "Creating"
    with pytest.raises(ApiError) as err:
        backend.writable("UpdateFunctionCode", "default", "busy")
    assert err.value.code == "FailedOperation.UpdateFunctionCode"


def test_a_cos_trigger_goes_live_in_the_runtime_and_leaves_with_its_function(backend):
    fn = _create(backend, "submit")
    backend.set_async_retry(fn, 1, 600)
    desc = json.dumps({"event": "cos:ObjectCreated:*", "filter": {"Prefix": "input/", "Suffix": ".mp4"}})
    trig = parse_trigger({"Type": "cos", "TriggerName": f"{BUCKET}.cos.ap-guangzhou.myqcloud.com", "TriggerDesc": desc},
                         backend.region, backend.store.buckets, "now")
    backend.add_trigger(fn, trig)
    live, = backend.runtime.triggers
    assert (live.bucket, live.prefix, live.suffix, live.retries, live.function) == \
        (BUCKET, "input/", ".mp4", 1, backend.running[fn.key])
    with pytest.raises(ApiError) as err:  # a bucket this region's COS does not have
        parse_trigger({"Type": "cos", "TriggerName": "gone-1250000000.cos.ap-guangzhou.myqcloud.com",
                       "TriggerDesc": desc}, backend.region, backend.store.buckets, "now")
    assert err.value.code == "ResourceNotFound.Cos"
    backend.delete_function(fn)
    assert backend.runtime.triggers == [] and backend.functions == {} and backend.running == {}

# One function and one layer version as the previous local SCF stored them in scf/state.json (the API's
# fields in one dict per function, as its CreateFunction / CreateTrigger / PublishLayerVersion wrote them).
OLD_FUNCTION = {
    "FunctionName": "cos-matting-dev-callback", "Namespace": "default", "FunctionId": "lam-1a2b3c4d",
    "MemorySize": 256, "Timeout": 30, "Type": "Event", "Description": "callback", "Role": "cos-matting-dev-role",
    "Environment": {"Variables": [{"Key": "COS_MATTING_BUCKET", "Value": "videos-1250000000"}]},
    "Layers": [{"LayerName": "cos-matting-dev-deps", "LayerVersion": 2}], "Status": "Active",
    "AddTime": "2026-12-01 09:30:00", "ModTime": "2026-12-01 09:31:00", "Tags": [{"Key": "app", "Value": "cm"}],
    "Triggers": [{"Type": "http", "TriggerName": "url", "TriggerDesc": json.dumps({"AuthType": "NONE", "NetConfig": {}}),
                  "Enable": 1, "Qualifier": "$DEFAULT", "CustomArgument": "", "Description": "",
                  "AddTime": "2026-12-01 09:30:01", "ModTime": "2026-12-01 09:30:01", "AvailableStatus": "Available",
                  "UrlId": "abcdef012345"}],
    "Reserved": 512, "AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": 1}], "MsgTTL": 3600},
    "CodeSha256": "0" * 64, "Handler": "index.main_handler", "Runtime": "Python3.10",
    "DeadLetterConfig": {"Type": "CMQ-QUEUE", "Name": "dlq"}, "_settling": "token",
}
OLD_LAYER = {"LayerName": "cos-matting-dev-deps", "LayerVersion": 2, "Description": "deps",
             "CompatibleRuntimes": ["Python3.10"], "AddTime": "2026-12-01 09:29:00", "Status": "Deleted",
             "LicenseInfo": "", "Sha256": "1" * 64}


def test_a_function_stored_before_the_state_was_typed_loads_with_every_field():
    fn = FunctionState.load(OLD_FUNCTION)
    answered = {k: OLD_FUNCTION[k] for k in OLD_FUNCTION
                if k not in ("Triggers", "Reserved", "AsyncTriggerConfig", "CodeSha256", "_settling")}
    assert fn.describe() == answered  # what GetFunction answers, field for field
    assert (fn.key, fn.code_sha256, fn.reserved, fn.retry_num, fn.msg_ttl, fn.settling) == \
        ("default/cos-matting-dev-callback", "0" * 64, 512, 1, 3600, "token")
    trig, = fn.triggers
    assert trig.describe() == {k: v for k, v in OLD_FUNCTION["Triggers"][0].items() if k != "UrlId"}
    assert trig.url_id == "abcdef012345"  # the Function URL keeps its address
    assert FunctionState.load(json.loads(json.dumps(_saved(fn)))) == fn  # and the new format round-trips


def test_a_layer_version_stored_before_the_state_was_typed_loads():
    layer = LayerVersion.load(OLD_LAYER)
    assert layer.describe() == {k: v for k, v in OLD_LAYER.items() if k != "Sha256"}
    assert layer.sha256 == "1" * 64 and LayerVersion.load(_saved(layer)) == layer


def _saved(obj):
    from dataclasses import asdict

    return asdict(obj)
