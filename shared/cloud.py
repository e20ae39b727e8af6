"""Clients for COS and CI over cos-python-sdk-v5, and the errors they map to.

CI calls go through a client built with `retry=0`: an SDK retry of `POST /jobs`
after a timeout could create a second job. Our own retry (in submit) looks the
job up by its correlation id first, in the queue the job went to.

SCF role credentials are temporary (TENCENTCLOUD_SECRETID/SECRETKEY/SESSIONTOKEN);
whether a warm instance sees fresh ones between invocations is unverified, so
every call re-reads them and updates its client (`CosConfig.set_credential`)
when they changed. The SDK signs with the values its config holds when the call
starts (CosS3Auth copies them), hence the check before each call.
"""
import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

from . import xmlcodec
from .config import Settings
from .jobs import JobDetail, JobRequest, JobsResponse, as_list

if TYPE_CHECKING:
    from .identity import ObjectVersion  # noqa: F401


class CloudError(Exception):
    """A COS or CI call failed. `retryable` for 429/5xx; `unknown_outcome` when the
    request may have taken effect (timeout, dropped connection, 5xx)."""

    def __init__(self, operation: str, status: int, code: str, message: str, request_id: str = "") -> None:
        self.operation, self.status, self.code, self.message, self.request_id = operation, status, code, message, request_id
        super().__init__(f"{operation}: HTTP {status or '-'} {code}: {message}" + (f" (request {request_id})" if request_id else ""))

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def unknown_outcome(self) -> bool:
        return self.status == 0 or self.status >= 500


def _wrap(operation: str, exc: Exception) -> CloudError:
    from qcloud_cos.cos_exception import CosServiceError

    if isinstance(exc, CosServiceError):
        status = exc.get_status_code() or 0
        code, message = exc.get_error_code(), exc.get_error_msg()
        if code in (None, "", "Unknown") or not message:
            # CI errors carry no <Resource>, so the SDK may not have parsed them.
            try:
                _, body = xmlcodec.parse(exc.get_origin_msg() or b"")
                if isinstance(body, dict):
                    code, message = body.get("Code") or code, body.get("Message") or message
            except (ValueError, TypeError):
                pass
        return CloudError(operation, status, str(code or "Unknown"), str(message or ""), exc.get_request_id() or "")
    return CloudError(operation, 0, "ClientError", str(exc))


def _credentials(env: Mapping[str, str]) -> Tuple[str, str, Optional[str]]:
    if not (env.get("TENCENTCLOUD_SECRETID") and env.get("TENCENTCLOUD_SECRETKEY")):
        from .config import ConfigError

        raise ConfigError("TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY are not set: give the function a "
                          "role (SCF sets them), or export your keys when running locally")
    return env["TENCENTCLOUD_SECRETID"], env["TENCENTCLOUD_SECRETKEY"], env.get("TENCENTCLOUD_SESSIONTOKEN") or None


def refresh(client: Any) -> None:
    """Give `client` the credentials its environment holds now, if they changed."""
    env = getattr(client, "cos_matting_environ", None)
    if env is None:  # a client this module did not build
        return
    conf = client._conf
    current = _credentials(env)
    if (conf._secret_id, conf._secret_key, conf._token) != current:
        secret_id, secret_key, token = current
        # set_credential(Token=None), its own default, raises in cos-python-sdk-v5 1.9.44
        # (convert_secret_value calls None.endswith): set "" and put None back, so no empty
        # token header is sent.
        conf.set_credential(secret_id, secret_key, token or "")
        conf._token = token


def cos_client(settings: Settings, region: str, retry: int, environ: Optional[Mapping[str, str]] = None) -> Any:
    """An SDK client; credentials are SCF's role credentials (TENCENTCLOUD_*) or the user's."""
    from qcloud_cos import CosConfig, CosS3Client

    env = os.environ if environ is None else environ
    secret_id, secret_key, token = _credentials(env)
    kwargs: Dict[str, Any] = dict(
        Region=region,
        SecretId=secret_id,
        SecretKey=secret_key,
        Token=token,  # explicitly: the SDK sends only CosConfig's own Token (qcloud_cos/cos_client.py send_request)
        Timeout=settings.timeout_seconds,
        Scheme="https",
    )
    if settings.endpoint:  # the local cloud: connect to ip:port, keep the real Host header
        url = urlsplit(settings.endpoint)
        kwargs.update(IP=url.hostname, Port=url.port, Scheme=url.scheme)
    client = CosS3Client(CosConfig(**kwargs), retry=retry)
    client.cos_matting_environ = env  # read again before every call (refresh)
    return client


