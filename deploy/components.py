"""The schema `cos-matting deploy` reads serverless.yml (and deploy/layer/serverless.yml) with.

The files keep the input names of the serverless framework's `multi-scf` and `layer`
components (github.com/serverless-components/tencent-multi-scf `docs/configure.md`,
`src/interface/inputs.ts`; tencent-layer `docs/configure.md`; the triggers'
parameters from tencent-component-toolkit `lib/modules/triggers/{cos,timer,http}`),
so users of `scf deploy` can read the same file. This model is the deployer's own
input validation: it proves the file is what deploy/spec.py turns into API calls,
not that the published components accept it (the `scf` CLI is not reachable from
here; what it would do with the file is discussed in deploy/README.md). The API
calls themselves are checked against the SDK's request models
(tests/e2e/test_deploy_e2e.py).

Only known keys are accepted (`extra="forbid"`), plus rules that turn silent
misconfigurations into errors: a disabled COS/timer trigger, a COS trigger bucket
that is not the XML-API domain `<bucket>-<appid>.cos.<region>.myqcloud.com`,
async-retry keys the components would ignore, per-function `environments` that
would replace (not extend) the shared list. Reading the files (variables, error
messages naming the path) is deploy/files.py.
"""
import re
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator
from typing_extensions import Annotated

# --- shared pieces -----------------------------------------------------------------------------

RUNTIMES = (
    # The runtimes SCF offers (the SDK's CreateFunctionRequest.Runtime docstring lists Python2.7, 3.6, 3.7,
    # 3.9, 3.10: there is no Python3.8), 3.10 being the one this project deploys on.
    "Python2.7", "Python3.6", "Python3.7", "Python3.9", "Python3.10",
    "Nodejs6.10", "Nodejs8.9", "Nodejs10.15", "Nodejs12.16", "Nodejs14.18", "Nodejs16.13",
    "Php5", "Php7", "Php7.4", "Php8.0", "Go1", "Java8", "Java11", "CustomRuntime",
)
Runtime = Literal[RUNTIMES]  # type: ignore[valid-type]

COS_EVENTS = (
    "cos:ObjectCreated:*", "cos:ObjectCreated:Put", "cos:ObjectCreated:Post", "cos:ObjectCreated:Copy",
    "cos:ObjectCreated:CompleteMultipartUpload", "cos:ObjectCreated:Origin", "cos:ObjectCreated:Replication",
    "cos:ObjectRemove:*", "cos:ObjectRemove:Delete", "cos:ObjectRemove:DeleteMarkerCreated",
    "cos:ObjectRestore:Post", "cos:ObjectRestore:Completed",
)
CosEventName = Literal[COS_EVENTS]  # type: ignore[valid-type]

REGION_RE = r"^[a-z]+-[a-z0-9-]+$"
COS_DOMAIN_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]*-(?P<appid>\d+))\.cos\.(?P<region>[a-z]+-[a-z0-9-]+)\.myqcloud\.com$")
OUTPUT_REF_RE = r"^\$\{output:[^{}]+\}$"
FUNCTION_NAME_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$"  # SCF: letters, digits, _ and -, 2-60 chars
ENV_KEY_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
HANDLER_RE = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _memory(value: int) -> int:
    if value != 64 and not (128 <= value <= 3072 and value % 128 == 0):
        raise ValueError("memorySize must be 64 or a multiple of 128 from 128 to 3072 (MB)")
    return value


MemorySize = Annotated[StrictInt, Field(ge=64, le=3072)]
Timeout = Annotated[StrictInt, Field(ge=1, le=900, description="seconds, 1-900")]
OutputRef = Annotated[str, Field(pattern=OUTPUT_REF_RE)]


class KeyValue(_Strict):
    key: Annotated[StrictStr, Field(pattern=ENV_KEY_RE)]
    value: StrictStr  # SCF variables are strings: quote numbers in YAML ('300', not 300)


class TagKV(_Strict):
    key: StrictStr
    value: StrictStr


class SrcObject(_Strict):
    src: Optional[StrictStr] = None
    exclude: List[StrictStr] = Field(default_factory=list)
    bucket: Optional[StrictStr] = None
    object: Optional[StrictStr] = None

    @model_validator(mode="after")
    def _one_source(self) -> "SrcObject":
        if self.src and self.object:
            raise ValueError("src and object cannot both be set (deploy a local folder or a COS object, not both)")
        if not self.src and not self.object:
            raise ValueError("one of src (local folder) or object (code zip in bucket) is required")
        return self


class Layer(_Strict):
    name: Union[OutputRef, Annotated[StrictStr, Field(min_length=1)]]
    version: Union[StrictInt, OutputRef]


