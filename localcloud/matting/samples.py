"""Deterministic sample media for the demo, the tests and the benchmark.

`make_samples(dir)` writes, generated at run time (nothing binary shipped):
  - green_screen.mp4: a person-like figure (head, hair, body; soft edges, mild
    texture) walking over an unevenly lit green screen, with sensor noise and a
    440 Hz AAC tone; 320x240, 25 fps, 3 s.
  - person.mp4: the shipped person photo (see `localcloud/assets/`) moving and
    zooming over a generated background, 320x240, 25 fps, 3 s, with audio; only
    when that photo is present.
  - background.png: a colourful gradient for Combination.

`green_screen_frames()` yields (rgb, alpha) so that tests know the true matte.
"""
from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence, Tuple

import av
import cv2
import numpy as np

from . import person as _person
from .clips import write_clip

__all__ = ["GREEN", "green_screen_frames", "write_clip", "write_green_screen_clip", "background_image",
           "make_samples", "read_video", "read_matte", "iou", "soft_iou"]
GREEN = (40, 190, 60)


def _figure(w: int, h: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """A person-like sprite (RGB float32, alpha float32) centred in a w x h canvas."""
    rng = np.random.default_rng(seed)
    col = np.zeros((h, w, 3), np.float32)
    cx = w // 2
    body = np.zeros((h, w), np.float32)
    cv2.ellipse(body, (cx, int(h * 0.98)), (int(w * 0.2), int(h * 0.45)), 0, 180, 360, 1.0, -1)
    head = np.zeros((h, w), np.float32)
    cv2.ellipse(head, (cx, int(h * 0.35)), (int(w * 0.08), int(h * 0.14)), 0, 0, 360, 1.0, -1)
    hair = np.zeros((h, w), np.float32)
    cv2.ellipse(hair, (cx, int(h * 0.27)), (int(w * 0.086), int(h * 0.09)), 0, 180, 360, 1.0, -1)
    col[:] = (70, 80, 150)          # a blue-grey shirt
    col[head > 0] = (205, 150, 125)  # skin
    col[hair > 0] = (45, 32, 28)     # dark hair
    tex = rng.normal(0, 12, (h // 6 + 1, w // 6 + 1, 3)).astype(np.float32)
    col += cv2.resize(tex, (w, h), interpolation=cv2.INTER_CUBIC)
    mask = np.maximum(np.maximum(body, head), hair)
    sigma = max(0.8, min(w, h) / 200.0)
    alpha = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.clip(col, 0, 255), alpha


def green_screen_frames(width: int, height: int, frames: int, key: Sequence[int] = GREEN,
                        noise: float = 4.0, gradient: bool = True, seed: int = 0
                        ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(rgb uint8, true alpha float32 0..1) for each frame of the green screen scene:
    the figure walks left to right, bobbing; the screen is lit unevenly (x 0.9..1.1)
    unless `gradient` is False; Gaussian noise of `noise` per channel."""
    rng = np.random.default_rng(seed)
    fg, alpha = _figure(width, height, seed)
    fg8 = fg.astype(np.uint8)
    bg = np.empty((height, width, 3), np.float32)
    bg[:] = np.asarray(key, np.float32)
    if gradient:
        ramp = 0.9 + 0.2 * np.linspace(0.0, 1.0, width, dtype=np.float32)
        bg *= ramp[None, :, None]
    bg8 = np.clip(np.round(bg), 0, 255).astype(np.uint8)
    # a few noise fields, cycled (fast for long clips, still noisy frame to frame),
    # split into positive and negative parts for saturating uint8 arithmetic
    noises = []
    for _ in range(5):
        z = np.round(rng.normal(0, noise, (height, width, 3)))
        noises.append((np.clip(z, 0, 255).astype(np.uint8), np.clip(-z, 0, 255).astype(np.uint8)))
    for i in range(frames):
        phase = i / max(1, frames - 1)
        dx = int(round((phase - 0.5) * width * 0.4))
        dy = int(round(abs(np.sin(i * 0.35)) * height * 0.03))  # a bobbing walk
        a = _shift(alpha, dx, dy)
        f = _shift(fg8, dx, dy)
        img = cv2.blendLinear(f, bg8, a, 1.0 - a)
        pos, neg = noises[i % len(noises)]
        img = cv2.subtract(cv2.add(img, pos), neg)
        yield img, a


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate by whole pixels, zero fill."""
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    xs, xd = (0, dx) if dx >= 0 else (-dx, 0)
    ys, yd = (0, dy) if dy >= 0 else (-dy, 0)
    cw, ch = w - abs(dx), h - abs(dy)
    if cw > 0 and ch > 0:
        out[yd:yd + ch, xd:xd + cw] = img[ys:ys + ch, xs:xs + cw]
    return out


def write_green_screen_clip(path: str, width: int = 320, height: int = 240, frames: int = 75, fps: int = 25,
                            key: Sequence[int] = GREEN, audio: bool = True, seed: int = 0,
                            preset: str = "veryfast") -> int:
    return write_clip(path, (rgb for rgb, _ in green_screen_frames(width, height, frames, key, seed=seed)),
                      width, height, fps, audio, preset=preset)


def background_image(width: int = 640, height: int = 360) -> np.ndarray:
    """A colourful RGB gradient with circles (for Combination)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.dstack([255 * xx / width, 120 + 80 * np.sin(yy / 23.0), 255 * (1 - yy / height)])
    img = np.clip(img, 0, 255).astype(np.uint8)
    for i in range(6):
        cv2.circle(img, (int(width * (i + 0.5) / 6), int(height * 0.3 + 30 * (i % 2))), int(height * 0.08),
                   (255, 230, 60), -1, cv2.LINE_AA)
    return img


def make_samples(directory: str, person_image: Optional[str] = None) -> dict:
    """Write the sample media into `directory`; returns {name: path}."""
    os.makedirs(directory, exist_ok=True)
    out = {}
    path = os.path.join(directory, "green_screen.mp4")
    write_green_screen_clip(path, 320, 240, 75)
    out["green_screen"] = path
    bg = os.path.join(directory, "background.png")
    cv2.imwrite(bg, cv2.cvtColor(background_image(), cv2.COLOR_RGB2BGR))
    out["background"] = bg
    if _person.available(person_image):
        path = os.path.join(directory, "person.mp4")
        _person.write_person_clip(path, 320, 240, 75, image=person_image)
        out["person"] = path
    return out


# --- helpers for tests and benchmarks ----------------------------------------------

def read_video(path: str, fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Decode every frame of a video file as an array (streaming)."""
    with av.open(path) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format=fmt)


def read_matte(path: str) -> Iterator[np.ndarray]:
    """The frames of a Mask-mode output as float32 alpha 0..1."""
    for grey in read_video(path, "gray"):
        yield grey.astype(np.float32) / 255.0


def iou(estimate: np.ndarray, truth: np.ndarray, level: float = 0.5) -> float:
    """Binary IoU of two mattes (0..1) cut at `level`."""
    e, t = estimate >= level, truth >= level
    union = np.count_nonzero(e | t)
    return 1.0 if union == 0 else np.count_nonzero(e & t) / union


def soft_iou(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Soft IoU (sum of minima / sum of maxima): penalises every alpha error."""
    den = float(np.maximum(estimate, truth).sum())
    return 1.0 if den == 0 else float(np.minimum(estimate, truth).sum()) / den
