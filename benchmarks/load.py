"""Load figures against the local cloud, printed as a table (issue: chaos and load).

- submit path throughput (records/s) with concurrency 1, 8, 32 (the real
  Submitter, in threads, each record: tags, claim, POST /jobs, record, tag)
- callback path throughput and p50/p99 latency through the Function URL
- peak RSS of each handler in a fresh process under a 100-record batch

    .venv/bin/python benchmarks/load.py [--records 400]
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUCKET, REGION, APPID = "videos-1250000000", "ap-guangzhou", "1250000000"
KEYS = "load-callback-key-0123456789abcdef"


def env_for(cloud, **extra):
    return {**cloud.function_env(), "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
            "COS_MATTING_CALLBACK_KEYS": KEYS, **extra}


def uploads(cloud, prefix, n):
    from shared.events import Upload

    out = []
    for i in range(n):
        key = f"{prefix}{i:05d}.mp4"
        obj = cloud.upload(BUCKET, key, b"video %d" % i)
        out.append(Upload(bucket=BUCKET, appid=APPID, region=REGION, key=key, etag=obj.etag, size=obj.size,
                          event_name="cos:ObjectCreated:Put"))
    return out


def submit_throughput(cloud, records, concurrency):
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.submit import Submitter

    env = env_for(cloud)
    settings = load_settings(env)
    submitter = Submitter(settings, Clients(settings, env), sleep=lambda s: None)
    batch = uploads(cloud, f"input/load-c{concurrency}/", records)
    with contextlib.redirect_stdout(io.StringIO()), ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        outcomes = list(pool.map(submitter.process, batch))
        elapsed = time.perf_counter() - start
    ok = sum(o.outcome == "submitted" for o in outcomes)
    return records / elapsed, ok


def callback_path(cloud, records, concurrency):
    import requests

    from shared import tokens
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.submit import Submitter

    url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env_for(cloud),
                                 concurrency=concurrency)
    env = env_for(cloud, COS_MATTING_CALLBACK_URL=url)
    settings = load_settings(env)
    submitter = Submitter(settings, Clients(settings, env), sleep=lambda s: None)
    with contextlib.redirect_stdout(io.StringIO()):
        done = [submitter.process(u) for u in uploads(cloud, f"input/cb-c{concurrency}/", records + concurrency)]
    for out in done:
        cloud.faults.add("callback.send", count=1, drop=True)  # we send the callbacks ourselves, timed
        cloud.set_job_state(BUCKET, out.job_id, "Success")
    cloud.wait_idle(timeout=120)

    def send(out):
        target = tokens.callback_url(url, [KEYS], out.record_id, 600, time.time())
        start = time.perf_counter()
        r = requests.post(target, data=json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": out.job_id}}),
                          headers={"Content-Type": "application/json"}, timeout=60)
        return r.status_code, time.perf_counter() - start

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, done[:concurrency]))  # warm every instance
        start = time.perf_counter()
        results = list(pool.map(send, done[concurrency:]))
        elapsed = time.perf_counter() - start
    lat = sorted(l for _, l in results)
    return (len(results) / elapsed, statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            sum(s == 200 for s, _ in results))


def peak_rss_batch(cloud):
    """Fresh processes: the submit handler with a 100-record event, the callback handler with 100 callbacks."""
    from localcloud.scfevents import callback_request
    from shared import tokens
    from shared.events import build_event

    env = {**os.environ, **env_for(cloud, COS_MATTING_CALLBACK_URL=cloud.url + "/_fn/none")}
    event = build_event(uploads(cloud, "input/rss/", 100))
    code = ("import json, resource, sys; import functions.submit.index as i; r = i.main_handler(json.load(sys.stdin), {}); "
            "assert sum(o['outcome'] == 'submitted' for o in r['outcomes']) == 100; "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(event), env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    submit_rss = int(out.stdout.strip().splitlines()[-1]) / 1024

    from shared.identity import Correlation

    jobs = {j.Input.Object: j for j in cloud.list_jobs(BUCKET) if j.Input.Object.startswith("input/rss/")}
    calls = []
    for key, job in jobs.items():
        cloud.faults.add("callback.send", count=1, drop=True)
        cloud.set_job_state(BUCKET, job.JobId, "Success")
        rid = Correlation.parse(job.Operation.UserData).record_id
        calls.append(callback_request(json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job.JobId}}),
                                      "application/json", tokens.callback_query([KEYS], rid, 600, time.time())))
    cloud.wait_idle(timeout=60)
    code = ("import json, resource, sys; import functions.callback.index as i; "
            "codes = [i.main_handler(e, {})['statusCode'] for e in json.load(sys.stdin)]; assert codes == [200] * len(codes), codes; "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(calls), env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return submit_rss, int(out.stdout.strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=400, help="records per measurement")
    args = parser.parse_args()
    from localcloud import LocalCloud

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(data_dir=tmp, buckets=[BUCKET], region=REGION, port=0)
        cloud.start()
        try:
            for c in (1, 8, 32):
                rate, ok = submit_throughput(cloud, args.records, c)
                rows.append((f"submit path, concurrency {c}", f"{rate:7.1f} records/s", f"{ok}/{args.records} submitted"))
                print(*rows[-1], sep="  |  ", flush=True)
            for c in (1, 4):
                rate, p50, p99, ok = callback_path(cloud, args.records // 2, c)
                rows.append((f"callback path, {c} instance(s)", f"{rate:7.1f} callbacks/s",
                             f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, {ok} ok"))
                print(*rows[-1], sep="  |  ", flush=True)
            submit_rss, callback_rss = peak_rss_batch(cloud)
            rows.append(("peak RSS, submit handler, 100-record event", f"{submit_rss:7.1f} MB", "fresh process"))
            rows.append(("peak RSS, callback handler, 100 callbacks", f"{callback_rss:7.1f} MB", "fresh process"))
            print(*rows[-2], sep="  |  ")
            print(*rows[-1], sep="  |  ")
        finally:
            cloud.stop()
    print("\n| figure | value | note |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(x.strip() for x in row) + " |")


if __name__ == "__main__":
    main()
