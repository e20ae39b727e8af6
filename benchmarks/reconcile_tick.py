"""Reconcile cost per tick: requests and seconds with 100 open records and 0 / 10,000 / 50,000
finished ones (target: flat, within 1.2x).

One local cloud, grown between measurements. The 100 open records are real: uploaded and
submitted through `Submitter.process` (their jobs stay Submitted, so every tick re-reads all
100 from CI). Finished records are written cheaply, straight into the local cloud's storage:
a source object under the watched prefix (dated a day back) plus the claim and final stage
objects of its record, exactly as the pipeline lays them out. Before each level the sweep's place is set as if a full
pass had just finished (steady state: the first pass over a new bucket is spread over ticks
by the budget and the page cap). Requests are counted at the SDK (`CosS3Client.send_request`);
time per tick is the fastest of --ticks runs (the machine is shared: the median is printed too)
and the CPU seconds of this process (reconcile plus the in-process local cloud serving it).

    .venv/bin/python benchmarks/reconcile_tick.py [--levels 0 10000 50000] [--ticks 3]
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUCKET, REGION, APPID = "videos-1250000000", "ap-guangzhou", "1250000000"
OPEN = 100


def counting():
    """Patch the SDK so every request is counted by its operation (method + CI or COS)."""
    from qcloud_cos.cos_client import CosS3Client

    counts: Counter = Counter()
    original = CosS3Client.send_request

    def send_request(self, method, url, bucket=None, *args, **kwargs):
        counts["ci" if "/jobs" in url else "cos"] += 1
        return original(self, method, url, bucket, *args, **kwargs)

    CosS3Client.send_request = send_request
    return counts


def add_finished(cloud, settings, start: int, n: int) -> None:
    from shared.identity import ObjectVersion
    from shared.records import Record, Source

    bucket = cloud.bucket(BUCKET)
    for i in range(start, start + n):
        key = f"input/done/{i:06d}.mp4"
        meta = bucket.put_bytes(key, b"\x00\x00\x00\x18ftypmp42 %d" % i)
        meta.last_modified -= 86400  # uploaded yesterday (in-memory index only; not journalled)
        version = ObjectVersion(BUCKET, key, meta.etag, meta.size, int(meta.last_modified))
        record = Record(id=version.record_id, source=Source.of(version, REGION))
        base = f"{settings.records_prefix}{record.id}/"
        bucket.put_bytes(base + "001-0-claim-1.json", record.model_dump_json(exclude_none=True).encode())
        final = record.model_copy(update={"state": "Success", "job_id": f"s{i:031d}",
                                          "output": {"bucket": BUCKET, "region": REGION, "key": f"matting/{key}"}})
        bucket.put_bytes(base + "001-3-final.json", final.model_dump_json(exclude_none=True).encode())


def steady_sweep(clients, settings) -> None:
    """As if a full sweep pass had just completed: only newer uploads are checked."""
    from shared.reconcile import Place, Sweep, save_place
    from shared.records import RecordStore

    save_place(RecordStore.of(settings, clients.storage),
               Place(sweep=Sweep(checked_before=time.time() + 1)))


def open_records(cloud):
    """Settings and clients against `cloud`, and OPEN uploads submitted (their jobs stay Submitted)."""
    from shared.cloud import Clients
    from shared.config import load_settings
    from shared.events import Upload
    from shared.submit import Submitter

    kw = cloud.cos_config_kwargs()
    env = {"COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_ENDPOINT": cloud.url,
           "TENCENTCLOUD_SECRETID": kw["SecretId"], "TENCENTCLOUD_SECRETKEY": kw["SecretKey"]}
    settings = load_settings(env)
    clients = Clients(settings, env)
    submitter = Submitter(settings, clients, sleep=lambda s: None)
    for i in range(OPEN):
        key = f"input/open/{i:03d}.mp4"
        meta = cloud.bucket(BUCKET).put_bytes(key, b"open %d" % i)
        out = submitter.process(Upload(bucket=BUCKET, appid=APPID, region=REGION, key=key, etag=meta.etag,
                                       size=meta.size, event_name="cos:ObjectCreated:Put"))
        assert out.outcome == "submitted", out
    return settings, clients


def measure_level(settings, clients, counts: Counter, level: int, ticks: int, fill_s: float) -> dict:
    """`ticks` reconcile runs in the steady state with `level` finished records: one row."""
    from shared.reconcile import reconcile

    steady_sweep(clients, settings)
    reqs, secs, cpus, scanned = [], [], [], []
    for _ in range(ticks):
        counts.clear()
        started, cpu = time.perf_counter(), time.process_time()
        summary = reconcile(settings, clients, older_than=0)
        secs.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)  # reconcile and the in-process local cloud
        reqs.append(sum(counts.values()))
        scanned.append(summary.scanned)
        assert summary.still_running == OPEN and summary.failed == 0, summary
    return {"finished": level, "open": OPEN, "requests": statistics.median(reqs),
            "seconds": round(min(secs), 3), "median_s": round(statistics.median(secs), 3),
            "cpu_s": round(statistics.median(cpus), 3), "scanned": statistics.median(scanned),
            "ci": counts["ci"], "cos": counts["cos"], "fill_s": round(fill_s, 1)}


def print_rows(rows) -> None:
    base = rows[0]
    print(f"{'finished':>9} {'open':>5} {'requests/tick':>14} {'(cos+ci)':>10} {'min s':>7} {'median s':>9} "
          f"{'cpu s':>7} {'x req':>6} {'x min s':>8} {'x cpu':>6}")
    for r in rows:
        print(f"{r['finished']:>9} {r['open']:>5} {r['requests']:>14.0f} {str(r['cos']) + '+' + str(r['ci']):>10} "
              f"{r['seconds']:>7.3f} {r['median_s']:>9.3f} {r['cpu_s']:>7.3f} {r['requests'] / base['requests']:>6.2f} "
              f"{r['seconds'] / base['seconds']:>8.2f} {r['cpu_s'] / base['cpu_s']:>6.2f}")
    worst = max(max(r["requests"] / base["requests"], r["seconds"] / base["seconds"], r["cpu_s"] / base["cpu_s"])
                for r in rows)
    print(f"worst ratio to 0 finished (requests, min wall time, cpu): {worst:.2f}x (target <= 1.20x)")
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 10_000, 50_000])
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()

    from localcloud import LocalCloud

    with tempfile.TemporaryDirectory() as tmp:
        cloud = LocalCloud(data_dir=tmp, buckets=[BUCKET], region=REGION, secret_id="AKIDbench",
                           secret_key="benchsecret", port=0)
        cloud.start()
        settings, clients = open_records(cloud)
        counts = counting()
        rows, made = [], 0
        for level in args.levels:
            fill_started = time.time()
            add_finished(cloud, settings, made, level - made)
            made = level
            rows.append(measure_level(settings, clients, counts, level, args.ticks, time.time() - fill_started))
        cloud.stop()
    print_rows(rows)


if __name__ == "__main__":
    main()
