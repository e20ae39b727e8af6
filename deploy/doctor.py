"""`cos-matting doctor`: check a live deployment against serverless.yml; a fix for each failure.

Reads only (the SDKs: tencentcloud-sdk-python-cam/-scf, cos-python-sdk-v5). Each check
is independent: one that cannot run (say, no credentials) fails with its reason and
the others still report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional

from .apply import FN_MISSING, ROLE_MISSING, function_url
from .clients import Api, ApiCallError
from .spec import CALLBACK_URL, NEEDS_CALLBACK_URL, Spec, policy_for

REQUIRED_ACTIONS = ("name/ci:CreateMediaJobs", "name/ci:DescribeMediaJob", "name/cam:PassRole",
                    "name/cos:PutObject", "name/cos:GetObjectTagging")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


class Doctor:
    def __init__(self, spec: Spec, scf: Api, cam: Api, cos: Any, http_get: Callable[[str], int],
                 monitor: Optional[Api] = None) -> None:
        self.spec, self.scf, self.cam, self.cos, self.http_get = spec, scf, cam, cos, http_get
        self.monitor = monitor
        self.checks: List[Check] = []
        self.owner = spec.owner_uin

    def run(self) -> List[Check]:
        for check in (self.credentials, self.bucket, self.ci_binding, self.records_versioning, self.role,
                      self.functions, self.cos_trigger, self.function_url, self.timer, self.alarms):
            try:
                check()
            except Exception as exc:  # a check that cannot run fails with its reason; the others go on
                name = check.__name__.replace("_", " ")
                reason = f"{exc.code}: {exc.message}" if isinstance(exc, ApiCallError) else f"{type(exc).__name__}: {exc}"
                self.add(name, False, f"could not check ({reason[:300]})", "fix the cause above and run doctor again")
        return self.checks

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, ok, detail, "" if ok else fix))

    def _ns(self, key: str) -> dict:
        return {"FunctionName": self.spec.functions[key].name, "Namespace": self.spec.namespace}

    # -- the checks -----------------------------------------------------------------------------
    def credentials(self) -> None:
        got = self.cam.call("GetUserAppId", {})
        self.owner = self.owner or str(got.get("OwnerUin") or "")
        self.add("credentials", True, f"uin {got.get('Uin')}, owner {got.get('OwnerUin')}, appid {got.get('AppId')}")

    def _settings(self) -> Any:
        from shared.config import load_settings

        return load_settings(self.spec.functions["submit"].env)

    def bucket(self) -> None:
        from qcloud_cos.cos_exception import CosServiceError

        s = self._settings()
        for label, bucket in (("source", s.bucket), ("output", s.out_bucket), ("records", s.rec_bucket)):
            try:
                self.cos.head_bucket(Bucket=bucket)
            except CosServiceError as exc:
                self.add(f"{label} bucket", False, f"{bucket}: HTTP {exc.get_status_code()} {exc.get_error_code()}",
                         f"create {bucket} in {s.region} (or fix COS_MATTING_BUCKET / _REGION), and let your keys "
                         "read it")
                continue
            if label == "source" or bucket != s.bucket:
                self.add(f"{label} bucket", True, f"{bucket} exists")

    def ci_binding(self) -> None:
        s = self._settings()
        media = self.cos.ci_get_media_bucket(Regions=s.region, BucketNames=s.bucket)
        ai = self.cos.ci_get_ai_bucket(Regions=s.region, BucketNames=s.bucket)

        def listed(data: Mapping[str, Any], *fields: str) -> bool:
            items: Any = []
            for field in fields:
                items = data.get(field) or items
            items = items if isinstance(items, list) else [items]
            return any(isinstance(i, dict) and s.bucket in (i.get("BucketId"), i.get("Name")) for i in items)

        bound, enabled = listed(media, "MediaBucketList"), listed(ai, "AiBucketList", "MediaBucketList")
        self.add("bucket bound to CI", bound and enabled,
                 f"{s.bucket}: media processing {'on' if bound else 'OFF'}, AI content recognition "
                 f"{'on' if enabled else 'OFF'}",
                 "CI console -> Bucket management -> bind the bucket, then enable AI content recognition for it "
                 "(SegmentVideoBody is an AI job)")

    def records_versioning(self) -> None:
        s = self._settings()
        status = (self.cos.get_bucket_versioning(Bucket=s.rec_bucket) or {}).get("Status") or "never enabled"
        self.add("records bucket not versioned", status != "Enabled",
                 f"{s.rec_bucket}: versioning {status}",
                 "records are written create-if-absent (x-cos-forbid-overwrite), which COS ignores on versioned "
                 "buckets: use an unversioned bucket for COS_MATTING_RECORDS_BUCKET")

    def role(self) -> None:
        spec = self.spec
        got = self.cam.get("GetRole", {"RoleName": spec.role}, ROLE_MISSING)
        if got is None:
            self.add("role", False, f"{spec.role} does not exist", "cos-matting deploy (creates it)")
            return
        trust = json.loads(got["RoleInfo"]["PolicyDocument"])
        trusted = any("scf.qcloud.com" in json.dumps(st.get("principal")) for st in trust.get("statement", []))
        self.add("role", trusted, f"{spec.role} " + ("trusts scf.qcloud.com" if trusted else "does not trust SCF"),
                 "cos-matting deploy (adds the trust in scf.qcloud.com)")
        attached = self.cam.call("ListAttachedRolePolicies", {"RoleName": spec.role, "Page": 1, "Rp": 200})
        mine = [p for p in attached.get("List") or [] if p["PolicyName"] == spec.policy_name]
        if not mine:
            self.add("policy", False, f"{spec.policy_name} is not attached to {spec.role}", "cos-matting deploy")
            return
        document = json.loads(self.cam.call("GetPolicy", {"PolicyId": mine[0]["PolicyId"]})["PolicyDocument"])
        actions = {a for st in document.get("statement", []) for a in st.get("action", [])}
        missing = [a for a in REQUIRED_ACTIONS if a not in actions]
        same = document == policy_for(spec, self.owner) if self.owner else not missing
        self.add("policy", not missing and same,
                 f"{spec.policy_name}: {len(document.get('statement', []))} statements"
                 + (f", lacks {', '.join(missing)}" if missing else "") + ("" if same else ", differs from "
                                                                            "deploy/cam-policy.json"),
                 "cos-matting deploy (rewrites the policy from deploy/cam-policy.json)")

    def functions(self) -> None:
        for fn in self.spec.ordered():
            got = self.scf.get("GetFunction", self._ns(fn.key), FN_MISSING)
            if got is None:
                self.add(f"function {fn.key}", False, f"{fn.name} does not exist", "cos-matting deploy")
                continue
            env = {v["Key"]: v["Value"] for v in (got.get("Environment") or {}).get("Variables") or []}
            layers = [x["LayerName"] for x in got.get("Layers") or []]
            problems = []
            if got.get("Runtime") != fn.runtime:
                problems.append(f"runtime {got.get('Runtime')} (want {fn.runtime})")
            if got.get("Status") != "Active":
                problems.append(f"status {got.get('Status')}")
            if self.spec.layer_name not in layers:
                problems.append(f"layer {self.spec.layer_name} missing")
            empty = sorted(k for k, v in env.items() if v == "")
            drift = sorted(k for k in set(env) | set(fn.env) if k != CALLBACK_URL and env.get(k) != fn.env.get(k))
            if empty:
                problems.append(f"empty variables {', '.join(empty)}")
            if drift:
                problems.append(f"environment differs from serverless.yml + .env in {', '.join(drift)}")
            if fn.key in NEEDS_CALLBACK_URL and not env.get(CALLBACK_URL):
                problems.append(f"{CALLBACK_URL} unset (jobs would not call back)")
            bound = ", ".join(f"{x['LayerName']}:{x['LayerVersion']}" for x in got.get("Layers") or [])
            self.add(f"function {fn.key}", not problems,
                     f"{fn.name}: " + ("; ".join(problems) if problems else
                                       f"{got.get('Runtime')}, layer {bound}, {len(env)} variables"),
                     "cos-matting deploy (updates the function)")

    def _triggers(self, key: str, kind: str) -> List[dict]:
        listed = self.scf.get("ListTriggers", {**self._ns(key), "Limit": 100}, FN_MISSING) or {}
        return [t for t in listed.get("Triggers") or [] if t["Type"] == kind]

    def cos_trigger(self) -> None:
        s = self._settings()
        found = self._triggers("submit", "cos")
        if not found:
            self.add("COS trigger", False, "submit has no COS trigger", "cos-matting deploy")
            return
        problems, seen = [], []
        for t in found:
            desc = json.loads(t["TriggerDesc"])
            prefix = (desc.get("filter") or {}).get("Prefix") or ""
            bucket = t["TriggerName"].split(".cos.", 1)[0]
            seen.append(f"{bucket}/{prefix}*")
            if t["Enable"] not in (1, "OPEN", True):
                problems.append(f"{t['TriggerName']} is disabled")
            if not any(prefix.startswith(w) for w in s.watch_prefixes):
                problems.append(f"prefix {prefix!r} is not a watched prefix {list(s.watch_prefixes)}")
            for label, other, guarded in (("output", s.out_bucket, s.output_prefix),
                                          ("records", s.rec_bucket, s.records_prefix)):
                if other == bucket and (prefix.startswith(guarded) or guarded.startswith(prefix)):
                    problems.append(f"prefix {prefix!r} overlaps the {label} prefix {guarded!r} (a loop)")
        self.add("COS trigger", not problems, "; ".join(problems) or f"enabled on {', '.join(seen)}",
                 "cos-matting deploy (recreates the trigger from serverless.yml)")

    def function_url(self) -> None:
        found = self._triggers("callback", "http")
        url = function_url(found[0]) if found else None
        if not url:
            self.add("Function URL", False, "callback has no Function URL", "cos-matting deploy")
            return
        status = self.http_get(url)
        self.add("Function URL", status == 200, f"GET {url} -> {status or 'no answer'}",
                 "look at the callback function's logs (SCF console -> Log query); cos-matting deploy")

    def timer(self) -> None:
        found = [t for t in self._triggers("reconcile", "timer") if t["Enable"] in (1, "OPEN", True)]
        crons = [json.loads(t["TriggerDesc"]).get("cron") if t["TriggerDesc"].startswith("{") else t["TriggerDesc"]
                 for t in found]
        self.add("timer", bool(found), f"reconcile every {', '.join(crons)}" if found else "no enabled timer on "
                 "reconcile", "cos-matting deploy")

    def alarms(self) -> None:
        """serverless.yml's alarm policies exist, match and watch their functions (deploy/alarms.py)."""
        from .alarms import for_spec

        for name, ok, detail in for_spec(self.spec, self.monitor, lambda *a: {}).check(self.spec.alarms):
            self.add(f"alarm {name}", ok, detail, "cos-matting deploy")


def http_status(url: str, timeout: float = 30.0) -> int:
    """The status of a GET (0 when nothing answers); 30 s allows a cold start of the callback function."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the deployed Function URL
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def cos_client(spec: Spec, environ: Mapping[str, str]) -> Any:
    from shared.cloud import cos_client as make
    from shared.config import load_settings

    from .clients import credential

    cred = credential(environ)
    env = {**environ, "TENCENTCLOUD_SECRETID": cred.secret_id, "TENCENTCLOUD_SECRETKEY": cred.secret_key,
           "TENCENTCLOUD_SESSIONTOKEN": cred.token or ""}
    local = {"COS_MATTING_ENDPOINT": environ["COS_MATTING_ENDPOINT"]} if environ.get("COS_MATTING_ENDPOINT") else {}
    settings = load_settings({**spec.functions["submit"].env, **local})
    return make(settings, settings.region, 1, env)
