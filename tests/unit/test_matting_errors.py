"""Broken, missing or unsupported input and background -> MattingError with a code."""
import os
import pickle
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from localcloud.matting import MattingError, engine, process
from localcloud.matting.samples import green_screen_frames, write_clip
from shared import jobs

W, H = 96, 64
MASK = jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg")
COMBO = jobs.SegmentVideoOptions(Mode="Combination", SegmentType="GreenScreenSeg", BackgroundLogoUrl="bg.png")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("v") / "in.mp4")
    write_clip(path, (f for f, _ in green_screen_frames(W, H, 5)), W, H, audio=True)
    return path


def _fails(code, src, out, opts=MASK, bg=None):
    with pytest.raises(MattingError) as err:
        process(src, out, opts, bg)
    assert err.value.code == code, (err.value.code, err.value.message)
    assert err.value.message
    assert not os.path.exists(out)  # no half-written output left behind
    return err.value


def test_missing_input(tmp_path):
    _fails("InvalidInput", str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"))


def test_empty_input(tmp_path):
    src = tmp_path / "empty.mp4"
    src.write_bytes(b"")
    _fails("InvalidInput", str(src), str(tmp_path / "o.mp4"))


def test_garbage_input(tmp_path):
    src = tmp_path / "garbage.mp4"
    src.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _fails("InvalidInput", str(src), str(tmp_path / "o.mp4"))


def test_truncated_input(tmp_path, video):
    src = tmp_path / "cut.mp4"
    src.write_bytes(open(video, "rb").read()[:600])  # header only, no frame
    _fails("InvalidInput", str(src), str(tmp_path / "o.mp4"))


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_is_not_a_video(tmp_path, ext):
    src = str(tmp_path / f"still.{ext}")
    cv2.imwrite(src, np.full((H, W, 3), 128, np.uint8))
    _fails("InputNotVideo", src, str(tmp_path / "o.mp4"))


def test_audio_only_is_not_a_video(tmp_path):
    src = str(tmp_path / "sound.m4a")
    with av.open(src, "w", format="mp4") as c:
        a = c.add_stream("aac", rate=8000)
        a.layout = "mono"
        for i in range(4):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts, f.time_base = 8000, i * 1024, Fraction(1, 8000)
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    _fails("InputNotVideo", src, str(tmp_path / "o.mp4"))


def test_combination_without_background(tmp_path, video):
    _fails("BackgroundNotFound", video, str(tmp_path / "o.mp4"), COMBO, None)
    _fails("BackgroundNotFound", video, str(tmp_path / "o.mp4"), COMBO, str(tmp_path / "missing.png"))


def test_empty_background(tmp_path, video):
    bg = tmp_path / "bg.png"
    bg.write_bytes(b"")
    _fails("BackgroundNotFound", video, str(tmp_path / "o.mp4"), COMBO, str(bg))


def test_undecodable_background(tmp_path, video):
    bg = tmp_path / "bg.png"
    bg.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not an image" * 50)
    _fails("InvalidBackground", video, str(tmp_path / "o.mp4"), COMBO, str(bg))


def test_audio_only_background(tmp_path, video):
    bg = str(tmp_path / "bg.m4a")
    with av.open(bg, "w", format="mp4") as c:
        a = c.add_stream("aac", rate=8000)
        a.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 8000, 0
        for p in list(a.encode(f)) + list(a.encode()):
            c.mux(p)
    _fails("InvalidBackground", video, str(tmp_path / "o.mp4"), COMBO, bg)


def test_background_ignored_outside_combination(tmp_path, video):
    """A broken background file does not matter when the mode does not use it."""
    bg = tmp_path / "bg.png"
    bg.write_bytes(b"junk")
    process(video, str(tmp_path / "o.mp4"), MASK, str(bg))


def test_engine_raises_matting_error(tmp_path):
    request = jobs.JobRequest(Tag="SegmentVideoBody", Input={"Object": "a.mp4"},
                              Operation={"Output": {"Region": "r", "Bucket": "b-1", "Object": "o.mp4"}})
    job = jobs.JobDetail(JobId="j", State="Running")
    with pytest.raises(MattingError) as err:
        engine(job, request, str(tmp_path / "none.mp4"), None, str(tmp_path / "o.mp4"))
    assert err.value.code == "InvalidInput"


def test_error_pickles_with_code():
    e = pickle.loads(pickle.dumps(MattingError("InputNotVideo", "an image")))
    assert (e.code, e.message) == ("InputNotVideo", "an image")
    assert "InputNotVideo" in str(e)
