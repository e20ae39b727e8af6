"""Callback handler figures, measured in one run.

1. cold import: handler (import + app + clients) / its third-party deps alone   target <= 1.25
2. peak RSS of a cold invocation (one real callback against the local cloud)   target <= 64 MB
3. callbacks handled per second through the Function URL of the local cloud,
   with p50/p99 latency (each: verify, GET job, list+get record, tag output and
   source, write the final stage)

    .venv/bin/python benchmarks/callback_handler.py [--runs 15] [--callbacks 200]
"""
import argparse
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

BUCKET, REGION = "videos-1250000000", "ap-guangzhou"
KEYS = "bench-callback-key-0123456789abcdef"
DEPS = ("import time; t=time.perf_counter(); import qcloud_cos, serverless_wsgi, flask; "
        "from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator; "
        # pydantic loads its schema machinery on the first model class: a cost of the dependency itself
        "type('Probe', (BaseModel,), {'__annotations__': {'x': int}, 'x': 0}); "
        "flask.Flask('x'); print(time.perf_counter()-t)")
HANDLER = ("import time; t=time.perf_counter(); import functions.callback.index as i; "
           "from shared.cloud import Clients; Clients(i.SETTINGS); print(time.perf_counter()-t)")


def timed(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def cold_import(runs):
    env = {**os.environ, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
           "TENCENTCLOUD_SECRETID": "x", "TENCENTCLOUD_SECRETKEY": "y", "COS_MATTING_CALLBACK_KEYS": KEYS}
    timed(HANDLER, env)
    deps, handler = [], []
    for _ in range(runs):
        deps.append(timed(DEPS, env))
        handler.append(timed(HANDLER, env))
    d, h = min(deps), min(handler)
    print(f"cold import      deps alone {d * 1000:6.1f} ms   handler {h * 1000:6.1f} ms   ratio {h / d:.2f}"
          f"  (target <= 1.25, min of {runs})")


def submitted_jobs(cloud, settings, clients, n):
    """n uploads submitted through the real submit path; returns (record id, job id) pairs."""
    from qcloud_cos import CosConfig, CosS3Client
    from shared.events import Upload
    from shared.submit import Submitter

    client = CosS3Client(CosConfig(**cloud.cos_config_kwargs()), retry=0)
    submitter = Submitter(settings, clients, sleep=lambda s: None)

    def one(i):
        key = f"input/bench/{i:05d}.mp4"
        etag = client.put_object(Bucket=BUCKET, Key=key, Body=b"v%d" % i)["ETag"].strip('"')
        out = submitter.process(Upload(bucket=BUCKET, appid="1250000000", region=REGION, key=key, etag=etag,
                                       size=3, event_name="cos:ObjectCreated:Put"))
        return out.record_id, out.job_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--callbacks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="senders and callback function instances")
    args = parser.parse_args()
    print("callback handler benchmark")
    cold_import(args.runs)

    import contextlib
    import io

    import requests

    from localcloud import LocalCloud
    from shared import tokens
    from shared.cloud import Clients
    from shared.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(data_dir=tmp, buckets=[BUCKET], region=REGION, port=0)
        cloud.start()
        try:
            env = {**cloud.function_env(), "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION,
                   "COS_MATTING_CALLBACK_KEYS": KEYS}
            url = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env,
                                         concurrency=args.concurrency)
            settings = load_settings({**env, "COS_MATTING_CALLBACK_URL": url})
            clients = Clients(settings, env)
            with contextlib.redirect_stdout(io.StringIO()):
                jobs = submitted_jobs(cloud, settings, clients, args.callbacks + 1 + args.concurrency)
            for _, job_id in jobs:  # the jobs end; their own callbacks are dropped, we send them below
                cloud.faults.add("callback.send", count=1, drop=True)
                cloud.set_job_state(BUCKET, job_id, "Success")
            cloud.wait_idle(timeout=120)

            def send(pair):
                rid, job_id = pair
                target = tokens.callback_url(url, [KEYS], rid, 600, time.time())
                body = json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}})
                start = time.perf_counter()
                response = requests.post(target, data=body, headers={"Content-Type": "application/json"}, timeout=30)
                return response.status_code, time.perf_counter() - start

            cold_peak_memory(env, url, *jobs[0])
            warm, measured = jobs[1:1 + args.concurrency], jobs[1 + args.concurrency:]
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(send, warm))  # start every instance first: we measure warm throughput
                start = time.perf_counter()
                results = list(pool.map(send, measured))
                elapsed = time.perf_counter() - start
            ok = sum(1 for s, _ in results if s == 200)
            lat = sorted(l for _, l in results)
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(f"throughput       {len(results) / elapsed:6.1f} callbacks/s  ({ok}/{len(results)} answered 200,"
                  f" {args.concurrency} senders, {args.concurrency} instances)")
            print(f"latency          p50 {statistics.median(lat) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms")
        finally:
            cloud.stop()


def cold_peak_memory(env, url, rid, job_id):
    """A fresh process imports the handler and serves one real callback; its max RSS."""
    from localcloud.scfevents import callback_request
    from shared import tokens

    event = callback_request(json.dumps({"EventName": "TaskFinish", "JobsDetail": {"JobId": job_id}}),
                             "application/json", tokens.callback_query([KEYS], rid, 600, time.time()))
    code = ("import json, resource, sys; import functions.callback.index as i; "
            "r = i.main_handler(json.loads(sys.stdin.read()), {}); assert r['statusCode'] == 200, r; "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(event), env={**os.environ, **env},
                         cwd=ROOT, capture_output=True, text=True, check=True)
    rss = int(out.stdout.strip().splitlines()[-1]) / 1024
    print(f"peak memory      {rss:6.1f} MB  (cold invocation: import, app, clients, one callback; target <= 64 MB)")


if __name__ == "__main__":
    main()
