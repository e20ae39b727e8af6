"""`cos-matting doctor`: is the deployment healthy? A pass/fail table with the fix for each failure."""
import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

from cli.errors import EXIT_FAILED, EXIT_OK, usage
from cli.env import ROOT, add_env_options, deploy_env
from cli.ui import dump_json, table

DESCRIPTION = """\
Check a live deployment (Tencent Cloud, or the local cloud with --local) against
serverless.yml and your settings, reading only:

  credentials            the keys work (CAM GetUserAppId)
  buckets                source, output and records buckets exist (HeadBucket)
  bucket bound to CI     the source bucket is bound to Cloud Infinite (GET /cibuckets)
  AI content recognition on for the source bucket (GET /ai_bucket): SegmentVideoBody needs both
  records not versioned  create-if-absent writes are ignored on a bucket that has or ever had
                         versioning: Enabled and Suspended both fail
  role / policy          the function role trusts scf.qcloud.com; the policy is attached and current
  functions              each exists, Python3.10, Active, has the layer, environment as deployed
  <function> answers     each function, invoked through SCF (Invoke, RequestResponse) with the
                         side-effect-free health event, starts and loads its settings; a settings
                         error fails naming the variable
  COS trigger            enabled on a watched prefix, never overlapping the output or records prefix
  other stages           no other deployed stage of the app watches a prefix overlapping this one's
                         watched or output prefix on the same bucket, nor writes its outputs where
                         this one watches (read from the cloud: a conflict can arise after deploy)
  Function URL           the callback URL answers its health check (GET -> 200)
  timer                  reconcile's timer is present and enabled
  alarm <name>           each alarm policy of serverless.yml exists (Cloud Monitor), matches it
                         and watches its functions
  matches serverless.yml code (GetFunctionAddress.CodeSha256 against the zips built from this
                         checkout) and configuration as deploy would make them: no call to make

Exit 0 only when every check passes. --json prints the checks as JSON instead of the table.
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("doctor", help="check a deployment: pass/fail table with fixes",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="where the zips are built, to compare the deployed code with (default: %(default)s)")
    add_env_options(parser)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON (name, ok, detail, fix)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy import spec as specs
    from deploy.clients import Api
    from deploy.doctor import Doctor, cos_client, http_status

    environ = deploy_env(args)
    try:
        spec = specs.build(environ)
    except specs.SpecError as exc:
        raise usage(None, str(exc)) from None
    try:
        cos = cos_client(spec, environ)
    except ValueError as exc:
        raise usage("credentials", str(exc)) from None
    from deploy.package import artefacts

    zips = artefacts(args.dist, lambda m: print(m, file=sys.stderr, flush=True))
    started = time.monotonic()
    checks = Doctor(spec, Api("scf", environ, spec.region), Api("cam", environ), cos, http_status,
                    monitor=Api("monitor", environ, spec.region), zips=zips).run()
    elapsed = time.monotonic() - started
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(dump_json({"stage": spec.stage, "ok": not failed, "passed": len(checks) - len(failed),
                         "failed": len(failed), "elapsed_s": round(elapsed, 2), "checks": [asdict(c) for c in checks]}))
        sys.stdout.flush()
        return EXIT_FAILED if failed else EXIT_OK
    rows = [[c.name, "ok" if c.ok else "FAIL", c.detail + (f" -> fix: {c.fix}" if c.fix else "")] for c in checks]
    print(table(["CHECK", "RESULT", "DETAIL"], rows, wrap_at={2: 90}))
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed" + (f"; {len(failed)} failed" if failed else "")
          + f" in {elapsed:.1f} s")
    sys.stdout.flush()
    return EXIT_FAILED if failed else EXIT_OK
