"""Every Mode x SegmentType end to end through the real functions and the real engine:
upload -> COS trigger -> submit -> CI runs the job -> callback -> record + tags."""
import json

import av
import pytest

from helpers import BUCKET, ROOT, clients_for, function_env, settings_for, wait_for
from localcloud.matting import engine
from localcloud.matting.person import write_person_clip
from localcloud.matting.samples import GREEN, write_green_screen_clip
from shared import tags
from shared.records import RecordStore

MODES = ["Mask", "Foreground", "Combination"]
SEGMENTS = ["HumanSeg", "GreenScreenSeg", "SolidColorSeg"]
W, H, FRAMES, FPS = 96, 64, 12, 12


def rules():
    out = []
    for mode in MODES:
        for seg in SEGMENTS:
            rule = {"prefix": f"input/{mode}-{seg}/", "mode": mode, "segment_type": seg, "background_red": 10,
                    "background_green": 200, "background_blue": 30, "binary_threshold": 0}
            if mode == "Combination":
                rule["background_key"] = "backgrounds/bg.mp4"
            if seg == "SolidColorSeg":
                rule.update(remove_red=GREEN[0], remove_green=GREEN[1], remove_blue=GREEN[2])
            out.append(rule)
    out.append({"prefix": "input/no-background/", "mode": "Combination", "background_key": "backgrounds/missing.png"})
    return out


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return v.codec_context.name, v.codec_context.width, v.codec_context.height, frames, float(c.duration or 0) / 1e6


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    person, green, bg = d / "person.mp4", d / "green.mp4", d / "bg.mp4"
    write_person_clip(str(person), W, H, FRAMES, FPS)
    write_green_screen_clip(str(green), W, H, FRAMES, FPS)
    write_green_screen_clip(str(bg), 80, 48, 6, FPS, key=(200, 40, 40), audio=False, seed=3)  # a video background
    return {"person": person, "green": green, "bg": bg}


@pytest.mark.slow
def test_every_mode_and_segment_type_through_the_pipeline(cloud, cos_client, clips, tmp_path):
    env = function_env(cloud, COS_MATTING_RULES=json.dumps(rules()), COS_MATTING_CALLBACK_FORMAT="XML")
    env["COS_MATTING_CALLBACK_URL"] = cloud.add_function_url("callback", str(ROOT / "functions" / "callback"), env)
    cloud.add_trigger(BUCKET, function_dir=str(ROOT / "functions" / "submit"), env=env, prefix="input/")
    cloud.set_engine(engine)
    cos_client.put_object(Bucket=BUCKET, Key="backgrounds/bg.mp4", Body=clips["bg"].read_bytes())

    uploads = {}
    for mode in MODES:
        for seg in SEGMENTS:
            source = clips["person"] if seg == "HumanSeg" else clips["green"]
            uploads[f"input/{mode}-{seg}/clip.mp4"] = source
    uploads["input/broken/not-a-video.mp4"] = None
    uploads["input/no-background/clip.mp4"] = clips["green"]
    uploads["input/wrong-format/picture.mov"] = None
    for key, source in uploads.items():
        if source is not None:
            body = source.read_bytes()
        elif key.endswith(".mov"):
            body = (ROOT / "localcloud" / "assets" / "person.jpg").read_bytes()  # an image named .mov
        else:
            body = b"\x00\x00\x00\x18ftypmp42 truncated garbage" * 10
        cos_client.put_object(Bucket=BUCKET, Key=key, Body=body)

    settings = settings_for(cloud, COS_MATTING_RULES=json.dumps(rules()))
    clients = clients_for(cloud, settings)
    store = RecordStore.of(settings, clients.storage)

    def finished():
        cloud.wait_idle(timeout=5)
        snaps = list(store.newest_records())
        return snaps if len(snaps) == len(uploads) and all(r.terminal for r in snaps) else None

    records = {r.source.key: r for r in wait_for(finished, timeout=300, interval=0.5)}
    failures = {k: r.error for k, r in records.items() if r.state != "Success"}
    assert set(failures) == {"input/broken/not-a-video.mp4", "input/no-background/clip.mp4",
                             "input/wrong-format/picture.mov"}, failures
    assert all(e and e["Code"] and e["Message"] for e in failures.values())
    assert "background" in failures["input/no-background/clip.mp4"]["Message"].lower()

    for key, source in uploads.items():
        record = records[key]
        if record.state != "Success":
            assert clients.storage.get_tags(BUCKET, key)[tags.STATE] == "Failed"
            continue
        out = tmp_path / key.replace("/", "_")
        out.write_bytes(cos_client.get_object(Bucket=BUCKET, Key=record.output["key"])["Body"].get_raw_stream().read())
        codec, width, height, frames, duration = probe(out)
        _, sw, sh, sframes, sduration = probe(source)
        assert (codec, width, height, frames) == ("h264", sw, sh, sframes), key
        assert abs(duration - sduration) <= 1.5 / FPS, (key, duration, sduration)
        assert record.media["resolution"] == f"{W}x{H}"
        out_tags = clients.storage.get_tags(BUCKET, record.output["key"])
        assert out_tags[tags.ROLE] == "output" and out_tags[tags.JOB] == record.job_id
    # Outputs landed in the bucket under matting/: none of them became a job.
    assert all(j.Input.Object.startswith("input/") for j in cloud.list_jobs(BUCKET))
    assert len(cloud.list_jobs(BUCKET)) == len(uploads)
