"""The local SCF's typed state (localcloud/scfbackend.py): a data_dir kept from before it was typed still loads."""
import json

from localcloud.scfbackend import FunctionState, LayerVersion

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
