"""Render deploy/cam-policy.json for one deployment.

    python -m deploy.policy                 # from serverless.yml + .env, prints the policy JSON
    python -m deploy.policy --example       # with .env.example + placeholder account values

Buckets, regions and prefixes are taken from the settings the functions will
actually run with (serverless.yml resolved against the env file), so the policy
names exactly the deployed locations. `${WATCH_PREFIX}` resources are repeated
per watched prefix. The owner UIN (root account, not the APPID) and the CI role
name come from COS_MATTING_DEPLOY_OWNER_UIN / COS_MATTING_DEPLOY_CI_ROLE.
"""
import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "cam-policy.json"
_VAR = re.compile(r"\$\{([A-Z_]+)\}")


class PolicyError(ValueError):
    pass


def template() -> Dict[str, Any]:
    return json.loads(TEMPLATE.read_text(encoding="utf-8"))


def values_from(environ: Mapping[str, str]) -> Dict[str, Any]:
    """Template values from serverless.yml resolved with `environ` (the submit function's settings)."""
    from deploy.checks import SERVERLESS
    from deploy.components import function_environment
    from deploy.files import load_serverless
    from shared.config import load_settings

    sf = load_serverless(SERVERLESS, environ)
    s = load_settings(function_environment(sf, "submit"))
    uin = environ.get("COS_MATTING_DEPLOY_OWNER_UIN", "")
    if not re.fullmatch(r"\d+", uin):
        raise PolicyError("COS_MATTING_DEPLOY_OWNER_UIN must be the root account UIN (digits) owning the CI role")

    def appid(bucket: str) -> str:
        return bucket.rsplit("-", 1)[1]

    backgrounds = {s.defaults.background_key} | {r.options.get("background_key") for r in s.rules}
    return {
        "REGION": s.region, "BUCKET": s.bucket, "APPID": appid(s.bucket),
        "WATCH_PREFIX": list(s.watch_prefixes),
        # Combination jobs read a background object of the source bucket (SegmentVideoBody BackgroundLogoUrl,
        # 460/83973; cos:GetObject among a media job's permissions in CI's API authorization guide).
        "BACKGROUND_KEY": sorted(k for k in backgrounds if k),
        "OUTPUT_REGION": s.out_region, "OUTPUT_BUCKET": s.out_bucket, "OUTPUT_APPID": appid(s.out_bucket),
        "OUTPUT_PREFIX": s.output_prefix,
        "RECORDS_BUCKET": s.rec_bucket, "RECORDS_APPID": appid(s.rec_bucket), "RECORDS_PREFIX": s.records_prefix,
        "OWNER_UIN": uin, "CI_ROLE": environ.get("COS_MATTING_DEPLOY_CI_ROLE") or "CI_QCSRole",
    }


def _fill(text: str, values: Mapping[str, Any]) -> List[str]:
    names = _VAR.findall(text)
    missing = [n for n in names if n not in values]
    if missing:
        raise PolicyError(f"no value for ${{{missing[0]}}} in {text!r}")
    lists = {n for n in names if isinstance(values[n], list)}
    if not lists:
        return [_VAR.sub(lambda m: str(values[m.group(1)]), text)]
    if len(lists) > 1:
        raise PolicyError(f"more than one list placeholder in {text!r}")
    (name,) = lists
    out = []
    for item in values[name]:
        single = dict(values)
        single[name] = item
        out.extend(_fill(text, single))
    return out


def render(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The template filled in; a statement whose resources expand to nothing (no background key) is left out."""
    policy = copy.deepcopy(template())
    for statement in policy["statement"]:
        statement["resource"] = [r for res in statement["resource"] for r in _fill(res, values)]
        for op, conds in statement.get("condition", {}).items():
            for key, value in list(conds.items()):
                filled = _fill(value, values)
                conds[key] = filled[0] if len(filled) == 1 else filled
    policy["statement"] = [st for st in policy["statement"] if st["resource"]]
    return policy


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.policy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from deploy.checks import add_env_options, environ_from
    from deploy.files import ConfigFileError
    from shared.config import ConfigError

    add_env_options(parser, example=True)
    environ = environ_from(parser.parse_args(argv))
    if environ is None:
        return 2
    try:
        print(json.dumps(render(values_from(environ)), indent=2))
    except (PolicyError, ConfigFileError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
