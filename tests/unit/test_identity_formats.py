"""Which deployment a job belongs to (identity.Correlation) and the previous release's records
(records.py format 1) read as today's, without I/O."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import load_settings
from shared.identity import Correlation, ObjectVersion, is_record, legacy_record_id
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


def test_a_version_matches_its_record_in_either_format():
    version = ObjectVersion("videos-1250000000", "input/a.mp4", "abc", 3, 1796000000)
    assert is_record(version, version.record_id) and is_record(version, legacy_record_id(version.bucket, version.key,
                                                                                         '"ABC"'))
    assert not is_record(version, legacy_record_id(version.bucket, version.key, "other"))


def test_a_record_naming_no_deployment_belongs_to_the_one_watching_its_source():
    base = {"COS_MATTING_BUCKET": "videos-1250000000", "COS_MATTING_REGION": "ap-guangzhou"}
    people = load_settings({**base, "COS_MATTING_DEPLOYMENT": "people", "COS_MATTING_WATCH_PREFIXES": "input/people/"})
    studio = load_settings({**base, "COS_MATTING_DEPLOYMENT": "studio", "COS_MATTING_WATCH_PREFIXES": "input/studio/"})
    src = Source(bucket="videos-1250000000", region="ap-guangzhou", key="input/people/a.mp4", etag="e")
    assert owned(people, Record(id=RID, source=src)) and not owned(studio, Record(id=RID, source=src))
    named = Record(id=RID, source=src, deployment="studio")  # its name wins over the prefix
    assert owned(studio, named) and not owned(people, named)
