"""Encode generated RGB frames as a sample clip: H.264 video and an AAC test tone.

Shared by the sample scenes (`samples.py`, `person.py`); it imports neither, so the
two never import each other.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterator

import av
import numpy as np


def _tone(stream, start: int, end: int, rate: int = 44100) -> Iterator[av.AudioFrame]:
    for s in range(start, end, 1024):
        t = np.arange(s, s + 1024) / rate
        pcm = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = s
        yield frame


def write_clip(path: str, frames: Iterator[np.ndarray], width: int, height: int, fps: int = 25,
               audio: bool = True, crf: str = "16", preset: str = "veryfast") -> int:
    """Encode RGB frames as H.264 (yuv420p; yuv444p if a size is odd) + AAC tone."""
    odd = (width | height) & 1
    n = 0
    with av.open(path, "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height = width, height
        v.pix_fmt = "yuv444p" if odd else "yuv420p"
        v.options = {"preset": preset, "crf": crf}
        v.thread_type = "AUTO"
        a = None
        if audio:
            a = c.add_stream("aac", rate=44100)
            a.layout = "mono"
        apos = 0
        for rgb in frames:
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = n
            vf.time_base = Fraction(1, fps)
            for p in v.encode(vf):
                c.mux(p)
            n += 1
            if a is not None:
                end = n * 44100 // fps
                for af in _tone(a, apos, end):
                    for p in a.encode(af):
                        c.mux(p)
                apos = ((end + 1023) // 1024) * 1024
        for p in v.encode():
            c.mux(p)
        if a is not None:
            for p in a.encode():
                c.mux(p)
    return n
