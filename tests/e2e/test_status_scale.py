"""`status` at bucket scale against the local cloud (real SDK underneath): the default view reads the
open index only, so its COS calls do not change with history; the history is paged with a cursor,
--since and --state; "never became a job" advances a bounded scan per call and only re-checks what
changed after a complete pass."""
from collections import Counter

from cli import uploads_scan
from helpers import clients_for, settings_for
from shared.cloud import Storage
from shared.identity import ObjectVersion
from shared.records import Record, RecordStore, Source
from .cli_support import BUCKET, all_jobs, cli_env, run_cli, run_json  # noqa: F401


def make_records(cloud, n, state, prefix="done/"):
    """n records of source objects that no longer exist (history), written through RecordStore."""
    settings = settings_for(cloud)
    store = RecordStore.of(settings, clients_for(cloud, settings).storage)
    rids = []
    for i in range(n):
        version = ObjectVersion(BUCKET, f"{prefix}clip-{i:04d}.mp4", f"{i:032x}", 10, 1_700_000_000 + i)
        record = Record(id=version.record_id, source=Source.of(version, settings.region))
        assert store.claim(record)
        submitted = record.model_copy(update={"state": "Submitted", "job_id": f"s{i:031x}"})
        store.advance(submitted)
        if state != "Submitted":
            store.advance(submitted.model_copy(update={"state": state}))
        rids.append(record.id)
    return rids


def count_calls(monkeypatch):
    calls = Counter()
    real = Storage._call

    def counted(self, operation, fn, **kwargs):
        calls[operation] += 1
        return real(self, operation, fn, **kwargs)

    monkeypatch.setattr(Storage, "_call", counted)
    return calls


def test_default_status_reads_only_open_and_recent_records(cli_env, capsys, monkeypatch):
    open_rids = make_records(cli_env, 3, "Submitted", prefix="input/")
    calls = count_calls(monkeypatch)
    code, before = run_json(capsys, "status", "--no-uploads")
    assert code == 0 and before["totals"] == {"Submitted": 3}
    assert sorted(r["record_id"] for r in before["records"]) == sorted(open_rids)
    cost_without_history = Counter(calls)
    make_records(cli_env, 150, "Success")  # finished: closed in the open index, but recent
    failed = make_records(cli_env, 2, "Failed", prefix="bad/")
    code, after = run_json(capsys, "status", "--no-uploads", "--limit", "10")
    shown = [r["record_id"] for r in after["records"]]
    assert code == 0 and set(open_rids) | set(failed) <= set(shown)  # failures always listed
    assert after["totals"] == {"Submitted": 3, "Success": 10, "Failed": 2}
    assert "3 open; 152 finished in the last 24 h (10 Success, 2 Failed, 140 more not listed)" in after["summary"]
    code, _, _ = run_cli(capsys, "status", "--no-uploads", "--check")
    assert code == 1  # recent failures
    calls.clear()  # a finished record's final stage never changes: read once, then kept by its key
    code, again = run_json(capsys, "status", "--no-uploads", "--limit", "10")
    assert again["totals"] == after["totals"] and calls["cos.get"] <= cost_without_history["cos.get"], calls
    calls.clear()
    code, old = run_json(capsys, "status", "--no-uploads", "--since", "2999-01-01")  # nothing that recent
    assert code == 0 and sorted(r["record_id"] for r in old["records"]) == sorted(open_rids)
    # finished records out of the window cost listing pages, never a read
    assert all(n <= cost_without_history[k] for k, n in calls.items() if k != "cos.list"), calls
    assert calls["cos.list"] <= cost_without_history["cos.list"] + 2


def test_history_is_paged_with_a_cursor_since_and_state(cli_env, capsys):
    done = make_records(cli_env, 12, "Success")
    failed = make_records(cli_env, 3, "Failed", prefix="bad/")
    seen, after = [], ""
    while True:
        args = ["status", "--all", "--limit", "5", "--no-uploads"] + (["--after", after] if after else [])
        code, page = run_json(capsys, *args)
        assert code == 0 and len(page["records"]) <= 5
        seen += [r["record_id"] for r in page["records"]]
        after = page["next_after"]
        if not after:
            break
    assert sorted(seen) == sorted(done + failed) and len(seen) == len(set(seen)) == 15  # each once, newest first
    code, data = run_json(capsys, "status", "--state", "Failed", "--no-uploads")
    assert sorted(r["record_id"] for r in data["records"]) == sorted(failed) and data["totals"] == {"Failed": 3}
    code, data = run_json(capsys, "status", "--all", "--since", "2999-01-01", "--no-uploads")
    assert data["records"] == []
    code, out, _ = run_cli(capsys, "status", "--all", "--limit", "0", "--no-uploads")  # printed as read
    rows = [line.split() for line in out.splitlines()[1:] if line and not line.startswith(("totals", "summary"))]
    assert code == 0 and Counter(r[2] for r in rows) == {"Success": 12, "Failed": 3} and "totals: 15 record(s)" in out


