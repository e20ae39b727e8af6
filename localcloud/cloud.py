"""`LocalCloud`: COS + CI + SCF on one loopback HTTP port, in-process or from the CLI."""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from shared import states
from shared.events import Upload, build_event
from shared.jobs import JobDetail

from .camapi import CamService
from .clsapi import ClsApi
from .clsbackend import ClsBackend
from .monitorapi import MonitorService
from .callbacks import CallbackRecord, Callbacks
from .ci import Engine, JobService
from .cibinding import PATHS as CI_BUCKET_PATHS
from .cos import Bucket, ObjectMeta, ObjectStore
from .credentials import RoleCredentials
from .multipart import MultipartUploads
from .faults import Faults
from . import scf_http
from .scf import Function, Invocation, Runtime, Trigger
from .scfapi import ScfApi
from .scfbackend import Platform, ScfBackend
from .replies import Reply
from .server import make_server
from .tcapi import Api, reply_json


class LocalCloud:
    """A local stand-in for one COS region with Cloud Infinite and SCF.

    Everything persists under `data_dir` (objects, tags, jobs), so a restart
    on the same directory sees the same state.
    """

    def __init__(self, data_dir: str, buckets: Iterable[str] = ("videos-1250000000",), region: str = "ap-guangzhou",
                 secret_id: str = "AKIDlocal", secret_key: str = "localsecretkey", host: str = "127.0.0.1",
                 port: int = 0, engine: Optional[Engine] = None, job_workers: int = 2,
                 callback_retries: int = 3, callback_backoff: Sequence[float] = (0.2, 0.5, 1.0),
                 callback_timeout: float = 5.0, callback_arrays: str = "jobs",
                 verbose: bool = False, credential_rotation: Optional[float] = None,
                 credential_lifetime: Optional[float] = None) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.region, self.secret_id, self.secret_key = region, secret_id, secret_key
        self.host, self.port, self.verbose = host, port, verbose
        # Functions get role credentials that rotate every `credential_rotation` seconds (None: the
        # account's key, as before) and expire `credential_lifetime` seconds after issue.
        self.credentials = RoleCredentials({secret_id: secret_key},
                                           credential_rotation, credential_lifetime)
        self.faults = Faults()
        self.started = time.time()
        self.requests: Counter = Counter()  # authenticated COS/CI requests by route, e.g. "ci.list"
        # CI's error root: <Error> as CI's error-code page documents it (and the Go SDK parses);
        # "Response" answers as some older pages show (both are tested).
        self.ci_error_root = "Error"
        self.ci_refuse_queue_id_with_type = True  # GET /jobs with both queueId and queueType: 400
        self.store = ObjectStore(os.path.join(self.data_dir, "cos"), region)
        self.callback_sender = Callbacks(self.faults, callback_retries, tuple(callback_backoff), callback_timeout,
                                         callback_arrays)
        self.jobs = JobService(os.path.join(self.data_dir, "ci"), self.store, region, self.faults,
                               self.callback_sender, None, job_workers, on_output=self._output_written)
        self.runtime = Runtime(self.faults)
        # The Tencent Cloud API 3.0 (SCF, CAM, Monitor) that deploy and doctor call, persisted under data_dir.
        buckets = list(buckets)
        appid = buckets[0].rsplit("-", 1)[1] if buckets else "1250000000"
        self.cam = CamService(os.path.join(self.data_dir, "cam"), appid=appid)
        platform = Platform(region, lambda: self.url, lambda: self.credentials.role_env(secret_id),
                            lambda role: self.cam.trusts(role, "scf.qcloud.com"))
        self.scf = ScfBackend(os.path.join(self.data_dir, "scf"), platform, self.runtime, self.store)
        self.cls = ClsBackend(self.runtime, os.path.join(self.data_dir, "cls"))  # the functions' logs (SearchLog)
        self.monitor = MonitorService(os.path.join(self.data_dir, "monitor"))
        self.api = Api(self.credentials, {("scf", "2018-04-16"): ScfApi(self.scf, lambda: self.url, self.cls),
                                          ("cam", "2019-01-16"): self.cam, ("monitor", "2018-07-24"): self.monitor,
                                          ("cls", "2020-10-16"): ClsApi(self.cls)},
                       self.faults)
        self.ci_unbound: set = set()  # buckets to report as not bound to CI (doctor's failing case)
        self.ci_ai_off: set = set()  # buckets bound to CI with AI content recognition off (cibinding.py)
        if self.credentials.rotating:  # every invocation gets the role credentials of its moment
            self.runtime.invocation_env = self.credentials.role_env
        for name in buckets:
            self.add_bucket(name)
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        if engine is not None:
            self.jobs.set_engine(engine)

    # -- lifecycle --------------------------------------------------------
    def start(self) -> "LocalCloud":
        """Bind and serve; returns once connections are accepted."""
        self._server = make_server(self, self.host, self.port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="localcloud-http")
        self._thread.start()
        self.jobs.start()
        self.scf.start()  # functions deployed before a restart run again
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, end job workers and function workers.

        To "restart", build a new LocalCloud on the same data_dir (functions and
        triggers are not persisted and must be added again).
        """
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.jobs.stop()
        self.scf.stop()
        self.runtime.close()
        self.jobs.close()
        self.store.close()

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cos_config_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for `qcloud_cos.CosConfig` that point at this cloud."""
        return {"Region": self.region, "SecretId": self.secret_id, "SecretKey": self.secret_key,
                "IP": self.host, "Port": self.port, "Scheme": "http"}

    def function_env(self) -> Dict[str, str]:
        """What SCF gives every function here: role credentials, region, and the local endpoint."""
        return {**self.credentials.role_env(self.secret_id), "TENCENTCLOUD_REGION": self.region,
                "COS_MATTING_ENDPOINT": self.url}

    # -- buckets & objects ------------------------------------------------
    def add_bucket(self, name: str) -> Bucket:
        bucket = self.store.add_bucket(name)
        if bucket.uploads is None:
            bucket.uploads = MultipartUploads(bucket)
        self.jobs.add_bucket(name)
        return bucket

    def bucket(self, name: str) -> Bucket:
        return self.store.bucket(name)

    def upload(self, bucket: str, key: str, data: bytes, content_type: str = "") -> ObjectMeta:
        """Put an object as an uploader would (fires triggers), without going through HTTP."""
        obj = self.store.bucket(bucket).put_bytes(key, data, content_type)
        self.object_created(bucket, obj, "cos:ObjectCreated:Put")
        return obj

    def generate_inventory(self, bucket: str, destination: Optional[str] = None, prefix: str = "cos_bucket_inventory",
                           inventory_id: str = "disposable", filter_prefix: str = "", **kw: Any) -> Dict[str, Any]:
        """A one-time COS inventory of `bucket` written into `destination` (default: the same bucket);
        see localcloud/inventory.py. Returns {"manifest_key", "objects", "files"}."""
        from .inventory import generate

        dest = self.store.bucket(destination or bucket)
        return generate(self.store.bucket(bucket), dest, prefix, inventory_id, filter_prefix, **kw).as_dict()

    def _output_written(self, bucket: str, key: str, event_name: str) -> None:
        self.object_created(bucket, self.store.bucket(bucket).head(key), event_name)

    def object_created(self, bucket: str, obj: ObjectMeta, event_name: str) -> None:
        for trigger in self.runtime.triggers:
            if trigger.matches(bucket, obj.key, event_name):
                upload = Upload(bucket=bucket, appid=bucket.rsplit("-", 1)[1], region=self.region, key=obj.key,
                                etag=obj.etag, size=obj.size, event_name=event_name, event_time=int(time.time()),
                                content_type=obj.content_type)
                # Real events name the trigger's qualifier, `$DEFAULT` (eventQueue; a Function URL's qualifier too, 583/96099).
                queue = f"qcs:0:scf:{self.region}:appid/{upload.appid}:default.{trigger.function.name}.$DEFAULT"
                event = build_event([upload], queue=queue)
                self.runtime.invoke_async(trigger.function, event, "cos", trigger.retries, trigger.retry_delay)

    # -- CI ---------------------------------------------------------------
    def set_engine(self, engine: Optional[Engine]) -> None:
        """Install the matting engine; queued Submitted jobs start running."""
        self.jobs.set_engine(engine)

    def get_job(self, bucket: str, job_id: str) -> JobDetail:
        return self.jobs.get(bucket, job_id)

    def list_jobs(self, bucket: Optional[str] = None) -> List[JobDetail]:
        return self.jobs.all_jobs(bucket)

    def forget_job(self, bucket: str, job_id: str) -> None:
        """Test control: CI forgets the job (describe answers NonExistJobIds)."""
        self.jobs.forget(bucket, job_id)

    def set_job_state(self, bucket: str, job_id: str, state: str, code: Optional[str] = None,
                      message: Optional[str] = None, media_info: Optional[Dict[str, Any]] = None,
                      force: bool = False) -> JobDetail:
        """Test control: move a job to Running/Success/Failed/Pause/Cancel and call back as CI would."""
        if state not in states.JOB:
            raise ValueError(f"unknown state {state!r}")
        return self.jobs.set_state(bucket, job_id, state, code, message, media_info, force)

    @property
    def callbacks(self) -> List[CallbackRecord]:
        return list(self.callback_sender.records)

    # -- SCF --------------------------------------------------------------
    def _function(self, name: str, function_dir: str, env: Optional[Mapping[str, str]], concurrency: int,
                  timeout: float) -> Function:
        if self._server is None:
            raise RuntimeError("start() the cloud before adding functions (their env needs its URL)")
        return self.runtime.function(name, function_dir, {**self.function_env(), **(env or {})}, concurrency, timeout)

    def add_trigger(self, bucket: str, function_dir: str = "functions/submit", env: Optional[Mapping[str, str]] = None,
                    prefix: str = "input/", suffix: str = "", events: Tuple[str, ...] = ("cos:ObjectCreated:*",),
                    retries: int = 2, retry_delay: float = 0.5, name: Optional[str] = None, concurrency: int = 2,
                    timeout: float = 60.0) -> Trigger:
        """A COS trigger: matching uploads invoke `<function_dir>/index.py:main_handler` asynchronously."""
        self.store.bucket(bucket)
        fn = self._function(name or os.path.basename(os.path.normpath(function_dir)), function_dir, env,
                            concurrency, timeout)
        trigger = Trigger(bucket, fn, prefix, suffix, tuple(events), retries, retry_delay)
        self.runtime.triggers.append(trigger)
        return trigger

    def add_function_url(self, name: str, function_dir: str, env: Optional[Mapping[str, str]] = None,
                         concurrency: int = 2, timeout: float = 60.0) -> str:
        """Serve the function at `<url>/_fn/<name>/...`; returns that base URL."""
        self._function(name, function_dir, env, concurrency, timeout)
        return f"{self.url}/_fn/{name}"

    def add_timer(self, function_dir: str, env: Optional[Mapping[str, str]] = None, every_seconds: float = 60.0,
                  name: Optional[str] = None, timeout: float = 60.0) -> Function:
        fn = self._function(name or os.path.basename(os.path.normpath(function_dir)), function_dir, env, 1, timeout)
        self.runtime.add_timer(fn, every_seconds, fn.name)
        return fn

    def invoke(self, name: str, event: Any) -> Invocation:
        """Invoke a registered function synchronously (like `scf invoke`)."""
        return self.runtime.run(self.runtime.functions[name], event, "direct")

    @property
    def invocations(self) -> List[Invocation]:
        return list(self.runtime.invocations)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once no invocation, callback or engine job is pending (stable for two polls)."""
        deadline = time.time() + timeout
        quiet = 0
        while time.time() < deadline:
            busy = self.runtime.pending + self.callback_sender.pending + self.jobs.busy
            quiet = quiet + 1 if busy == 0 else 0
            if quiet >= 3:
                return True
            time.sleep(0.02)
        return False

    # -- HTTP: Function URLs and the Tencent Cloud API ------------------------
    def serve_function_url(self, handler: Any) -> Reply:
        """`/_fn/<name>/...`: a function added with `add_function_url`, invoked with a Function URL event."""
        return scf_http.added(handler, self.runtime)

    def serve_api(self, handler: Any) -> Reply:
        """Tencent Cloud API 3.0 calls (X-TC-Action) and the Function URLs of deployed functions."""
        if handler.raw_path.startswith("/_url/"):
            return scf_http.deployed(handler, self.scf)
        if handler.raw_path in CI_BUCKET_PATHS:
            from .cibinding import describe

            return describe(handler, self)
        return Reply(*reply_json(handler, self.api))


__all__ = ["LocalCloud"]
