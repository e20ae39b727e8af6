"""`cos-matting deploy`: apply serverless.yml through the SCF and CAM APIs (plan, deploy, destroy)."""
import argparse
import sys
import time
from pathlib import Path

from cli.errors import EXIT_FAILED, EXIT_OK, UsageError, failure, usage
from cli.env import ROOT, add_env_options, deploy_env
from cli.ui import add_yes, confirm, dump_json

DESCRIPTION = """\
Deploy (or upgrade, or remove) the pipeline described by serverless.yml with the official
SDKs (tencentcloud-sdk-python-scf/-cam), in one command. It reads the stage from the cloud
(functions by their app/stage tags, the layer, role and policy by the names the stage gives
them, triggers with ListTriggers: no local state, a fresh clone sees what is deployed), plans
the API calls that make it match serverless.yml, and makes exactly those calls:

  1. package: the layer and function zips (`cos-matting package`; the layer is published
     again only when its bytes change);
  2. the stage's role cos-matting-<stage>-role (trusts scf.qcloud.com; or the existing role
     COS_MATTING_DEPLOY_ROLE names, used as it is) and its policy cos-matting-<stage>-policy;
  3. callback + its Function URL (read back from the trigger), then submit and reconcile with
     COS_MATTING_CALLBACK_URL set from that URL (no two-step first deploy);
  4. the COS trigger, the timer, submit's async retry, dead letter, reserved concurrency.

Before its first write, deploy checks each function's final environment (the callback URL
included) with the check the functions run at cold start, and refuses naming the variable.
It also refuses a stage that would share objects with another deployed stage of the app (read
from the cloud: the functions tagged app=cos-matting in the namespace, one GetFunction per other stage):
watched prefixes overlapping on one bucket (both would take each upload), or a watched prefix
overlapping the other's output prefix (one would matte the other's outputs again). The one-line
error names both stages, the bucket and both prefixes; fix it with another
COS_MATTING_WATCH_PREFIXES (or COS_MATTING_OUTPUT_BUCKET), or `deploy --destroy --stage OTHER`
(stage `local`, wired by `cos-matting localcloud --trigger`: stop that localcloud).
Code or settings changed outside deploy (the console) are put back; a second deploy with no
change makes no write call. --destroy removes what deploy made for the stage, found in the
cloud (never another stage's, never your buckets, objects or a role you named).

Settings: .env (or --env-file) over the process environment, as for `scf deploy`.
COS_MATTING_ENDPOINT / --local point every client at the local cloud.
"""

EPILOG = """\
examples:
  cos-matting deploy --plan                 the API calls it would make, old -> new (writes nothing)
  cos-matting deploy --plan --json          the same as JSON
  cos-matting deploy --yes                  apply without asking
  cos-matting deploy --stage prod --yes     another stage: its own functions, layer, role and policy
  COS_MATTING_WATCH_PREFIXES=input/studio/ cos-matting deploy --stage studio --yes
                                            a second pipeline on the bucket, on its own prefix
  cos-matting deploy --destroy --yes        remove what deploy made for the stage
  cos-matting deploy --local http://127.0.0.1:9000 --yes   into `cos-matting localcloud`
then: cos-matting doctor, cos-matting info
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("deploy", help="apply serverless.yml to Tencent Cloud (SCF, CAM) or the local cloud",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", action="store_true", help="print the API calls it would make and stop (reads only)")
    parser.add_argument("--json", action="store_true", help="print the plan (and what was applied) as JSON")
    add_yes(parser)
    parser.add_argument("--destroy", action="store_true", help="remove the functions, triggers, layer versions, "
                                                               "policy and role deploy made for the stage")
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)  # ignored: a stage is found in the cloud
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="where the zips are built (default: %(default)s)")
    add_env_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy import spec as specs
    from deploy.apply import Executor, Planner
    from deploy.clients import Api, ApiCallError
    from deploy.package import artefacts
    from deploy.stage import target_label

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr
    environ = deploy_env(args)
    what = "destroy" if args.destroy else "deploy"
    try:
        spec = specs.build(environ, strict=not args.destroy)
    except specs.SpecError as exc:
        raise UsageError(str(exc)) from None
    target = target_label(environ, spec.region)
    started = time.time()
    try:
        zips = {} if args.destroy else artefacts(args.dist, log)
        scf, cam = Api("scf", environ, spec.region), Api("cam", environ)
        planner = Planner(spec, scf, cam, zips)
        calls = planner.destroy() if args.destroy else planner.plan()
        planned_s = time.time() - started
        if args.json and (args.plan or not calls):
            print(dump_json({"action": what, "stage": spec.stage, "target": target, "applied": False,
                             "calls": [c.to_json() for c in calls], "notes": planner.notes,
                             "callback_url": planner.callback_url}))
        else:  # with --json the JSON of what was made comes last on stdout: the plan goes to stderr
            out = sys.stderr if args.json else sys.stdout
            print(f"{what} stage {spec.stage} to {target}: {len(calls)} call(s) (planned in {planned_s:.1f} s)",
                  file=out)
            for call in calls:
                print("\n".join("  " + line for line in call.lines()), file=out)
            for note in planner.notes:
                print(f"  note: {note}", file=out)
            if not calls:
                print("  nothing of this stage was found" if args.destroy else
                      "  no call to make (see the notes above)" if planner.notes else
                      "  nothing to do: everything matches serverless.yml", file=out)
        if not calls or args.plan:
            return EXIT_OK
        if not confirm(args, f"make these {len(calls)} call(s)?", len(calls), threshold=1):
            print("nothing changed")
            return EXIT_FAILED
        executor = Executor(Api("scf", environ, spec.region), Api("cam", environ), log=log, namespace=spec.namespace,
                            busy=planner.busy)
        done = executor.run(calls)
    except specs.SpecError as exc:
        raise UsageError(str(exc)) from None
    except ApiCallError as exc:
        raise failure(exc.action, f"{exc.code}: {exc.message}", "nothing is recorded locally: run the same command "
                                                               "again to finish (it reads what exists), or "
                                                               "--destroy to undo") from None
    except ValueError as exc:  # no credentials
        raise usage("credentials", str(exc)) from None
    url = executor.values.get("callback_url") or planner.callback_url
    if args.json:
        print(dump_json({"action": what, "stage": spec.stage, "target": target, "applied": True,
                         "calls": [c.to_json() for c in done], "notes": planner.notes,
                         "callback_url": None if args.destroy else url, "seconds": round(time.time() - started, 2)}))
        return EXIT_OK
    print(f"{what}: {len(done)} call(s) made in {time.time() - started:.1f} s")
    if url and not args.destroy:
        print(f"callback Function URL: {url}")
    return EXIT_OK
