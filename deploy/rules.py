"""The project's rules for serverless.yml, beyond the component schema: one function per rule.

Each rule takes the `Project` (the parsed file, the checkout, the settings each function
would load) and yields one line per problem, naming the path in the file. Its docstring
says where the rule comes from. To add one: write a function here, decorate it with
`@rule`, and give it a test in tests/test_iac_serverless.py; `deploy.checks.problems`
runs them all, in the order they are written.
"""
from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from .components import CosTrigger, HttpTrigger, ServerlessFile, TimerTrigger, cos_domain_parts, function_environment

EXPECTED_FUNCTIONS = ("submit", "callback", "reconcile")
NEVER_DEPLOYED = ("COS_MATTING_ENDPOINT",)
CLAIMING = ("submit", "reconcile")  # functions that create claims (reconcile resubmits through Submitter)
DEFAULT_TIMEOUT = 3  # seconds: SCF's default when neither the function nor the file sets one


@dataclass
class Project:
    sf: ServerlessFile
    root: Path
    settings: Dict[str, Any] = field(default_factory=dict)  # function key -> shared.config.Settings that load
    setting_errors: Dict[str, str] = field(default_factory=dict)  # function key -> why they would not load

    @classmethod
    def load(cls, sf: ServerlessFile, root: Path) -> "Project":
        """The project with each function's settings loaded as its cold start would load them."""
        from shared.config import ConfigError, known_variables, load_settings

        known = set(known_variables())
        project = cls(sf, root)
        for key in sf.inputs.functions:
            env = function_environment(sf, key)
            try:
                project.settings[key] = load_settings({k: v for k, v in env.items() if k in known})
            except ConfigError as exc:
                project.setting_errors[key] = str(exc)
        return project

    def timeout(self, key: str) -> int:
        return self.sf.inputs.functions[key].timeout or self.sf.inputs.timeout or DEFAULT_TIMEOUT

    def triggers(self, kind: type) -> List[Tuple[int, Any]]:
        """(index in inputs.triggers, trigger) of every trigger of one type."""
        return [(i, t) for i, t in enumerate(self.sf.inputs.triggers) if isinstance(t, kind)]