class Storage:
    """The COS calls the pipeline makes, on one client (SDK retries on: they are idempotent)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def twin(self) -> "Storage":
        """The same storage on its own SDK client (its own HTTP session), for another thread: an
        SDK client keeps per-call state (cli/clients.py). A stand-in client is returned as is."""
        from qcloud_cos import CosS3Client

        if not isinstance(self.client, CosS3Client):
            return self
        client = CosS3Client(self.client._conf, retry=self.client._retry)
        client.cos_matting_environ = getattr(self.client, "cos_matting_environ", None)
        return Storage(client)

    def _call(self, operation: str, fn: Any, **kwargs: Any) -> Any:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        refresh(self.client)
        try:
            return fn(**kwargs)
        except (CosServiceError, CosClientError) as exc:
            raise _wrap(operation, exc) from None

    def put_json(self, bucket: str, key: str, body: bytes, create_only: bool = False) -> bool:
        """Write; with create_only, return False instead of overwriting an existing object."""
        meta = {"x-cos-forbid-overwrite": "true"} if create_only else {}
        try:
            self._call("cos.put", self.client.put_object, Bucket=bucket, Key=key, Body=body,
                       ContentType="application/json", Metadata=meta)
        except CloudError as exc:
            if create_only and exc.status == 409:
                return False
            raise
        return True

    def get(self, bucket: str, key: str) -> Optional[bytes]:
        stream = self.open(bucket, key)
        return None if stream is None else stream.read()

    def open(self, bucket: str, key: str) -> Optional[Any]:
        """The body as a raw byte stream (read(n)), not held in memory; None if there is no such object."""
        try:
            response = self._call("cos.get", self.client.get_object, Bucket=bucket, Key=key)
        except CloudError as exc:
            if exc.status == 404:
                return None
            raise
        return response["Body"].get_raw_stream()

    def head(self, bucket: str, key: str) -> Optional[Dict[str, str]]:
        try:
            return self._call("cos.head", self.client.head_object, Bucket=bucket, Key=key)
        except CloudError as exc:
            if exc.status == 404:
                return None
            raise

    def version(self, bucket: str, key: str) -> Optional["ObjectVersion"]:
        """The object's current version from a HEAD (ETag normalised), or None if it is gone."""
        from .identity import ObjectVersion

        head = self.head(bucket, key)
        return None if head is None else ObjectVersion.from_head(bucket, key, head)

    def copy(self, bucket: str, key: str, src_bucket: str, src_region: str, src_key: str,
             tags: Optional[Dict[str, str]] = None) -> None:
        """Server-side copy (PUT with x-cos-copy-source): publishes a result under its stable name.
        `tags`: the copy's whole tag set, written with it (x-cos-tagging-directive Replaced and
        x-cos-tagging, URL-encoded; PUT Object - Copy, https://cloud.tencent.com/document/product/436/10881);
        None copies the source's (the directive's default, Copy). The SDK's copy_object passes only the
        headers its `mapped` knows: `Tagging` is one, the directive goes through `Metadata`
        (qcloud_cos/cos_comm.py maplist)."""
        extra: Dict[str, Any] = {}
        if tags is not None:
            extra = {"Tagging": urlencode(tags, quote_via=quote), "Metadata": {"x-cos-tagging-directive": "Replaced"}}
        self._call("cos.copy", self.client.copy_object, Bucket=bucket, Key=key,
                   CopySource={"Bucket": src_bucket, "Region": src_region, "Key": src_key}, **extra)

    def delete(self, bucket: str, key: str) -> None:
        """Idempotent: deleting what is gone is fine (COS answers 204 either way)."""
        self._call("cos.delete", self.client.delete_object, Bucket=bucket, Key=key)

    def list(self, bucket: str, prefix: str, marker: str = "", max_keys: int = 1000) -> Tuple[List[Dict[str, str]], str]:
        """One page: ([{Key, ETag, Size, LastModified}], next marker or '')."""
        response = self._call("cos.list", self.client.list_objects, Bucket=bucket, Prefix=prefix,
                              Marker=marker, MaxKeys=max_keys)
        contents = response.get("Contents") or []
        if isinstance(contents, dict):
            contents = [contents]
        truncated = str(response.get("IsTruncated", "false")).lower() == "true"
        next_marker = (response.get("NextMarker") or (contents[-1]["Key"] if contents else "")) if truncated else ""
        return contents, next_marker

    def list_all(self, bucket: str, prefix: str):
        marker = ""
        while True:
            page, marker = self.list(bucket, prefix, marker)
            yield from page
            if not marker:
                return

    def get_tags(self, bucket: str, key: str) -> Optional[Dict[str, str]]:
        from .tags import from_sdk

        try:
            return from_sdk(self._call("cos.tagging.get", self.client.get_object_tagging, Bucket=bucket, Key=key))
        except CloudError as exc:
            if exc.status == 404 and exc.code in ("NoSuchKey", "NoSuchObject", "Unknown"):
                return None
            if exc.status == 404:  # no tag set on an existing object
                return {}
            raise

    def put_tags(self, bucket: str, key: str, tags: Dict[str, str]) -> None:
        from .tags import to_sdk

        self._call("cos.tagging.put", self.client.put_object_tagging, Bucket=bucket, Key=key, Tagging=to_sdk(tags))

    def merge_tags(self, bucket: str, key: str, ours: Dict[str, str], forward_only: bool = False
                   ) -> Optional["Merged"]:
        """The one read-merge-write of an object's tags: read right before the write, ours merged into
        the user's, written only when that changes them. `forward_only`: a record's state tags never move back
        (`tags.merge_progress`). None if the object is gone.
        COS has no conditional tagging (PUT Object tagging replaces the whole set, 436/42997), so the
        read is what keeps a user's tags."""
        from . import tags

        current = self.get_tags(bucket, key)
        if current is None:
            return None
        merged, skipped = (tags.merge_progress if forward_only else tags.merge)(current, ours)
        if merged != current:
            self.put_tags(bucket, key, merged)
        return Merged(skipped, current)


