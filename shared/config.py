"""Settings from environment variables, validated once at cold start.

Every variable is `COS_MATTING_<FIELD>` (credentials use SCF's own
`TENCENTCLOUD_*` names). An invalid value raises `ConfigError` naming the
variable and what it accepts, so a bad deploy fails loudly on its first event.
"""
import json
import os
import posixpath
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from .identity import DEPLOYMENT
from .jobs import Channel, CallbackFormatName, Level, ModeName, SegmentTypeName, UserDataStr

PREFIX = "COS_MATTING_"
DEFAULT_SUFFIXES = ".mp4,.mov,.m4v,.mkv,.webm,.avi,.flv,.ts"
OUTPUT_FIELDS = ("output_prefix", "key", "watched", "key_dir", "stem", "ext", "mode", "segment_type", "record_id")
MAX_KEY_BYTES = 850  # COS's object key limit, bytes of UTF-8 (cloud.tencent.com/document/product/436/13324)
VERSIONS_DIR = ".versions/"  # under the output prefix: each job's own result, see staging_key


# Formatted with the name the user wrote: the variable at top level, the rule's field in a rule.
COMBINATION_NEEDS = ("mode Combination lays the person over a background picture or video: set {background_key} "
                     "to its key in the source bucket")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


class JobOptions(BaseModel):
    """The `SegmentVideoBody` options a deployment chooses; types shared with the job model."""

    model_config = ConfigDict(extra="forbid")

    mode: ModeName = "Mask"
    segment_type: SegmentTypeName = "HumanSeg"
    background_red: Channel = 0
    background_green: Channel = 0
    background_blue: Channel = 0
    background_key: Optional[str] = Field(None, description="object key of the background file, source bucket")
    binary_threshold: Channel = 0
    remove_red: Channel = 0
    remove_green: Channel = 0
    remove_blue: Channel = 0
    job_level: Level = 0
    user_data: UserDataStr = Field("", max_length=900, description="passed through to the job after the record id")

    @model_validator(mode="after")
    def _combination(self) -> "JobOptions":
        if self.mode == "Combination" and not self.background_key:
            raise ValueError(COMBINATION_NEEDS)
        return self


