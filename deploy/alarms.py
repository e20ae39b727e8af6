"""Alarm policies as code: serverless.yml's `alarms:` made real through the Cloud Monitor API.

API: Monitor 2018-07-24 (`tencentcloud/monitor/v20180724/models.py`; CreateAlarmPolicy, page
248/39326): CreateAlarmPolicy (Module "monitor", MonitorType MT_QCE, Condition.Rules), then
BindingPolicyObject (the functions it watches); DescribeAlarmPolicies and
DescribeBindingPolicyObjectList read them back; ModifyAlarmPolicyCondition (the rule and Enable),
ModifyAlarmPolicyNotice (the notice templates, API page 248/51274: ModifyAlarmPolicyCondition's
NoticeIds is "专供prom使用", Prometheus policies only, in the SDK's ModifyAlarmPolicyConditionRequest;
Tencent's Terraform provider, resource_tc_monitor_alarm_policy.go, changes notice_ids the same way),
BindingPolicyObject / UnBindingPolicyObject put a drifted one right; DeleteAlarmPolicy removes it.
Metrics: namespace QCE/SCF_V2 (deploy/components.py ALARM_METRICS, with their source).

Policies are found in the cloud, not in a state file: the SCF policies (DescribeAlarmPolicies,
policy type scf_v2) carrying the remark this module writes (`<app>-<stage>`, the remark allows
only letters, digits, _ and -), by name. A policy without that remark is never changed or
deleted: deploy refuses to take over a same-named policy someone else made, destroy leaves it.

Not verified against a real account (no account here): the policy type id `scf_v2` (the
`QceNamespacesNew.Id` DescribeAllNamespaces answers for QCE/SCF_V2, which CreateAlarmPolicy's
Namespace takes), the binding dimensions `{"functionName", "namespace"}` (the metric
page's dimension names) and the binding's short region name (MONITOR_REGIONS). README "Alarms as
code" and deploy/README.md say how to check them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from .clients import Api

MODULE, MONITOR_TYPE = "monitor", "MT_QCE"
POLICY_TYPE = "scf_v2"  # CreateAlarmPolicy.Namespace for SCF (see the module docstring)
PAGE = 100  # DescribeAlarmPolicies PageSize: 1-100


@dataclass(frozen=True)
class AlarmSpec:
    """One declared policy, in the API's terms."""

    name: str
    metric: str
    period: int
    operator: str
    threshold: str  # AlarmPolicyRule.Value is a string
    periods: int
    repeat: int
    functions: List[str]  # SCF function names it watches
    notices: List[str]

    def condition(self) -> Dict[str, Any]:
        return {"IsUnionRule": 0, "Rules": [{"MetricName": self.metric, "Period": self.period,
                                             "Operator": self.operator, "Value": self.threshold,
                                             "ContinuePeriod": self.periods, "NoticeFrequency": self.repeat,
                                             "IsPowerNotice": 0}]}


# PolicyName: "up to 20 characters" (API page 248/39326, updated 2025-11-13); the SDK model (monitor v20180724
# models.py, 3.1.189) says 60. The stricter holds until a real account says.
NAME_MAX = 20


def policy_name(declared: str) -> str:
    """The PolicyName of a declared alarm: as declared when it fits, else its first characters and 4 hex of the
    whole name's hash (cm-production-throttle -> cm-production-t-<hash>), so a stage name longer than 8
    characters still deploys and two stages' names stay apart. Ours are found by remark and this name."""
    if len(declared) <= NAME_MAX:
        return declared
    import hashlib

    return declared[:NAME_MAX - 5].rstrip("-") + "-" + hashlib.sha256(declared.encode()).hexdigest()[:4]


def remark(app: str, stage: str) -> str:
    return f"{app}-{stage}"


def wanted(declared: List[Any], functions: Dict[str, Any]) -> List[AlarmSpec]:
    """serverless.yml's alarms (components.AlarmPolicy) for the spec's functions (spec.FunctionSpec by key)."""
    out = []
    for alarm in declared:
        names = [functions[k].name for k in alarm.functions
                 if not alarm.onlyWithDeadLetter or functions[k].dead_letter]
        if not names:
            continue  # e.g. the dead-letter alarm when no queue is configured
        threshold = alarm.threshold
        out.append(AlarmSpec(name=policy_name(alarm.name), metric=alarm.metric, period=alarm.period, operator=alarm.operator,
                             threshold=str(int(threshold)) if float(threshold).is_integer() else str(threshold),
                             periods=alarm.periods, repeat=alarm.repeat, functions=sorted(names),
                             notices=sorted(n.strip() for n in (alarm.notices or "").split(",") if n.strip())))
    return out


