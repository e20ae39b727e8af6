"""The Cloud Monitor API (version 2018-07-24) of the local cloud: the alarm policy calls a deploy makes.

Fields are the SDK's (`tencentcloud/monitor/v20180724/models.py`: CreateAlarmPolicy,
DescribeAlarmPolicies, ModifyAlarmPolicyCondition, ModifyAlarmPolicyNotice, DeleteAlarmPolicy, BindingPolicyObject,
DescribeBindingPolicyObjectList, UnBindingPolicyObject), error codes the SDK's
(`errorcodes.py`: ResourceNotFound, InvalidParameterValue, InvalidParameter.ParamError);
the front door holds requests and answers to the models (tcapi.py). `Module` is always
"monitor" and `MonitorType` MT_QCE (API page 248/39326). Policy names need not be unique
on the real service; every policy gets an id `policy-<8 chars>` like the service's.
Alarms never fire here: there are no metrics, only the declarations.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Dict, List

from .tcapi import ApiError, load_state, save_state

# PolicyName: "up to 20 characters" (API page 248/39326, 2025-11-13), stricter than the SDK model's docstring
# ("不超过60字符"): the local cloud holds deploy to the stricter, as deploy/alarms.py does.
MAX_NAME = 20


class MonitorService:
    def __init__(self, data_dir: str) -> None:
        self.dir = data_dir
        self.lock = threading.RLock()
        self.state: Dict[str, Any] = load_state(data_dir, {"policies": {}})

    def _save(self) -> None:
        save_state(self.dir, self.state)

    @staticmethod
    def _module(p: Dict[str, Any]) -> None:
        if p.get("Module") != "monitor":
            raise ApiError("InvalidParameterValue", 'Module must be "monitor"')

    def _policy(self, policy_id: Any) -> Dict[str, Any]:
        policy = self.state["policies"].get(str(policy_id or ""))
        if policy is None:
            raise ApiError("ResourceNotFound", f"alarm policy {policy_id!r} does not exist")
        return policy

    @staticmethod
    def _condition(condition: Any) -> Dict[str, Any]:
        rules = (condition or {}).get("Rules") or []
        if not rules:
            raise ApiError("InvalidParameter.ParamError", "Condition.Rules: at least one rule")
        for i, rule in enumerate(rules):
            if not rule.get("MetricName") or not rule.get("Period") or not rule.get("Operator"):
                raise ApiError("InvalidParameter.ParamError", f"Condition.Rules[{i}]: MetricName, Period and "
                                                              "Operator are required")
        return condition

    # -- policies -------------------------------------------------------------------------------
    def CreateAlarmPolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._module(p)
        name = p.get("PolicyName") or ""
        if not name or len(name) > MAX_NAME:
            raise ApiError("InvalidParameterValue", f"PolicyName: 1-{MAX_NAME} characters")
        if p.get("MonitorType") != "MT_QCE" or not p.get("Namespace"):
            raise ApiError("InvalidParameterValue", "MonitorType MT_QCE and a Namespace (policy type) are required")
        policy_id = "policy-" + uuid.uuid4().hex[:8]
        now = int(time.time())
        self.state["policies"][policy_id] = {
            "PolicyId": policy_id, "PolicyName": name, "MonitorType": "MT_QCE", "Namespace": p["Namespace"],
            "Remark": p.get("Remark") or "", "Enable": 1 if p.get("Enable") is None else int(p["Enable"]),
            "ProjectId": p.get("ProjectId") if p.get("ProjectId") is not None else -1,
            "Condition": self._condition(p.get("Condition")), "NoticeIds": list(p.get("NoticeIds") or []),
            "Tags": list(p.get("Tags") or []), "InsertTime": now, "UpdateTime": now, "bound": []}
        self._save()
        return {"PolicyId": policy_id, "OriginId": str(len(self.state["policies"]) + 3000000)}

    def DescribeAlarmPolicies(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._module(p)
        found = [x for x in self.state["policies"].values()
                 if (not p.get("PolicyName") or p["PolicyName"] in x["PolicyName"])  # a fuzzy search (model doc)
                 and (not p.get("MonitorTypes") or x["MonitorType"] in p["MonitorTypes"])
                 and (not p.get("Namespaces") or x["Namespace"] in p["Namespaces"])]
        size = min(max(int(p.get("PageSize") or 20), 1), 100)
        page = max(int(p.get("PageNumber") or 1), 1)
        shown = found[(page - 1) * size:page * size]
        return {"TotalCount": len(found), "Policies": [
            {**{k: v for k, v in x.items() if k != "bound"}, "UseSum": len(x["bound"]),
             "Region": sorted({b["Region"] for b in x["bound"]})} for x in shown]}

    def ModifyAlarmPolicyCondition(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """The rule and Enable. NoticeIds and PolicyName are "专供prom使用" (Prometheus policies only, the
        SDK's ModifyAlarmPolicyConditionRequest): a cloud product (MT_QCE) policy keeps its own."""
        self._module(p)
        policy = self._policy(p.get("PolicyId"))
        policy["Condition"] = self._condition(p.get("Condition"))
        if p.get("Enable") is not None:
            policy["Enable"] = int(p["Enable"])
        policy["UpdateTime"] = int(time.time())
        self._save()
        return {}

    def ModifyAlarmPolicyNotice(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """The notice templates of one policy (PolicyId) or of up to 30 (PolicyIds wins), API page 248/51274."""
        self._module(p)
        ids = p.get("PolicyIds") or ([p["PolicyId"]] if p.get("PolicyId") else [])
        if not ids or len(ids) > 30:
            raise ApiError("InvalidParameter.ParamError", "PolicyId or PolicyIds (at most 30) is required")
        policies = [self._policy(policy_id) for policy_id in ids]
        for policy in policies:
            policy["NoticeIds"] = list(p.get("NoticeIds") or [])
            policy["UpdateTime"] = int(time.time())
        self._save()
        return {}

    def DeleteAlarmPolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._module(p)
        ids = p.get("PolicyIds") or []
        if not ids:
            raise ApiError("InvalidParameter.ParamError", "PolicyIds: at least one")
        for policy_id in ids:
            self._policy(policy_id)
        for policy_id in ids:
            del self.state["policies"][policy_id]
        self._save()
        return {}

    # -- the objects a policy watches -------------------------------------------------------------
    def BindingPolicyObject(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._module(p)
        policy = self._policy(p.get("PolicyId"))
        for i, dim in enumerate(p.get("Dimensions") or []):
            if "-" in (dim.get("Region") or ""):  # "gz", not "ap-guangzhou" (deploy/alarms.py MONITOR_REGIONS)
                raise ApiError("InvalidParameterValue", f"Dimensions[{i}].Region: Cloud Monitor's short region "
                                                        f"name (gz, sh, bj, ...), not {dim['Region']!r}")
            try:
                dims = json.loads(dim.get("Dimensions") or "")
                assert isinstance(dims, dict) and dims
            except (ValueError, AssertionError):
                raise ApiError("InvalidParameter.ParamError", f"Dimensions[{i}].Dimensions: a JSON object such as "
                                                              '{"functionName": "f", "namespace": "default"}') from None
            text = json.dumps(dims, sort_keys=True)
            if not any(b["Dimensions"] == text and b["Region"] == dim.get("Region") for b in policy["bound"]):
                policy["bound"].append({"UniqueId": uuid.uuid4().hex[:12], "Dimensions": text,
                                        "Region": dim.get("Region") or "", "IsShielded": 0})
        self._save()
        return {}

    def DescribeBindingPolicyObjectList(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """GroupId is required even with a PolicyId ("Enter 0 in this field", API page 248/35980)."""
        self._module(p)
        if p.get("GroupId") is None:
            raise ApiError("MissingParameter", "GroupId: required (0 when PolicyId names the policy)")
        policy = self._policy(p.get("PolicyId"))
        limit, offset = min(int(p.get("Limit") or 20), 100), int(p.get("Offset") or 0)
        bound: List[Dict[str, Any]] = policy["bound"]
        return {"List": [dict(b) for b in bound[offset:offset + limit]], "Total": len(bound),
                "NoShieldedSum": len(bound)}

    def UnBindingPolicyObject(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._module(p)
        policy = self._policy(p.get("PolicyId"))
        gone = set(p.get("UniqueId") or [])
        policy["bound"] = [b for b in policy["bound"] if b["UniqueId"] not in gone]
        self._save()
        return {}
