"""A misspelt COS_MATTING_* variable is never silently ignored: the CLI warns (tests/e2e/test_cli_errors.py)
and a function's cold start logs it with the nearest known name."""
import json

from shared.config import load_settings, unknown_variables

BASE = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}


def test_unknown_variables_with_the_nearest_name():
    found = dict(unknown_variables({**BASE, "COS_MATTING_BUCKT": "x", "COS_MATTING_SEGMENTTYPE": "HumanSeg",
                                    "COS_MATTING_WHATEVER": "1", "COS_MATTING_DEPLOY_ROLE": "r",
                                    "COS_MATTING_TEST_FUNCTION": "f", "OTHER": "1"}))
    assert found == {"COS_MATTING_BUCKT": "COS_MATTING_BUCKET", "COS_MATTING_SEGMENTTYPE": "COS_MATTING_SEGMENT_TYPE",
                     "COS_MATTING_WHATEVER": None}


def test_cold_start_logs_a_misspelt_variable(monkeypatch, capsys):
    import os

    for name in [n for n in os.environ if n.startswith("COS_MATTING_")]:
        monkeypatch.delenv(name)
    for name, value in {**BASE, "COS_MATTING_CALLBACK_KEY": "k" * 32}.items():
        monkeypatch.setenv(name, value)
    load_settings()  # as functions/*/index.py does at import
    [line] = [json.loads(l) for l in capsys.readouterr().out.splitlines() if "unknown_variable" in l]
    assert line["level"] == "warning" and line["variable"] == "COS_MATTING_CALLBACK_KEY"
    assert line["did_you_mean"] == "COS_MATTING_CALLBACK_KEYS"
