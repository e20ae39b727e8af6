"""`cos-matting package`: build the SCF zips (layer + one per function) into dist/."""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DESCRIPTION = """\
Build what SCF runs, reproducibly (same inputs -> same bytes):

  dist/cos-matting-layer.zip      third-party modules at the zip's root (SCF unpacks
                                  layers to /opt; its Python path is /var/user, /opt)
  dist/cos-matting-<fn>.zip       functions/<fn>/index.py + shared/, for fn in
                                  submit, callback, reconcile (handler index.main_handler)
  dist/layer/, dist/scf/<fn>/     the same trees unpacked: serverless.yml and
                                  deploy/layer/serverless.yml deploy these folders
  dist/manifest.json              size and sha256 of each zip

The layer holds wheels for the SCF runtime (CPython 3.10, manylinux2014_x86_64),
pinned and hash-checked by requirements-deploy.txt, plus crcmod's pure-Python code.
Wheels are cached in .cache/wheels; with a warm cache nothing is downloaded.
"""

EPILOG = """\
examples:
  cos-matting package                    build everything
  cos-matting package --offline          fail instead of downloading (cache only)
  cos-matting package --skip-layer       only the function zips (no pip, < 1 s)
  cos-matting package --update-lock      re-resolve deploy/requirements-deploy.in
then deploy: see deploy/README.md
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser(
        "package", help="build the SCF layer and function zips into dist/",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wheels", metavar="DIR",
                        help="wheel cache (default: %(default)s)")
    parser.add_argument("--function", dest="functions", action="append", metavar="NAME",
                        choices=("submit", "callback", "reconcile"),
                        help="build only this function's zip (repeatable; default: all three)")
    parser.add_argument("--skip-layer", action="store_true", help="do not build the dependency layer")
    parser.add_argument("--offline", action="store_true",
                        help="never run pip; fail if a pinned wheel is not in the cache")
    parser.add_argument("--update-lock", action="store_true",
                        help="resolve deploy/requirements-deploy.in for the SCF target and rewrite "
                             "requirements-deploy.txt (pins + sha256), then build")
    parser.add_argument("--json", action="store_true", help="print the artefacts (file, bytes, sha256) as JSON")
    parser.set_defaults(func=run)


def _deploy_package():
    from deploy import package  # installed with the CLI (pyproject: packages deploy*), imported when used

    return package


def run(args: argparse.Namespace) -> int:
    package = _deploy_package()
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - progress on stderr, results on stdout
    try:
        if args.update_lock:
            pins = package.update_lock(cache=args.cache, log=log)
            print(f"requirements-deploy.txt: {len(pins)} pinned wheels")
        artefacts = package.build(args.out, args.cache, functions=args.functions or package.FUNCTIONS,
                                  layer=not args.skip_layer, offline=args.offline, log=log)
    except package.PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    worst = 0 if all(a.within_limit for a in artefacts) else 1
    if args.json:
        from cli.ui import dump_json

        print(dump_json({"out": str(args.out), "artefacts": [
            {"file": a.path.name, "bytes": a.size, "sha256": a.sha256, "limit_bytes": a.limit,
             "within_limit": a.within_limit} for a in artefacts]}))
        return worst
    width = max((len(a.path.name) for a in artefacts), default=0)
    for a in artefacts:
        flag = "" if a.within_limit else f"  OVER the {package.human(a.limit)} target"
        print(f"{a.path.name:<{width}}  {a.size:>10,d} bytes  {package.human(a.size):>10}  "
              f"sha256 {a.sha256[:16]}{flag}")
    print(f"written to {args.out}")
    return worst
