"""GreenScreenSeg and SolidColorSeg: colour-distance keying with a soft edge.

Both key by the distance of each pixel from a key colour K, a weighted L1 norm in
YCrCb:  d = (s * |Y - Yk| + |Cr - Crk| + |Cb - Cbk|) / 2  (s = luma weight).
YCrCb is an affine transform of RGB and every norm is homogeneous, so the distance
of a mix a*F + (1-a)*K from K is exactly a*|F - K|: the distance *is* a scaled
alpha. The matte:

* away from the backing, an absolute ramp from the noise floor `lo` (estimated on
  every frame from the backing pixels):  alpha = (d - lo) / 24 -> a pixel clearly
  unlike the key is opaque however textured the foreground;
* in a band along the backing (a few pixels, scaled with the frame), d is
  normalised by the nearest solid foreground distance (d dilated over the band):
  alpha = (d - lo) / max(0.9 * dilate(d) - lo, 24) -> soft edges get a soft,
  unbiased alpha whatever the foreground colour.

Everything runs on uint8 planes with OpenCV (SIMD, multithreaded): a 720p frame
keys in a few milliseconds.

* GreenScreenSeg: K is estimated on every frame (median of the clearly green
  pixels of a small thumbnail, smoothed over time), so uneven or non-pure green
  screens work. Luma weight 1/2 (shading on the screen matters less).
* SolidColorSeg: K is (RemoveRed, RemoveGreen, RemoveBlue). Luma weight 1/2 for a
  saturated key, up to 1 for a neutral one (black, white, grey: luma is all there
  is). The subject must differ from the key, as with any keyer (a red key eats
  skin tones, a black key eats dark hair).

Spill: the composite uses the premultiplied foreground PF = C - (1-alpha)*K (exact
unmixing of the edge pixels; PF is also clamped to alpha, which clears backing
noise), then the key's dominant channel is clamped to the larger other channel on
PF (classic despill: for green, G <= max(R, B)). A key without one dominant
primary channel (yellow, cyan, magenta, grey...) gets the unmixing only.
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
MIN_SPAN = 24.0  # distance units over which alpha ramps from 0 to 1 at least


def chroma_of(key: Sequence[int]) -> float:
    ycc = _RGB2YCC @ np.asarray(key, dtype=np.float32)
    return float(np.hypot(ycc[1], ycc[2]))


def luma_weight_for(key: Sequence[int]) -> float:
    """Weight of |dY| in the distance: 1/2 for saturated keys, 1 for grey ones."""
    c = chroma_of(key)
    if c >= 40:
        return 0.5
    if c <= 10:
        return 1.0
    return 1.0 - 0.5 * (c - 10) / 30.0


def dominant_channel(key: Sequence[int]) -> Optional[int]:
    """The one channel that dominates the key colour (0=R, 1=G, 2=B), if any."""
    k = [int(v) for v in key]
    order = sorted(range(3), key=lambda i: k[i], reverse=True)
    if k[order[0]] - k[order[1]] >= 48:
        return order[0]
    return None


def _ycrcb(key: Sequence[int]) -> Tuple[float, float, float, float]:
    px = np.array([[key]], np.uint8)
    y, cr, cb = cv2.cvtColor(px, cv2.COLOR_RGB2YCrCb)[0, 0]
    return (float(y), float(cr), float(cb), 0.0)


class ColorKeyer:
    """Per-video keying state. `__call__(rgb) -> alpha uint8 HxW`.

    `green_screen=True` estimates the screen colour on every frame; otherwise
    `key` is the colour to remove.
    """

    def __init__(self, width: int, height: int, key: Optional[Sequence[int]] = None,
                 green_screen: bool = False):
        self.green_screen = green_screen
        self.key: Tuple[int, int, int] = tuple(int(v) for v in (key if key is not None else DEFAULT_GREEN))  # type: ignore
        self._estimated = False
        self.luma_weight = 0.5 if green_screen else luma_weight_for(self.key)
        self.despill_channel = 1 if green_screen else dominant_channel(self.key)
        radius = max(2, int(round(min(width, height) / 100.0)))
        self._kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
        self._step = max(1, int(min(width, height) // 90))  # subsampling for statistics
        # ~80x45 thumbnail for the screen colour estimate
        tscale = max(1.0, min(width, height) / 45.0)
        self._thumb = (max(8, int(width / tscale)), max(8, int(height / tscale)))
        self._lo: Optional[float] = None
        self._set_key(self.key)

    def _set_key(self, key: Sequence[int]) -> None:
        self.key = tuple(int(v) for v in key)  # type: ignore
        self._key_ycc = _ycrcb(self.key)
        self._key_lut3 = None  # built lazily for premultiplied_foreground

    # -- statistics ----------------------------------------------------------
    def _estimate_green(self, rgb: np.ndarray) -> None:
        s = cv2.resize(rgb, self._thumb, interpolation=cv2.INTER_NEAREST).reshape(-1, 3).astype(np.int16)
        excess = s[:, 1] - np.maximum(s[:, 0], s[:, 2])
        sel = s[(excess > 40) & (s[:, 1] > 50)]
        if len(sel) >= max(16, len(s) // 50):
            k = np.median(sel, axis=0)
            if self._estimated:  # follow slow changes of the screen
                k = 0.7 * np.asarray(self.key, dtype=np.float64) + 0.3 * k
            self._estimated = True
            new = tuple(int(round(v)) for v in k)
            if new != self.key:
                self._set_key(new)

    def _noise_floor(self, dist: np.ndarray) -> float:
        sample = dist[:: self._step, :: self._step]
        bg = sample[sample < 40]
        if bg.size >= max(16, sample.size // 50):
            lo = float(np.clip(1.25 * np.percentile(bg, 90) + 2.0, 5.0, 32.0))
        else:
            lo = self._lo if self._lo is not None else 12.0
        self._lo = lo if self._lo is None else 0.5 * self._lo + 0.5 * lo
        return self._lo

    # -- the matte -----------------------------------------------------------
    def distance(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxW: (s*|dY| + |dCr| + |dCb|) / 2, saturated at 255."""
        dy, dcr, dcb = cv2.split(cv2.absdiff(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), self._key_ycc))
        return cv2.addWeighted(cv2.addWeighted(dcr, 0.5, dcb, 0.5, 0.0), 1.0, dy, self.luma_weight / 2, 0.0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.green_screen:
            self._estimate_green(rgb)
        dist = self.distance(rgb)
        lo = self._noise_floor(dist)
        levels = np.arange(256, dtype=np.float32)
        # away from the backing: absolute ramp from the noise floor
        alpha = cv2.LUT(dist, np.clip((levels - lo) * (255.0 / MIN_SPAN), 0, 255).astype(np.uint8))
        # along the backing: normalise by the nearest solid foreground distance
        num = cv2.LUT(dist, np.clip(levels - lo, 0, 255).astype(np.uint8))
        den = cv2.LUT(cv2.dilate(dist, self._kernel),
                      np.clip(np.maximum(0.9 * levels - lo, MIN_SPAN), 1, 255).astype(np.uint8))
        local = cv2.divide(num, den, scale=255.0)
        band = cv2.dilate(cv2.compare(dist, lo, cv2.CMP_LT), self._kernel)
        cv2.copyTo(local, band, alpha)
        return alpha

    # -- compositing helpers -------------------------------------------------
    def premultiplied_foreground(self, rgb: np.ndarray, alpha: np.ndarray,
                                 alpha3: Optional[np.ndarray] = None) -> np.ndarray:
        """PF = min(C - (1-alpha)*K, alpha), then despill. uint8 HxWx3."""
        if self._key_lut3 is None:
            inv = 255 - np.arange(256, dtype=np.float32)
            self._key_lut3 = np.clip(np.round(inv[:, None] * (np.asarray(self.key, np.float32) / 255.0)), 0, 255
                                     ).astype(np.uint8).reshape(1, 256, 3)
        a3 = alpha3 if alpha3 is not None else cv2.merge([alpha, alpha, alpha])
        pf = cv2.min(cv2.subtract(rgb, cv2.LUT(a3, self._key_lut3)), a3)
        ch = self.despill_channel
        if ch is not None:
            planes = list(cv2.split(pf))
            others = [planes[i] for i in range(3) if i != ch]
            planes[ch] = cv2.min(planes[ch], cv2.max(others[0], others[1]))
            pf = cv2.merge(planes)
        return pf
