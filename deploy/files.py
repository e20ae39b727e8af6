"""Reading serverless.yml (and deploy/layer/serverless.yml) into the schema of deploy/components.py.

`load_serverless(path, environ)` resolves the framework variables first:
`${env:NAME}` from `environ` (a missing one is an error naming the path),
`${app}`, `${stage}`, `${name}`, `${org}` from the file; `${output:...}` references
to other instances stay as they are (only `scf deploy` resolves them). Every error
names its path, e.g. `serverless.yml: inputs.triggers[0].parameters.bucket: ...`.
"""
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Type, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from .components import LayerFile, ServerlessFile


class ConfigFileError(ValueError):
    """serverless.yml (or the layer's) does not match the component's documented inputs."""


_INNER_VAR = re.compile(r"\$\{([^${}]+)\}")
M = TypeVar("M", bound=BaseModel)


def _where(loc: Tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def _resolve(node: Any, environ: Mapping[str, str], top: Mapping[str, str], loc: Tuple[Any, ...],
             label: str) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, environ, top, loc + (k,), label) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, environ, top, loc + (i,), label) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node
    kept: List[str] = []

    def one(match: "re.Match[str]") -> str:
        expr = match.group(1).strip()
        if expr.startswith("env:"):
            var = expr[4:].strip()
            if var not in environ:
                raise ConfigFileError(f"{label}: {_where(loc)}: ${{env:{var}}} is not set (add {var} to .env; "
                                      "an empty value is allowed)")
            return environ[var]
        if expr in top:
            return top[expr]
        if expr.startswith("output:"):
            kept.append(match.group(0))
            return f"\x00{len(kept) - 1}\x00"
        raise ConfigFileError(f"{label}: {_where(loc)}: unknown variable ${{{expr}}}")

    value, previous = node, None
    while value != previous:
        previous, value = value, _INNER_VAR.sub(one, value)
    for i, ref in enumerate(kept):
        value = value.replace(f"\x00{i}\x00", ref)
    return value


def resolve_variables(raw: Dict[str, Any], environ: Mapping[str, str], label: str = "serverless.yml") -> Dict[str, Any]:
    """`${env:X}`, `${app}`, `${stage}`, `${name}`, `${org}` substituted; `${output:...}` kept."""
    top_raw = {k: raw.get(k) for k in ("org", "app", "stage", "name") if isinstance(raw.get(k), str)}
    top: Dict[str, str] = {}
    for key, value in top_raw.items():  # the top-level names may themselves use ${env:...}
        top[key] = _resolve(value, environ, {}, (key,), label)
    resolved = _resolve(raw, environ, top, (), label)
    for key, value in top.items():
        resolved[key] = value
    return resolved


def explain(exc: ValidationError, label: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not in the component's documented inputs)"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown trigger type {err.get('input', {}).get('type')!r}; this project's model allows cos, timer, http"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        elif err["type"].endswith("_type") or err["type"].startswith(("int_", "bool_", "string_")):
            got = err.get("input")
            msg = f"{msg} (got {type(got).__name__} {got!r})"
        lines.append(f"{label}: {_where(loc)}: {msg}")
    return "\n".join(lines)


def validate(raw: Dict[str, Any], model: Type[M], label: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigFileError(explain(exc, label)) from None


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigFileError(f"{Path(path).name}: not a YAML mapping")
    return data


def load_serverless(path: Union[str, Path], environ: Mapping[str, str]) -> ServerlessFile:
    label = Path(path).name
    return validate(resolve_variables(read_yaml(path), environ, label), ServerlessFile, label)


def load_layer(path: Union[str, Path], environ: Mapping[str, str]) -> LayerFile:
    label = str(path)
    return validate(resolve_variables(read_yaml(path), environ, label), LayerFile, label)


def env_references(raw: Any) -> List[str]:
    """Every `${env:NAME}` named anywhere in a raw (unresolved) YAML tree, sorted."""
    found = set()
    if isinstance(raw, dict):
        for v in raw.values():
            found.update(env_references(v))
    elif isinstance(raw, list):
        for v in raw:
            found.update(env_references(v))
    elif isinstance(raw, str):
        found.update(m.strip() for m in re.findall(r"\$\{env:([^}]+)\}", raw))
    return sorted(found)
