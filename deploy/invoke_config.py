"""Async-invocation retry of the submit function, applied with the SCF API after `scf deploy`.

COS triggers invoke asynchronously; SCF retries a failed event and keeps it queued for a
while. multi-scf only sets `retryNum`/`msgTTL` for `asyncRunEnable` functions (a different
execution mode), so this sets them with `UpdateFunctionEventInvokeConfig`:

    python -m deploy.invoke_config show     # what SCF has now
    python -m deploy.invoke_config apply    # COS_MATTING_DEPLOY_RETRY_NUM / _MSG_TTL from .env

Credentials: TENCENT_SECRET_ID / TENCENT_SECRET_KEY (/ TENCENT_TOKEN), as for `scf deploy`.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional

ROOT = Path(__file__).resolve().parents[1]
RETRY, TTL = "COS_MATTING_DEPLOY_RETRY_NUM", "COS_MATTING_DEPLOY_MSG_TTL"


def plan(environ: Mapping[str, str]) -> Dict[str, object]:
    """The submit function and the retry settings to give it, validated."""
    from deploy.concurrency import plan as functions

    submit = functions(environ)["submit"]
    retry, ttl = (environ.get(RETRY) or "2").strip(), (environ.get(TTL) or "21600").strip()
    if not retry.isdigit() or not 0 <= int(retry) <= 2:
        raise ValueError(f"{RETRY} must be 0, 1 or 2 (got {retry!r})")
    if not ttl.isdigit() or not 60 <= int(ttl) <= 21600:
        raise ValueError(f"{TTL} must be 60-21600 seconds (got {ttl!r})")
    return {**submit, "retry_num": int(retry), "msg_ttl": int(ttl)}


def request(fn: Mapping[str, object]):
    """The UpdateFunctionEventInvokeConfig request for `plan(...)`."""
    from tencentcloud.scf.v20180416 import models

    req = models.UpdateFunctionEventInvokeConfigRequest()
    req.FunctionName, req.Namespace = fn["name"], fn["namespace"]
    config = models.AsyncTriggerConfig()
    retry = models.RetryConfig()
    retry.RetryNum = fn["retry_num"]
    config.RetryConfig, config.MsgTTL = [retry], fn["msg_ttl"]
    req.AsyncTriggerConfig = config
    return req


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.invoke_config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from deploy.checks import add_env_options, environ_from
    from deploy.concurrency import scf_client

    add_env_options(parser)
    parser.add_argument("action", choices=("show", "apply"))
    args = parser.parse_args(argv)
    environ = environ_from(args)
    if environ is None:
        return 2
    try:
        fn = plan(environ)
        client = scf_client(environ, str(fn["region"]))
        if args.action == "apply":
            client.UpdateFunctionEventInvokeConfig(request(fn))
            print(f"{fn['name']}: async retry {fn['retry_num']}, events kept {fn['msg_ttl']} s")
        else:
            from tencentcloud.scf.v20180416 import models

            req = models.GetFunctionEventInvokeConfigRequest()
            req.FunctionName, req.Namespace = fn["name"], fn["namespace"]
            print(client.GetFunctionEventInvokeConfig(req).to_json_string())
    except Exception as exc:  # one line for the operator; the SDK's exceptions carry the API's message
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