class Rule(BaseModel):
    """Per-prefix override: uploads under `prefix` use these options instead."""

    model_config = ConfigDict(extra="forbid")
    prefix: str = Field(min_length=1)
    options: Dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        # Rules are written flat: {"prefix": "greenscreen/", "segment_type": "GreenScreenSeg"}
        if isinstance(data, dict) and "options" not in data:
            data = {"prefix": data.get("prefix"), "options": {k: v for k, v in data.items() if k != "prefix"}}
        return data

    @field_validator("options")
    @classmethod
    def _known(cls, options: Dict[str, Any]) -> Dict[str, Any]:
        import difflib

        allowed = list(JobOptions.model_fields)
        for name in sorted(set(options) - set(allowed)):
            near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            raise ValueError(f"unknown field {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                             + f"; a rule has \"prefix\" and any of: {', '.join(allowed)}")
        return options


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(pattern=r"^[a-z0-9-]+-\d+$", description="source bucket, name-APPID")
    region: str = Field(pattern=r"^[a-z]+-[a-z0-9-]+$")
    watch_prefixes: Tuple[str, ...] = ("input/",)
    suffixes: Tuple[str, ...] = tuple(DEFAULT_SUFFIXES.split(","))
    max_size_mb: int = Field(5120, ge=1)
    output_bucket: Optional[str] = Field(None, pattern=r"^[a-z0-9-]+-\d+$")
    output_region: Optional[str] = None
    output_prefix: str = Field("matting/", max_length=200)
    output_name: str = "{output_prefix}{key}.{mode}.mp4"
    records_bucket: Optional[str] = Field(None, pattern=r"^[a-z0-9-]+-\d+$")
    records_prefix: str = ".cos-matting/records/"
    # Which deployment this is (deploy sets `<app>-<stage>`): it rides in every job's correlation id,
    # so callback, reconcile and `cancel` act only on this deployment's jobs and records (identity.py).
    deployment: Optional[str] = Field(None, pattern=f"^{DEPLOYMENT}$")
    defaults: JobOptions = Field(default_factory=JobOptions)
    rules: Tuple[Rule, ...] = ()
    callback_url: Optional[str] = Field(None, pattern=r"^https?://\S+$")
    callback_format: CallbackFormatName = "JSON"
    callback_keys: Tuple[str, ...] = ()
    callback_token_ttl: int = Field(7 * 86400, ge=60)
    claim_lease_seconds: int = Field(300, ge=10, description="after this a claim without a job is taken over")
    reconcile_after_seconds: int = Field(1800, ge=0)
    reconcile_budget_seconds: float = Field(180.0, gt=0, le=900, allow_inf_nan=False,
                                            description="reconcile stops and saves its place after this; keep "
                                                        "below the reconcile function's timeout")
    submit_attempts: int = Field(4, ge=1, le=10)
    endpoint: Optional[str] = Field(None, pattern=r"^https?://[^/]+/?$", description="local cloud, e.g. http://127.0.0.1:9000")
    timeout_seconds: float = Field(10.0, gt=0, le=300, allow_inf_nan=False)
    # Webhook for final records (shared/notify.py); the secret signs them and never shows in logs or reprs.
    notify_url: Optional[str] = Field(None, pattern=r"^https?://[^\s/]+\S*$")
    notify_secret: Optional[SecretStr] = Field(None, min_length=16)

    @field_validator("watch_prefixes", "suffixes", "callback_keys", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("suffixes")
    @classmethod
    def _dot_lower(cls, value: Tuple[str, ...]) -> Tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one suffix, e.g. .mp4,.mov (an empty list matches nothing)")
        out = tuple(s.lower() if s.startswith(".") else "." + s.lower() for s in value)
        if "." in out:
            raise ValueError("a bare '.' is not a suffix")
        return out

    @field_validator("watch_prefixes")
    @classmethod
    def _prefixes(cls, value: Tuple[str, ...]) -> Tuple[str, ...]:
        return tuple(_dir(v) for v in value) or ("",)

    @field_validator("output_prefix", "records_prefix")
    @classmethod
    def _required_dir(cls, value: str) -> str:
        if not _dir(value):
            raise ValueError("must be a non-empty folder such as 'matting/' (the bucket root would loop)")
        if any(part in ("", ".", "..") for part in _dir(value)[:-1].split("/")):
            raise ValueError("must be a plain folder path: no empty, '.' or '..' segments")
        return _dir(value)

    @field_validator("output_name")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(**{name: "x" for name in OUTPUT_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown placeholder {exc}; allowed: {', '.join('{%s}' % f for f in OUTPUT_FIELDS)}") from None
        if not value.startswith("{output_prefix}"):
            raise ValueError("must start with {output_prefix} so outputs stay under the output prefix")
        if "{key}" not in value and "{stem}" not in value:
            raise ValueError("must contain the source's name: {key} (the default) or {stem}")
        literal = value
        for name in OUTPUT_FIELDS:
            literal = literal.replace("{%s}" % name, "\x00")
        if any(part in (".", "..") for chunk in literal.split("\x00") for part in chunk.split("/")[1:-1]) \
                or ".." in literal or "//" in literal:
            raise ValueError("must not contain '..', '//' or './' segments: outputs would leave the output prefix")
        return value

    @field_validator("callback_keys")
    @classmethod
    def _key_length(cls, value: Tuple[str, ...]) -> Tuple[str, ...]:
        if any(len(k) < 16 for k in value):
            raise ValueError("each key must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _guards(self) -> "Settings":
        for i, rule in enumerate(self.rules):
            where = f"{env_name('rules')} rule {i + 1} (prefix {rule.prefix!r})"
            try:
                JobOptions.model_validate({**self.defaults.model_dump(), **rule.options})
            except ValidationError as exc:
                raise ValueError(f"{where}: " + "; ".join(_describe(err, rule=True) for err in exc.errors())) from None
            if not any(overlap(rule.prefix, w) for w in self.watch_prefixes):
                raise ValueError(f"{where}: the prefix is outside every watched prefix "
                                 f"({env_name('watch_prefixes')}: {', '.join(self.watch_prefixes)}), so the rule can "
                                 f"never apply; use a prefix under one of them")
        _check_output_names(self)
        if self.out_bucket == self.rec_bucket and overlap(self.output_prefix, self.records_prefix):
            raise ValueError(f"{env_name('records_prefix')}={self.records_prefix!r} and {env_name('output_prefix')}="
                             f"{self.output_prefix!r} overlap in one bucket: records and outputs need their own folders")
        if self.claim_lease_seconds <= max_submit_seconds(self):
            raise ValueError(f"{env_name('claim_lease_seconds')}={self.claim_lease_seconds} must exceed the longest "
                             f"possible submit ({max_submit_seconds(self):.0f}s from {env_name('timeout_seconds')} x "
                             f"{env_name('submit_attempts')} plus lookups and backoff), or a live claim is taken over")
        if self.notify_url and not self.notify_secret:
            raise ValueError(f"{env_name('notify_url')} is set but {env_name('notify_secret')} is empty: "
                             "notifications are always signed")
        if self.callback_url and not self.callback_keys:
            raise ValueError(f"{env_name('callback_url')} is set but {env_name('callback_keys')} is empty")
        for name, bucket, prefix in (("output_prefix", self.out_bucket, self.output_prefix),
                                     ("records_prefix", self.rec_bucket, self.records_prefix)):
            if bucket != self.bucket:
                continue
            for watched in self.watch_prefixes:
                if overlap(prefix, watched):
                    raise ValueError(f"{env_name(name)}={prefix!r} overlaps {env_name('watch_prefixes')} entry "
                                     f"{watched!r} in the same bucket: outputs would trigger new jobs")
        return self

    @property
    def out_bucket(self) -> str:
        return self.output_bucket or self.bucket

    @property
    def out_region(self) -> str:
        return self.output_region or self.region

    @property
    def rec_bucket(self) -> str:
        return self.records_bucket or self.bucket

    @property
    def max_size_bytes(self) -> int:
        return self.max_size_mb * 1024 * 1024

    def options_for(self, key: str) -> JobOptions:
        """Defaults, overridden by the longest matching rule prefix."""
        matching = [r for r in self.rules if key.startswith(r.prefix)]
        if not matching:
            return self.defaults
        rule = max(matching, key=lambda r: len(r.prefix))
        return JobOptions.model_validate({**self.defaults.model_dump(), **rule.options})


def overlap(a: str, b: str) -> bool:
    """Whether two key prefixes share keys: one starts with the other (equal included)."""
    return a.startswith(b) or b.startswith(a)


def _dir(value: str) -> str:
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def _raw_from_env(environ: Mapping[str, str]) -> Dict[str, Any]:
    raw: Dict[str, Any] = {}
    for field in Settings.model_fields:
        if field == "defaults":
            continue
        value = environ.get(env_name(field))
        if value not in (None, ""):
            raw[field] = json.loads(value) if field == "rules" else value
    defaults = {f: environ[env_name(f)] for f in JobOptions.model_fields if environ.get(env_name(f), "") != ""}
    raw["defaults"] = defaults
    return raw


def known_variables() -> List[str]:
    """Every variable the settings read, for docs and for checking serverless.yml."""
    fields = [f for f in Settings.model_fields if f != "defaults"] + list(JobOptions.model_fields)
    return [env_name(f) for f in fields]


# COS_MATTING_* names that are not settings of the functions: the deploy tools' and the tests' own.
NOT_SETTINGS = ("COS_MATTING_DEPLOY_", "COS_MATTING_TEST_", "COS_MATTING_DEBUG")


def unknown_variables(environ: Mapping[str, str]) -> List[Tuple[str, Optional[str]]]:
    """(name, nearest known name or None) for every COS_MATTING_* variable no setting reads."""
    import difflib

    known = known_variables()
    found = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in known and not name.startswith(NOT_SETTINGS):
            near = difflib.get_close_matches(name[len(PREFIX):], [k[len(PREFIX):] for k in known], n=1, cutoff=0.6)
            found.append((name, PREFIX + near[0] if near else None))
    return found


def load_settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    if environ is None:  # a function's cold start: a misspelt variable is logged, not silently ignored
        environ = os.environ
        from .log import log

        for name, near in unknown_variables(environ):
            log("settings.unknown_variable", level="warning", variable=name, did_you_mean=near)
    try:
        return Settings.model_validate(_raw_from_env(environ))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{env_name('rules')}: not valid JSON ({exc}); "
                          'example: [{"prefix": "greenscreen/", "segment_type": "GreenScreenSeg"}]') from None
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


# Allowed values in words where the check itself is a pattern or a type.
BUCKET_WORDS = "a bucket as NAME-APPID (lower-case letters, digits and hyphens, then the APPID), e.g. videos-1250000000"
WORDS = {
    "bucket": BUCKET_WORDS, "output_bucket": BUCKET_WORDS, "records_bucket": BUCKET_WORDS,
    "region": "a region name such as ap-guangzhou, ap-shanghai or na-siliconvalley",
    "callback_url": "an http:// or https:// URL without spaces (the callback function's Function URL)",
    "notify_url": "an http:// or https:// URL without spaces (your webhook receiver)",
    "endpoint": "the local cloud's http://HOST:PORT, without a path, e.g. http://127.0.0.1:9000",
    "user_data": "printable ASCII text, at most 900 characters",
    "rules": 'a JSON list of rules, e.g. [{"prefix": "input/greenscreen/", "segment_type": "GreenScreenSeg"}]',
    "prefix": "a folder such as input/greenscreen/",
    "deployment": "1-64 letters, digits, '-' or '_', starting with a letter or digit (deploy sets <app>-<stage>)",
}


def _bounds(field: str) -> str:
    info = Settings.model_fields.get(field) or JobOptions.model_fields.get(field)
    low = high = None
    for item in getattr(info, "metadata", ()):
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    return f" of at least {low}" if low is not None else ""


# Settings whose values are secrets (the callback signing keys, the webhook secret).
SECRET_FIELDS = ("callback_keys", "notify_secret")


def _describe(err: Dict[str, Any], rule: bool = False) -> str:
    """One pydantic error as `<name>: <allowed values in words> (got ...)`, named as the user wrote it."""
    loc = [str(p) for p in err["loc"]]
    if loc and loc[0] == "defaults":
        loc = loc[1:]
    field = loc[-1] if loc else ""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "value_error":
        detail = str(ctx.get("error") or err["msg"]).replace("Value error, ", "")
        if detail == COMBINATION_NEEDS:
            return detail.format(background_key='"background_key"' if rule else env_name("background_key"))
    elif kind == "missing":
        detail = "required" + (f": {WORDS[field]}" if field in WORDS else "")
    elif kind == "literal_error":
        detail = f"allowed values: {ctx.get('expected')}"
    elif kind.startswith(("int_", "greater_", "less_")):
        detail = f"a whole number{_bounds(field)}"
    elif kind.startswith("float_"):
        detail = "a number"
    elif kind == "string_too_long":
        detail = f"at most {ctx.get('max_length')} characters"
    elif kind in ("string_too_short", "too_short"):
        detail = f"at least {ctx.get('min_length')} characters"
    elif field in WORDS:
        detail = f"expected {WORDS[field]}"
    else:
        detail = err["msg"]
    got = err.get("input")
    # A secret's value is never echoed: this message reaches deploy's output, doctor's and the cold start's log.
    suffix = f" (got {got!r})" if isinstance(got, (str, int)) and len(str(got)) <= 80 and field not in SECRET_FIELDS \
        else ""
    if not field:
        return detail
    name = f'"{field}"' if rule else env_name(field)
    return f"{name}: {detail}{suffix}"


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["rules"] and len(loc) >= 2 and loc[1].isdigit():
            rule_err = {**err, "loc": tuple(p for p in loc[2:] if p != "options")}
            lines.append(f"{env_name('rules')} rule {int(loc[1]) + 1}: {_describe(rule_err, rule=True)}")
        else:
            lines.append(_describe(err))
    return "invalid settings: " + "; ".join(lines)


def max_submit_seconds(settings: "Settings") -> float:
    """The longest one submit can take: every POST /jobs times out and is followed by a lookup
    (one list call: it is scoped to the job's queue and input key, so one page), with the
    full-jitter backoff at its cap, plus the claim and record writes. Submit stops retrying
    before this (submit.Submitter._submit); a claim younger than it may still be live."""
    attempts, timeout = settings.submit_attempts, settings.timeout_seconds
    backoff = sum(min(8.0, 0.25 * 2 ** i) for i in range(attempts - 1))
    return attempts * 2 * timeout + backoff + 3 * timeout


def escape_key(key: str) -> str:
    """An injective, readable spelling of a key as output path segments: `%` -> `%25`, an empty
    segment -> `%00`, `.` -> `%2E`, `..` -> `%2E%2E`, control characters -> `%XX`. So `x//a.mp4`,
    `x/./a.mp4` and `x/a.mp4` stay three names and none can climb out of the output prefix."""
    def segment(part: str) -> str:
        part = "".join(ch if ch >= " " and ch != "\x7f" else "%%%02X" % ord(ch) for ch in part.replace("%", "%25"))
        return {"": "%00", ".": "%2E", "..": "%2E%2E"}.get(part, part)

    return "/".join(segment(p) for p in key.split("/"))


def output_key(settings: Settings, key: str, mode: str, segment_type: str, record_id: str) -> str:
    """The predictable output name of a source key (what users look for). Longer than COS's
    850 bytes: cut at a character boundary and end with `~<sha256 of the key, 16 hex>` and the
    template's extension, so it stays readable, unique and under the limit."""
    import hashlib

    watched = max((p for p in settings.watch_prefixes if key.startswith(p)), key=len, default="")
    rel = escape_key(key[len(watched):])
    key_dir, _, name = rel.rpartition("/")
    stem, ext = posixpath.splitext(name)
    out = settings.output_name.format(output_prefix=settings.output_prefix, key=escape_key(key),
                                      watched=escape_key(watched), key_dir=key_dir + "/" if key_dir else "",
                                      stem=stem or name, ext=ext.lstrip("."), mode=mode.lower(),
                                      segment_type=segment_type, record_id=record_id)
    if any(part in ("", ".", "..") for part in out.split("/")) or not out.startswith(settings.output_prefix):
        raise ValueError(f"output key {out!r} escapes {settings.output_prefix!r}")
    if len(out.encode("utf-8")) <= MAX_KEY_BYTES:
        return out
    suffix = posixpath.splitext(out)[1] if len(posixpath.splitext(out)[1]) <= 16 else ""
    tail = "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + suffix
    head = out[:len(out) - len(suffix)].encode("utf-8")[:MAX_KEY_BYTES - len(tail)].decode("utf-8", "ignore")
    return head + tail


def staging_key(settings: Settings, record_id: str, attempt: int, published: str) -> str:
    """Where one attempt's job writes: its own key, so a job for an older version can never
    overwrite the current version's result. The callback copies it to the published name
    only while its version is still the object's current one (Lifecycle.publish)."""
    return f"{settings.output_prefix}{VERSIONS_DIR}{record_id}-{attempt}{posixpath.splitext(published)[1]}"


def _check_output_names(settings: Settings) -> None:
    """Render the template for keys that differ only in what is easy to lose; refuse a collision."""
    import hashlib

    prefixes = settings.watch_prefixes
    names = ["a.mp4", "a.MOV", "A.mp4", "a.b.mp4", "a.b.mkv", "a", "a.", "x/a.mp4", "x//a.mp4", "x/./a.mp4",
             "x/../a.mp4", "x/a/b.mp4", "x.a/b.mp4", "%2E.mp4", "a%00.mp4"]
    seen: Dict[str, str] = {}
    for prefix in prefixes:
        for name in names:
            key = prefix + name
            try:
                out = output_key(settings, key, "Mask", "HumanSeg", hashlib.sha256(key.encode()).hexdigest()[:32])
            except ValueError as exc:
                raise ValueError(f"{env_name('output_name')}={settings.output_name!r}: {exc}") from None
            if out in seen:
                raise ValueError(f"{env_name('output_name')}={settings.output_name!r} gives {seen[out]!r} and {key!r} "
                                 f"the same output {out!r}; keep {{key}} (the default) in it")
            seen[out] = key
