"""`cos-matting doctor`: check a live deployment against serverless.yml; a fix for each failure.

Reads only (the SDKs: tencentcloud-sdk-python-cam/-scf, cos-python-sdk-v5), plus one health
invocation per function: SCF `Invoke` (RequestResponse) with `{"cos-matting": "health"}`, which
every handler answers before anything else, touching neither COS nor CI (shared/health.py). So
doctor proves each function starts with its settings, not only that it exists. The stage's
functions and the settings they run with are found in the cloud (deploy/stage.py). Each check
is independent: one that cannot run (say, no credentials) fails with its reason and the
others still report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional

from .apply import FN_MISSING, ROLE_MISSING, Planner, function_url
from .clients import Api, ApiCallError
from .spec import CALLBACK_URL, NEEDS_CALLBACK_URL, Spec, policy_for
from .stage import DeployedStage, StageNotFound, listed, neighbours, normalised, overlaps, places, resolve

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
                 monitor: Optional[Api] = None, zips: Optional[Mapping[str, bytes]] = None) -> None:
        self.spec, self.scf, self.cam, self.cos, self.http_get = spec, scf, cam, cos, http_get
        self.monitor = monitor
        self.zips = zips  # the zips serverless.yml builds: the drift check compares the deployed code with them
        self.checks: List[Check] = []
        self.owner = spec.owner_uin
        self._deployed: Any = None  # DeployedStage, or the StageNotFound met, once looked up

    def run(self) -> List[Check]:
        for check in (self.credentials, self.bucket, self.ci_binding, self.ai_recognition, self.records_versioning,
                      self.role, self.functions, self.health, self.cos_trigger, self.other_stages,
                      self.function_url, self.timer,
                      self.alarms, self.drift):
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

    def deployed(self) -> Optional[DeployedStage]:
        """The stage as the cloud has it (deploy/stage.py), or None when none of its functions exists."""
        if self._deployed is None:
            spec = self.spec
            try:
                self._deployed = resolve({}, spec.stage, app=spec.app, region=spec.region, namespace=spec.namespace,
                                         scf=self.scf)
            except StageNotFound as exc:
                self._deployed = exc
        return self._deployed if isinstance(self._deployed, DeployedStage) else None

    def _settings(self) -> Any:
        """The settings submit runs with (its deployed variables), else the ones deploy would give it."""
        from shared.config import ConfigError, load_settings

        deployed = self.deployed()
        if deployed is not None and "submit" in deployed.functions:
            try:
                return load_settings(deployed.functions["submit"].env)
            except ConfigError:
                pass  # the health check names what is wrong; the bucket checks still run
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

    # SegmentVideoBody is an AI content recognition job of Cloud Infinite: it needs the bucket bound to
    # CI and AI content recognition on for it (CI API "查询 AI 内容识别服务", 460/79594 and 1045/72921:
    # "Using this feature requires enabling Cloud Infinite in advance and binding a bucket").
    def ci_binding(self) -> None:
        """DescribeCIBuckets, `GET /cibuckets` on ci.<region>.myqcloud.com (460/97527; cos-go-sdk-v5 ci.go
        `DescribeCIBuckets`, `CIBucketList`); cos-python-sdk-v5 has no method of its own, its generic
        `ci_get_bucket(Path=...)` sends it signed. `bucketName` is a prefix search."""
        s = self._settings()
        data = self.cos.ci_get_bucket(Path="/cibuckets", BucketName=s.bucket, PageSize="100")
        entry = _listed(data, "CIBucketList", s.bucket)
        status = str((entry or {}).get("Status") or "").lower()
        bound = entry is not None and status not in ("off", "unbinding")  # CIStatus words, 460/97481
        self.add("bucket bound to CI", bound,
                 f"{s.bucket}: " + (f"bound to Cloud Infinite ({status or 'listed'})" if bound else
                                    "not bound to Cloud Infinite" + (f" (status {status})" if entry else "")),
                 "CI console -> Bucket management -> bind the bucket (SegmentVideoBody is a CI job)")

    def ai_recognition(self) -> None:
        """`GET /ai_bucket` (DescribeAiProcessBuckets: 460/79594, 436/50196; cos-python-sdk-v5
        `ci_get_ai_bucket`): the buckets with AI content recognition on. Not `/mediabucket`, which lists
        media processing (transcoding), a different service."""
        s = self._settings()
        data = self.cos.ci_get_ai_bucket(Regions=s.region, BucketNames=s.bucket)
        enabled = _listed(data, "AiBucketList", s.bucket) is not None
        self.add("AI content recognition", enabled,
                 f"{s.bucket}: AI content recognition {'on' if enabled else 'OFF'}",
                 "CI console -> the bucket -> AI content recognition: enable it (SegmentVideoBody needs it)")

    def records_versioning(self) -> None:
        """GET Bucket versioning has no Status for a bucket that never had versioning; once enabled it can
        only be Suspended, never off again (PUT Bucket versioning, 436/19889). Create-if-absent writes
        (x-cos-forbid-overwrite) are ignored on a bucket that has or ever had versioning (COS PUT Object,
        436/7749, as secondary sources read it; not verified live): so Suspended fails too."""
        s = self._settings()
        status = (self.cos.get_bucket_versioning(Bucket=s.rec_bucket) or {}).get("Status") or "never enabled"
        self.add("records bucket not versioned", status == "never enabled",
                 f"{s.rec_bucket}: versioning {status}",
                 "records are written create-if-absent (x-cos-forbid-overwrite), which COS ignores on a bucket "
                 "that has or ever had versioning (Suspended cannot be undone): use a bucket that never had it for "
                 "COS_MATTING_RECORDS_BUCKET")

    def role(self) -> None:
        spec = self.spec
        got = self.cam.get("GetRole", {"RoleName": spec.role}, ROLE_MISSING)
        if got is None:
            self.add("role", False, f"{spec.role} does not exist", "cos-matting deploy (creates it)")
            return
        trust = json.loads(got["RoleInfo"]["PolicyDocument"])
        trusted = any("scf.qcloud.com" in json.dumps(x.get("principal")) for x in trust.get("statement", []))
        self.add("role", trusted, f"{spec.role} " + ("trusts scf.qcloud.com" if trusted else "does not trust SCF"),
                 "cos-matting deploy (adds the trust in scf.qcloud.com)")
        attached = self.cam.call("ListAttachedRolePolicies", {"RoleName": spec.role, "Page": 1, "Rp": 200})
        mine = [p for p in attached.get("List") or [] if p["PolicyName"] == spec.policy_name]
        if not mine:
            self.add("policy", False, f"{spec.policy_name} is not attached to {spec.role}", "cos-matting deploy")
            return
        # CAM's GetPolicy reformats the document (arrays for lone strings, key order, escapes): compare normalised
        document = normalised(json.loads(self.cam.call("GetPolicy", {"PolicyId": mine[0]["PolicyId"]})
                                            ["PolicyDocument"]))
        actions = {a for s in document.get("statement", []) for a in s.get("action", [])}
        missing = [a for a in REQUIRED_ACTIONS if a not in actions]
        same = document == normalised(policy_for(spec, self.owner)) if self.owner else not missing
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

    def health(self) -> None:
        """Each function answers the health event through SCF's own Invoke: it starts, loads its
        settings, and says what is wrong with them (shared/health.py)."""
        from shared.health import EVENT

        deployed = self.deployed()
        for fn in self.spec.ordered():
            found = deployed.functions.get(fn.key) if deployed else None
            name = found.name if found else fn.name
            if found is None:
                self.add(f"{fn.key} answers", False, f"{name} does not exist", "cos-matting deploy")
                continue
            got = self.scf.call("Invoke", {"FunctionName": name, "Namespace": found.namespace,
                                           "InvocationType": "RequestResponse", "Qualifier": "$DEFAULT",
                                           "ClientContext": json.dumps(EVENT), "LogType": "None"})
            result = got.get("Result") or {}
            answer = _json(result.get("RetMsg"))
            took = f"{float(result.get('Duration') or 0):.0f} ms"
            if result.get("InvokeResult") not in (0, None) or not isinstance(answer, dict):
                error = str(result.get("ErrMsg") or result.get("RetMsg") or "no answer")[:300]
                self.add(f"{fn.key} answers", False, f"{name}: the health invocation failed ({took}): {error}",
                         "look at the function's logs (cos-matting logs); cos-matting deploy")
            elif not answer.get("ok"):
                self.add(f"{fn.key} answers", False, f"{name}: {answer.get('settings')}",
                         "set the variable named above (.env or serverless.yml), then cos-matting deploy")
            else:
                self.add(f"{fn.key} answers", True, f"{name}: settings ok, deployment {answer.get('deployment') or '-'}"
                                                    f", Python {answer.get('python')}, {took}")

    def _triggers(self, key: str, kind: str) -> List[dict]:
        listed = self.scf.get("ListTriggers", {**self._ns(key), "Limit": 100}, FN_MISSING) or {}
        return [t for t in listed.get("Triggers") or [] if t["Type"] == kind]

    def cos_trigger(self) -> None:
        from shared.config import overlap

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
                if other == bucket and overlap(prefix, guarded):
                    problems.append(f"prefix {prefix!r} overlaps the {label} prefix {guarded!r} (a loop)")
        self.add("COS trigger", not problems, "; ".join(problems) or f"enabled on {', '.join(seen)}",
                 "cos-matting deploy (recreates the trigger from serverless.yml)")

    def other_stages(self) -> None:
        """No other stage of the app watches where this one watches or writes, nor writes where it watches
        (stage.overlaps): a conflict can arise after this stage's deploy, when another stage is deployed or
        changed. The other stages come from the listing that found this one (one GetFunction each)."""
        spec, deployed = self.spec, self.deployed()
        if deployed is not None:
            mine, stages = places(deployed.settings_env()), deployed.others
        else:
            mine = places(spec.final_env("submit", None))
            stages = {s: n for s, n in listed(self.scf, spec.app, spec.namespace).items() if s != spec.stage}
        others = neighbours(self.scf, stages, app=spec.app, region=spec.region, namespace=spec.namespace)
        found = overlaps(spec.stage, mine, others)
        names = ", ".join(o.stage for o in others)
        self.add("other stages", not found, "; ".join(o.problem() for o in found) or
                 (f"none of {len(others)} other stage(s) of {spec.app} ({names}) watches or writes where this one "
                  "does, nor writes where it watches" if others else f"no other stage of {spec.app} in namespace "
                                                                     f"{spec.namespace}"),
                 "; ".join(dict.fromkeys(o.fix() for o in found)))

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

    def drift(self) -> None:
        """Changed outside deploy (the console, another tool): the calls `deploy` would make now. The code is
        compared by GetFunctionAddress.CodeSha256 (SCF API; GetFunction has no code hash) with the zips
        serverless.yml builds, the configuration field by field with GetFunction's answer. (The alarm
        policies have their own checks above.)"""
        if self.zips is None:
            return
        planner = Planner(self.spec, self.scf, self.cam, self.zips, kinds=(), others=False)  # other_stages
        calls = planner.plan()
        self.add("matches serverless.yml", not calls and not planner.notes,
                 "deploy would make no call" if not calls and not planner.notes else
                 f"{len(calls)} difference(s): " + "; ".join(
                     [c.line()[2:] + "".join(f" [{k}: {old} -> {new}]" for k, old, new in c.changes[:4])
                      for c in calls] + planner.notes),
                 "cos-matting deploy --plan (shows them), then cos-matting deploy (puts back what serverless.yml "
                 "says)")


def _listed(data: Mapping[str, Any], field: str, bucket: str) -> Optional[Mapping[str, Any]]:
    """The entry for `bucket` in a CI bucket list answer (one entry comes back as a dict, several as a list)."""
    items = data.get(field) or []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and bucket in (item.get("BucketId"), item.get("Name"), item.get("BucketName")):
            return item
    return None


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


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
