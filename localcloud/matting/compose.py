"""Backgrounds and alpha compositing, all in uint8 with OpenCV (fast, multithreaded).

Combination backgrounds are scaled to *cover* the frame (keep the aspect ratio,
fill the frame, centre-crop the overflow). A video background plays in real time
alongside the input (the background frame shown at input time t is the one whose
timestamp is the last <= t) and loops when it ends.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import av
import cv2
import numpy as np

from .errors import MattingError

_INV = 255 - np.arange(256, dtype=np.float32)


def cover(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale `img` so that it covers width x height, then crop the centre."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    scale = max(width / w, height / h)
    nw, nh = max(width, int(round(w * scale))), max(height, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    big = cv2.resize(img, (nw, nh), interpolation=interp)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(big[y0:y0 + height, x0:x0 + width])


def _to_rgb3(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class StaticBackground:
    def __init__(self, rgb: np.ndarray, width: int, height: int):
        self.rgb = cover(rgb, width, height)

    def frame_at(self, t: float) -> np.ndarray:
        return self.rgb

    def close(self) -> None:
        pass


class VideoBackground:
    """A looping video background, decoded lazily (one frame held in memory)."""

    def __init__(self, path: str, width: int, height: int):
        self.path, self.width, self.height = path, width, height
        self._container = None
        self._open()
        first = self._next()
        if first is None:
            self.close()
            raise MattingError("InvalidBackground", f"background video has no decodable frame: {os.path.basename(path)}")
        self._cur = first
        self._nxt = self._next()
        self._static = self._nxt is None  # a one-frame "video" (e.g. an image via FFmpeg)
        self._cur_rgb: Optional[Tuple[float, np.ndarray]] = None

    def _open(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = av.open(self.path)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 25
        self._frame_dur = 1.0 / float(rate)
        self._frames = self._container.decode(stream)
        self._t0: Optional[float] = None
        self._count = 0
        self._offset = getattr(self, "_offset", 0.0)

    def _next(self):
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError:
            return None  # a broken tail ends this pass
        t = frame.time if frame.time is not None else self._count * self._frame_dur
        self._count += 1
        if self._t0 is None:
            self._t0 = t
        return (t - self._t0 + self._offset, frame)

    def frame_at(self, t: float) -> np.ndarray:
        t += 1e-6  # timestamps are floats: 0.16 + 0.04 must reach 0.2
        if not self._static:
            while True:
                if self._nxt is None:
                    end = self._cur[0] + self._frame_dur
                    if t < end:
                        break
                    self._offset = end
                    self._open()
                    self._nxt = self._next()
                    if self._nxt is None:
                        break
                    continue
                if self._nxt[0] <= t:
                    self._cur, self._nxt = self._nxt, self._next()
                    continue
                break
        if self._cur_rgb is None or self._cur_rgb[0] != self._cur[0]:
            rgb = self._cur[1].to_ndarray(format="rgb24")
            self._cur_rgb = (self._cur[0], cover(rgb, self.width, self.height))
        return self._cur_rgb[1]

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def open_background(path: Optional[str], width: int, height: int):
    """An image (any format OpenCV reads) or a video (anything FFmpeg decodes)."""
    if not path or not os.path.isfile(path):
        raise MattingError("BackgroundNotFound", "Mode Combination needs the BackgroundLogoUrl file, which was not found")
    if os.path.getsize(path) == 0:
        raise MattingError("BackgroundNotFound", "the background file is empty")
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is not None and img.size:
        if img.dtype != np.uint8:
            img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
        return StaticBackground(_to_rgb3(img), width, height)
    try:
        probe = av.open(path)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MattingError("InvalidBackground", f"background is neither an image nor a video: {exc}") from None
    try:
        if not probe.streams.video:
            raise MattingError("InvalidBackground", "background file has no picture (no video stream)")
    finally:
        probe.close()
    try:
        return VideoBackground(path, width, height)
    except MattingError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MattingError("InvalidBackground", f"background video cannot be decoded: {exc}") from None


# --- compositing -----------------------------------------------------------------
# All on uint8 HxWx3 with the alpha replicated to 3 channels (a3), one OpenCV pass each.

def solid_lut3(color: Sequence[int]) -> np.ndarray:
    """3-channel LUT: alpha -> (1 - alpha) * color."""
    c = np.asarray(color, np.float32) / 255.0
    return np.clip(np.round(_INV[:, None] * c), 0, 255).astype(np.uint8).reshape(1, 256, 3)


def alpha3(alpha: np.ndarray) -> np.ndarray:
    return cv2.merge([alpha, alpha, alpha])


def over_solid(fg_premult: np.ndarray, a3: np.ndarray, lut3: np.ndarray) -> np.ndarray:
    """fg_premult + (1 - alpha) * solid colour."""
    return cv2.add(fg_premult, cv2.LUT(a3, lut3))


def over_image(fg_premult: np.ndarray, a3: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """fg_premult + (1 - alpha) * bg."""
    return cv2.add(fg_premult, cv2.multiply(bg, cv2.bitwise_not(a3), scale=1.0 / 255.0))


def premultiply(rgb: np.ndarray, a3: np.ndarray) -> np.ndarray:
    """alpha * rgb."""
    return cv2.multiply(rgb, a3, scale=1.0 / 255.0)