# BindingPolicyObjectDimension.Region is Cloud Monitor's short region name ("gz" for ap-guangzhou), not the
# API region: Tencent's Terraform provider maps every binding through this table (MonitorRegionMap,
# tencentcloud/services/monitor/extension_monitor.go) and refuses a region it lacks. Not verified on an account.
MONITOR_REGIONS = {
    "ap-guangzhou": "gz", "ap-shenzhen-fsi": "szjr", "ap-guangzhou-open": "gzopen", "ap-shenzhen": "szx",
    "ap-shanghai": "sh", "ap-shanghai-fsi": "shjr", "ap-nanjing": "nj", "ap-beijing": "bj", "ap-tianjin": "tsn",
    "ap-beijing-fsi": "bjjr", "ap-chengdu": "cd", "ap-chongqing": "cq", "ap-taipei": "tpe", "ap-hongkong": "hk",
    "ap-singapore": "sg", "ap-bangkok": "th", "ap-mumbai": "in", "ap-seoul": "kr", "ap-tokyo": "jp",
    "na-siliconvalley": "usw", "na-ashburn": "use", "na-toronto": "ca", "eu-frankfurt": "de", "eu-moscow": "ru",
    "ap-qingyuan": "qy", "ap-jakarta": "jkt", "sa-saopaulo": "sao"}


def _dims(function: str, namespace: str, region: str) -> Dict[str, Any]:
    return {"Region": MONITOR_REGIONS.get(region, region),
            "Dimensions": json.dumps({"functionName": function, "namespace": namespace})}


