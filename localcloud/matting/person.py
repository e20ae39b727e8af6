"""The person sample: a real person photo with a true alpha matte, moved and zoomed
over a generated background. The photo and its licence live in
`localcloud/assets/` (see `localcloud/assets/README.md`)."""
from __future__ import annotations

import os
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np

from .clips import write_clip
from .compose import cover

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
PERSON = os.path.join(ASSETS, "person.jpg")
PERSON_ALPHA = os.path.join(ASSETS, "person_alpha.png")


def available(path: Optional[str] = None) -> bool:
    return os.path.isfile(path) if path else (os.path.isfile(PERSON) and os.path.isfile(PERSON_ALPHA))


def load_person(path: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(rgb uint8, alpha float32 0..1): an RGBA image at `path`, or the shipped
    photo (person.jpg) with its matte (person_alpha.png)."""
    if path:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3 or img.shape[2] != 4:
            raise ValueError(f"person image must be RGBA: {path}")
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB), img[:, :, 3].astype(np.float32) / 255.0
    rgb = cv2.imread(PERSON, cv2.IMREAD_COLOR)
    alpha = cv2.imread(PERSON_ALPHA, cv2.IMREAD_GRAYSCALE)
    if rgb is None or alpha is None or rgb.shape[:2] != alpha.shape:
        raise ValueError("the shipped person photo or its matte is missing or damaged")
    return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), alpha.astype(np.float32) / 255.0


def person_frames(width: int, height: int, frames: int, background: Optional[np.ndarray] = None,
                  image: Optional[str] = None, size: Tuple[float, float] = (0.85, 1.0), feet: float = 1.0,
                  centre: float = 0.4, sway: float = 0.2) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(rgb uint8, true alpha 0..1): the person slides sideways by +-`sway` around `centre`
    (fractions of the width) and zooms slowly from size[0] to size[1] of the frame's height, feet at
    `feet` of the height (1.0: standing on the bottom edge), over `background` (default:
    `room_background`; scaled to cover the frame)."""
    rgb, alpha = load_person(image)
    ph, pw = alpha.shape
    bg = background if background is not None else room_background(width, height)
    bg = cover(bg, width, height).astype(np.float32)
    for i in range(frames):
        phase = i / max(1, frames - 1)
        scale = (size[0] + (size[1] - size[0]) * phase) * height / ph
        cx = width * (centre + sway * np.sin(2 * np.pi * phase))
        m = np.array([[scale, 0, cx - scale * pw / 2], [0, scale, feet * height - scale * ph]], np.float32)
        a = cv2.warpAffine(alpha, m, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                           borderValue=0)
        f = cv2.warpAffine(rgb, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a3 = a[:, :, None]
        img = a3 * f.astype(np.float32) + (1.0 - a3) * bg
        yield np.clip(img + 0.5, 0, 255).astype(np.uint8), a


def room_background(width: int, height: int) -> np.ndarray:
    """A plain generated "room": a warm wall, a bright window, a dark shelf (RGB)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.dstack([200 - 40 * yy / height, 180 - 40 * yy / height, 150 - 30 * yy / height + 10 * np.sin(xx / 37.0)])
    img = np.clip(wall, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (int(width * 0.62), int(height * 0.12)), (int(width * 0.92), int(height * 0.55)), (225, 238, 250), -1)
    cv2.rectangle(img, (int(width * 0.04), int(height * 0.62)), (int(width * 0.3), int(height * 0.7)), (90, 60, 40), -1)
    return cv2.GaussianBlur(img, (0, 0), max(1.0, width / 320.0))


def write_person_clip(path: str, width: int = 320, height: int = 240, frames: int = 75, fps: int = 25,
                      image: Optional[str] = None, audio: bool = True) -> int:
    return write_clip(path, (rgb for rgb, _ in person_frames(width, height, frames, image=image)),
                      width, height, fps, audio)
