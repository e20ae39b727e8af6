"""Reconcile with a CI job list ten times longer than one tick's budget can read: does the
sweep still advance every tick? (issue 22: it used to run only after the second-job scan
had read the whole list, so it never ran again.)

One in-process local cloud. CI holds --jobs jobs of another tool (they stay queued) and every
job-list page (100 jobs) is answered --page-delay seconds late, so reading the list takes
jobs / 100 * page-delay seconds: --budget times --ratio. Before every tick one more upload
lands whose trigger was lost; a tick passes if the sweep found it (and gave it its job).
Printed per tick: swept, the job-list pass's progress (pages read so far), seconds; then how
many ticks the job-list pass took.

    .venv/bin/python benchmarks/starved_sweep.py [--budget 2] [--page-delay 0.2] [--ratio 10]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BUCKET, REGION, APPID = "videos-1250000000", "ap-guangzhou", "1250000000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=2.0, help="reconcile's time budget per tick (s)")
    parser.add_argument("--page-delay", type=float, default=0.2, help="seconds CI takes per job-list page")
    parser.add_argument("--ratio", type=int, default=10, help="the job list takes this many budgets to read")
    parser.add_argument("--max-ticks", type=int, default=40)
    args = parser.parse_args()

    import logging

    logging.disable(logging.INFO)  # the table, not the pipeline's log lines
    from e2e.ci_support import job_dict
    from localcloud import LocalCloud
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.jobs import JobRequest
    from shared.reconcile import load_place, reconcile
    from shared.records import RecordStore

    pages = int(args.ratio * args.budget / args.page_delay)
    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(data_dir=tmp, buckets=[BUCKET], region=REGION, secret_id="AKIDbench",
                           secret_key="benchsecret", port=0)
        cloud.start()
        cloud.jobs.set_engine(None)
        kw = cloud.cos_config_kwargs()
        env = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_ENDPOINT": cloud.url,
               "TENCENTCLOUD_SECRETID": kw["SecretId"], "TENCENTCLOUD_SECRETKEY": kw["SecretKey"]}
        settings = load_settings(env)
        clients = Clients(settings, env)
        store = RecordStore.of(settings, clients.storage)
        request = JobRequest.model_validate(job_dict(user_data="another tool"), context={"bucket": BUCKET})
        for _ in range(pages * 100):
            cloud.jobs.create(BUCKET, request)
        cloud.faults.add("ci.list", count=10 ** 9, delay=args.page_delay)
        print(f"CI job list: {pages * 100} jobs, {pages} pages x {args.page_delay} s = {pages * args.page_delay:.0f} s "
              f"to read; budget {args.budget} s per tick ({args.ratio}x shorter)")
        print(f"{'tick':>4} {'swept':>5} {'job-list pages read':>19} {'pass done':>9} {'seconds':>7}")
        advanced, ticks, done_at = 0, 0, None
        for tick in range(1, args.max_ticks + 1):
            cloud.bucket(BUCKET).put_bytes(f"input/lost/{tick:03d}.mp4", b"trigger lost %d" % tick)
            before = cloud.faults.injected["ci.list"]
            started = time.perf_counter()
            summary = reconcile(settings, clients, older_than=0, budget=args.budget)
            took = time.perf_counter() - started
            read = cloud.faults.injected["ci.list"] - before
            place = load_place(store)
            done = bool(place.jobs_since) and not place.jobs.token
            advanced += summary.swept >= 1
            ticks = tick
            print(f"{tick:>4} {summary.swept:>5} {read:>19} {'yes' if done else 'no':>9} {took:>7.2f}")
            if done and done_at is None:
                done_at = tick
            if done_at is not None and tick >= done_at + 1:
                break
        cloud.stop()
    print(f"sweep advanced on {advanced} of {ticks} ticks; the job-list pass completed on tick {done_at}")


if __name__ == "__main__":
    main()
