"""GreenScreenSeg and SolidColorSeg: colour-distance keying with a soft edge.

Both key by the distance of each pixel from a key colour K in a weighted YCrCb
space (a linear transform of RGB, so the distance of a mix a*F + (1-a)*K from K is
exactly a*|F - K|). The matte is that distance normalised by the local foreground
distance (the distance dilated over a small window, i.e. the nearest "solid"
foreground), with the noise floor cut off:

    alpha = clip((d - lo) / max(0.9 * dilate(d) - lo, span), 0, 1)

so a soft edge gets a soft, unbiased alpha whatever the foreground colour, and
sensor noise on the backing (below `lo`, estimated per frame from the backing
pixels) is keyed out completely.

* GreenScreenSeg: K is estimated on every frame (median of the clearly green
  pixels, smoothed over time), so uneven or non-pure green screens work. Luma
  counts for 1/4 of the distance so that shading on the screen is ignored.
* SolidColorSeg: K is (RemoveRed, RemoveGreen, RemoveBlue). For a saturated key
  luma is down-weighted the same way; for a neutral key (black, white, grey) luma
  is all there is and counts fully.

Spill: the composite uses the premultiplied foreground PF = C - (1-alpha)*K
(exact unmixing of the edge pixels), then the key's dominant channel is clamped
to the largest other channel on PF (classic despill: for green, G <= max(R, B)).
A key without one dominant primary channel (yellow, cyan, magenta, grey...) gets
the unmixing only.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

# RGB -> (Y, Cr, Cb) without offsets (BT.601), as rows.
_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114],
     [0.5, -0.418688, -0.081312],
     [-0.168736, -0.331264, 0.5]],
    dtype=np.float32,
)
DEFAULT_GREEN = (40, 190, 60)


def _weighted(key: Sequence[int], luma_weight: float) -> np.ndarray:
    """3x4 affine matrix: rgb -> weighted (Y, Cr, Cb) difference from key."""
    m = _RGB2YCC.copy()
    m[0] *= np.float32(np.sqrt(luma_weight))
    off = -(m @ np.asarray(key, dtype=np.float32))
    return np.hstack([m, off[:, None]]).astype(np.float32)


def chroma_of(key: Sequence[int]) -> float:
    ycc = _RGB2YCC @ np.asarray(key, dtype=np.float32)
    return float(np.hypot(ycc[1], ycc[2]))


def luma_weight_for(key: Sequence[int]) -> float:
    """Down-weight luma for saturated keys (ignore shading), full weight for grey ones."""
    c = chroma_of(key)
    if c >= 40:
        return 0.25
    if c <= 10:
        return 1.0
    return 1.0 - 0.75 * (c - 10) / 30.0


def dominant_channel(key: Sequence[int]) -> Optional[int]:
    """The one channel that dominates the key colour (0=R, 1=G, 2=B), if any."""
    k = [int(v) for v in key]
    order = sorted(range(3), key=lambda i: k[i], reverse=True)
    top, second = order[0], order[1]
    if k[top] - k[second] >= 48:
        return top
    return None


class ColorKeyer:
    """Per-video keying state. `__call__(rgb) -> alpha uint8 HxW`.

    `key` None means "estimate the green screen colour on every frame".
    """

    def __init__(self, width: int, height: int, key: Optional[Sequence[int]] = None,
                 green_screen: bool = False):
        self.green_screen = green_screen
        self.key: Tuple[int, int, int] = tuple(int(v) for v in (key if key is not None else DEFAULT_GREEN))  # type: ignore
        self._estimated = False  # green screen: no estimate yet
        self.luma_weight = 0.25 if green_screen else luma_weight_for(self.key)
        self.despill_channel = 1 if green_screen else dominant_channel(self.key)
        radius = max(2, int(round(min(width, height) / 100.0)))
        self._kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
        self._step = max(1, int(min(width, height) // 90))  # subsampling for statistics
        self._lo: Optional[float] = None
        self._matrix = _weighted(self.key, self.luma_weight)

    # -- statistics ----------------------------------------------------------
    def _estimate_green(self, rgb: np.ndarray) -> None:
        s = rgb[:: self._step, :: self._step].reshape(-1, 3).astype(np.int16)
        excess = s[:, 1] - np.maximum(s[:, 0], s[:, 2])
        sel = s[(excess > 40) & (s[:, 1] > 50)]
        if len(sel) >= max(16, len(s) // 50):
            k = np.median(sel, axis=0)
            if not self._estimated:  # first estimate: take it as is
                new = k
            else:  # then follow slow changes of the screen
                new = 0.7 * np.asarray(self.key, dtype=np.float64) + 0.3 * k
            self.key = tuple(int(round(v)) for v in new)  # type: ignore
            self._estimated = True
            self._matrix = _weighted(self.key, self.luma_weight)

    def _noise_floor(self, dist: np.ndarray) -> float:
        sample = dist[:: self._step, :: self._step]
        bg = sample[sample < 48.0]
        if bg.size >= max(16, sample.size // 50):
            lo = float(np.clip(1.25 * np.percentile(bg, 90) + 2.0, 6.0, 40.0))
        else:
            lo = self._lo if self._lo is not None else 16.0
        self._lo = lo if self._lo is None else 0.5 * self._lo + 0.5 * lo
        return self._lo

    # -- the matte -----------------------------------------------------------
    def distance(self, rgb: np.ndarray) -> np.ndarray:
        f = rgb.astype(np.float32)
        d = cv2.transform(f, self._matrix)
        cv2.multiply(d, d, dst=d)
        sq = cv2.transform(d, np.ones((1, 3), np.float32))
        return cv2.sqrt(sq)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.green_screen:
            self._estimate_green(rgb)
        dist = self.distance(rgb)
        lo = self._noise_floor(dist)
        num = cv2.subtract(dist, lo)
        # Away from the backing: an absolute ramp from the noise floor (a pixel
        # clearly unlike the key is opaque, however textured the foreground).
        alpha = cv2.multiply(num, 255.0 / (lo + 24.0))
        # In a band along the backing: normalise by the nearest solid foreground
        # distance, so soft edges get an unbiased alpha whatever the colour.
        backing = cv2.compare(dist, lo, cv2.CMP_LT)
        band = cv2.dilate(backing, self._kernel)
        near = cv2.dilate(dist, self._kernel)
        den = cv2.max(cv2.addWeighted(near, 0.9, near, 0.0, -lo), 24.0)
        local = cv2.divide(num, den, scale=255.0)
        cv2.copyTo(local, band, alpha)
        cv2.max(alpha, 0.0, dst=alpha)  # negatives -> 0 (convertScaleAbs would fold them)
        return cv2.convertScaleAbs(alpha)

    # -- compositing helpers -------------------------------------------------
    def premultiplied_foreground(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """PF = C - (1-alpha)*K, then despill on PF. uint8 HxWx3."""
        inv = 255 - np.arange(256, dtype=np.float32)
        planes = list(cv2.split(rgb))
        for c in range(3):
            lut = np.clip(np.round(inv * (self.key[c] / 255.0)), 0, 255).astype(np.uint8)
            # a premultiplied channel never exceeds alpha: clears backing noise
            planes[c] = cv2.min(cv2.subtract(planes[c], cv2.LUT(alpha, lut)), alpha)
        ch = self.despill_channel
        if ch is not None:
            others = [planes[i] for i in range(3) if i != ch]
            planes[ch] = cv2.min(planes[ch], cv2.max(others[0], others[1]))
        return cv2.merge(planes)