class Vpc(_Strict):
    vpcId: StrictStr
    subnetId: StrictStr


class Cls(_Strict):
    logsetId: Optional[StrictStr] = None
    topicId: Optional[StrictStr] = None


class Cfs(_Strict):
    cfsId: StrictStr
    mountInsId: StrictStr
    localMountDir: StrictStr
    remoteMountDir: StrictStr


class Image(_Strict):
    imageUrl: StrictStr
    imageType: Literal["personal", "enterprise", "public"] = "personal"
    registryId: Optional[StrictStr] = None
    command: Optional[StrictStr] = None
    args: Optional[StrictStr] = None


class _FaasBase(_Strict):
    """`FaasBaseConfig` in multi-scf's inputs.ts: allowed at the top level and per function."""

    type: Literal["event", "web"] = "event"
    runtime: Optional[Runtime] = None
    memorySize: Optional[MemorySize] = None
    timeout: Optional[Timeout] = None
    description: Optional[Annotated[StrictStr, Field(max_length=1000)]] = None
    nodeType: Optional[Literal["CPU", "GPU"]] = None
    nodeSpec: Optional[StrictStr] = None
    environments: Optional[List[KeyValue]] = None
    namespace: Optional[StrictStr] = None
    vpc: Optional[Vpc] = None
    cfs: Optional[List[Cfs]] = None
    cls: Optional[Cls] = None
    tags: Optional[Union[List[TagKV], Dict[str, StrictStr]]] = None
    layers: Optional[List[Layer]] = None
    eip: Optional[StrictBool] = None
    publicAccess: Optional[StrictBool] = None
    installDependency: Optional[StrictBool] = None
    asyncRunEnable: Optional[StrictBool] = None
    traceEnable: Optional[StrictBool] = None

    @field_validator("memorySize")
    @classmethod
    def _check_memory(cls, value: Optional[int]) -> Optional[int]:
        return value if value is None else _memory(value)

    @field_validator("environments")
    @classmethod
    def _unique_env(cls, value: Optional[List[KeyValue]]) -> Optional[List[KeyValue]]:
        if value:
            seen = set()
            for kv in value:
                if kv.key in seen:
                    raise ValueError(f"variable {kv.key} is listed twice")
                seen.add(kv.key)
        return value

    @model_validator(mode="after")
    def _async(self) -> "_FaasBase":
        if self.traceEnable and not self.asyncRunEnable:
            raise ValueError("traceEnable: true requires asyncRunEnable: true")
        if self.asyncRunEnable and not self.cls:
            raise ValueError("asyncRunEnable: true requires cls (logsetId, topicId)")
        return self


class DeadLetter(_Strict):
    """SCF `DeadLetterConfig`. multi-scf spreads each function's keys into the toolkit's
    scf inputs (formatter.ts `{...commonInputs, ...func}`), whose `formatInputs` maps
    `deadLetter` to CreateFunction/UpdateFunctionConfiguration `DeadLetterConfig`."""

    # the queue mode: SCF API DeadLetterConfig.Type (583/39704 gives CMQ-QUEUE and CMQ-TOPIC)
    type: Literal["CMQ-QUEUE", "CMQ-TOPIC"]
    name: Annotated[StrictStr, Field(min_length=1)]  # the CMQ/TDMQ queue or topic
    filterType: Optional[StrictStr] = None  # topic mode only


class FunctionConfig(_FaasBase):
    """One entry of `inputs.functions` (multi-scf `FunctionObject`)."""

    handler: Optional[Annotated[StrictStr, Field(pattern=HANDLER_RE)]] = None
    name: Optional[Annotated[StrictStr, Field(pattern=FUNCTION_NAME_RE)]] = None
    src: Optional[StrictStr] = None
    role: Optional[StrictStr] = None
    image: Optional[Image] = None
    msgTTL: Optional[Annotated[StrictInt, Field(ge=60, le=21600)]] = None
    retryNum: Optional[Annotated[StrictInt, Field(ge=0, le=2)]] = None
    deadLetter: Optional[DeadLetter] = None

    @model_validator(mode="after")
    def _retry_needs_async(self) -> "FunctionConfig":
        # tencent-component-toolkit only calls UpdateFunctionEventInvokeConfig when
        # asyncRunEnable is true: otherwise these keys are silently ignored.
        for key in ("msgTTL", "retryNum"):
            if getattr(self, key) is not None and not self.asyncRunEnable:
                raise ValueError(f"{key} is only applied with asyncRunEnable: true (the component ignores it otherwise); "
                                 "remove it: the platform default for async events is 2 retries within 6 h")
        if self.type == "event" and not self.image and not self.handler:
            raise ValueError("handler is required for event functions, e.g. index.main_handler")
        return self


