"""localcloud/scfevents.py: the one home of the event shapes SCF hands a handler, checked against the
captured events in events/ (the local SCF and the CLI both build their events here)."""
import json
from datetime import datetime, timezone

from helpers import ROOT
from localcloud.scfevents import callback_request, function_url_event, scf_context, timer_event

EVENTS = ROOT / "events"


def test_a_callback_request_is_the_captured_function_url_event():
    captured = json.loads((EVENTS / "funcurl" / "post-json-callback.json").read_text())
    built = callback_request(captured["body"], "application/json", {"rid": "RECORD", "exp": "EXP", "t": "TOKEN"})
    assert built == captured


def test_the_function_url_event_keeps_repeats_lower_cases_headers_and_base64s_binary():
    event = function_url_event("POST", "/cb", [("rid", "r"), ("t", "1"), ("t", "2")], {"Content-Type": "text/xml"},
                               b"\xff\x00", "198.51.100.7")
    assert event["queryString"] == {"rid": "r", "t": ["1", "2"]}
    assert event["headers"] == {"content-type": "text/xml", "x-scf-remote-addr": "198.51.100.7"}
    assert event["isBase64Encoded"] is True and event["body"] == "/wA="
    text = function_url_event("GET", "/", [], {}, "体".encode(), "198.51.100.7")
    assert text["body"] == "体" and "isBase64Encoded" not in text and "requestContext" not in text


def test_the_timer_event_has_the_captured_fields():
    captured = json.loads((EVENTS / "timer" / "reconcile-every-10-minutes.json").read_text())
    built = timer_event("reconcile-every-10-minutes", "", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc))
    assert built == captured
    now = timer_event("t", "arg")
    assert now["Message"] == "arg" and datetime.strptime(now["Time"], "%Y-%m-%dT%H:%M:%SZ")


def test_the_context_has_the_fields_scf_documents():
    context = scf_context("cos-matting-submit", 60.0, request_id="abc")
    assert context == {"request_id": "abc", "function_name": "cos-matting-submit", "namespace": "default",
                       "function_version": "$LATEST", "memory_limit_in_mb": 128, "time_limit_in_ms": 60000,
                       "environ": ""}
    assert len(scf_context("f", 1.5)["request_id"]) == 32
