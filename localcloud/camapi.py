"""The CAM API (version 2019-01-16) of the local cloud: roles, custom policies, attachments.

Fields are the SDK's (`tencentcloud/cam/v20190116/models.py`), error codes the SDK's
(`tencentcloud/cam/v20190116/errorcodes.py`: InvalidParameter.RoleNotExist,
InvalidParameter.RoleNameInUse, FailedOperation.PolicyNameInUse,
InvalidParameter.PolicyIdNotExist). Policy documents are checked for the syntax CAM
documents (version 2.0, statements with effect, action `name/<service>:<Action>`,
resources `qcs::<service>:<region>:<uin|uid>/<id>:<resource>`), and a CAM role resource
must use `uin/` (CAM "资源描述方式", 215/8965: `uid/` only for COS and CAS): the mistake this
project once shipped.
The local SCF asks `trusts()` before giving a function its role's credentials.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any, Dict, List

from .tcapi import ApiError, load_state, save_state, timestamp

ACTION_RE = re.compile(r"^name/[a-z0-9]+:[A-Za-z*]+$")
RESOURCE_RE = re.compile(r"^qcs::(?P<service>[a-z0-9]+):[a-z0-9-]*:(?P<kind>uin|uid)/\d+:\S+$")



def check_document(text: str, trust: bool = False) -> Dict[str, Any]:
    """A parsed policy (or, with `trust`, role trust) document, or ApiError naming the problem."""
    try:
        doc = json.loads(text)
        statements = doc["statement"]
        assert doc.get("version") == "2.0" and isinstance(statements, list) and statements
    except (ValueError, KeyError, AssertionError, TypeError):
        raise ApiError("InvalidParameter.PolicyDocumentError", 'a policy document is {"version": "2.0", '
                                                               '"statement": [...]}') from None
    for i, st in enumerate(statements):
        if st.get("effect") not in ("allow", "deny"):
            raise ApiError("InvalidParameter.EffectError", f"statement[{i}].effect must be allow or deny")
        actions = st.get("action")
        actions = [actions] if isinstance(actions, str) else actions
        if not actions or not all(isinstance(a, str) and (a == "*" or ACTION_RE.match(a)) for a in actions):
            raise ApiError("InvalidParameter.ActionError", f"statement[{i}].action: each is name/<service>:<Action>")
        if trust:
            if not isinstance((st.get("principal") or {}).get("service", (st.get("principal") or {}).get("qcs")),
                              (str, list)):
                raise ApiError("InvalidParameter.PrincipalError", f"statement[{i}].principal: service or qcs")
            continue
        resources = st.get("resource")
        resources = [resources] if isinstance(resources, str) else resources
        if not resources:
            raise ApiError("InvalidParameter.ResourceError", f"statement[{i}].resource is required")
        for res in resources:
            m = RESOURCE_RE.match(res) if res != "*" else None
            if res != "*" and not m:
                raise ApiError("InvalidParameter.ResourceError", f"statement[{i}].resource {res!r}: expected "
                                                                 "qcs::<service>:<region>:<uin|uid>/<id>:<resource>")
            if m and m.group("service") == "cam" and m.group("kind") != "uin":
                raise ApiError("InvalidParameter.ResourceError", f"statement[{i}].resource {res!r}: CAM resources "
                                                                 "name the owner as uin/<owner uin>")
    return doc


def reformatted(text: str) -> str:
    """A policy document the way CAM's GetPolicy answers it, not as written: keys in another order, `/`
    escaped, a lone action or resource string turned into a one-element array. No public page documents
    this (the CAM API's GetPolicy page only types PolicyDocument as a string); it is what issue 20 reports
    of the live API, unverified here. A reader must compare parsed, normalised documents."""
    doc = json.loads(text)
    for st in doc.get("statement") or []:
        for key in ("action", "resource"):
            if isinstance(st.get(key), str):
                st[key] = [st[key]]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).replace("/", "\\/")


class CamService:
    def __init__(self, data_dir: str, owner_uin: str = "100000000001", appid: str = "1250000000") -> None:
        self.dir, self.owner_uin, self.appid = data_dir, owner_uin, appid
        self.lock = threading.RLock()
        self.state: Dict[str, Any] = load_state(data_dir, {"roles": {}, "policies": {}, "next_policy": 100000001})

    def _save(self) -> None:
        save_state(self.dir, self.state)

    # -- what the local SCF asks -----------------------------------------------------------------
    def trusts(self, role: str, service: str) -> bool:
        """Whether `role` exists and lets `service` (e.g. scf.qcloud.com) assume it."""
        found = self.state["roles"].get(role)
        if found is None:
            return False
        for st in json.loads(found["PolicyDocument"])["statement"]:
            principal = (st.get("principal") or {}).get("service") or []
            principal = [principal] if isinstance(principal, str) else principal
            if st.get("effect") == "allow" and "name/sts:AssumeRole" in str(st.get("action")) and service in principal:
                return True
        return False

    # -- roles ----------------------------------------------------------------------------------
    def _role(self, p: Dict[str, Any], field: str = "RoleName") -> Dict[str, Any]:
        name = p.get(field)
        if not name and p.get("RoleId"):
            name = next((n for n, r in self.state["roles"].items() if r["RoleId"] == p["RoleId"]), None)
        role = self.state["roles"].get(name or "")
        if role is None:
            raise ApiError("InvalidParameter.RoleNotExist", f"role {name!r} does not exist")
        return role

    def GetUserAppId(self, p: Dict[str, Any]) -> Dict[str, Any]:
        return {"Uin": self.owner_uin, "OwnerUin": self.owner_uin, "AppId": int(self.appid)}

    def CreateRole(self, p: Dict[str, Any]) -> Dict[str, Any]:
        name = p.get("RoleName") or ""
        if not re.fullmatch(r"[\w+=,.@-]{1,128}", name):
            raise ApiError("InvalidParameter.RoleNameError", "RoleName: 1-128 of letters, digits and +=,.@-_")
        if name in self.state["roles"]:
            raise ApiError("InvalidParameter.RoleNameInUse", "role name in use")
        check_document(p.get("PolicyDocument") or "", trust=True)
        role_id = str(4611686018427000000 + len(self.state["roles"]) + 1)
        self.state["roles"][name] = {"RoleId": role_id, "RoleName": name, "PolicyDocument": p["PolicyDocument"],
                                     "Description": p.get("Description") or "", "AddTime": timestamp(),
                                     "UpdateTime": timestamp(), "ConsoleLogin": 0, "RoleType": "user",
                                     "SessionDuration": 7200, "Attached": [],
                                     "RoleArn": f"qcs::cam::uin/{self.owner_uin}:roleName/{name}"}
        self._save()
        return {"RoleId": role_id}

    def GetRole(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p)
        return {"RoleInfo": {k: v for k, v in role.items() if k != "Attached"}}

    def UpdateAssumeRolePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p)
        check_document(p.get("PolicyDocument") or "", trust=True)
        role.update(PolicyDocument=p["PolicyDocument"], UpdateTime=timestamp())
        self._save()
        return {}

    def DeleteRole(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p)
        del self.state["roles"][role["RoleName"]]
        self._save()
        return {}

    # -- policies -------------------------------------------------------------------------------
    def _policy(self, policy_id: Any) -> Dict[str, Any]:
        policy = self.state["policies"].get(str(policy_id))
        if policy is None:
            raise ApiError("InvalidParameter.PolicyIdNotExist", f"policy {policy_id!r} does not exist")
        return policy

    def _policy_by(self, p: Dict[str, Any]) -> Dict[str, Any]:
        if p.get("PolicyId") is not None:
            return self._policy(p["PolicyId"])
        for policy in self.state["policies"].values():
            if policy["PolicyName"] == p.get("PolicyName"):
                return policy
        raise ApiError("InvalidParameter.PolicyIdNotExist", f"policy {p.get('PolicyName')!r} does not exist")

    def CreatePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        name = p.get("PolicyName") or ""
        if not re.fullmatch(r"[\w+=,.@-]{1,128}", name):
            raise ApiError("InvalidParameter.PolicyNameError", "PolicyName: 1-128 of letters, digits and +=,.@-_")
        if any(x["PolicyName"] == name for x in self.state["policies"].values()):
            raise ApiError("FailedOperation.PolicyNameInUse", "policy name in use")
        check_document(p.get("PolicyDocument") or "")
        policy_id = self.state["next_policy"]
        self.state["next_policy"] += 1
        self.state["policies"][str(policy_id)] = {"PolicyId": policy_id, "PolicyName": name,
                                                  "PolicyDocument": p["PolicyDocument"], "Type": 1,
                                                  "Description": p.get("Description") or "", "AddTime": timestamp(),
                                                  "UpdateTime": timestamp()}
        self._save()
        return {"PolicyId": policy_id}

    def GetPolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        policy = self._policy(p.get("PolicyId"))
        out = {k: policy[k] for k in ("PolicyName", "Description", "Type", "AddTime", "UpdateTime")}
        return {**out, "PolicyDocument": reformatted(policy["PolicyDocument"])}

    def UpdatePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        policy = self._policy_by(p)
        if p.get("PolicyDocument"):
            check_document(p["PolicyDocument"])
            policy["PolicyDocument"] = p["PolicyDocument"]
        if p.get("Description") is not None:
            policy["Description"] = p["Description"]
        policy["UpdateTime"] = timestamp()
        self._save()
        return {"PolicyId": policy["PolicyId"]}

    def DeletePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        for policy_id in p.get("PolicyId") or []:
            self._policy(policy_id)
            for role in self.state["roles"].values():
                if policy_id in role["Attached"]:
                    role["Attached"].remove(policy_id)
            del self.state["policies"][str(policy_id)]
        self._save()
        return {}

    def ListPolicies(self, p: Dict[str, Any]) -> Dict[str, Any]:
        found = [x for x in self.state["policies"].values() if (p.get("Keyword") or "") in x["PolicyName"]]
        if (p.get("Scope") or "All") == "QCS":
            found = []
        rp, page = p.get("Rp") or 20, p.get("Page") or 1
        rows = [{"PolicyId": x["PolicyId"], "PolicyName": x["PolicyName"], "AddTime": x["AddTime"], "Type": 1,
                 "Description": x["Description"], "CreateMode": 1} for x in found[(page - 1) * rp:page * rp]]
        return {"TotalNum": len(found), "List": rows, "ServiceTypeList": []}

    def AttachRolePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p, "AttachRoleName")
        policy = self._policy_by(p)
        if policy["PolicyId"] not in role["Attached"]:
            role["Attached"].append(policy["PolicyId"])
        self._save()
        return {}

    def DetachRolePolicy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p, "DetachRoleName")
        policy = self._policy_by(p)
        if policy["PolicyId"] in role["Attached"]:
            role["Attached"].remove(policy["PolicyId"])
        self._save()
        return {}

    def ListAttachedRolePolicies(self, p: Dict[str, Any]) -> Dict[str, Any]:
        role = self._role(p)
        rows: List[Dict[str, Any]] = []
        for policy_id in role["Attached"]:
            x = self._policy(policy_id)
            rows.append({"PolicyId": x["PolicyId"], "PolicyName": x["PolicyName"], "AddTime": x["AddTime"],
                         "PolicyType": "User", "CreateMode": 1, "Description": x["Description"]})
        rp, page = p.get("Rp") or 20, p.get("Page") or 1
        return {"List": rows[(page - 1) * rp:page * rp], "TotalNum": len(rows)}
