"""Requests per successful video: submit + one Success callback, counted by kind.

Each video is uploaded (not counted), submitted through the real submit path
(`Submitter.process`, as the COS trigger runs it), its job set to Success by the
local cloud's test control, and the callback handled (`callback.handle`, as the
Function URL runs it, with the token the job's callback URL carries), in a store reconcile has
upgraded once (as in any stage after its first tick). Requests are
counted by the local cloud itself (`LocalCloud.requests`, by route), so they are what
the real SDK really sent over HTTP.

    .venv/bin/python benchmarks/requests_per_video.py [--videos 20]
"""
import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BUCKET, REGION = "videos-1250000000", "ap-guangzhou"
KINDS = (("HEAD", ("cos.head",)), ("GET", ("cos.get",)), ("PUT", ("cos.put",)), ("copy", ("cos.copy",)),
         ("list", ("cos.list",)), ("DELETE", ("cos.delete",)), ("tagging GET", ("cos.tagging.get",)),
         ("tagging PUT", ("cos.tagging.put",)))


class Traced(Counter):
    """LocalCloud.requests that also keeps the order of the routes (--trace)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.order = []

    def __setitem__(self, key, value):
        if value > self.get(key, 0):
            self.order.append(key)
        super().__setitem__(key, value)


def kind(route: str) -> str:
    for name, routes in KINDS:
        if route in routes:
            return name
    return "CI" if route.startswith("ci.") else route


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--trace", action="store_true", help="print the first video's requests in order")
    args = parser.parse_args()

    from helpers import KEYS, clients_for, put, sdk_client, settings_for
    from localcloud import LocalCloud
    from shared import tokens
    from shared.callback import handle
    from shared.reconcile import reconcile
    from shared.events import Upload
    from shared.submit import Submitter

    per = {"submit": Counter(), "callback": Counter()}
    trace = []
    with tempfile.TemporaryDirectory() as tmp, LocalCloud(tmp, buckets=[BUCKET], region=REGION) as cloud:
        # CI calls back to a loopback port nothing listens on: the callback is handled here instead
        settings = settings_for(cloud, COS_MATTING_CALLBACK_URL="http://127.0.0.1:9/cb")
        clients = clients_for(cloud, settings)
        user = sdk_client(cloud)
        submitter = Submitter(settings, clients, sleep=lambda s: None)
        from shared.records import RecordStore

        # a deployed stage after reconcile's first tick: the upgrade has found no older records, so
        # submit stops looking for them (RecordStore.older_formats)
        RecordStore.of(settings, clients.storage).upgrade(lambda: False)
        cloud.requests = Traced(cloud.requests)
        quiet = contextlib.redirect_stdout(io.StringIO())  # the pipeline's JSON log lines
        quiet.__enter__()
        for i in range(args.videos):
            key = f"input/bench/{i:04d}.mp4"
            body = b"\x00\x00\x00\x18ftypmp42 video %d" % i
            etag = put(user, key, body)
            before = Counter(cloud.requests)
            out = submitter.process(Upload(bucket=BUCKET, appid="1250000000", region=REGION, key=key, etag=etag,
                                           size=len(body), event_name="cos:ObjectCreated:Put"))
            assert out.outcome == "submitted", out
            per["submit"].update(Counter(cloud.requests) - before)
            cloud.set_job_state(BUCKET, out.job_id, "Success")
            body = (f'{{"EventName": "TaskFinish", "JobsDetail": [{{"JobId": "{out.job_id}"}}]}}').encode()
            query = tokens.callback_query([KEYS], out.record_id, 3600, time.time())
            before = Counter(cloud.requests)
            cloud.requests.order.append("|")
            status, answer = handle(settings, clients, query, body)
            assert status == 200 and answer["results"][0]["state"] == "Success", answer
            per["callback"].update(Counter(cloud.requests) - before)
            if i == 0:
                trace = list(cloud.requests.order)
        # reconcile's next tick (every part; older_than=0: the records' final stages count as old enough to
        # recheck): what the pipeline spends on each video after its callback, in the background
        before = Counter(cloud.requests)
        tick = reconcile(settings, clients, older_than=0, submitter=submitter, sweep=False)
        later = Counter(cloud.requests) - before
        quiet.__exit__(None, None, None)

    n = args.videos
    kinds = sorted({kind(r) for c in per.values() for r in c}, key=lambda k: [name for name, _ in KINDS + (("CI", ()),)]
                   .index(k) if k in [name for name, _ in KINDS + (("CI", ()),)] else 99)
    print(f"requests per successful video (submit + callback), mean of {n}, counted by the local cloud")
    print(f"  {'kind':<12} {'submit':>7} {'callback':>9} {'total':>7}")
    totals = {}
    for k in kinds:
        s = sum(v for r, v in per["submit"].items() if kind(r) == k) / n
        c = sum(v for r, v in per["callback"].items() if kind(r) == k) / n
        totals[k] = s + c
        print(f"  {k:<12} {s:>7.1f} {c:>9.1f} {s + c:>7.1f}")
    s_all = sum(per["submit"].values()) / n
    c_all = sum(per["callback"].values()) / n
    print(f"  {'all':<12} {s_all:>7.1f} {c_all:>9.1f} {s_all + c_all:>7.1f}")
    if args.trace:
        print("  first video, in order: " + " ".join(trace))
    print("  routes: " + ", ".join(f"{r}={v / n:g}" for r, v in sorted((per["submit"] + per["callback"]).items())))
    print(f"then one reconcile tick (sweep off; {tick.rechecked} rechecked, {tick.finished} closed): "
          f"{sum(later.values()) / n:.2f} requests per video; submit + callback + tick: "
          f"{s_all + c_all + sum(later.values()) / n:.2f}")
    print("  tick routes: " + ", ".join(f"{r}={v / n:g}" for r, v in sorted(later.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
