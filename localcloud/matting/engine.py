"""The video loop: decode -> matte -> composite -> H.264 encode, one frame at a time."""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Any, Dict, Optional

import av
import cv2
import numpy as np

from shared import jobs

from . import compose
from .errors import MattingError
from .human import HumanMatter
from .keying import ColorKeyer

# Encoder settings (also used by the benchmark's decode+encode floor).
ENCODER = "libx264"
ENCODER_OPTIONS = {"preset": "veryfast", "crf": "20"}
PIX_FMT = "yuv420p"

# Audio codecs the MP4 muxer takes as they are; others are transcoded to AAC.
MP4_AUDIO_COPY = {"aac", "mp3", "mp2", "ac3", "eac3", "opus", "flac", "alac"}
# FFmpeg demuxers of single pictures: readable, but not a video.
IMAGE_FORMATS = {"image2", "image2pipe", "apng", "webp_pipe", "png_pipe", "jpeg_pipe", "bmp_pipe",
                 "tiff_pipe", "gif_pipe", "jpegxl_pipe", "pam_pipe", "ppm_pipe", "pgm_pipe", "svg_pipe",
                 "qoi_pipe", "dpx_pipe", "exr_pipe", "psd_pipe", "sgi_pipe", "xpm_pipe", "pcx_pipe"}


def options_of(job: Optional[jobs.JobDetail], request: Optional[jobs.JobRequest]) -> jobs.SegmentVideoOptions:
    """The job's options: the request's, else those echoed in the job detail, else the defaults."""
    if request is not None and request.Operation is not None and request.Operation.SegmentVideoBody is not None:
        return request.Operation.SegmentVideoBody
    if job is not None and job.Operation is not None and job.Operation.SegmentVideoBody is not None:
        return job.Operation.SegmentVideoBody
    return jobs.SegmentVideoOptions()


def _even(n: int) -> int:
    return n + (n & 1)


class FrameMatter:
    """Everything per video except the codec: `__call__(rgb, t) -> (rgb_out | None, alpha)`.

    Returns the composited RGB frame for Foreground/Combination, None for Mask
    (the caller writes alpha as grey).
    """

    def __init__(self, opts: jobs.SegmentVideoOptions, width: int, height: int,
                 background_path: Optional[str] = None):
        self.opts = opts
        self.mode = opts.Mode
        self.threshold = int(opts.BinaryThreshold)
        self.keyer: Optional[ColorKeyer] = None
        self.human: Optional[HumanMatter] = None
        if opts.SegmentType == "HumanSeg":
            self.human = HumanMatter(width, height)
        elif opts.SegmentType == "GreenScreenSeg":
            self.keyer = ColorKeyer(width, height, green_screen=True)
        else:
            self.keyer = ColorKeyer(width, height, key=(opts.RemoveRed, opts.RemoveGreen, opts.RemoveBlue))
        self.background = None
        self.solid = None
        if self.mode == "Combination":
            self.background = compose.open_background(background_path, width, height)
        elif self.mode == "Foreground":
            self.solid = compose.solid_luts((opts.BackgroundRed, opts.BackgroundGreen, opts.BackgroundBlue))

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        if self.human is not None:
            alpha = cv2.convertScaleAbs(self.human(rgb), alpha=255.0)
        else:
            alpha = self.keyer(rgb)
        if self.threshold > 0:
            # BinaryThreshold t: alpha >= t -> 255, else 0 (alpha > t - 1)
            _, alpha = cv2.threshold(alpha, self.threshold - 1, 255, cv2.THRESH_BINARY)
        return alpha

    def __call__(self, rgb: np.ndarray, t: float):
        alpha = self.matte(rgb)
        if self.mode == "Mask":
            return None, alpha
        if self.keyer is not None:
            fg = self.keyer.premultiplied_foreground(rgb, alpha)
        else:
            fg = compose.premultiply(rgb, alpha)
        if self.mode == "Foreground":
            return compose.over_solid(fg, alpha, self.solid), alpha
        return compose.over_image(fg, alpha, self.background.frame_at(t)), alpha

    def close(self) -> None:
        if self.background is not None:
            self.background.close()


