"""Every Mode x SegmentType writes a valid H.264 MP4 with the input's size, frame
count, duration and audio; the engine() entry point and its MediaInfo."""
import itertools
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from localcloud.matting import engine, media_info, process
from localcloud.matting.samples import background_image, green_screen_frames, read_video, write_clip
from shared import jobs

W, H, N = 160, 120, 12
MODES = ("Mask", "Foreground", "Combination")
SEGMENTS = ("HumanSeg", "GreenScreenSeg", "SolidColorSeg")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    path = str(d / "in.mp4")
    write_clip(path, (f for f, _ in green_screen_frames(W, H, N)), W, H, audio=True)
    bg = str(d / "bg.jpg")
    cv2.imwrite(bg, cv2.cvtColor(background_image(200, 90), cv2.COLOR_RGB2BGR))
    return path, bg


def probe(path):
    with av.open(path) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = sum(1 for _ in c.decode(v))
        return {
            "format": c.format.name, "duration": c.duration / 1e6, "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt, "size": (v.codec_context.width, v.codec_context.height),
            "frames": frames, "rate": v.average_rate, "audio": a.codec_context.name if a else None,
            "streams": len(c.streams),
        }


def audio_packets(path):
    with av.open(path) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def opts_for(mode, seg):
    return jobs.SegmentVideoOptions(Mode=mode, SegmentType=seg, BackgroundLogoUrl="bg.jpg" if mode == "Combination" else None,
                                    RemoveRed=40, RemoveGreen=190, RemoveBlue=60, BackgroundBlue=255)


@pytest.mark.parametrize("mode,seg", list(itertools.product(MODES, SEGMENTS)))
def test_every_mode_and_segment_type(tmp_path, clip, mode, seg):
    src, bg = clip
    out = str(tmp_path / "out.mp4")
    info = process(src, out, opts_for(mode, seg), bg)
    i, o = probe(src), probe(out)
    assert "mp4" in o["format"] and o["codec"] == "h264" and o["pix_fmt"] == "yuv420p"
    assert o["size"] == i["size"] == (W, H)
    assert o["frames"] == i["frames"] == N
    assert o["rate"] == i["rate"]
    assert abs(o["duration"] - i["duration"]) <= 1 / 25 + 1e-6
    assert o["audio"] == "aac" and audio_packets(out) == audio_packets(src)  # copied, not re-encoded
    spec = jobs.MediaInfoSpec.model_validate(info)
    assert spec.Stream.Video.Width == W and spec.Stream.Video.NumFrames == N
    assert spec.Stream.Video.CodecName == "h264"


