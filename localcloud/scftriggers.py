"""The rules of SCF triggers: how a trigger is described (CreateTrigger / UpdateTrigger's `TriggerDesc`),
checked and normalised, and when a timer fires. The backend (localcloud/scfbackend.py) makes them live.

Shapes follow tencent-component-toolkit 2.27.6 `lib/modules/triggers/{cos,timer,http}.js`:
a COS trigger is named after the bucket's XML-API domain and described by
`{"event", "filter": {"Prefix", "Suffix"}}`; a timer by its 7-field cron, read back as
`{"cron": ...}` (the toolkit's timer.js notes the change); a Function URL (`Type: http`)
by `{"AuthType", "NetConfig"}`, and its TriggerDesc answers `NetConfig.ExtranetUrl`
(as github.com/DVKunion/SeaMoon `pkg/sdk/tencent` reads it back).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Container, Dict

from .tcapi import ApiError


@dataclass
class TriggerState:
    """One trigger as stored; `desc` is its TriggerDesc in the normalised form (parse_trigger)."""

    type: str  # cos | timer | http
    name: str
    desc: str
    enabled: bool = True
    qualifier: str = "$DEFAULT"
    custom_argument: str = ""
    description: str = ""
    add_time: str = ""
    mod_time: str = ""
    url_id: str = ""  # a Function URL's address (`/_url/<url_id>`), kept across updates

    def describe(self) -> Dict[str, Any]:
        """The SDK's Trigger fields (the address of a Function URL is the front's to add)."""
        return {"Type": self.type, "TriggerName": self.name, "TriggerDesc": self.desc, "Enable": int(self.enabled),
                "Qualifier": self.qualifier, "CustomArgument": self.custom_argument, "Description": self.description,
                "AddTime": self.add_time, "ModTime": self.mod_time, "AvailableStatus": "Available"}


# -- cron with seconds: "second minute hour day month weekday year" ------------------------------


def _cron_field(spec: str, value: int, low: int) -> bool:
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, 10 ** 6
        elif "-" in part:
            first, last = (int(x) for x in part.split("-", 1))
        else:
            first = last = int(part)
            if step != 1:
                last = 10 ** 6
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


def cron_matches(cron: str, moment: datetime) -> bool:
    """SCF timer crons have 7 fields, seconds first (SCF doc 583/9708)."""
    sec, minute, hour, day, month, weekday, year = cron.split()
    values = ((sec, moment.second, 0), (minute, moment.minute, 0), (hour, moment.hour, 0), (day, moment.day, 1),
              (month, moment.month, 1), (weekday, (moment.weekday() + 1) % 7, 0), (year, moment.year, 1970))
    return all(_cron_field(spec, value, low) for spec, value, low in values)


def check_cron(cron: str) -> None:
    try:
        if len(cron.split()) != 7:
            raise ValueError
        cron_matches(cron, datetime.now(timezone.utc))
    except ValueError:
        raise ApiError("InvalidParameterValue.TriggerDesc", f"timer TriggerDesc {cron!r} is not a 7-field cron "
                                                            "(second minute hour day month weekday year)") from None


def parse_trigger(p: Dict[str, Any], region: str, buckets: Container[str], now: str) -> TriggerState:
    """The trigger a CreateTrigger / UpdateTrigger request describes, checked; `buckets` are the region's COS
    buckets (a COS trigger binds one of them), `now` its AddTime / ModTime."""
    kind, name, desc = p.get("Type"), p.get("TriggerName") or "", p.get("TriggerDesc") or ""
    if kind == "cos":
        m = re.fullmatch(r"([a-z0-9][a-z0-9-]*-\d+)\.cos\.([a-z0-9-]+)\.myqcloud\.com", name)
        if not m:
            raise ApiError("InvalidParameterValue.TriggerName", "a COS trigger is named after the bucket's XML "
                                                                "API domain <bucket>-<appid>.cos.<region>.myqcloud.com")
        if m.group(2) != region or m.group(1) not in buckets:
            raise ApiError("ResourceNotFound.Cos", f"bucket {m.group(1)} does not exist in {region} "
                                                   "(a COS trigger binds a bucket of the function's region)")
        try:
            parsed = json.loads(desc)
            event, flt = parsed["event"], parsed.get("filter") or {}
            assert isinstance(event, str) and event.startswith("cos:")
        except (ValueError, KeyError, AssertionError, TypeError):
            raise ApiError("InvalidParameterValue.TriggerDesc", 'a COS TriggerDesc is {"event": "cos:...", '
                                                                '"filter": {"Prefix": ..., "Suffix": ...}}') from None
        desc = json.dumps({"bucketUrl": name, "event": event, "filter": {"Prefix": flt.get("Prefix") or "",
                                                                         "Suffix": flt.get("Suffix") or ""}})
    elif kind == "timer":
        cron = desc
        if desc.startswith("{"):
            cron = json.loads(desc).get("cron", "")
        check_cron(cron)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name):
            raise ApiError("InvalidParameterValue.TriggerName", "timer names: up to 100 letters, digits, - and _")
        desc = json.dumps({"cron": cron})  # read back as {"cron": ...} (toolkit timer.js comment)
    elif kind == "http":
        try:
            parsed = json.loads(desc)
            net = parsed["NetConfig"]
            auth = parsed.get("AuthType", "NONE")
            assert auth in ("NONE", "CAM") and isinstance(net, dict)
        except (ValueError, KeyError, AssertionError, TypeError):
            raise ApiError("InvalidParameterValue.TriggerDesc", 'a Function URL TriggerDesc is {"AuthType": '
                                                                '"NONE"|"CAM", "NetConfig": {...}}') from None
        desc = json.dumps(parsed)
    else:
        raise ApiError("InvalidParameterValue.Type", f"trigger Type {kind!r}: the local cloud has cos, timer, http")
    enable = p.get("Enable", "OPEN")
    if enable not in ("OPEN", "CLOSE"):
        raise ApiError("InvalidParameterValue.Enable", "Enable is OPEN or CLOSE")
    return TriggerState(kind, name, desc, enable == "OPEN", p.get("Qualifier") or "$DEFAULT",
                        p.get("CustomArgument") or "", p.get("Description") or "", now, now)