class Merged(NamedTuple):
    """A tag read-merge-write: our keys that did not fit (`tags.MAX_TAGS`), and the tags it read."""

    skipped: List[str]
    read: Dict[str, str]


class CI:
    """Cloud Infinite media jobs for one bucket. Built on a client with retry=0."""

    LOOKUP_PAGES = 10  # at most 10 pages of 100 jobs per lookup: its cost is bounded

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket
        self.queue_id = ""  # the queue jobs went to: from a create answer, else the AI queue

    def _call(self, operation: str, fn: Any, **kwargs: Any) -> JobsResponse:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        refresh(self.client)
        try:
            data = fn(Bucket=self.bucket, **kwargs)
        except (CosServiceError, CosClientError) as exc:
            raise _wrap(operation, exc) from None
        return JobsResponse.model_validate(_none_to_empty(data or {}))

    def create(self, request: JobRequest) -> JobDetail:
        # The API page and every official demo send application/xml; the SDK's
        # ci_create_media_jobs sets no Content-Type itself (qcloud_cos/cos_client.py).
        response = self._call("ci.create", self.client.ci_create_media_jobs, Jobs=request.wire(), Lst={},
                              ContentType="application/xml")
        if not response.JobsDetail:
            raise CloudError("ci.create", 200, "EmptyResponse", "POST /jobs answered without JobsDetail")
        job = response.JobsDetail[0]
        self.queue_id = job.QueueId or self.queue_id
        return job

    def describe(self, job_id: str) -> JobDetail:
        response = self._call("ci.get", self.client.ci_get_media_jobs, JobIDs=job_id)
        found = [j for j in response.JobsDetail if j.JobId == job_id] or response.JobsDetail
        if job_id in response.NonExistJobIds:  # CI answers 200 with <NonExistJobIds>: it says it has no such job
            raise CloudError("ci.get", 404, "NoSuchJob", f"job {job_id} not found (CI lists it in NonExistJobIds)")
        if not found:  # neither the job nor a word about it: not proof it is gone
            raise CloudError("ci.get", 200, "EmptyResponse", f"GET /jobs/{job_id} answered without the job")
        return found[0]

    def list(self, states: str = "All", size: int = 100, next_token: str = "",
             start: Optional[str] = None) -> Tuple[List[JobDetail], str]:
        response = self._call("ci.list", self.client.ci_list_media_jobs, Tag="SegmentVideoBody", States=states,
                              Size=size, NextToken=next_token, StartCreationTime=start)
        return response.JobsDetail, response.NextToken or ""

    def cancel(self, job_id: str) -> None:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        refresh(self.client)
        try:
            self.client.ci_cancel_jobs(Bucket=self.bucket, JobID=job_id)
        except (CosServiceError, CosClientError) as exc:
            raise _wrap("ci.cancel", exc) from None

    def ai_queue(self) -> str:
        """The bucket's AI queue (DescribeAiProcessQueues via the SDK's ci_get_ai_queue), cached."""
        if not self.queue_id:
            from qcloud_cos.cos_exception import CosClientError, CosServiceError

            refresh(self.client)
            try:
                data = self.client.ci_get_ai_queue(Bucket=self.bucket, State="Active")
            except (CosServiceError, CosClientError) as exc:
                raise _wrap("ci.ai_queue", exc) from None
            queues = [q for q in as_list((data or {}).get("QueueList")) if isinstance(q, dict) and q.get("QueueId")]
            if not queues:
                raise CloudError("ci.ai_queue", 200, "NoAiQueue", f"bucket {self.bucket} has no active AI queue "
                                 "(bind it to Cloud Infinite and enable AI content recognition)")
            self.queue_id = str(queues[0]["QueueId"])
        return self.queue_id

    def _list_scoped(self, scope: Dict[str, str], start: Optional[str], input_object: Optional[str],
                     token: str) -> JobsResponse:
        """GET /jobs scoped by `scope` (a queueId, or a queueType: DescribeMediaJobs, CI API
        1045/50356, says the two must not be sent together), and by its input key when known. The
        SDK's ci_list_media_jobs has no queueType/inputObject arguments (qcloud_cos/cos_client.py;
        both are DescribeMediaJobs parameters, 460/84766), so the request is built here the way the
        SDK builds its own CI calls."""
        from qcloud_cos.cos_auth import CosS3Auth
        from qcloud_cos.cos_comm import format_values, xml_to_dict
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        params = {"tag": "SegmentVideoBody", **scope,
                  "orderByTime": "Desc", "states": "All", "size": "100", "nextToken": token}
        if start:
            params["startCreationTime"] = start
        if input_object:
            params["inputObject"] = input_object
        params = format_values(params)
        conf = self.client._conf
        refresh(self.client)
        try:
            rt = self.client.send_request(method="GET", url=conf.uri(bucket=self.bucket, path="/jobs",
                                                                     endpoint=conf._endpoint_ci),
                                          bucket=self.bucket, auth=CosS3Auth(conf, "/jobs", params=params),
                                          params=params, headers={}, ci_request=True)
        except (CosServiceError, CosClientError) as exc:
            raise _wrap("ci.list", exc) from None
        return JobsResponse.model_validate(_none_to_empty(xml_to_dict(rt.content) or {}))

    def find(self, wanted: "Correlation", start: Optional[str] = None, input_object: Optional[str] = None
             ) -> Optional[JobDetail]:
        """The job of `wanted`'s record and attempt, if CI has one: created since `start`, at most
        LOOKUP_PAGES pages per scope. Searched by the job's queue id, then by the AI queue type, never
        both in one request (CI API 1045/50356): which of the two lists an AI job is not documented,
        and a miss is a second job, so a job either finds counts (the second list only runs after a
        miss). A job of another deployment never matches; one spelt by an older release (no
        deployment id, identity.py) does."""
        from .identity import Correlation

        for scope in ({"queueId": self.ai_queue()}, {"queueType": "AIProcess"}):
            token = ""
            for _ in range(self.LOOKUP_PAGES):
                response = self._list_scoped(scope, start, input_object, token)
                for job in response.JobsDetail:
                    corr = Correlation.parse(job.user_data)
                    if corr and (corr.record_id, corr.attempt) == (wanted.record_id, wanted.attempt) \
                            and not corr.foreign(wanted.deployment):
                        return job
                token = response.NextToken or ""
                if not token or not response.JobsDetail:
                    break
            else:
                raise CloudError("ci.list", 0, "LookupTooLong", f"more than {self.LOOKUP_PAGES * 100} jobs to "
                                 f"search for {wanted.marker}: the outcome is unknown")
        return None


def _none_to_empty(value: Any) -> Any:
    # The SDK's XML-to-dict turns empty elements into None; the wire model uses "".
    if isinstance(value, dict):
        return {k: _none_to_empty(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_none_to_empty(v) for v in value]
    return value


class Clients:
    """Everything a handler talks to, built once per cold start; credentials are re-read per call."""

    def __init__(self, settings: Settings, environ: Optional[Mapping[str, str]] = None) -> None:
        self.settings = settings
        self.storage = Storage(cos_client(settings, settings.region, 2, environ))
        self.out_storage = (self.storage if settings.out_region == settings.region
                            else Storage(cos_client(settings, settings.out_region, 2, environ)))
        self.ci = CI(cos_client(settings, settings.region, 0, environ), settings.bucket)