# --- triggers ----------------------------------------------------------------------------------


class CosFilter(_Strict):
    prefix: StrictStr = ""
    suffix: StrictStr = ""


class CosParameters(_Strict):
    qualifier: StrictStr = "$DEFAULT"
    bucket: StrictStr
    filter: CosFilter
    events: CosEventName
    enable: StrictBool = Field(False, validate_default=True)  # the component's default: never fires

    @field_validator("bucket")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not COS_DOMAIN_RE.match(value):
            raise ValueError(f"must be the bucket's XML API domain <bucket>-<appid>.cos.<region>.myqcloud.com, "
                             f"e.g. videos-1250000000.cos.ap-guangzhou.myqcloud.com (got {value!r})")
        return value

    @field_validator("enable")
    @classmethod
    def _enabled(cls, value: bool) -> bool:
        if not value:
            raise ValueError("is false (the component's default): the trigger would be created disabled and no upload "
                             "would start a job; set enable: true (to pause, set reserved concurrency 0 instead)")
        return value


class CosTrigger(_Strict):
    type: Literal["cos"]
    function: StrictStr
    parameters: CosParameters


CRON_FIELDS = 7  # second minute hour day month weekday year


class TimerParameters(_Strict):
    name: Annotated[StrictStr, Field(min_length=1)]  # required by multi-scf
    cronExpression: StrictStr
    qualifier: StrictStr = "$DEFAULT"
    enable: StrictBool = Field(False, validate_default=True)
    argument: Optional[Union[StrictStr, Dict[str, Any]]] = None

    @field_validator("cronExpression")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != CRON_FIELDS:
            raise ValueError(f"SCF cron has 7 fields with seconds first (second minute hour day month weekday year), "
                             f"e.g. '0 */10 * * * * *' (got {len(fields)} fields in {value!r})")
        return value

    @field_validator("enable")
    @classmethod
    def _enabled(cls, value: bool) -> bool:
        if not value:
            raise ValueError("is false (the component's default): the timer would never fire; set enable: true")
        return value


class TimerTrigger(_Strict):
    type: Literal["timer"]
    function: StrictStr
    parameters: TimerParameters


class NetConfig(_Strict):
    enableIntranet: StrictBool = False
    enableExtranet: StrictBool = False


class CorsConfig(_Strict):
    enable: StrictBool = False
    origins: Optional[Union[StrictStr, List[StrictStr]]] = None
    methods: Optional[Union[StrictStr, List[StrictStr]]] = None
    headers: Optional[Union[StrictStr, List[StrictStr]]] = None
    exposeHeaders: Optional[Union[StrictStr, List[StrictStr]]] = None
    credentials: Optional[StrictBool] = None
    maxAge: Optional[StrictInt] = None


class HttpParameters(_Strict):
    """Function URL (`HttpTriggerInputsParams` in tencent-component-toolkit)."""

    name: Optional[StrictStr] = None  # toolkit default: url-trigger
    qualifier: StrictStr = "$DEFAULT"
    authType: Literal["NONE", "CAM"] = "NONE"
    netConfig: NetConfig
    corsConfig: Optional[CorsConfig] = None

    @model_validator(mode="after")
    def _reachable(self) -> "HttpParameters":
        if not (self.netConfig.enableExtranet or self.netConfig.enableIntranet):
            raise ValueError("netConfig enables neither enableExtranet nor enableIntranet: the URL would be unreachable")
        return self


class HttpTrigger(_Strict):
    type: Literal["http"]
    function: StrictStr
    parameters: HttpParameters


Trigger = Annotated[Union[CosTrigger, TimerTrigger, HttpTrigger], Field(discriminator="type")]


# --- whole files -------------------------------------------------------------------------------


class MultiScfInputs(_FaasBase):
    src: Union[StrictStr, SrcObject]
    region: Annotated[StrictStr, Field(pattern=REGION_RE)] = "ap-guangzhou"
    functions: Dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")], FunctionConfig] = Field(min_length=1)
    triggers: List[Trigger] = Field(default_factory=list)
    ignoreTriggers: Optional[StrictBool] = None
    isAutoPublish: Optional[StrictBool] = None
    publishDescription: Optional[StrictStr] = None

    @model_validator(mode="after")
    def _references(self) -> "MultiScfInputs":
        problems = []
        for i, trig in enumerate(self.triggers):
            if trig.function not in self.functions:
                problems.append(f"triggers[{i}].function: {trig.function!r} is not a key of functions "
                                f"({', '.join(sorted(self.functions))})")
        if self.environments is not None:
            for key, fn in self.functions.items():
                if fn.environments is not None:
                    problems.append(f"functions.{key}.environments: replaces the top-level environments list entirely "
                                    "(the component merges with Object.assign); keep all variables at the top level")
        names = [fn.name for fn in self.functions.values() if fn.name]
        if len(names) != len(set(names)):
            problems.append("functions: two functions have the same name")
        http = [t for t in self.triggers if t.type == "http"]
        for fkey in {t.function for t in http}:
            if len([t for t in http if t.function == fkey]) > 1:
                problems.append(f"triggers: function {fkey!r} has more than one Function URL")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Cloud Monitor metrics of SCF alarms may use: namespace QCE/SCF_V2, "云函数监控指标"
