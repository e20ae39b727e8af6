"""The one model of a Cloud Infinite `SegmentVideoBody` job: request, response, XML.

The submit path builds requests with it, the local cloud validates and answers
with it, and the tests generate fixtures from it. Field names are the wire
names; all values travel as strings and are coerced here.
"""
from typing import Annotated, Any, Dict, List, Literal, Optional, Union
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from . import xmlcodec
from .states import JOB_FINAL

TAG = "SegmentVideoBody"
ModeName = Literal["Mask", "Foreground", "Combination"]
SegmentTypeName = Literal["HumanSeg", "GreenScreenSeg", "SolidColorSeg"]
JobState = Literal["Submitted", "Running", "Pause", "Success", "Failed", "Cancel"]
CallbackFormatName = Literal["JSON", "XML"]
Channel = Annotated[int, Field(ge=0, le=255)]
Level = Annotated[int, Field(ge=0, le=2)]
UserDataStr = Annotated[str, Field(max_length=1024, pattern=r"^[\x20-\x7e]*$")]
NonEmpty = Annotated[str, Field(min_length=1, max_length=1024)]

TERMINAL_STATES = JOB_FINAL  # a job's final states (their order: shared/states.py)


class _Wire(BaseModel):
    # Responses: elements CI sends but documents nowhere (Progress, SubTag, Workflow,
    # Input.CosHeaders, MediaResult.OutputFile.Md5Info...: DescribeMediaJob's own example, 436/47211,
    # carries Progress, which its field table omits)
    # are kept, never rejected. Requests are strict (_Strict). Schemas are built on first
    # use, so a function only pays for the models it touches.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def wire(self) -> Dict[str, Any]:
        """The dict that goes onto the wire: strings only, None left out."""
        return _stringify(self.model_dump(exclude_none=True))


def _stringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class _Strict(_Wire):
    """A request part: an element the API does not define is an error naming it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class SegmentVideoOptions(_Strict):
    """`Operation/SegmentVideoBody`: every option with its API default."""

    Mode: ModeName = "Mask"
    SegmentType: SegmentTypeName = "HumanSeg"
    BackgroundRed: Channel = 0
    BackgroundGreen: Channel = 0
    BackgroundBlue: Channel = 0
    BackgroundLogoUrl: Optional[NonEmpty] = None
    BinaryThreshold: Channel = 0
    RemoveRed: Channel = 0
    RemoveGreen: Channel = 0
    RemoveBlue: Channel = 0

    @model_validator(mode="after")
    def _combination_needs_background(self) -> "SegmentVideoOptions":
        if self.Mode == "Combination" and not self.BackgroundLogoUrl:
            raise ValueError("Mode Combination requires BackgroundLogoUrl (an object in the source bucket)")
        return self


class InputSpec(_Strict):
    Object: NonEmpty


class OutputSpec(_Strict):
    Region: NonEmpty
    Bucket: NonEmpty
    Object: NonEmpty


class Operation(_Strict):
    SegmentVideoBody: SegmentVideoOptions = Field(default_factory=SegmentVideoOptions)
    Output: OutputSpec
    UserData: Optional[UserDataStr] = None
    JobLevel: Level = 0


class MqConfig(_Strict):
    MqRegion: NonEmpty
    MqMode: Literal["Queue", "Topic"]
    MqName: NonEmpty


class JobRequest(_Strict):
    """`POST /jobs` body. Validate with `context={"bucket": "name-appid"}` to
    enforce that the background file lives in the source bucket."""

    Tag: Literal["SegmentVideoBody"]
    Input: InputSpec
    Operation: Operation
    CallBack: Optional[NonEmpty] = None
    CallBackFormat: CallbackFormatName = "XML"
    CallBackType: Literal["Url", "TDMQ"] = "Url"
    CallBackMqConfig: Optional[MqConfig] = None

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> "JobRequest":
        if self.CallBackType == "TDMQ" and self.CallBackMqConfig is None:
            raise ValueError("CallBackType TDMQ requires CallBackMqConfig")
        url = self.Operation.SegmentVideoBody.BackgroundLogoUrl
        bucket = (info.context or {}).get("bucket") if info else None
        if url and bucket and background_bucket(url) != bucket:
            raise ValueError(f"BackgroundLogoUrl must point into the source bucket {bucket}: {url}")
        return self

    def to_xml(self) -> bytes:
        return xmlcodec.dump("Request", self.wire())

    @classmethod
    def from_xml(cls, data: bytes, bucket: Optional[str] = None) -> "JobRequest":
        root, content = xmlcodec.parse(data)
        if root != "Request" or not isinstance(content, dict):
            raise ValueError(f"root element must be <Request>, got <{root}>")
        return cls.model_validate(content, context={"bucket": bucket})


def background_url(bucket: str, region: str, key: str) -> str:
    """The URL form CI expects for `BackgroundLogoUrl`."""
    from urllib.parse import quote

    return f"https://{bucket}.cos.{region}.myqcloud.com/{quote(key.lstrip('/'), safe='/-_.~')}"


def background_bucket(url: str) -> str:
    return urlsplit(url).hostname.split(".")[0] if urlsplit(url).hostname else ""


def background_key(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


# --- Response -----------------------------------------------------------------

class JobInput(_Wire):
    BucketId: Optional[str] = None
    Object: str
    Region: Optional[str] = None


class VideoStream(_Wire):
    Width: Optional[int] = None
    Height: Optional[int] = None
    Fps: Optional[float] = None
    Duration: Optional[float] = None
    CodecName: Optional[str] = None
    NumFrames: Optional[int] = None


class MediaFormat(_Wire):
    Duration: Optional[float] = None
    Size: Optional[int] = None
    Bitrate: Optional[float] = None
    FormatName: Optional[str] = None
    NumStream: Optional[int] = None


class MediaStreams(_Wire):
    Video: Optional[VideoStream] = None


class MediaInfoSpec(_Wire):
    Format: Optional[MediaFormat] = None
    Stream: Optional[MediaStreams] = None

    @field_validator("Stream", mode="before")
    @classmethod
    def _first_stream(cls, value: Any) -> Any:
        return value[0] if isinstance(value, list) and value else value


class OutputFileSpec(_Wire):
    Bucket: Optional[str] = None
    Region: Optional[str] = None
    ObjectName: Union[str, List[str], None] = None


class MediaResultSpec(_Wire):
    OutputFile: Optional[OutputFileSpec] = None


class EchoedOptions(SegmentVideoOptions):
    """The options as a job detail echoes them: extra elements kept, no request rules."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def _combination_needs_background(self) -> "EchoedOptions":  # type: ignore[override]
        return self  # a response is what CI did, not a request to check