def test_uploads_scan_is_bounded_per_call_and_incremental(cli_env, capsys, monkeypatch):
    bucket = cli_env.bucket(BUCKET)
    for i in range(25):
        bucket.put_bytes(f"input/old-{i:02d}.mp4", b"video %d" % i)
    bucket.put_bytes("input/zz-notes.txt", b"text")  # the trigger would skip it: never reported
    looked_up = []
    real = uploads_scan.scan

    def scan(settings, source, state, has_record, budget, concurrency=16):
        def counted(rid, listed=None):
            looked_up.append(rid)
            return has_record(rid, listed)
        return real(settings, source, state, counted, budget, concurrency)

    monkeypatch.setattr(uploads_scan, "scan", scan)
    monkeypatch.setattr(uploads_scan, "MARGIN", 0)  # no clock-skew margin: "changed since" is exact here
    code, first = run_json(capsys, "status", "--grace", "0", "--scan", "10")
    assert first["uploads_scan"]["read"] == 10 and not first["uploads_scan"]["complete"]
    assert first["never_became_a_job"] == 10 and len(looked_up) == 10
    code, second = run_json(capsys, "status", "--grace", "0", "--scan", "10")
    assert second["uploads_scan"]["read"] == 20 and second["never_became_a_job"] == 20
    code, third = run_json(capsys, "status", "--grace", "0", "--scan", "10")
    assert third["uploads_scan"]["complete"] and third["never_became_a_job"] == 25
    assert "input/zz-notes.txt" not in {m["key"] for m in third["missing"]}
    looked_up.clear()
    code, again = run_json(capsys, "status", "--grace", "0", "--scan", "100")  # a new pass: nothing changed since the last
    assert again["never_became_a_job"] == 25 and len(looked_up) == 25  # only the missing ones re-checked
    code, _, err = run_cli(capsys, "backfill", "--no-callback", "--prefix", "input/", "--no-progress")
    assert code == 0, err
    code, done = run_json(capsys, "status", "--grace", "0", "--scan", "100")
    assert done["never_became_a_job"] == 0  # backfilled: they dropped out
    code, data = run_json(capsys, "status", "--grace", "0", "--scan", "0")
    assert data["never_became_a_job"] == 0


def test_uploads_scan_reads_an_inventory(cli_env, capsys):
    bucket = cli_env.bucket(BUCKET)
    for i in range(8):
        bucket.put_bytes(f"input/inv-{i}.mp4", b"v%d" % i)
    manifest = cli_env.generate_inventory(BUCKET, inventory_id="status", filter_prefix="input/")["manifest_key"]
    bucket.put_bytes("input/after-the-report.mp4", b"late")  # not in this report
    code, data = run_json(capsys, "status", "--grace", "0", "--inventory", manifest)
    assert data["uploads_scan"]["source"] == {"inventory": f"{BUCKET}/{manifest}"} and data["uploads_scan"]["complete"]
    assert sorted(m["key"] for m in data["missing"]) == [f"input/inv-{i}.mp4" for i in range(8)]


def test_one_record_by_id_job_or_key_without_reading_history(cli_env, capsys, monkeypatch):
    make_records(cli_env, 40, "Success")
    cli_env.bucket(BUCKET).put_bytes("input/one.mp4", b"one")
    code, _, err = run_cli(capsys, "backfill", "--no-callback", "--prefix", "input/", "--no-progress")
    assert code == 0, err
    [job] = all_jobs(cli_env)
    code, data = run_json(capsys, "status", "input/one.mp4", "--no-uploads")
    [row] = data["records"]
    assert row["job_id"] == job.JobId and row["key"] == "input/one.mp4"
    calls = count_calls(monkeypatch)
    for query in (row["record_id"], job.JobId, "input/one.mp4"):
        calls.clear()
        code, data = run_json(capsys, "status", query, "--no-uploads")
        assert code == 0 and [r["record_id"] for r in data["records"]] == [row["record_id"]]
        assert calls["cos.list"] <= 2  # its own folder: no walk through the 40 finished records
