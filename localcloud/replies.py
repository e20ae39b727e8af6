"""HTTP answers of the local cloud: a reply value and the XML/JSON/time formats COS uses."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Dict, Optional, Tuple

from shared import xmlcodec


@dataclass
class Reply:
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: Optional[Tuple[Any, int, int]] = None  # (path or open file, offset, length) streamed instead of body


def xml_reply(status: int, root: str, content: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    return Reply(status, {"Content-Type": "application/xml", **(headers or {})}, xmlcodec.dump(root, content))


def json_reply(status: int, content: Any) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(content, default=str).encode("utf-8"))


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def iso_date(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000Z"