class EchoedOutput(_Wire):
    Region: Optional[str] = None
    Bucket: Optional[str] = None
    Object: Optional[str] = None


class JobOperation(_Wire):
    SegmentVideoBody: Optional[EchoedOptions] = None
    Output: Optional[EchoedOutput] = None

    @field_validator("SegmentVideoBody", "Output", mode="before")
    @classmethod
    def _from_request_part(cls, value: Any) -> Any:
        # the options or output of a request, echoed: taken by value
        return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value
    UserData: Optional[str] = None
    JobLevel: Optional[int] = None
    MediaInfo: Optional[MediaInfoSpec] = None
    MediaResult: Optional[MediaResultSpec] = None


class JobDetail(_Wire):
    """One entry of `Response/JobsDetail`."""

    Code: str = "Success"
    Message: str = ""
    JobId: NonEmpty
    State: JobState
    CreationTime: str = "-"
    StartTime: str = "-"
    EndTime: str = "-"
    QueueId: str = ""
    Tag: str = TAG
    Input: Optional[JobInput] = None
    Operation: Optional[JobOperation] = None

    @field_validator("Operation", "Input", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("Code", "Message", "CreationTime", "StartTime", "EndTime", "QueueId", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value  # the SDK's XML-to-dict turns <Message/> into None

    @property
    def user_data(self) -> str:
        return (self.Operation.UserData if self.Operation else None) or ""

    @property
    def terminal(self) -> bool:
        return self.State in TERMINAL_STATES


def as_list(value: Any) -> List[Any]:
    """CI sends single children as a scalar or as a one-element list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


class JobsResponse(_Wire):
    JobsDetail: List[JobDetail] = Field(default_factory=list)
    NextToken: Optional[str] = None
    # GET /jobs/<ids> answers 200 and names the ids CI has no job for here
    # (DescribeMediaJob, cloud.tencent.com/document/product/460/84790 and api/436/47211: <NonExistJobIds>).
    NonExistJobIds: List[str] = Field(default_factory=list)

    @field_validator("JobsDetail", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return as_list(value)

    @field_validator("NonExistJobIds", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return [i.strip() for v in as_list(value) for i in str(v).split(",") if i.strip()]

    def wire(self) -> Dict[str, Any]:
        data = super().wire()
        if not data.get("NonExistJobIds"):
            data.pop("NonExistJobIds", None)  # "所有任务都存在时不返回"
        return data

    def to_xml(self) -> bytes:
        return xmlcodec.dump("Response", self.wire())

    @classmethod
    def from_xml(cls, data: bytes) -> "JobsResponse":
        root, content = xmlcodec.parse(data)
        if root != "Response" or not isinstance(content, dict):
            raise ValueError(f"root element must be <Response>, got <{root}>")
        return cls.model_validate(content)


def format_errors(exc: Exception) -> str:
    """A pydantic error as one line per field: `Operation.JobLevel: ...`."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for err in errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "Request"
        lines.append(f"{where}: {err.get('msg')}" + (f" (got {err['input']!r})" if _short(err.get("input")) else ""))
    return "; ".join(lines)


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and len(str(value)) <= 80