class Alarms:
    """Reads through `monitor`; writes through `write(step kind/verb/name/detail, action, params)`, the
    deployer's one way to plan or make a change (so plan, apply and the step list stay one)."""

    def __init__(self, monitor: Api, stage: str, app: str, namespace: str, region: str,
                 write: Callable[[str, str, str, str, str, Dict[str, Any]], Dict[str, Any]]) -> None:
        self.monitor, self.stage, self.app, self.namespace, self.region = monitor, stage, app, namespace, region
        self.write = write

    # -- reading --------------------------------------------------------------------------------
    def found(self) -> Dict[str, List[Dict[str, Any]]]:
        """Every SCF alarm policy, by name (ours carry our remark: `ours`)."""
        out: Dict[str, List[Dict[str, Any]]] = {}
        page = 1
        while True:
            got = self.monitor.call("DescribeAlarmPolicies", {
                "Module": MODULE, "PageNumber": page, "PageSize": PAGE, "MonitorTypes": [MONITOR_TYPE],
                "Namespaces": [POLICY_TYPE]})
            for policy in got.get("Policies") or []:
                out.setdefault(policy["PolicyName"], []).append(policy)
            if page * PAGE >= int(got.get("TotalCount") or 0):
                return out
            page += 1

    def bound(self, policy_id: str) -> Dict[str, str]:
        """function name -> UniqueId of the binding, for the functions `policy_id` watches."""
        out, offset = {}, 0
        while True:
            got = self.monitor.call("DescribeBindingPolicyObjectList", {  # GroupId: required, 0 (API page 248/35980)
                "Module": MODULE, "GroupId": 0, "PolicyId": policy_id, "Limit": 100, "Offset": offset})
            items = got.get("List") or []
            for item in items:
                name = json.loads(item.get("Dimensions") or "{}").get("functionName")
                if name:
                    out[name] = item["UniqueId"]
            offset += len(items)
            if not items or offset >= int(got.get("Total") or 0):
                return out

    def ours(self, policies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return [p for p in policies if p.get("Remark") == remark(self.app, self.stage)]

    @staticmethod
    def drift(alarm: AlarmSpec, policy: Dict[str, Any]) -> List[str]:
        """What differs between the declaration and the policy (condition and notices)."""
        return Alarms.condition_drift(alarm, policy) + Alarms.notice_drift(alarm, policy)

    @staticmethod
    def condition_drift(alarm: AlarmSpec, policy: Dict[str, Any]) -> List[str]:
        """What ModifyAlarmPolicyCondition puts right: the rule and whether the policy is enabled."""
        rules = (policy.get("Condition") or {}).get("Rules") or [{}]
        want = alarm.condition()["Rules"][0]
        changed = [f"{k} {rules[0].get(k)!r} -> {v!r}" for k, v in want.items()
                   if k != "IsPowerNotice" and str(rules[0].get(k)) != str(v)]
        if len(rules) != 1:
            changed.append(f"{len(rules)} rules -> 1")
        if policy.get("Enable") not in (1, None):
            changed.append("disabled -> enabled")
        return changed

    @staticmethod
    def notice_drift(alarm: AlarmSpec, policy: Dict[str, Any]) -> List[str]:
        """What ModifyAlarmPolicyNotice puts right: the notice templates."""
        have = sorted(policy.get("NoticeIds") or [])
        return [f"notices {have} -> {alarm.notices}"] if have != alarm.notices else []

    # -- deploy and destroy ---------------------------------------------------------------------
    def apply(self, alarms: List[AlarmSpec]) -> None:
        found = self.found()
        for alarm in alarms:
            mine = self.ours(found.get(alarm.name, []))
            if not mine and found.get(alarm.name):
                from .clients import ApiCallError

                raise ApiCallError("CreateAlarmPolicy", "NameTaken", f"an alarm policy named {alarm.name!r} exists "
                                   f"without the remark {remark(self.app, self.stage)!r}: it is not this deployment's; rename "
                                   "or delete it, or rename the alarm in serverless.yml")
            if not mine:
                made = self.write("create", "alarm", alarm.name, f"{alarm.metric} {alarm.operator} {alarm.threshold} "
                                  f"per {alarm.period} s", "CreateAlarmPolicy", {
                                      "Module": MODULE, "PolicyName": alarm.name, "MonitorType": MONITOR_TYPE,
                                      "Namespace": POLICY_TYPE, "Remark": remark(self.app, self.stage), "Enable": 1,
                                      "Condition": alarm.condition(), "NoticeIds": alarm.notices or None})
                self._bind(alarm, made.get("PolicyId") or "<the new policy>", alarm.functions)
                continue
            policy = mine[0]
            changed = self.condition_drift(alarm, policy)
            if changed:
                self.write("update", "alarm", alarm.name, "; ".join(changed), "ModifyAlarmPolicyCondition", {
                    "Module": MODULE, "PolicyId": policy["PolicyId"], "Condition": alarm.condition(), "Enable": 1})
            changed = self.notice_drift(alarm, policy)
            if changed:
                self.write("update", "alarm", alarm.name, "; ".join(changed), "ModifyAlarmPolicyNotice", {
                    "Module": MODULE, "PolicyId": policy["PolicyId"], "NoticeIds": alarm.notices})
            bound = self.bound(policy["PolicyId"])
            self._bind(alarm, policy["PolicyId"], [f for f in alarm.functions if f not in bound])
            extra = sorted(f for f in bound if f not in alarm.functions)
            if extra:
                self.write("detach", "alarm", alarm.name, f"from {', '.join(extra)}", "UnBindingPolicyObject",
                           {"Module": MODULE, "GroupId": 0, "PolicyId": policy["PolicyId"],
                            "UniqueId": [bound[f] for f in extra]})
        declared = {a.name for a in alarms}
        for name, policies in sorted(found.items()):
            if name not in declared:  # removed from serverless.yml: ours go
                self._delete(name, self.ours(policies))

    def _bind(self, alarm: AlarmSpec, policy_id: str, functions: List[str]) -> None:
        if functions:
            self.write("attach", "alarm", alarm.name, f"to {', '.join(functions)}", "BindingPolicyObject", {
                "Module": MODULE, "GroupId": 0, "PolicyId": policy_id,
                "Dimensions": [_dims(f, self.namespace, self.region) for f in functions]})

    def _delete(self, name: str, policies: List[Dict[str, Any]]) -> None:
        if policies:
            self.write("delete", "alarm", name, "", "DeleteAlarmPolicy",
                       {"Module": MODULE, "PolicyIds": [p["PolicyId"] for p in policies]})

    def destroy(self) -> None:
        for name, policies in sorted(self.found().items()):
            self._delete(name, self.ours(policies))

    # -- doctor ---------------------------------------------------------------------------------
    def check(self, alarms: List[AlarmSpec]) -> List[tuple]:
        """(name, ok, detail) per declared alarm."""
        found, out = self.found(), []
        for alarm in alarms:
            mine = self.ours(found.get(alarm.name, []))
            if not mine:
                out.append((alarm.name, False, "missing"))
                continue
            problems = self.drift(alarm, mine[0])
            bound = self.bound(mine[0]["PolicyId"])
            missing = [f for f in alarm.functions if f not in bound]
            if missing:
                problems.append(f"not watching {', '.join(missing)}")
            out.append((alarm.name, not problems, "; ".join(problems) or
                        f"{alarm.metric} {alarm.operator} {alarm.threshold} per {alarm.period} s on "
                        f"{', '.join(alarm.functions)}"))
        return out


def for_spec(spec: Any, monitor: Optional[Api], write: Callable[..., Dict[str, Any]]) -> Alarms:
    return Alarms(monitor or Api("monitor", spec.environ, spec.region), spec.stage, spec.app, spec.namespace,
                  spec.region, write)
