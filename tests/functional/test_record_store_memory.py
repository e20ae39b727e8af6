"""shared/records.RecordStore's one constructor and its scans, and shared/reconcile.listed (what
the sweep, `status` and `backfill` call an upload with no record), on the in-memory cloud."""
from helpers import BUCKET
from shared.identity import ObjectVersion
from shared.reconcile import EVENT_NAME, listed
from shared.records import OPEN, Record, RecordStore, Source


def record_of(settings, key, i):
    version = ObjectVersion(BUCKET, key, f"{i:032x}", 10, 1_700_000_000 + i)
    return Record(id=version.record_id, source=Source.of(version, settings.region))


def write(store, record, state):
    assert store.claim(record)
    if state != "Claimed":
        submitted = record.model_copy(update={"state": "Submitted", "job_id": f"s{record.id[:31]}"})
        store.advance(submitted)
        if state != "Submitted":
            store.advance(submitted.model_copy(update={"state": state}))


def test_the_store_is_the_records_bucket_and_prefix_the_settings_name(memory_cloud, settings_of):
    settings = settings_of(COS_MATTING_RECORDS_PREFIX="rec/")
    store = RecordStore.of(settings, memory_cloud.clients(settings).storage)
    assert (store.bucket, store.prefix) == (settings.rec_bucket, "rec/")
    record = record_of(settings, "input/a.mp4", 1)
    assert not store.exists(record.id)
    write(store, record, "Claimed")
    assert store.exists(record.id) and any(k.startswith("rec/" + record.id) for k in memory_cloud.bucket(BUCKET).objects)


def test_scans_group_by_record_skip_the_index_and_notes_and_resume_after_a_record(memory_cloud, settings_of):
    settings = settings_of()
    store = RecordStore.of(settings, memory_cloud.clients(settings).storage)
    states = ["Success", "Submitted", "Claimed", "Failed", "Success"]
    records = [record_of(settings, f"input/clip-{i}.mp4", i) for i in range(len(states))]
    for record, state in zip(records, states):
        write(store, record, state)
    store.note(records[0].model_copy(update={"state": "Success"}), "s" + "9" * 31, "a second job")
    memory_cloud.upload(BUCKET, settings.records_prefix + "state/reconcile.json", b"{}")
    assert any(k.startswith(settings.records_prefix + OPEN) for k in memory_cloud.bucket(BUCKET).objects)  # open markers
    by_id = sorted(zip(records, states), key=lambda rs: rs[0].id)
    groups = list(store.scan())
    assert [g[0].record_id for g in groups] == [r.id for r, _ in by_id]
    assert all(len({s.record_id for s in g}) == 1 and not any(s.note_job for s in g) for g in groups)
    assert [s.rank for s in store.newest_stages()] == [{"Claimed": 0, "Submitted": 1}.get(st, 3) for _, st in by_id]
    assert [(r.id, r.state) for r in store.newest_records()] == [(r.id, st) for r, st in by_id]
    middle = by_id[2][0].id
    assert [s.record_id for s in store.newest_stages(after=middle)] == [r.id for r, _ in by_id[3:]]


def test_scan_follows_listing_pages(memory_cloud, settings_of):
    """More than 1,000 stage objects: GET Bucket pages them, the scan must not lose a group at a page edge."""
    settings = settings_of()
    store = RecordStore.of(settings, memory_cloud.clients(settings).storage)
    records = [record_of(settings, f"input/many-{i:04d}.mp4", i) for i in range(350)]
    for record in records:
        write(store, record, "Success")  # claim + submitted + final: 1,050 stage objects
    assert sorted(s.record_id for s in store.newest_stages()) == sorted(r.id for r in records)
    assert all(s.rank == 3 for s in store.newest_stages())


def test_listed_is_the_trigger_view_of_a_listed_object(memory_cloud, settings_of):
    settings = settings_of()
    etag = memory_cloud.upload(BUCKET, "input/talk.mp4", b"video")
    memory_cloud.upload(BUCKET, "elsewhere/talk.mp4", b"video")
    objects = {o["Key"]: o for o in memory_cloud.clients(settings).storage.list_all(BUCKET, "")}
    taken = listed(settings, BUCKET, objects["input/talk.mp4"], EVENT_NAME)
    assert taken.reason is None and (taken.upload.key, taken.upload.etag) == ("input/talk.mp4", etag.strip('"'))
    assert taken.upload.event_name == EVENT_NAME
    assert taken.record_id == ObjectVersion.from_listing(BUCKET, objects["input/talk.mp4"]).record_id
    assert listed(settings, BUCKET, objects["elsewhere/talk.mp4"], EVENT_NAME).reason.value == "prefix"