# Alpha 0..255 -> limited-range luma 16..235 (what players expect from yuv420p).
_GREY_LUT = np.round(16 + np.arange(256) * (219.0 / 255.0)).astype(np.uint8)


def grey_frame(alpha: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame whose luma is the matte and chroma neutral (even size)."""
    h, w = alpha.shape
    y = cv2.LUT(alpha, _GREY_LUT)
    if (w, h) != (width, height):
        y = cv2.copyMakeBorder(y, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
    buf = np.empty((height * 3 // 2, width), np.uint8)
    buf[:height] = y
    buf[height:] = 128
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


def rgb_frame(rgb: np.ndarray, width: int, height: int) -> av.VideoFrame:
    h, w = rgb.shape[:2]
    if (w, h) != (width, height):
        rgb = cv2.copyMakeBorder(rgb, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


def _open_input(input_path: str):
    if not input_path or not os.path.isfile(input_path):
        raise MattingError("InvalidInput", "the input object does not exist")
    if os.path.getsize(input_path) == 0:
        raise MattingError("InvalidInput", "the input object is empty")
    try:
        container = av.open(input_path, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise MattingError("InvalidInput", f"the input is not a readable media file ({type(exc).__name__})") from None
    fmt = container.format.name if container.format else ""
    video = [s for s in container.streams.video
             if not (s.disposition & av.stream.Disposition.attached_pic)]
    if fmt in IMAGE_FORMATS or fmt.endswith("_pipe") or not video:
        container.close()
        what = "an image" if (fmt in IMAGE_FORMATS or fmt.endswith("_pipe")) else "has no video stream"
        raise MattingError("InputNotVideo", f"the input is not a video ({what}; format {fmt or 'unknown'})")
    return container, video[0]


def process(input_path: str, output_path: str, opts: jobs.SegmentVideoOptions,
            background_path: Optional[str] = None, encoder_options: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Matte `input_path` into `output_path` (H.264/AAC MP4). Returns MediaInfo (wire dict)."""
    if opts.Mode == "Combination":  # fail before any decoding
        compose.open_background(background_path, 16, 16).close()
    container, in_v = _open_input(input_path)
    out = None
    matter = None
    ok = False
    try:
        try:
            in_v.thread_type = "AUTO"
            ctx = in_v.codec_context
            if ctx is None or ctx.codec is None:
                raise MattingError("UnsupportedFormat", f"no decoder for video codec {in_v.codec_context}")
        except MattingError:
            raise
        except (av.error.FFmpegError, ValueError, AttributeError) as exc:
            raise MattingError("UnsupportedFormat", f"the video stream cannot be decoded: {exc}") from None
        in_a = next((s for s in container.streams.audio), None)
        rate = in_v.average_rate or in_v.guessed_rate or Fraction(25)
        tb = in_v.time_base or Fraction(1, int(round(float(rate))) or 25)

        out = av.open(output_path, "w", format="mp4", options={"movflags": "+faststart"})
        state: Dict[str, Any] = {"v": None, "a": None, "frames": 0, "last_pts": None, "t0": None,
                                 "pending_audio": [], "size": None}

        def setup(frame: av.VideoFrame) -> None:
            nonlocal matter
            w, h = frame.width, frame.height
            state["size"] = (w, h)
            matter = FrameMatter(opts, w, h, background_path)
            v = out.add_stream(ENCODER, rate=rate)
            v.width, v.height = _even(w), _even(h)
            v.pix_fmt = PIX_FMT
            v.time_base = tb
            v.codec_context.time_base = tb
            v.options = dict(encoder_options or ENCODER_OPTIONS)
            v.thread_type = "AUTO"
            try:
                v.codec_context.color_range = 1  # MPEG (limited) range, as swscale writes it
                v.codec_context.colorspace = 6   # SMPTE 170M / BT.601, as swscale converts RGB
                v.codec_context.color_primaries = 6
                v.codec_context.color_trc = 6
            except (AttributeError, ValueError, TypeError):  # pragma: no cover
                pass
            state["v"] = v
            if in_a is not None:
                if in_a.codec_context.name in MP4_AUDIO_COPY:
                    state["a"] = ("copy", out.add_stream_from_template(in_a))
                else:
                    a = out.add_stream("aac", rate=in_a.rate or 48000)
                    state["a"] = ("aac", a)

        def write_audio(packet: av.Packet) -> None:
            kind, a = state["a"]
            if kind == "copy":
                if packet.dts is None or packet.size == 0:
                    return
                packet.stream = a
                out.mux(packet)
            else:
                for af in packet.decode():
                    af.pts = None
                    for p in a.encode(af):
                        out.mux(p)

        def write_video(frame: av.VideoFrame) -> None:
            if state["v"] is None:
                setup(frame)
                for p in state["pending_audio"]:
                    write_audio(p)
                state["pending_audio"] = []
            v = state["v"]
            w, h = state["size"]
            rgb = frame.to_ndarray(format="rgb24")
            if (frame.width, frame.height) != (w, h):  # resolution change mid-stream
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            pts = frame.pts
            if pts is None:
                pts = int(round(state["frames"] / float(rate) / float(tb)))
            if state["last_pts"] is not None and pts <= state["last_pts"]:
                pts = state["last_pts"] + 1
            if state["t0"] is None:
                state["t0"] = pts
            t = float((pts - state["t0"]) * tb)
            rgb_out, alpha = matter(rgb, t)
            if rgb_out is None:
                of = grey_frame(alpha, v.width, v.height)
            else:
                of = rgb_frame(rgb_out, v.width, v.height)
            of.pts = pts
            of.time_base = tb
            if frame.duration:
                of.duration = frame.duration
            state["last_pts"] = pts
            state["frames"] += 1
            for p in v.encode(of):
                out.mux(p)

        streams = [in_v] + ([in_a] if in_a is not None else [])
        errors = 0
        try:
            for packet in container.demux(streams):
                if packet.stream is in_v or packet.stream.index == in_v.index:
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError:
                        errors += 1  # a damaged packet: skipped, as FFmpeg does
                        continue
                    for frame in frames:
                        write_video(frame)
                elif state["a"] is not None:
                    write_audio(packet)
                elif packet.size:
                    if len(state["pending_audio"]) < 10000:
                        state["pending_audio"].append(packet)
        except MattingError:
            raise
        except av.error.FFmpegError as exc:
            if state["frames"] == 0:
                raise MattingError("InvalidInput", f"the video cannot be decoded: {exc}") from None
            # a truncated file: keep what was decoded
        if state["frames"] == 0:
            raise MattingError("InvalidInput", "the input has no decodable video frame")
        for p in state["v"].encode():
            out.mux(p)
        if state["a"] is not None and state["a"][0] == "aac":
            for p in state["a"][1].encode():
                out.mux(p)
        out.close()
        out = None
        ok = True
    except MattingError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise MattingError("UnsupportedFormat", f"the video could not be processed: {exc}") from None
    finally:
        if matter is not None:
            matter.close()
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001 - already failing
                pass
        container.close()
        if not ok and os.path.exists(output_path):
            os.remove(output_path)
    return media_info(output_path)


def media_info(path: str) -> Dict[str, Any]:
    """`MediaInfo` of a media file as the wire dict (all values strings)."""
    with av.open(path) as c:
        fmt: Dict[str, Any] = {
            "Duration": round(c.duration / 1e6, 6) if c.duration else None,
            "Size": os.path.getsize(path),
            "BitRate": c.bit_rate or None,
            "FormatName": c.format.name,
            "NumStream": len(c.streams),
        }
        video = None
        if c.streams.video:
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate
            video = {
                "Width": v.codec_context.width,
                "Height": v.codec_context.height,
                "Fps": round(float(rate), 3) if rate else None,
                "Duration": round(float(v.duration * v.time_base), 6) if v.duration and v.time_base else None,
                "CodecName": v.codec_context.name,
                "NumFrames": v.frames or None,
            }
    spec = jobs.MediaInfoSpec.model_validate({"Format": fmt, "Stream": {"Video": video} if video else None})
    return spec.wire()