Rule = Callable[[Project], Iterable[str]]
RULES: List[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def handler_source(sf: ServerlessFile, key: str, root: Path) -> Path:
    """Where the handler module of function `key` comes from in the checkout."""
    fn = sf.inputs.functions[key]
    module = (fn.handler or "index.main_handler").split(".")[0]
    folder = posixpath.basename(posixpath.normpath(fn.src or key))
    return root / "functions" / folder / f"{module}.py"


def _defines_main_handler(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main_handler"
               for node in tree.body)


def timer_period_seconds(cron: str) -> Optional[int]:
    """Period of simple SCF crons ('0 */10 * * * * *', '0 0 * * * * *'); None when irregular."""
    sec, minute, hour, *_ = cron.split()
    if not sec.isdigit():
        return None
    m = re.fullmatch(r"\*/(\d+)", minute)
    if m and hour == "*" and 60 % int(m.group(1)) == 0:
        return int(m.group(1)) * 60
    if minute.isdigit() and hour == "*":
        return 3600
    m = re.fullmatch(r"\*/(\d+)", hour)
    if minute.isdigit() and m and 24 % int(m.group(1)) == 0:
        return int(m.group(1)) * 3600
    return None


# -- functions -------------------------------------------------------------------------------------

@rule
def expected_functions(p: Project) -> Iterator[str]:
    """The three functions of functions/ (ARCHITECTURE.md, the flow), no more, no fewer."""
    functions = p.sf.inputs.functions
    if set(functions) != set(EXPECTED_FUNCTIONS):
        yield f"inputs.functions: expected {', '.join(EXPECTED_FUNCTIONS)}, found {', '.join(sorted(functions))}"


@rule
def handlers_are_main_handler(p: Project) -> Iterator[str]:
    """SCF calls `<file>.<function>`; every handler here is functions/<key>/index.py:main_handler
    (CreateFunction `Handler`, api 583/18586), and that file must exist and define it at top level."""
    for key, fn in p.sf.inputs.functions.items():
        where = f"inputs.functions.{key}"
        if fn.handler != "index.main_handler":
            yield f"{where}.handler: SCF handlers here are index.main_handler (got {fn.handler!r})"
        src = handler_source(p.sf, key, p.root)
        if not src.is_file():
            yield f"{where}: handler file {src.relative_to(p.root)} does not exist"
        elif not _defines_main_handler(src):
            yield f"{where}: {src.relative_to(p.root)} defines no top-level main_handler"


@rule
def sources_are_the_packaged_folders(p: Project) -> Iterator[str]:
    """`cos-matting package` builds dist/scf/<key> (deploy/package.py): the file must deploy those."""
    for key, fn in p.sf.inputs.functions.items():
        if fn.src != f"./{key}":
            yield f"inputs.functions.{key}.src: must be ./{key} (dist/scf/{key} is what `cos-matting package` builds)"
    src_top = p.sf.inputs.src if isinstance(p.sf.inputs.src, str) else p.sf.inputs.src.src
    if posixpath.normpath(src_top or "") != "dist/scf":
        yield "inputs.src: must be ./dist/scf (the folder `cos-matting package` builds)"


@rule
def variables_are_known(p: Project) -> Iterator[str]:
    """Every variable set is one `shared.config` reads (a misspelt one would be silently ignored)."""
    from shared.config import known_variables

    known = set(known_variables())
    for key in p.sf.inputs.functions:
        unknown = sorted(set(function_environment(p.sf, key)) - known)
        if unknown:
            yield f"inputs.functions.{key}: sets variables the settings do not know: {', '.join(unknown)}"


@rule
def never_the_local_cloud(p: Project) -> Iterator[str]:
    """COS_MATTING_ENDPOINT points the clients at the local cloud (shared/config.py): never deployed."""
    for key in p.sf.inputs.functions:
        env = function_environment(p.sf, key)
        for name in NEVER_DEPLOYED:
            if env.get(name):
                yield f"inputs.functions.{key}: {name} points the functions at the local cloud; never set it in a deploy"


@rule
def settings_load(p: Project) -> Iterator[str]:
    """The settings each function gets load at cold start (required ones present, `Settings._guards`)."""
    for key, error in p.setting_errors.items():
        yield f"inputs.functions.{key}: settings would not load at cold start: {error}"


@rule
def layer_and_runtime(p: Project) -> Iterator[str]:
    """Python3.10, the newest SCF Python runtime, which has no COS SDK built in: the layer ships it
    (CreateFunctionRequest.Runtime in tencentcloud/scf/v20180416/models.py; dependencies in a layer, 583/40159)."""
    if not p.sf.inputs.layers:
        yield "inputs.layers: the dependency layer is missing (the COS SDK is not in the Python3.10 runtime)"
    if p.sf.inputs.runtime != "Python3.10":
        yield f"inputs.runtime: must be Python3.10 (got {p.sf.inputs.runtime!r})"


@rule
def submit_has_a_dead_letter_queue(p: Project) -> Iterator[str]:
    """COS triggers invoke asynchronously: a failed invocation is retried, then can go to a dead-letter
    queue ("Error Types and Retry Policies", 583/39851; dead letter queue, 583/39704); without one, the event of an upload whose every retry failed is not kept."""
    submit = p.sf.inputs.functions.get("submit")
    if submit is not None and submit.deadLetter is None:
        yield ("inputs.functions.submit.deadLetter: missing: an upload whose every retry failed must land in "
               "a dead-letter queue (COS_MATTING_DEPLOY_DEAD_LETTER_TYPE / _NAME)")


# -- the COS trigger -------------------------------------------------------------------------------

def _submit_cos_triggers(p: Project) -> Iterator[Tuple[str, Any, Any, Dict[str, str]]]:
    """(path, trigger, submit's settings, bucket domain parts) of each COS trigger on submit, when
    submit's settings load (else `settings_load` already says why)."""
    s = p.settings.get("submit")
    for i, t in p.triggers(CosTrigger):
        if t.function == "submit" and s is not None:
            yield f"inputs.triggers[{i}].parameters", t, s, cos_domain_parts(t.parameters.bucket)


@rule
def submit_handles_the_cos_events(p: Project) -> Iterator[str]:
    """Uploads reach submit through a COS trigger, and only submit parses COS events (shared/submit.py)."""
    cos = p.triggers(CosTrigger)
    if not any(t.function == "submit" for _, t in cos):
        yield "inputs.triggers: no COS trigger for submit"
    for i, t in cos:
        if t.function != "submit":
            yield f"inputs.triggers[{i}].function: only submit handles COS events (got {t.function!r})"


@rule
def cos_trigger_matches_the_settings(p: Project) -> Iterator[str]:
    """The trigger watches COS_MATTING_BUCKET/REGION, for uploads, under a watched prefix and suffix:
    anything else the code would ignore, or the trigger would never deliver."""
    from shared.config import env_name

    for where, t, s, parts in _submit_cos_triggers(p):
        prefix, suffix = t.parameters.filter.prefix, t.parameters.filter.suffix
        if parts["bucket"] != s.bucket or parts["region"] != s.region:
            yield (f"{where}.bucket: {t.parameters.bucket} is not COS_MATTING_BUCKET/COS_MATTING_REGION "
                   f"({s.bucket} in {s.region})")
        if not t.parameters.events.startswith("cos:ObjectCreated:"):
            yield f"{where}.events: submit handles uploads only (cos:ObjectCreated:*)"
        if not prefix:
            yield (f"{where}.filter.prefix: empty = the whole bucket, outputs and records included; "
                   "set the watched prefix")
        elif "," in prefix:  # serverless.yml takes it from COS_MATTING_WATCH_PREFIXES: a list here is one string
            yield (f"{where}.filter.prefix: {prefix!r}: a COS trigger has one prefix; set "
                   f"{env_name('watch_prefixes')} to one prefix (deploy a stage per prefix)")
        elif not any(prefix.startswith(w) for w in s.watch_prefixes):
            yield (f"{where}.filter.prefix: {prefix!r} is not under {env_name('watch_prefixes')} "
                   f"{list(s.watch_prefixes)}: the code would ignore every upload it delivers")
        if suffix and suffix.lower() not in s.suffixes:
            yield f"{where}.filter.suffix: {suffix!r} is not in {env_name('suffixes')} {list(s.suffixes)}"


@rule
def no_recursion(p: Project) -> Iterator[str]:
    """SCF has no recursion detection: a trigger prefix overlapping the output or records prefix in the
    same bucket loops and bills forever (the COS trigger, 583/9707, fires on every matching write, its
    function's own included); checked here statically."""
    from shared.config import overlap

    for where, t, s, parts in _submit_cos_triggers(p):
        prefix = t.parameters.filter.prefix
        for label, bucket, guarded in (("output", s.out_bucket, s.output_prefix),
                                       ("records", s.rec_bucket, s.records_prefix)):
            if bucket == parts["bucket"] and overlap(prefix, guarded):
                yield (f"{where}.filter.prefix: {prefix!r} overlaps the {label} prefix {guarded!r} in the same "
                       "bucket: the pipeline's own writes would trigger new jobs")


# -- the callback URL and the timer ----------------------------------------------------------------

@rule
def callback_has_a_public_function_url(p: Project) -> Iterator[str]:
    """CI calls the callback from outside: one public Function URL (authType NONE, extranet) on callback,
    the HMAC token authenticates (Function URL, 583/96099; CI callbacks are unsigned, 460/76956; shared/tokens.py)."""
    http = p.triggers(HttpTrigger)
    if len(http) != 1 or http[0][1].function != "callback":
        yield "inputs.triggers: exactly one Function URL (type: http) is expected, on callback"
        return
    i, t = http[0]
    if t.parameters.authType != "NONE" or not t.parameters.netConfig.enableExtranet:
        yield (f"inputs.triggers[{i}].parameters: the callback URL must be public (authType: NONE, "
               "netConfig.enableExtranet: true): CI calls it from outside, the HMAC token authenticates")


@rule
def reconcile_has_one_timer_longer_than_a_run(p: Project) -> Iterator[str]:
    """One timer on reconcile, firing less often than reconcile may run: otherwise a tick could start
    while the previous run still holds its place (shared/reconcile.py)."""
    timer = p.triggers(TimerTrigger)
    if len(timer) != 1 or timer[0][1].function != "reconcile":
        yield "inputs.triggers: exactly one timer is expected, on reconcile"
        return
    period = timer_period_seconds(timer[0][1].parameters.cronExpression)
    timeout = p.timeout("reconcile")
    if period is not None and timeout >= period:
        yield f"inputs.functions.reconcile.timeout: {timeout}s is not below the timer period {period}s: runs could overlap"


@rule
def runs_end_before_their_claim_lease(p: Project) -> Iterator[str]:
    """A claim older than COS_MATTING_CLAIM_LEASE_SECONDS may be taken over (shared/records.py): every
    function that claims must time out before its lease ends."""
    lease = min((s.claim_lease_seconds for s in p.settings.values()), default=None)
    if lease is None:
        return
    for key in p.sf.inputs.functions:
        timeout = p.timeout(key)
        if key in CLAIMING and timeout >= lease:
            yield (f"inputs.functions.{key}.timeout: {timeout}s is not below COS_MATTING_CLAIM_LEASE_SECONDS "
                   f"({lease}s): a claim held by a live {key} run could be taken over")


def problems(sf: ServerlessFile, root: Path) -> List[str]:
    """Every problem every rule finds, in the order the rules are written."""
    project = Project.load(sf, root)
    return [line for check in RULES for line in check(project)]
