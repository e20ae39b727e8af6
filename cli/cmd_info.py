"""`cos-matting info`: what a stage is, read from the cloud (deploy/stage.py): functions, triggers, the
Function URL, buckets and prefixes, region, role, and the settings each function runs with."""
import argparse
import sys

from cli.errors import EXIT_OK, UsageError, failure, usage
from cli.env import add_env_options, deploy_env
from cli.ui import dump_json, table

DESCRIPTION = """\
Describe a deployed stage as it lives in the cloud (no local state: works from a fresh clone).
Its functions are found by their app/stage tags (else by name) through the SCF API, and shown
with their runtime, code hash (GetFunctionAddress.CodeSha256), last change (GetFunction.ModTime),
status, layer and role; their triggers and the callback's Function URL; the bucket, prefixes and
region they work on; the policies on the role; and the settings each function runs with
(secrets shown as ****).
"""

EPILOG = """\
examples:
  cos-matting info                          the stage of COS_MATTING_DEPLOY_STAGE (default dev)
  cos-matting info --stage prod --json      another stage, as JSON
  cos-matting info --local http://127.0.0.1:9000
"""

WHERE = (("source bucket", "COS_MATTING_BUCKET"), ("watched prefixes", "COS_MATTING_WATCH_PREFIXES"),
         ("output bucket", "COS_MATTING_OUTPUT_BUCKET"), ("output prefix", "COS_MATTING_OUTPUT_PREFIX"),
         ("records bucket", "COS_MATTING_RECORDS_BUCKET"), ("records prefix", "COS_MATTING_RECORDS_PREFIX"))


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("info", help="what a deployed stage is: functions, triggers, Function URL, "
                                                "buckets, role, settings (read from the cloud)",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    add_env_options(parser)
    parser.set_defaults(func=run)


def describe(environ: dict, stage: str) -> dict:
    """The stage as a plain dict (what --json prints)."""
    from deploy import stage as st
    from deploy.clients import Api

    region = environ.get("COS_MATTING_REGION") or environ.get("TENCENTCLOUD_REGION") or ""
    scf, cam = Api("scf", environ, region), Api("cam", environ)
    deployed = st.resolve(environ, stage, region=region, scf=scf)
    functions = {}
    for kind, fn in sorted(deployed.functions.items()):
        functions[kind] = {
            "name": fn.name, "runtime": fn.runtime, "status": fn.status, "last_change": fn.modified,
            "code_sha256": st.code_sha256(scf, fn.name, fn.namespace),
            "layers": [f"{x.get('LayerName')}:{x.get('LayerVersion')}" for x in fn.raw.get("Layers") or []],
            "role": fn.role, "tags": fn.tags,
            "triggers": [{"type": t.get("Type"), "name": t.get("TriggerName"),
                          "enabled": t.get("Enable") in (1, True, "OPEN"), "desc": t.get("TriggerDesc")}
                         for t in st.triggers(scf, fn.name, fn.namespace)],
            "settings": st.masked(fn.env)}
    settings = deployed.settings_env()
    roles = sorted({fn.role for fn in deployed.functions.values() if fn.role})
    return {"app": deployed.app, "stage": stage, "target": deployed.target,
            "region": settings.get("COS_MATTING_REGION") or deployed.region,
            "namespace": deployed.namespace, "function_url": deployed.function_url,
            "where": {label: settings.get(name) or "" for label, name in WHERE},
            "roles": {role: [p.get("PolicyName") for p in st.attached(cam, role)] for role in roles},
            "missing": deployed.missing(), "functions": functions}


def run(args: argparse.Namespace) -> int:
    from deploy.clients import ApiCallError
    from deploy.stage import StageNotFound

    environ = deploy_env(args)
    stage = environ["COS_MATTING_DEPLOY_STAGE"]
    try:
        info = describe(environ, stage)
    except StageNotFound as exc:
        raise UsageError(str(exc)) from None
    except ApiCallError as exc:
        raise failure(exc.action, f"{exc.code}: {exc.message}", "check the credentials and the region") from None
    except ValueError as exc:  # no credentials
        raise usage("credentials", str(exc)) from None
    if args.json:
        print(dump_json(info))
        return EXIT_OK
    print(f"stage {info['stage']} of {info['app']} on {info['target']} (namespace {info['namespace']})")
    print(f"Function URL: {info['function_url'] or '(none)'}")
    for label, value in info["where"].items():
        print(f"{label + ':':18s}{value or '(default)'}")
    for role, policies in info["roles"].items():
        print(f"role: {role} (policies: {', '.join(policies) or 'none'})")
    if info["missing"]:
        print(f"MISSING functions: {', '.join(info['missing'])}")
    rows = [[kind, fn["name"], fn["runtime"], fn["status"], fn["code_sha256"][:12] or "?", fn["last_change"],
             ", ".join(fn["layers"])] for kind, fn in info["functions"].items()]
    print()
    print(table(["FUNCTION", "NAME", "RUNTIME", "STATUS", "CODE SHA256", "LAST CHANGE", "LAYER"], rows))
    trig = [[kind, t["type"], t["name"], "on" if t["enabled"] else "OFF", t["desc"]]
            for kind, fn in info["functions"].items() for t in fn["triggers"]]
    print()
    print(table(["FUNCTION", "TRIGGER", "NAME", "", "DESCRIPTION"], trig, wrap_at={4: 70}))
    for kind, fn in info["functions"].items():
        print(f"\nsettings of {fn['name']}:")
        for name, value in sorted(fn["settings"].items()):
            print(f"  {name}={value}")
    sys.stdout.flush()
    return EXIT_OK
