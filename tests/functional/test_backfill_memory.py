"""cli/backfill.Backfill and cli/backfill_scf.ScfBackfill, the libraries under `cos-matting backfill`,
driven on the in-memory cloud: one job per object, a rerun submits nothing, a dry run reads the
records, Ctrl-C keeps a resume point before what did not finish; batches under SCF's 128 KB."""
import json
import threading

import pytest

from cli.backfill import backfill
from cli.backfill_scf import ASYNC_LIMIT, Checkpoint, Pace, backfill_scf
from cli.sources import ListingSource
from helpers import BUCKET

VIDEO = b"\x00\x00\x00\x18ftypmp42 %d"


class PerThread:
    """ThreadClients' shape (`get()`, one Clients per thread) on the memory cloud."""

    def __init__(self, cloud, settings):
        self.cloud, self.settings, self._local = cloud, settings, threading.local()

    def get(self):
        if getattr(self._local, "clients", None) is None:
            self._local.clients = self.cloud.clients(self.settings)
        return self._local.clients


def fill(cloud, n, prefix="input/bulk/"):
    keys = [f"{prefix}clip-{i:03d}.mp4" for i in range(n)]
    for i, key in enumerate(keys):
        cloud.upload(BUCKET, key, VIDEO % i)
    return keys


@pytest.fixture
def setup(memory_cloud, settings_of):
    settings = settings_of(COS_MATTING_CALLBACK_URL="https://cb.example.com/cb")
    return settings, PerThread(memory_cloud, settings)


def test_every_object_once_then_duplicates_and_a_dry_run_reads_the_records(setup, memory_cloud):
    settings, clients = setup
    keys = fill(memory_cloud, 30)
    memory_cloud.upload(BUCKET, "elsewhere/clip.mp4", VIDEO % 99)
    dry = backfill(settings, clients, BUCKET, ["input/"], dry_run=True)
    assert dry.totals() == {"would-submit": 30, "has-record": 0, "skipped": 0} and not memory_cloud.list_jobs(BUCKET)
    first = backfill(settings, clients, BUCKET, ["input/", "elsewhere/"], concurrency=4)
    assert first.listed == 31 and first.totals() == {"submitted": 30, "duplicate": 0, "skipped": 1, "failed": 0}
    assert first.counts["skipped:prefix"] == 1 and first.resume_after == "input/bulk/clip-029.mp4"
    assert sorted(j.Input.Object for j in memory_cloud.list_jobs(BUCKET)) == keys
    again = backfill(settings, clients, BUCKET, ["input/"], concurrency=4)
    assert again.totals() == {"submitted": 0, "duplicate": 30, "skipped": 0, "failed": 0}
    assert backfill(settings, clients, BUCKET, ["input/"], dry_run=True).totals()["has-record"] == 30
    assert len(memory_cloud.list_jobs(BUCKET)) == 30


def test_ctrl_c_stops_with_a_resume_point_and_the_rest_follows(setup, memory_cloud):
    settings, clients = setup
    keys = fill(memory_cloud, 40)

    def stop_at_ten(summary):
        if summary.done >= 10:
            raise KeyboardInterrupt

    cut = backfill(settings, clients, BUCKET, ["input/"], concurrency=2, on_progress=stop_at_ten)
    assert cut.interrupted and 10 <= cut.done < 40 and cut.resume_after in keys
    jobbed = {j.Input.Object for j in memory_cloud.list_jobs(BUCKET)}
    assert all(k in jobbed for k in keys if k <= cut.resume_after)  # the point is before anything unfinished
    assert not all(k in jobbed for k in keys)
    rest = backfill(settings, clients, BUCKET, ["input/"], start_after=cut.resume_after, concurrency=2)
    assert not rest.interrupted and rest.totals()["failed"] == 0
    assert sorted({j.Input.Object for j in memory_cloud.list_jobs(BUCKET)}) == keys
    assert len(memory_cloud.list_jobs(BUCKET)) == 40  # nothing twice: finished ones say duplicate


def test_limit_and_since(setup, memory_cloud):
    from datetime import datetime, timedelta, timezone

    settings, clients = setup
    fill(memory_cloud, 12)
    limited = backfill(settings, clients, BUCKET, ["input/"], limit=5)
    assert limited.listed == 5 and limited.resume_after == "input/bulk/clip-004.mp4"
    future = datetime.now(timezone.utc) + timedelta(days=1)
    later = backfill(settings, clients, BUCKET, ["input/"], since=future)
    assert later.counts["skipped:before-since"] == 12 and later.totals()["submitted"] == 0


class Invoker:
    """The SCF Invoke seam: what was sent, in order."""

    function = "cos-matting-dev-submit"

    def __init__(self):
        self.bodies, self.retries = [], 0

    def send(self, body):
        assert len(body.encode()) <= ASYNC_LIMIT
        self.bodies.append(json.loads(body))
        return f"req-{len(self.bodies)}"


def test_scf_batches_checkpoint_and_a_second_run_sends_nothing(setup, memory_cloud, tmp_path):
    settings, clients = setup
    keys = fill(memory_cloud, 45)
    source = ListingSource(clients.get().storage, BUCKET, ["input/"])
    invoker, path = Invoker(), tmp_path / "ckpt.json"
    checkpoint = Checkpoint(str(path), source.identity, invoker.function)
    pace = Pace(1e9, sleep=lambda s: None)
    summary = backfill_scf(settings, source, invoker, checkpoint, rate=1e9, batch=20, pace=pace)
    assert summary.complete and summary.counts["sent"] == 45 and summary.invocations == 3
    assert [len(b["Records"]) for b in invoker.bodies] == [20, 20, 5]
    sent = [r["cos"]["cosObject"]["key"].split("/", 3)[-1] for b in invoker.bodies for r in b["Records"]]
    assert sent == keys  # in listing order, each once
    saved = json.loads(path.read_text())
    assert saved["complete"] and saved["sent"] == 45 and saved["position"] == keys[-1]
    again = backfill_scf(settings, source, Invoker(), checkpoint, rate=1e9, pace=pace)
    assert again.already_complete and again.counts["sent"] == 0