def test_media_info_wire_dict(tmp_path, clip):
    src, _ = clip
    out = str(tmp_path / "out.mp4")
    info = process(src, out, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg"))

    def leaves(d):
        for v in d.values():
            yield from (leaves(v) if isinstance(v, dict) else [v])

    assert all(isinstance(v, str) for v in leaves(info))
    assert info["Format"]["FormatName"].startswith("mov,mp4")
    assert info["Format"]["NumStream"] == "2"
    assert float(info["Format"]["Duration"]) == pytest.approx(N / 25, abs=0.05)
    assert info["Stream"]["Video"]["Fps"] == "25.0"
    assert info == media_info(out)


def test_odd_size_is_padded_to_even(tmp_path):
    w, h = 161, 121
    src, out = str(tmp_path / "odd.mp4"), str(tmp_path / "out.mp4")
    write_clip(src, (f for f, _ in green_screen_frames(w, h, 5)), w, h, audio=False)  # yuv444p input
    process(src, out, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg", Mode="Foreground"))
    o = probe(out)
    assert o["size"] == (162, 122) and o["frames"] == 5 and o["pix_fmt"] == "yuv420p"
    # the padding repeats the last column/row
    frame = next(read_video(out))
    assert np.abs(frame[:, -1].astype(int) - frame[:, -2]).mean() < 6


def test_no_audio_and_other_frame_rate(tmp_path):
    src, out = str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4")
    write_clip(src, (f for f, _ in green_screen_frames(W, H, 9)), W, H, fps=15, audio=False)
    process(src, out, jobs.SegmentVideoOptions(SegmentType="SolidColorSeg", RemoveGreen=190, RemoveRed=40, RemoveBlue=60))
    o = probe(out)
    assert o["streams"] == 1 and o["audio"] is None
    assert o["frames"] == 9 and o["rate"] == 15
    assert o["duration"] == pytest.approx(9 / 15, abs=1e-3)


def test_audio_mp4_cannot_hold_is_transcoded(tmp_path):
    src, out = str(tmp_path / "in.mkv"), str(tmp_path / "out.mp4")
    with av.open(src, "w", format="matroska") as c:
        v = c.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=8000)
        a.layout = "mono"
        for i, (rgb, _) in enumerate(green_screen_frames(W, H, 10)):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in v.encode(f):
                c.mux(p)
            pcm = (1000 * np.sin(np.arange(320) / 5)).astype(np.int16)[None]
            af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            af.sample_rate, af.pts = 8000, i * 320
            for p in a.encode(af):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)
    process(src, out, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg"))
    o = probe(out)
    assert o["audio"] == "aac" and o["frames"] == 10 and o["codec"] == "h264"


def test_video_background_plays_and_loops(tmp_path):
    colours = [(255, 0, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    bg = str(tmp_path / "bg.mp4")
    write_clip(bg, (np.full((60, 80, 3), c, np.uint8) for c in colours), 80, 60, audio=False)
    src, out = str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4")
    frames = list(green_screen_frames(W, H, 13))
    write_clip(src, (f for f, _ in frames), W, H, audio=False)
    process(src, out, jobs.SegmentVideoOptions(Mode="Combination", SegmentType="GreenScreenSeg", BackgroundLogoUrl="bg.mp4"), bg)
    for i, ((_, t), got) in enumerate(zip(frames, read_video(out))):
        corner = got[:10, :10].reshape(-1, 3).mean(0)
        assert t[:10, :10].max() < 0.01
        assert np.abs(corner - colours[i % 5]).max() < 12, (i, corner)


def test_engine_entry_point_uses_request_options(tmp_path, clip):
    src, bg = clip
    request = jobs.JobRequest(
        Tag="SegmentVideoBody", Input={"Object": "input/a.mp4"},
        Operation={"SegmentVideoBody": {"Mode": "Foreground", "SegmentType": "GreenScreenSeg", "BackgroundRed": "255"},
                   "Output": {"Region": "ap-guangzhou", "Bucket": "b-1250000000", "Object": "out/a.mp4"}})
    job = jobs.JobDetail(JobId="j1", State="Running", Operation={"SegmentVideoBody": request.Operation.SegmentVideoBody})
    out = str(tmp_path / "out.mp4")
    info = engine(job, request, src, None, out)
    assert jobs.MediaInfoSpec.model_validate(info).Stream.Video.NumFrames == N
    corner = next(read_video(out))[:8, :8].reshape(-1, 3).mean(0)
    assert np.abs(corner - (255, 0, 0)).max() < 10  # Foreground over red


@pytest.mark.slow
def test_long_video_memory_is_flat(tmp_path):
    """Peak RSS does not grow with the length of the video: 240 frames peak no
    higher than 40 frames (plus slack), where keeping the frames would add ~45 MB.
    HumanSeg on the selfie model: Robust Video Matting's per-video state is four fixed-size
    tensors replaced every frame, and it would make this test take 80 s instead of a few."""
    import subprocess
    import sys
    import textwrap

    peaks = {}
    for n in (40, 240):
        src = str(tmp_path / f"v{n}.mp4")
        write_clip(src, (f for f, _ in green_screen_frames(320, 240, n)), 320, 240, audio=True, preset="ultrafast")
        code = textwrap.dedent(f"""
            from localcloud.matting import process
            from shared import jobs
            process({src!r}, {str(tmp_path / 'o.mp4')!r}, jobs.SegmentVideoOptions(Mode="Foreground", SegmentType="HumanSeg"),
                    human_engine="selfie")
            # VmHWM: peak RSS of this process image (ru_maxrss is inherited across exec)
            print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
        """)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks[n] = int(res.stdout.split()[-1]) / 1024
    assert peaks[240] - peaks[40] < 12, peaks


def test_concurrent_jobs_in_threads(tmp_path, clip):
    """The CI worker pool may run several jobs at once in one process."""
    from concurrent.futures import ThreadPoolExecutor

    src, bg = clip
    combos = [("Mask", "HumanSeg"), ("Foreground", "HumanSeg"), ("Combination", "GreenScreenSeg"), ("Mask", "SolidColorSeg")]
    # Lossless x264 (qp 0): the decoded video is exactly the matte the engine produced, so
    # this compares mattes. With the default lossy CRF, libx264's rate control codes the
    # first GOP slightly differently when other jobs share the process, although the frames
    # it is fed are bit-identical (measured: /work/notes/flake.md, 5-11 of 40 runs under
    # load); that is encoder behaviour, not state shared between our jobs.
    lossless = {"preset": "veryfast", "qp": "0"}
    with ThreadPoolExecutor(4) as pool:
        infos = list(pool.map(lambda i: process(src, str(tmp_path / f"o{i}.mp4"), opts_for(*combos[i]), bg,
                                                encoder_options=lossless), range(4)))
    assert all(info["Stream"]["Video"]["NumFrames"] == str(N) for info in infos)
    # same job alone gives the same matte (no state shared between jobs)
    alone = str(tmp_path / "alone.mp4")
    process(src, alone, opts_for("Mask", "HumanSeg"), bg, encoder_options=lossless)
    a, b = list(read_video(alone)), list(read_video(str(tmp_path / "o0.mp4")))
    assert max(np.abs(x.astype(int) - y).max() for x, y in zip(a, b)) <= 2


def test_a_failure_mid_job_leaves_no_partial_output(tmp_path, clip, monkeypatch):
    # The engine's promise on any failure after the output was opened (it replaces the test of the
    # removed `should_stop`, the only other way to stop a job mid-stream).
    from localcloud.matting import MattingError
    from localcloud.matting.engine import FrameMatter

    src, _ = clip
    out = tmp_path / "o.mp4"
    calls = []
    real = FrameMatter.matte

    def failing(self, rgb):
        calls.append(1)
        if len(calls) > 5:
            raise MattingError("UnsupportedFormat", "injected failure on the sixth frame")
        return real(self, rgb)

    monkeypatch.setattr(FrameMatter, "matte", failing)
    with pytest.raises(MattingError) as err:
        process(src, str(out), opts_for("Mask", "GreenScreenSeg"))
    assert err.value.code == "UnsupportedFormat" and len(calls) == 6 and not out.exists()
