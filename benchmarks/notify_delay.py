"""Notification delay: from the job's callback reaching the callback function to the webhook
receiving the signed event (the head-start delivery the callback starts beside its answer),
p50/p99, and how often the event arrived before the callback's answer did; and the
callback's own latency with a fast receiver and with one that takes --slow seconds per answer.

The local cloud runs in this process with the callback behind a Function URL (SCF-style worker,
the real handler); jobs end with their own callbacks dropped and the benchmark sends each
callback itself, one at a time, so the answer time is known.

    .venv/bin/python benchmarks/notify_delay.py [--callbacks 100] [--slow 2.0]
"""
import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from callback_handler import BUCKET, KEYS, REGION, submitted_jobs  # noqa: E402 (benchmarks/, the script's folder)

SECRET = "bench-notify-secret-0123456789"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run(cloud, hook, n, delay):
    import requests

    from shared import tokens
    from shared.cloud import Clients
    from shared.config import load_settings

    hook.delay = delay
    env = {**cloud.function_env(), "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
           "COS_MATTING_CALLBACK_KEYS": KEYS, **hook.env()}
    url = cloud.add_function_url(f"callback{int(delay * 1000)}", str(ROOT / "functions" / "callback"), env,
                                 concurrency=1)
    settings = load_settings({**env, "COS_MATTING_CALLBACK_URL": url})
    clients = Clients(settings, env)
    with contextlib.redirect_stdout(io.StringIO()):
        jobs = submitted_jobs(cloud, settings, clients, n + 1)
    for _, job_id in jobs:
        cloud.faults.add("callback.send", count=1, drop=True)
        cloud.set_job_state(BUCKET, job_id, "Success")
    cloud.wait_idle(timeout=120)
    answers, delays, before = [], [], []
    for i, (rid, job_id) in enumerate(jobs):
        target = tokens.callback_url(url, [KEYS], rid, 600, time.time())
        body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}})
        start = time.time()
        response = requests.post(target, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        answered = time.time()
        assert response.status_code == 200, response.text
        from shared.notify import event_id
        from shared.records import RecordStore

        eid = event_id(RecordStore.of(settings, clients.storage).load(rid)[0])
        deadline = time.time() + 30
        while eid not in hook.accepted and time.time() < deadline:
            time.sleep(0.002)
        if i == 0:
            continue  # the first call warms the function up
        answers.append(answered - start)
        delays.append(hook.accepted[eid][0] - start)
        before.append(hook.accepted[eid][0] < answered)
    return answers, delays, sum(before) / len(before)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=100)
    parser.add_argument("--slow", type=float, default=2.0, help="seconds the slow receiver takes per answer")
    args = parser.parse_args()

    from e2e.webhook import Webhook
    from localcloud import LocalCloud

    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(data_dir=tmp, buckets=[BUCKET], region=REGION, port=0)
        cloud.start()
        hook = Webhook(SECRET)
        try:
            print(f"notification benchmark: {args.callbacks} callbacks, one at a time")
            answers, delays, early = run(cloud, hook, args.callbacks, 0.0)
            print(f"fast receiver    callback answer p50 {pct(answers, 50) * 1000:6.1f} ms  p99 "
                  f"{pct(answers, 99) * 1000:6.1f} ms | event received after the callback p50 "
                  f"{pct(delays, 50) * 1000:6.1f} ms  p99 {pct(delays, 99) * 1000:6.1f} ms "
                  f"({early:.0%} before its answer)")
            n = max(10, args.callbacks // 5)
            answers, delays, early = run(cloud, hook, n, args.slow)
            print(f"slow receiver    callback answer p50 {pct(answers, 50) * 1000:6.1f} ms  p99 "
                  f"{pct(answers, 99) * 1000:6.1f} ms | event received after the callback p50 "
                  f"{pct(delays, 50) * 1000:6.1f} ms  p99 {pct(delays, 99) * 1000:6.1f} ms "
                  f"(receiver answers in {args.slow:.1f} s; {n} callbacks)")
            print(f"signatures verified: {len(hook.deliveries) - len(hook.bad_signatures)}/{len(hook.deliveries)}; "
                  f"mean callback answer {statistics.mean(answers) * 1000:.1f} ms with the slow receiver")
        finally:
            hook.close()
            cloud.stop()


if __name__ == "__main__":
    main()
