"""The health event: `{"cos-matting": "health"}`, sent by `cos-matting doctor` through SCF's own
Invoke (RequestResponse), is answered by every handler before anything else, touching neither COS
nor CI (no side effect). The answer says whether the settings loaded at cold start, and if not,
the one-line error naming the variable (shared/config.py), so a stage whose functions cannot
start fails doctor instead of failing every upload.

Settings are still checked once, at cold start: a handler keeps the error and raises it for
every real event (SCF retries, then the dead-letter queue), as an import failure would, but can
still say what is wrong when asked.
"""
import platform
from typing import Any, Dict, Optional, Tuple

EVENT = {"cos-matting": "health"}


def is_health(event: Any) -> bool:
    return isinstance(event, dict) and event.get("cos-matting") == "health"


def cold_start() -> Tuple[Optional[Any], Optional[str]]:
    """(settings, None) or (None, the ConfigError's message), from the environment."""
    from .config import ConfigError, load_settings

    try:
        return load_settings(), None
    except ConfigError as exc:
        from .log import log

        log("settings.invalid", level="error", error=str(exc))
        return None, str(exc)


def answer(function: str, problem: Optional[str], settings: Optional[Any] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"cos-matting": "health", "function": function, "ok": problem is None,
                           "settings": problem or "ok", "python": platform.python_version()}
    if settings is not None:
        out["deployment"] = settings.deployment or ""
    return out


def require(settings: Optional[Any], problem: Optional[str]) -> Any:
    """The settings, or the cold start's ConfigError raised again (every real event fails loudly)."""
    if settings is None:
        from .config import ConfigError

        raise ConfigError(problem or "settings not loaded")
    return settings
