"""One JSON line per event on stdout (SCF ships stdout to CLS), with a correlation id."""
import json
import sys
import time
from typing import Any

SECRET_FIELDS = ("authorization", "token", "secret", "secret_key", "secretkey", "callback_keys", "t")


def log(event: str, level: str = "info", **fields: Any) -> None:
    line = {"ts": round(time.time(), 3), "level": level, "event": event}
    line.update({k: v for k, v in fields.items() if v is not None and k.lower() not in SECRET_FIELDS})
    sys.stdout.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
