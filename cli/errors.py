"""The CLI's errors and exit codes, one home (cf. httpx's one errors module).

Exit codes: 0 ok, 1 something failed, 2 usage or configuration (a one-line message naming
the variable; raised as `UsageError`, which `cli.main` prints).

    raise usage("--bucket 'Videos'", "expected NAME-APPID", "e.g. --bucket videos-1250000000")
"""
from __future__ import annotations

from typing import Optional

from shared.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ConfigError):
    """A bad flag combination or missing setting: `cli.main` prints it on one line and exits 2."""


class WorkError(Exception):
    """The work failed (not the user's input): one line, exit 1. Raise it with what/which/what to do."""

    exit_code = 1


def message(what: str, which: Optional[str] = None, fix: Optional[str] = None) -> str:
    """`<which>: <what> (<fix>)` on one line: what went wrong, which input, what to do."""
    text = f"{which}: {what}" if which else what
    return f"{text}; {fix}" if fix else text


def usage(which: Optional[str], what: str, fix: Optional[str] = None) -> UsageError:
    """A usage or configuration mistake (exit 2), as an exception to raise."""
    return UsageError(message(what, which, fix))


def failure(which: Optional[str], what: str, fix: Optional[str] = None) -> WorkError:
    """A failure of the work (exit 1), as an exception to raise."""
    return WorkError(message(what, which, fix))


# What pyproject's extras install, by import name: the command line without the matting engine
# (`cli`) is small; the engine (`engine`) is what demo, samples and `localcloud --engine matting` need.
EXTRAS = {"av": "engine", "cv2": "engine", "numpy": "engine", "ai_edge_litert": "engine",
          "tencentcloud": "cli", "yaml": "cli", "wcwidth": "cli", "packaging": "cli"}


def missing_extra(exc: ModuleNotFoundError) -> Optional[str]:
    """One line naming the extra to install when `exc` is a module one of our extras provides."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    what = "the matting engine is not installed" if extra == "engine" else "the command line's extras are not installed"
    return message(f"{what} (no module {top!r})", None, f"pip install 'cos-matting[{extra}]'")


def require_engine(which: str) -> None:
    """Raise a one-line UsageError before any work when the matting engine's modules are absent."""
    import importlib.util

    for name in (n for n, extra in EXTRAS.items() if extra == "engine"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: blocked (None in sys.modules)
            found = False
        if not found:
            raise usage(which, f"needs the matting engine, which is not installed (no module {name!r})",
                        "pip install 'cos-matting[engine]'")


# COS/CI error codes that mean the settings are wrong, not the work: exit 2 with what to fix.
# Codes as COS documents them (https://cloud.tencent.com/document/product/436/7730).
_CONFIG_CODES = {
    "NoSuchBucket": ("the bucket does not exist (in this region)",
                     "check COS_MATTING_BUCKET (name-APPID) and COS_MATTING_REGION; with the local cloud, start it "
                     "with --bucket NAME-APPID"),
    "SignatureDoesNotMatch": ("the secret key was refused (signature does not match)",
                              "check TENCENTCLOUD_SECRETKEY (with the local cloud: localsecretkey unless you passed "
                              "--secret-key)"),
    "InvalidAccessKeyId": ("the secret id is not known",
                           "check TENCENTCLOUD_SECRETID (with the local cloud: AKIDlocal unless you passed --secret-id)"),
    "AccessDenied": ("access denied", "check the credentials' CAM policy (python -m deploy.policy prints the one "
                                      "cos-matting needs)"),
}


def explain(exc: BaseException) -> "tuple[int, str]":
    """(exit code, one line) for an exception that reached the command line."""
    from shared.cloud import CloudError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, WorkError):
        return exc.exit_code, str(exc)
    from deploy.clients import CredentialsError

    if isinstance(exc, CredentialsError):
        return EXIT_USAGE, str(exc)
    try:
        from qcloud_cos.cos_exception import CosClientError, CosServiceError

        if isinstance(exc, (CosClientError, CosServiceError)):
            from shared.cloud import _wrap

            exc = _wrap("cos", exc)
    except ImportError:
        pass
    if isinstance(exc, CloudError):
        if exc.code in _CONFIG_CODES:
            what, fix = _CONFIG_CODES[exc.code]
            return EXIT_USAGE, message(what, f"{exc.operation} (HTTP {exc.status} {exc.code})", fix)
        if exc.status == 0:
            return 1, message(f"could not reach the service ({exc.message.splitlines()[0][:200]})", exc.operation,
                              "check the network, or COS_MATTING_ENDPOINT / that `cos-matting localcloud` runs")
        return 1, str(exc)
    if isinstance(exc, ModuleNotFoundError) and missing_extra(exc):
        return EXIT_USAGE, missing_extra(exc)
    if isinstance(exc, OSError) and exc.filename:
        return 1, message(exc.strerror or str(exc), str(exc.filename))
    text = str(exc).splitlines()[0] if str(exc) else ""
    return 1, f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"
