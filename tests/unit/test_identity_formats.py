"""Which deployment a job belongs to (identity.Correlation) and the previous release's records
(records.py format 1) read as today's, without I/O."""
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import load_settings
from shared.identity import Correlation, ObjectVersion, is_record, older_record_ids
from shared.jobs import JobRequest
from shared.records import FORMAT, Record, RecordStore, Source, owned, upgraded

RID = "0123456789abcdef" * 2


def test_every_spelling_of_the_correlation_id_parses():
    assert Correlation.parse(f"cm:{RID}") == Correlation(RID, 1, "")  # the previous release
    assert Correlation.parse(f"cm:{RID}.3") == Correlation(RID, 3, "")  # per-attempt, no deployment
    assert Correlation.parse(f"cm:{RID}.3@pipe-people|user data") == Correlation(RID, 3, "pipe-people")
    assert Correlation.parse(f"cm:{RID}.3@bad|dep") == Correlation(RID, 3, "bad")
    for broken in (f"cm:{RID}.3@", f"cm:{RID}.3@-x", f"cm:{RID}.3@a b", f"cm:{RID}x", "cm:abc", ""):
        assert Correlation.parse(broken) is None, broken


def test_a_job_is_foreign_only_when_it_names_another_deployment():
    assert Correlation(RID, 1, "a").foreign("b") and Correlation(RID, 1, "a").foreign(None)
    assert not Correlation(RID, 1, "a").foreign("a")
    assert not Correlation(RID, 1, "").foreign("a")  # an older release's: its record decides


@settings(deadline=None)  # as every other property test here: Hypothesis's 200 ms per example is a timing check
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=900),
       st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True), st.integers(1, 999))
def test_the_longest_correlation_with_user_data_fits_userdata(user, deployment, attempt):
    marker = Correlation(RID, attempt, deployment).marker
    assert Correlation.parse(marker + "|" + user) == Correlation(RID, attempt, deployment)
    request = {"Tag": "SegmentVideoBody", "Input": {"Object": "input/a.mp4"},
               "Operation": {"SegmentVideoBody": {"Mode": "Mask"}, "UserData": marker + "|" + user,
                             "Output": {"Region": "ap-guangzhou", "Bucket": "videos-1250000000", "Object": "o.mp4"}}}
    JobRequest.model_validate(request, context={"bucket": "videos-1250000000"})  # <= 1024 printable ASCII


def test_the_deployment_setting_is_checked_naming_the_variable():
    base = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}
    assert load_settings({**base, "COS_MATTING_DEPLOYMENT": "cos-matting-prod"}).deployment == "cos-matting-prod"
    with pytest.raises(ValueError) as err:
        load_settings({**base, "COS_MATTING_DEPLOYMENT": "a|b"})
    assert "COS_MATTING_DEPLOYMENT" in str(err.value)


def test_a_format_1_snapshot_reads_as_attempt_1_with_its_takeovers_as_generation():
    old = {"id": RID, "state": "Submitted", "attempt": 2, "owner": "o", "claimed_at": "2026-11-25T13:00:00+00:00",
           "job_id": "s1", "source": {"bucket": "videos-1250000000", "region": "ap-guangzhou", "key": "input/a.mp4",
                                      "etag": "abc", "size": 3},
           "output": {"bucket": "videos-1250000000", "region": "ap-guangzhou", "key": "matting/a.mask.mp4"}}
    record = Record.model_validate(upgraded(json.loads(json.dumps(old))))
    assert (record.format, record.attempt, record.generation, record.job_id) == (1, 1, 2, "s1")
    assert Record.model_validate({**old, "attempt": 1}).format == FORMAT  # today's layout, written before the field


def test_format_1_stage_names_are_attempt_1_stages():
    store = RecordStore(None, "b", "records/")
    names = {n: store._stage({"Key": f"records/{RID}/{n}"}) for n in
             ("0-claim-2.json", "1-submitted.json", "3-final.json", "001-3-final.json", "x.json")}
    assert [(s.attempt, s.rank, s.generation, s.format) for s in (names["0-claim-2.json"], names["1-submitted.json"],
                                                                  names["3-final.json"])] == \
        [(1, 0, 2, 1), (1, 1, 0, 1), (1, 3, 0, 1)]
    assert names["001-3-final.json"].format == FORMAT and names["x.json"] is None


def _sha(*parts):  # the id rule every release shares: sha256 of bucket, key and a token, 32 hex digits
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def test_a_version_matches_its_record_in_every_format():
    version = ObjectVersion("videos-1250000000", "input/a.mp4", "abc", 3, 1796000000)
    b, k = version.bucket, version.key
    # today (format 3): content; 279d89d (format 2): ETag + size + Last-Modified; a5737e5 (format 1): ETag
    assert version.record_id == _sha(b, k, "abc:3")
    assert older_record_ids(version) == {2: _sha(b, k, "abc:3:1796000000"), 1: _sha(b, k, "abc")}
    assert all(is_record(version, rid) for rid in [version.record_id, *older_record_ids(version).values()])
    assert not is_record(version, _sha(b, k, "other"))
    assert not is_record(version, _sha(b, k, "abc:3:1796000001"))  # format 2 moved with Last-Modified
    versioned = ObjectVersion(b, k, "abc", 3, 1796000000, "MTg0NDUx")  # format 2 took the version id where set
    assert older_record_ids(versioned)[2] == _sha(b, k, "v:MTg0NDUx") and versioned.record_id == version.record_id
    assert older_record_ids(ObjectVersion(b, k, "abc", 3, 1796000000, "null"))[2] == older_record_ids(version)[2]


def test_a_snapshot_without_format_is_format_2():
    """279d89d wrote no `format`; today's writes carry FORMAT (3)."""
    class Bodies:
        def __init__(self, body):
            self.body = body

        def get(self, bucket, key):
            return self.body

    body = json.dumps({"id": RID, "state": "Submitted", "source": {"bucket": "b", "region": "r", "key": "k",
                                                                   "etag": "e"}}).encode()
    stage = RecordStore(None, "b", "records/")._stage({"Key": f"records/{RID}/001-1-submitted.json"})
    assert RecordStore(Bodies(body), "b", "records/").read(stage).format == 2 and FORMAT == 3


def test_a_record_naming_no_deployment_belongs_to_the_one_watching_its_source():
    base = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}
    people = load_settings({**base, "COS_MATTING_DEPLOYMENT": "people", "COS_MATTING_WATCH_PREFIXES": "input/people/"})
    studio = load_settings({**base, "COS_MATTING_DEPLOYMENT": "studio", "COS_MATTING_WATCH_PREFIXES": "input/studio/"})
    src = Source(bucket="videos-1250000000", region="ap-guangzhou", key="input/people/a.mp4", etag="e")
    assert owned(people, Record(id=RID, source=src)) and not owned(studio, Record(id=RID, source=src))
    named = Record(id=RID, source=src, deployment="studio")  # its name wins over the prefix
    assert owned(studio, named) and not owned(people, named)
