"""cli/records_view: the order `status --all` shows, on the in-memory cloud."""
import math
import time

from cli.records_view import newest_first
from shared.identity import ObjectVersion
from shared.records import Record, RecordStore, Source

from helpers import BUCKET


class _Clients:
    """What records_view reads through: `.get()` gives a thread's clients (cli/clients.ThreadClients)."""

    def __init__(self, clients):
        self.clients = clients

    def get(self):
        return self.clients


def test_status_rows_of_one_listing_are_aged_at_one_instant(memory_cloud, settings_of):
    """`status --all` orders by the listing's whole-second stamps and shows each row's age: rows read in
    parallel, each aged when its read ended, showed ages 0.8, 0.7, 0.8 for one second's records (a CI
    failure). Every row of a listing is aged at one instant, so equal stamps show equal ages and the
    order shown is newest first."""
    settings = settings_of()
    clients = memory_cloud.clients(settings)
    store = RecordStore.of(settings, clients.storage)
    versions = [ObjectVersion(BUCKET, f"input/{i}.mp4", f"{i:032x}", 10, 1_700_000_000 + i) for i in range(4)]
    records = [Record(id=v.record_id, source=Source.of(v, settings.region)) for v in versions]
    second = math.floor(time.time()) - 30
    clock = memory_cloud.store.clock
    # three claims in one whole second, 0.7 s to spare for the writes themselves (at .8 a write delayed
    # 0.2 s on a busy machine landed in the next second); the fourth five seconds earlier
    for record, at in zip(records, (second - 5, second + 0.1, second + 0.2, second + 0.3)):
        clock.offset = at - time.time()
        assert store.claim(record)
    clock.offset = 0.0
    memory_cloud.faults.add("cos.get", count=len(records), delay=0.15)  # reads end 0.15 s apart
    rows, cursor, _ = newest_first(settings, _Clients(clients), limit=10, concurrency=1)
    ages = [r["age_s"] for r in rows]
    assert cursor is None and [r["record_id"] for r in rows][-1] == records[0].id
    assert ages == sorted(ages) and len(set(ages[:3])) == 1 and ages[3] - ages[0] >= 4.5, ages