# (cloud.tencent.com/document/product/248/37207): Error (errors, function and platform),
# Throttle (requests refused at the concurrency limit), DlqFailedNum (deliveries to the
# dead-letter queue that failed), Invocation, Duration, ConcurrentExecutions; sums per period.
ALARM_METRICS = ("Error", "Throttle", "DlqFailedNum", "Invocation", "Duration", "ConcurrentExecutions")
ALARM_OPERATORS = ("gt", "ge", "lt", "le", "eq", "ne")  # AlarmPolicyRule.Operator (monitor v20180724 models.py)


class AlarmPolicy(_Strict):
    """One alarm policy (Monitor API 2018-07-24 CreateAlarmPolicy + BindingPolicyObject), applied by
    `cos-matting deploy` (deploy/alarms.py). Not a multi-scf input: `scf deploy` does not create it."""

    # As declared (cm-${stage}-errors): deploy/alarms.py `policy_name` fits it to PolicyName's 20 characters
    # (API page 248/39326), so a stage such as `production` deploys; unique after fitting (checked below).
    name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    metric: Literal[ALARM_METRICS]  # type: ignore[valid-type]
    functions: List[StrictStr] = Field(min_length=1)  # keys of inputs.functions
    period: Literal[60, 300, 3600, 86400] = 60  # seconds; the periods the metric page lists
    operator: Literal[ALARM_OPERATORS] = "gt"  # type: ignore[valid-type]
    threshold: Union[StrictInt, float] = 0
    periods: Annotated[StrictInt, Field(ge=1, le=30)] = 1  # ContinuePeriod: periods in a row before it fires
    repeat: Literal[0, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400] = 3600  # NoticeFrequency, s
    onlyWithDeadLetter: Optional[StrictBool] = None  # bind only functions that have a dead-letter queue
    notices: Optional[StrictStr] = None  # notice template ids (notice-...), comma-separated; may be empty
    remark: Optional[StrictStr] = None


class ServerlessFile(_Strict):
    org: Optional[StrictStr] = None
    app: Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]*$")]
    stage: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9-]+$")]
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]*$")]
    component: Literal["multi-scf"]
    inputs: MultiScfInputs
    alarms: List[AlarmPolicy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _alarm_functions(self) -> "ServerlessFile":
        problems = [f"alarms[{i}].functions: {key!r} is not a key of inputs.functions"
                    for i, alarm in enumerate(self.alarms) for key in alarm.functions
                    if key not in self.inputs.functions]
        from .alarms import policy_name

        names = [policy_name(a.name) for a in self.alarms]
        if len(names) != len(set(names)):
            problems.append("alarms: two alarm policies have the same name (deploy finds them by name)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LayerSrc(_Strict):
    src: Optional[StrictStr] = None
    targetDir: Optional[StrictStr] = None
    exclude: List[StrictStr] = Field(default_factory=list)
    bucket: Optional[StrictStr] = None
    object: Optional[StrictStr] = None


class LayerInputs(_Strict):
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    region: Annotated[StrictStr, Field(pattern=REGION_RE)]
    src: Union[StrictStr, LayerSrc]
    runtimes: List[Runtime] = Field(min_length=1)
    description: Optional[StrictStr] = None


class LayerFile(_Strict):
    org: Optional[StrictStr] = None
    app: StrictStr
    stage: StrictStr
    name: StrictStr
    component: Literal["layer"]
    inputs: LayerInputs


# --- queries on a loaded file --------------------------------------------------------------------

def function_environment(sf: ServerlessFile, key: str) -> Dict[str, str]:
    """The variables function `key` gets: its own list if it has one, else the top-level list."""
    fn = sf.inputs.functions[key]
    entries = fn.environments if fn.environments is not None else (sf.inputs.environments or [])
    return {kv.key: kv.value for kv in entries}


def cos_domain_parts(domain: str) -> Dict[str, str]:
    m = COS_DOMAIN_RE.match(domain)
    if not m:
        raise ValueError(f"not a COS XML API domain: {domain!r}")
    return m.groupdict()
