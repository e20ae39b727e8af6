"""What the lookup before a retry costs: CI requests per lookup, scoped versus unscoped.

Before submitting a job again after an unknown outcome, submit looks for the job it may have
created (`CI.find`: UserData carries the record's correlation id). The lookup lists jobs in
the bucket's AI queue (`queueId`, from `ci_get_ai_queue`, cached), of the upload's input key
(`inputObject`), created since shortly before the first claim, 100 per page, at most
`CI.LOOKUP_PAGES` pages. The unscoped way lists every SegmentVideoBody job of the window with
the SDK's `ci_list_media_jobs` until it finds the marker.

The local cloud holds `--jobs` other jobs in the window (other input keys) plus the one being
looked for, the oldest (the last a Desc listing reaches). Requests are counted by the local
cloud itself (`LocalCloud.requests`), so they are what the client really sent.

    .venv/bin/python benchmarks/lookup_cost.py [--jobs 1000]
"""
import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BUCKET, REGION = "videos-1250000000", "ap-guangzhou"


def request(key: str, marker: str):
    from shared.jobs import JobRequest

    return JobRequest.model_validate({
        "Tag": "SegmentVideoBody", "Input": {"Object": key},
        "Operation": {"UserData": marker, "Output": {"Region": REGION, "Bucket": BUCKET, "Object": "matting/o.mp4"}}})


def unscoped_find(ci, marker: str):
    """The lookup without queue or input key: page through every job of the tag."""
    token = ""
    while True:
        jobs, token = ci.list(next_token=token)
        for job in jobs:
            if job.user_data == marker:
                return job
        if not token or not jobs:
            return None


def measure(cloud, fn) -> tuple:
    before = sum(cloud.requests.values())
    result = fn()
    return result, sum(cloud.requests.values()) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="other jobs in the lookup's time window")
    args = parser.parse_args()

    from helpers import clients_for, settings_for
    from localcloud import LocalCloud
    from shared.cloud import CloudError

    with tempfile.TemporaryDirectory() as tmp, LocalCloud(tmp, buckets=[BUCKET], region=REGION) as cloud:
        target = cloud.jobs.create(BUCKET, request("input/target.mp4", "cm:target"))
        for i in range(args.jobs):
            cloud.jobs.create(BUCKET, request(f"input/other-{i:05d}.mp4", f"cm:other-{i}"))
        ci = clients_for(cloud, settings_for(cloud)).ci
        rows = []
        found, cost = measure(cloud, lambda: ci.find("cm:target", input_object="input/target.mp4"))
        assert found is not None and found.JobId == target.JobId
        rows.append(("scoped, found (first lookup: + ci_get_ai_queue)", cost))
        found, cost = measure(cloud, lambda: ci.find("cm:target", input_object="input/target.mp4"))
        rows.append(("scoped, found (queue cached)", cost))
        missing, cost = measure(cloud, lambda: ci.find("cm:never-created", input_object="input/never.mp4"))
        assert missing is None
        rows.append(("scoped, job CI never created", cost))
        found, cost = measure(cloud, lambda: unscoped_find(ci, "cm:target"))
        assert found is not None and found.JobId == target.JobId
        rows.append(("unscoped, found", cost))
        missing, cost = measure(cloud, lambda: unscoped_find(ci, "cm:never-created"))
        rows.append(("unscoped, job CI never created", cost))
        for i in range(ci.LOOKUP_PAGES * 100 + 1):  # the worst case: one key with more jobs than the bound
            cloud.jobs.create(BUCKET, request("input/hot.mp4", f"cm:hot-{i}"))
        before = sum(cloud.requests.values())
        try:
            ci.find("cm:absent", input_object="input/hot.mp4")
            outcome = "answered"
        except CloudError as exc:  # too many to search: the outcome stays unknown, no second job
            outcome = exc.code
        cost = sum(cloud.requests.values()) - before
        rows.append((f"scoped, {ci.LOOKUP_PAGES * 100 + 1} jobs on one key ({outcome})", cost))

    print(f"lookup cost with {args.jobs + 1} jobs in the window (CI requests per lookup)")
    width = max(len(name) for name, _ in rows)
    for name, cost in rows:
        print(f"  {name:<{width}}  {cost:>4}")
    scoped, unscoped = rows[1][1], rows[3][1]
    print(f"  unscoped / scoped (found): {unscoped / scoped:.0f}x; bound per lookup: "
          f"{ci.LOOKUP_PAGES} list pages per scope (queue id, then queue type) + 1 queue lookup per process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
