"""The video loop: decode -> matte -> composite -> H.264 encode, one frame at a time."""
from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from typing import Any, Dict, Optional

import av
import cv2
import numpy as np

from shared import jobs

from . import compose
from .errors import MattingError
from . import human
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
                 background_path: Optional[str] = None, human_engine: Optional[str] = None):
        self.opts = opts
        self.mode = opts.Mode
        self.threshold = int(opts.BinaryThreshold)
        self.keyer: Optional[ColorKeyer] = None
        self.human = None
        if opts.SegmentType == "HumanSeg":
            self.human = human.open_video(human_engine)
        elif opts.SegmentType == "GreenScreenSeg":
            self.keyer = ColorKeyer(width, height, green_screen=True)
        else:
            self.keyer = ColorKeyer(width, height, key=(opts.RemoveRed, opts.RemoveGreen, opts.RemoveBlue))
        self.background = None
        self.solid = None
        if self.mode == "Combination":
            self.background = compose.open_background(background_path, width, height)
        elif self.mode == "Foreground":
            self.solid = compose.solid_lut3((opts.BackgroundRed, opts.BackgroundGreen, opts.BackgroundBlue))

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        if self.human is not None:
            alpha = self.human(rgb)
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
        a3 = compose.alpha3(alpha)
        if self.keyer is not None:
            fg = self.keyer.premultiplied_foreground(rgb, alpha, a3)
        else:
            fg = compose.premultiply(rgb, a3)
        if self.mode == "Foreground":
            return compose.over_solid(fg, a3, self.solid), alpha
        return compose.over_image(fg, a3, self.background.frame_at(t)), alpha

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
    """RGB -> yuv420p (BT.601, limited range, OpenCV: SIMD and threaded), padded even."""
    h, w = rgb.shape[:2]
    if (w, h) != (width, height):
        rgb = cv2.copyMakeBorder(rgb, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
    return av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")


def frame_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> RGB uint8. The common case (limited-range yuv420p, even
    size) goes through OpenCV's BT.601 conversion, the exact inverse of
    `rgb_frame`, so untouched pixels keep their YUV values; anything else
    through swscale."""
    if (frame.format.name == "yuv420p" and not (frame.width | frame.height) & 1
            and frame.color_range != 2):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


class _Writer:
    """Encodes and muxes on its own thread, so that matting the next frame and
    x264 run at the same time. A small bounded queue keeps memory flat."""

    def __init__(self, out, depth: int = 6):
        self.out = out
        self.q: "queue.Queue" = queue.Queue(maxsize=depth)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="matting-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain after a failure
            stream, payload = item
            try:
                if isinstance(payload, av.Packet):
                    self.out.mux(payload)
                else:
                    for p in stream.encode(payload):
                        self.out.mux(p)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc

    def put(self, stream, payload) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((stream, payload))

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


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
    is_image = fmt in IMAGE_FORMATS or fmt.endswith("_pipe")
    if is_image or not video:
        container.close()
        what = "an image" if is_image else "no video stream"
        raise MattingError("InputNotVideo", f"the input is not a video ({what}; format {fmt or 'unknown'})")
    return container, video[0]


def process(input_path: str, output_path: str, opts: jobs.SegmentVideoOptions,
            background_path: Optional[str] = None, encoder_options: Optional[Dict[str, str]] = None,
            human_engine: Optional[str] = None) -> Dict[str, Any]:
    """Matte `input_path` into `output_path` (H.264 MP4). Returns the output's MediaInfo wire dict.
    `human_engine` ("rvm" or "selfie", `human.ENGINES`) picks HumanSeg's engine; by default
    the best one installed.

    On any failure the partial output is removed. There is no cancelling a running job: CI
    cancels only jobs not yet started (Submitted/Pause; localcloud/ci.py `cancel`).
    """
    if opts.Mode == "Combination":  # fail before any decoding
        compose.open_background(background_path, 16, 16).close()
    container, in_v = _open_input(input_path)
    _Transcode(container, in_v, output_path, opts, background_path, encoder_options, human_engine).run()
    return media_info(output_path)


class _Transcode:
    """One run of `process`: the open input and output, and what the first decoded video
    frame decides (size, encoder stream, matter, audio route, writer thread).

    Steps: `run` checks the decoder and opens the output, `_demux` feeds packets to
    `_video` / `_audio` (audio that comes before the first video frame waits in
    `pending_audio`), `_flush` drains the encoders, `_close` always releases everything
    and removes a partial output.
    """

    def __init__(self, container: Any, in_v: Any, output_path: str, opts: jobs.SegmentVideoOptions,
                 background_path: Optional[str], encoder_options: Optional[Dict[str, str]],
                 human_engine: Optional[str] = None) -> None:
        self.container, self.in_v, self.output_path = container, in_v, output_path
        self.human_engine = human_engine
        self.opts, self.background_path = opts, background_path
        self.encoder_options = dict(encoder_options or ENCODER_OPTIONS)
        self.in_a: Any = None
        self.rate: Any = None
        self.tb: Any = None
        self.out: Any = None
        self.writer: Optional[_Writer] = None
        self.matter: Optional[FrameMatter] = None
        self.v_out: Any = None
        self.a_out: Any = None  # (kind, stream): "copy" or "aac"
        self.pending_audio: list = []
        self.size = (0, 0)
        self.frames = 0
        self.last_pts: Optional[int] = None
        self.t0: Optional[int] = None

    def run(self) -> None:
        ok = False
        try:
            self._check_decoder()
            self.in_a = next(iter(self.container.streams.audio), None)
            self.rate = self.in_v.average_rate or self.in_v.guessed_rate or Fraction(25)
            self.tb = self.in_v.time_base or Fraction(1, max(1, int(round(float(self.rate)))))
            self.out = av.open(self.output_path, "w", format="mp4", options={"movflags": "+faststart"})
            self._demux()
            self._flush()
            ok = True
        except MattingError:
            raise
        except (av.error.FFmpegError, OSError) as exc:
            raise MattingError("UnsupportedFormat", f"the video could not be processed: {exc}") from None
        finally:
            self._close(ok)

    def _check_decoder(self) -> None:
        try:
            self.in_v.thread_type = "AUTO"
            ctx = self.in_v.codec_context
            if ctx is None or ctx.codec is None:
                raise MattingError("UnsupportedFormat", "no decoder for the video codec")
        except MattingError:
            raise
        except (av.error.FFmpegError, ValueError, AttributeError) as exc:
            raise MattingError("UnsupportedFormat", f"the video stream cannot be decoded: {exc}") from None

    def _demux(self) -> None:
        streams = [self.in_v] + ([self.in_a] if self.in_a is not None else [])
        try:
            for packet in self.container.demux(streams):
                if packet.stream.index == self.in_v.index:
                    try:
                        decoded = packet.decode()
                    except av.error.InvalidDataError:
                        continue  # a damaged packet is skipped, as FFmpeg does
                    for frame in decoded:
                        self._video(frame)
                elif self.a_out is not None:
                    self._audio(packet)
                elif packet.size and len(self.pending_audio) < 10000:
                    self.pending_audio.append(packet)
        except MattingError:
            raise
        except av.error.FFmpegError as exc:
            if self.frames == 0:
                raise MattingError("InvalidInput", f"the video cannot be decoded: {exc}") from None
            # a truncated file: keep what was decoded
        if self.frames == 0:
            raise MattingError("InvalidInput", "the input has no decodable video frame")

    def _setup(self, frame: av.VideoFrame) -> None:
        """The first video frame fixes the output: size, encoder, matter, audio route, writer."""
        w, h = frame.width, frame.height
        self.size = (w, h)
        self.matter = FrameMatter(self.opts, w, h, self.background_path, self.human_engine)
        v = self.out.add_stream(ENCODER, rate=self.rate)
        v.width, v.height = _even(w), _even(h)
        v.pix_fmt = PIX_FMT
        v.time_base = self.tb
        v.codec_context.time_base = self.tb
        v.options = dict(self.encoder_options)
        v.thread_type = "AUTO"
        cc = v.codec_context
        cc.color_range = 1  # limited, as OpenCV's BT.601 conversion writes it
        # the YUV values round-trip, so the input's colour description still applies
        for attr in ("colorspace", "color_primaries", "color_trc"):
            value = getattr(frame, attr, None)
            if value not in (None, 2):  # 2 = unspecified
                try:
                    setattr(cc, attr, value)
                except (AttributeError, ValueError, TypeError):  # pragma: no cover
                    pass
        self.v_out = v
        in_a = self.in_a
        if in_a is not None:
            if in_a.codec_context.name in MP4_AUDIO_COPY:
                self.a_out = ("copy", self.out.add_stream_from_template(in_a))
            else:
                self.a_out = ("aac", self.out.add_stream("aac", rate=in_a.rate or 48000))
        self.writer = _Writer(self.out)

    def _audio(self, packet: av.Packet) -> None:
        kind, a = self.a_out
        if kind == "copy":
            if packet.dts is None or packet.size == 0:
                return
            packet.stream = a
            self.writer.put(a, packet)
        else:
            for af in packet.decode():
                af.pts = None
                self.writer.put(a, af)

    def _video(self, frame: av.VideoFrame) -> None:
        if self.v_out is None:
            self._setup(frame)
            for p in self.pending_audio:
                self._audio(p)
            self.pending_audio = []
        w, h = self.size
        rgb = frame_rgb(frame)
        if (frame.width, frame.height) != (w, h):  # resolution change mid-stream
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        pts = frame.pts
        if pts is None:
            pts = int(round(self.frames / float(self.rate) / float(self.tb)))
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        if self.t0 is None:
            self.t0 = pts
        rgb_out, alpha = self.matter(rgb, float((pts - self.t0) * self.tb))
        if rgb_out is None:
            of = grey_frame(alpha, self.v_out.width, self.v_out.height)
        else:
            of = rgb_frame(rgb_out, self.v_out.width, self.v_out.height)
        of.pts = pts
        of.time_base = self.tb
        if frame.duration:
            of.duration = frame.duration
        self.last_pts = pts
        self.frames += 1
        self.writer.put(self.v_out, of)

    def _flush(self) -> None:
        self.writer.put(self.v_out, None)  # flush the encoder
        if self.a_out is not None and self.a_out[0] == "aac":
            self.writer.put(self.a_out[1], None)
        writer, self.writer = self.writer, None
        writer.close()
        self.out.close()
        self.out = None

    def _close(self, ok: bool) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except BaseException:  # noqa: BLE001 - already failing
                pass
        if self.matter is not None:
            self.matter.close()
        if self.out is not None:
            try:
                self.out.close()
            except Exception:  # noqa: BLE001 - already failing
                pass
        self.container.close()
        if not ok and os.path.exists(self.output_path):
            os.remove(self.output_path)


def media_info(path: str) -> Dict[str, Any]:
    """`MediaInfo` of a media file as the wire dict (all values strings)."""
    with av.open(path) as c:
        fmt: Dict[str, Any] = {
            "Duration": round(c.duration / 1e6, 6) if c.duration else None,
            "Size": os.path.getsize(path),
            "Bitrate": c.bit_rate or None,
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
