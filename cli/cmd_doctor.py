"""`cos-matting doctor`: is the deployment healthy? A pass/fail table with the fix for each failure."""
import argparse
import sys

from cli.errors import EXIT_FAILED, EXIT_OK, usage
from cli.env import add_env_options, deploy_env
from cli.ui import table

DESCRIPTION = """\
Check a live deployment (Tencent Cloud, or the local cloud with --local) against
serverless.yml and your settings, reading only:

  credentials            the keys work (CAM GetUserAppId)
  buckets                source, output and records buckets exist (HeadBucket)
  bucket bound to CI     media processing and AI content recognition on for the source bucket
  records not versioned  create-if-absent writes are ignored on versioned buckets
  role / policy          the function role trusts scf.qcloud.com; the policy is attached and current
  functions              each exists, Python3.10, Active, has the layer, environment as deployed
  COS trigger            enabled on a watched prefix, never overlapping the output or records prefix
  Function URL           the callback URL answers its health check (GET -> 200)
  timer                  reconcile's timer is present and enabled
  alarm <name>           each alarm policy of serverless.yml exists (Cloud Monitor), matches it
                         and watches its functions

Exit 0 only when every check passes.
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("doctor", help="check a deployment: pass/fail table with fixes",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_env_options(parser)
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
    checks = Doctor(spec, Api("scf", environ, spec.region), Api("cam", environ), cos, http_status,
                    Api("monitor", environ, spec.region)).run()
    rows = [[c.name, "ok" if c.ok else "FAIL", c.detail + (f" -> fix: {c.fix}" if c.fix else "")] for c in checks]
    print(table(["CHECK", "RESULT", "DETAIL"], rows, wrap_at={2: 90}))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed" + (f"; {len(failed)} failed" if failed else ""))
    sys.stdout.flush()
    return EXIT_FAILED if failed else EXIT_OK
