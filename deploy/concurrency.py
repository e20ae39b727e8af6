"""Reserved concurrency for the deployed functions: the stop switch (0) and the cap.

`cos-matting deploy` applies COS_MATTING_DEPLOY_*_CONCURRENCY; this is the operator's
switch between deploys (and what `scf deploy` users run, as neither component manages it):

    python -m deploy.concurrency show                      # current value of each function
    python -m deploy.concurrency apply                     # COS_MATTING_DEPLOY_*_CONCURRENCY from .env
    python -m deploy.concurrency set submit 0              # STOP: no new submit runs (events queue, then retry)
    python -m deploy.concurrency set submit 10             # at most 10 concurrent submit runs
    python -m deploy.concurrency unset submit              # back to the account's shared pool

SCF expresses the reservation in memory: ReservedConcurrencyMem = instances x the
function's memorySize (from serverless.yml), which this tool computes.
Credentials and endpoint: deploy/clients.py (TENCENTCLOUD_* or TENCENT_SECRET_*; COS_MATTING_ENDPOINT).
"""
import argparse
import sys
from typing import Dict, List, Mapping, Optional

from deploy.clients import Api

SETTING = "COS_MATTING_DEPLOY_{}_CONCURRENCY"  # SUBMIT, CALLBACK, RECONCILE; empty = no reservation


def plan(environ: Mapping[str, str]) -> Dict[str, Dict[str, object]]:
    """Function key -> {name, memory, instances (None = unset)} from serverless.yml + env."""
    from deploy.checks import SERVERLESS
    from deploy.files import load_serverless

    sf = load_serverless(SERVERLESS, environ)
    out: Dict[str, Dict[str, object]] = {}
    for key, fn in sf.inputs.functions.items():
        raw = (environ.get(SETTING.format(key.upper())) or "").strip()
        if raw and not raw.isdigit():
            raise ValueError(f"{SETTING.format(key.upper())} must be a whole number (0 stops the function)")
        out[key] = {"name": fn.name, "namespace": fn.namespace or sf.inputs.namespace or "default",
                    "memory": fn.memorySize or sf.inputs.memorySize or 128,
                    "instances": int(raw) if raw else None, "region": sf.inputs.region}
    return out


def _names(fn: Dict[str, object]) -> Dict[str, object]:
    return {"FunctionName": fn["name"], "Namespace": fn["namespace"]}


def apply_one(scf: Api, fn: Dict[str, object], instances: Optional[int]) -> str:
    """Reserve `instances` x the function's memory (0 stops it), or remove the reservation (None)."""
    if instances is None:
        scf.call("DeleteReservedConcurrencyConfig", _names(fn))
        return f"{fn['name']}: reservation removed (shared pool)"
    scf.call("PutReservedConcurrencyConfig", {**_names(fn), "ReservedConcurrencyMem": instances * int(fn["memory"])})
    return f"{fn['name']}: reserved {instances} x {fn['memory']} MB" + ("  (STOPPED)" if instances == 0 else "")


def show(scf: Api, fn: Dict[str, object]) -> str:
    mem = scf.call("GetReservedConcurrencyConfig", _names(fn)).get("ReservedMem")
    return f"{fn['name']}: " + ("shared pool" if mem is None else f"{mem // int(fn['memory'])} instances ({mem} MB)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from deploy.checks import add_env_options, environ_from

    add_env_options(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("show")
    sub.add_parser("apply")
    s = sub.add_parser("set")
    s.add_argument("function", choices=("submit", "callback", "reconcile"))
    s.add_argument("instances", type=int)
    u = sub.add_parser("unset")
    u.add_argument("function", choices=("submit", "callback", "reconcile"))
    args = parser.parse_args(argv)
    environ = environ_from(args)
    if environ is None:
        return 2
    try:
        functions = plan(environ)
        region = str(next(iter(functions.values()))["region"])
        client = Api("scf", environ, region)
        if args.action == "show":
            for fn in functions.values():
                print(show(client, fn))
        elif args.action == "apply":
            for fn in functions.values():
                print(apply_one(client, fn, fn["instances"]))
        elif args.action == "set":
            if args.instances < 0:
                raise ValueError("instances must be >= 0")
            print(apply_one(client, functions[args.function], args.instances))
        else:
            print(apply_one(client, functions[args.function], None))
    except Exception as exc:  # one line for the operator; the SDK's exceptions carry the API's message
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
