"""`cos-matting deploy`: apply serverless.yml through the SCF and CAM APIs (plan, deploy, destroy)."""
import argparse
import os
import sys
import time
from pathlib import Path

from cli.errors import EXIT_FAILED, EXIT_OK, UsageError, failure, usage
from cli.env import ROOT, add_env_options, deploy_env
from cli.ui import add_yes, confirm

DESCRIPTION = """\
Deploy (or upgrade, or remove) the pipeline described by serverless.yml with the official
SDKs (tencentcloud-sdk-python-scf/-cam), in one command:

  1. package: the layer and function zips (`cos-matting package`; the layer is published
     again only when its bytes change);
  2. the function role (trusts scf.qcloud.com) and its least-privilege policy;
  3. callback + its Function URL, then submit and reconcile with COS_MATTING_CALLBACK_URL
     set from that URL (no two-step first deploy);
  4. the COS trigger (enabled, prefix + suffix filter), the timer, submit's async retry,
     dead letter and each function's reserved concurrency.

Every resource is read first and written only when it differs: a second deploy with no
change makes no write call. Unset settings are left out of the functions' environment
(SCF refuses empty values). What deploy created is recorded in --state-dir/<stage>.json;
--destroy removes exactly that (never your buckets or objects).

Settings: .env (or --env-file) over the process environment, as for `scf deploy`.
COS_MATTING_ENDPOINT / --local point every client at the local cloud.
"""

EPILOG = """\
examples:
  cos-matting deploy --plan                 what would change (writes nothing)
  cos-matting deploy --yes                  apply without asking
  cos-matting deploy --stage prod --yes     another stage: its own functions, layer and state
  cos-matting deploy --destroy --yes        remove what deploy created
  cos-matting deploy --local http://127.0.0.1:9000 --yes   into `cos-matting localcloud`
then: cos-matting doctor
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("deploy", help="apply serverless.yml to Tencent Cloud (SCF, CAM) or the local cloud",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", action="store_true", help="print what would change and stop (no write call)")
    add_yes(parser)
    parser.add_argument("--destroy", action="store_true", help="remove the functions, triggers, layer versions, "
                                                               "role and policy this tool created for the stage")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".cos-matting" / "deployed", metavar="DIR",
                        help="where the per-stage state files live (default: %(default)s)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="where the zips are built (default: %(default)s)")
    add_env_options(parser)
    parser.set_defaults(func=run)


def zips(dist: Path, log) -> dict:
    from deploy import package

    built = {a.path.name: a.path for a in package.build(dist, log=log)}
    out = {"layer": built["cos-matting-layer.zip"].read_bytes()}
    for fn in package.FUNCTIONS:
        out[fn] = built[f"cos-matting-{fn}.zip"].read_bytes()
    return out


def run(args: argparse.Namespace) -> int:
    from deploy import spec as specs
    from deploy.apply import Deployer, State, state_path, target_of
    from deploy.clients import ENDPOINT, Api, ApiCallError

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr
    environ = deploy_env(args)
    try:
        spec = specs.build(environ)
    except specs.SpecError as exc:
        raise UsageError(str(exc)) from None
    endpoint = environ.get(ENDPOINT, "")
    target = endpoint or f"tencentcloud:{spec.region}"
    state = State(state_path(args.state_dir, spec.stage, endpoint), target_of(endpoint, spec.region))
    started = time.time()
    try:
        artefacts = {} if args.destroy else zips(args.dist, log)
        scf, cam = Api("scf", environ, spec.region), Api("cam", environ)
        planner = Deployer(spec, scf, cam, state, artefacts, apply=False, log=log)
        steps = planner.destroy() if args.destroy else planner.run()
        what = "destroy" if args.destroy else "deploy"
        print(f"{what} stage {spec.stage} to {target}: {len(steps)} change(s)")
        for step in steps:
            print("  " + step.line())
        if not steps:
            print("  nothing to do: everything matches serverless.yml" if not args.destroy else "  nothing recorded")
            return EXIT_OK
        if args.plan:
            return EXIT_OK
        if not confirm(args, f"apply these {len(steps)} change(s)?", len(steps), threshold=1):
            print("nothing changed")
            return EXIT_FAILED
        doer = Deployer(spec, Api("scf", environ, spec.region), Api("cam", environ), state, artefacts, apply=True,
                        log=log)
        done = doer.destroy() if args.destroy else doer.run()
    except ApiCallError as exc:
        raise failure(exc.action, f"{exc.code}: {exc.message}", f"what was applied so far is recorded in "
                                                                 f"{state.path}: run again to finish, or --destroy "
                                                                 "to undo") from None
    except ValueError as exc:  # no credentials
        raise usage("credentials", str(exc)) from None
    print(f"{what}: {len(done)} change(s) applied in {time.time() - started:.1f} s (state: {os.path.relpath(state.path)})")
    if doer.callback_url:
        print(f"callback Function URL: {doer.callback_url}")
    return EXIT_OK
