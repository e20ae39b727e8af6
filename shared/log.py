"""One JSON line per event on stdout, through `logging` (SCF ships stdout to CLS).

`log(event, **fields)` is the call-site API: a record on the `cos_matting` logger whose
message is the event name and whose fields ride on the record; `JsonFormatter` turns it
into `{"ts", "level", "event", **fields}` (secret fields left out). The fields stay at the
top level because CLS parses the first level of a JSON log line into `key: value`
fields (SCF Python "Log Development", https://www.tencentcloud.com/document/product/583/40326;
CLS keeps at most 8 KB of a line, 583/39778).

`configure()` gives the logger its one handler at cold start (functions/*/index.py), or
on first use. The logger does not propagate: SCF's own example on that page logs with
`logging.getLogger().info(...)` after only `setLevel(INFO)` and the line reaches the
function log, so the Python runtime has a handler on the root logger (plain CPython would
drop an INFO record there), and a propagating record would be printed twice. Powertools
does the same (aws_lambda_powertools/logging/utils.py `_configure_logger`: "ensure we
don't propagate logs to existing loggers").

A host that routes the lines itself (the CLI capturing each invocation's lines) installs
its handler, marked `prints_lines`, before `configure()` runs, which then adds nothing.
"""
import json
import logging
import sys
import threading
from typing import Any, Dict

LOGGER_NAME = "cos_matting"
SECRET_FIELDS = ("authorization", "token", "secret", "secret_key", "secretkey", "callback_keys", "notify_secret", "t")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}
FIELDS = "cos_fields"  # the LogRecord attribute carrying log()'s fields (one attribute: no clash with LogRecord's own)

logger = logging.getLogger(LOGGER_NAME)
_configure_lock = threading.Lock()


def scrub(fields: Dict[str, Any]) -> Dict[str, Any]:
    """The fields a line may show: no None values, nothing named like a secret."""
    return {k: v for k, v in fields.items() if v is not None and k.lower() not in SECRET_FIELDS}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "event", **fields}` on one line, non-ASCII kept as is; a record with
    exc_info adds `exception` (the traceback text) and `exception_name`, as powertools'
    LambdaPowertoolsFormatter does (aws_lambda_powertools/logging/formatter.py)."""

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                                "event": record.getMessage()}
        line.update(scrub(getattr(record, FIELDS, None) or {}))
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
            line["exception_name"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False, default=str)


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is when a record is emitted, like the stdlib's own
    last-resort handler does for stderr (logging._StderrHandler): a runtime that captures
    stdout per invocation (SCF's, localcloud/worker.py) still gets every line."""

    prints_lines = True  # the mark of a handler that puts the lines where they belong (see has_output)

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout


def has_output() -> bool:
    """Whether a handler prints our lines (ours, or a host's marked `prints_lines`); other handlers
    on the logger (a test runner's capture) do not count."""
    return any(getattr(h, "prints_lines", False) for h in logger.handlers)


def configure() -> logging.Logger:
    """Cold start: the JSON stdout handler, unless a handler already prints the lines."""
    with _configure_lock:
        if not has_output():
            handler = StdoutHandler()
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)  # every line the code writes; CLS filters, not us
        logger.propagate = False
    return logger


def log(event: str, level: str = "info", **fields: Any) -> None:
    if not has_output():
        configure()
    logger.log(LEVELS.get(level, logging.INFO), event, extra={FIELDS: fields})
