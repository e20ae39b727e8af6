"""Small, safe XML <-> dict codec for the CI and COS wire formats.

Parsing uses expat directly and refuses DTDs and entities outright, so XML
bombs and external entities never expand. Repeated children become lists,
text-only elements become strings, empty elements become "".
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple
from xml.parsers import expat

MAX_DEPTH = 32
MAX_BYTES = 1 << 20


class XMLError(ValueError):
    """The body is not well-formed, safe XML."""


def parse(data: bytes | str, max_bytes: int = MAX_BYTES) -> Tuple[str, Any]:
    """Return (root tag, content) where content is a str or a dict."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise XMLError(f"XML body is {len(data)} bytes, limit {max_bytes}")
    parser = expat.ParserCreate()
    stack: List[Tuple[str, Dict[str, Any], List[str]]] = []
    result: List[Tuple[str, Any]] = []

    def refuse(*_args: Any) -> None:
        raise XMLError("DTDs and entities are not allowed")

    def start(tag: str, _attrs: Dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise XMLError(f"XML nested deeper than {MAX_DEPTH} levels")
        stack.append((tag.split("}")[-1], {}, []))

    def end(_tag: str) -> None:
        tag, children, text = stack.pop()
        value: Any = children if children else "".join(text)
        if stack:
            parent = stack[-1][1]
            if tag in parent:
                if not isinstance(parent[tag], list):
                    parent[tag] = [parent[tag]]
                parent[tag].append(value)
            else:
                parent[tag] = value
        else:
            result.append((tag, value))

    def chars(text: str) -> None:
        if stack:
            stack[-1][2].append(text)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XMLError(f"malformed XML: {exc}") from None
    if not result:
        raise XMLError("empty XML document")
    return result[0]


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _emit(tag: str, value: Any, out: List[str]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _emit(tag, item, out)
        return
    if isinstance(value, dict):
        out.append(f"<{tag}>")
        for key, child in value.items():
            _emit(key, child, out)
        out.append(f"</{tag}>")
        return
    if isinstance(value, bool):
        value = "true" if value else "false"
    out.append(f"<{tag}>{escape(str(value))}</{tag}>")


def dump(root: str, content: Any) -> bytes:
    """Serialise a dict (values: str/int, dicts, lists for repeats) under root."""
    out: List[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _emit(root, content if content is not None else "", out)
    return "".join(out).encode("utf-8")
