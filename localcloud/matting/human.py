"""HumanSeg's two engines, and which one runs.

* "rvm": Robust Video Matting (`rvm.py`), when the optional extra `cos-matting[rvm]` is
  installed: finds people at any size in the frame, steady from frame to frame.
* "selfie": MediaPipe Selfie Segmentation (.tflite, Apache-2.0, below), always there: made
  for a close-up of one person.

`default_engine()` is "rvm" when it is installed, else "selfie"; `open_video(engine)` gives
one video's matter: `(rgb uint8) -> alpha uint8`.

MediaPipe Selfie Segmentation on the CPU:

The models ship in `localcloud/models/`; nothing is downloaded. Each model is loaded
once per process and shared by all threads behind a lock (an invocation takes
1-3 ms on one core, so the lock costs little).

Preprocessing as in MediaPipe's `selfie_segmentation_cpu` graph: the whole frame
is stretched (no letterbox, `keep_aspect_ratio: false`) to the model input, values
0..1; the output is already a probability (activation NONE) and is resized back
to the frame size with bilinear interpolation. Only the general model (256x256,
MediaPipe's `model_selection=0`) ships: on the project's person test it beat the
landscape model (256x144) at every aspect ratio tried (16:9, 4:3, 1:1, 3:4;
binary IoU 0.975-0.988 vs 0.93-0.986), and costs ~3 ms a frame anyway.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Dict, Optional

import cv2
import numpy as np

from . import rvm

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
GENERAL = "selfie_segmentation.tflite"

_cache: Dict[str, "SelfieSegmenter"] = {}
_cache_lock = threading.Lock()


def _interpreter(path: str, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - the older package name
        from tflite_runtime.interpreter import Interpreter  # type: ignore
    return Interpreter(model_path=path, num_threads=threads)


class SelfieSegmenter:
    """One loaded model. `__call__(rgb) -> float32 HxW matte in 0..1`."""

    def __init__(self, path: str, threads: int = 1):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"segmentation model missing: {path}")
        self.path = path
        self._it = _interpreter(path, threads)
        self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        out = self._it.get_output_details()[0]
        self._in_index = inp["index"]
        self._out_index = out["index"]
        _, self.in_h, self.in_w, _ = (int(v) for v in inp["shape"])
        self._lock = threading.Lock()

    def low_res(self, rgb: np.ndarray) -> np.ndarray:
        """The model's own output (in_h x in_w float32) for an RGB uint8 frame."""
        h, w = rgb.shape[:2]
        interp = cv2.INTER_AREA if (w > self.in_w * 2 or h > self.in_h * 2) else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (self.in_w, self.in_h), interpolation=interp)
        tensor = small.astype(np.float32)
        tensor *= 1.0 / 255.0
        with self._lock:
            self._it.set_tensor(self._in_index, tensor[None])
            self._it.invoke()
            out = self._it.get_tensor(self._out_index)[0, :, :, 0].copy()
        return out

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        mask = self.low_res(rgb)
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        # Pull the edge in by half a model pixel: the bilinear ramp otherwise reaches outside the
        # person and Foreground shows a rim of the old background (a halo around hair). Measured
        # at 640x360 (tests/e2e/test_humanseg_quality.py's halo scene): rim 49 -> 24 of 255, IoU
        # 0.965 -> 0.972; a whole model pixel removed the rim but cost IoU on smaller people.
        r = int(round(max(w / self.in_w, h / self.in_h) / 2))
        if r > 0:
            mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        np.clip(mask, 0.0, 1.0, out=mask)
        return mask


def get_segmenter(name: str = GENERAL) -> SelfieSegmenter:
    """The model file `name` in localcloud/models/, loaded once per process and shared by every
    job (it keeps no per-video state: a temporal-smoothing option, never used, was removed)."""
    with _cache_lock:
        seg = _cache.get(name)
        if seg is None:
            seg = _cache[name] = SelfieSegmenter(os.path.join(MODELS_DIR, name))
        return seg


ENGINES = ("rvm", "selfie")


def default_engine() -> str:
    """"rvm" when its model loads (the extra installed, the pinned weights), else "selfie"."""
    return "selfie" if rvm.unavailable_reason() else "rvm"


def describe() -> str:
    """One line for the local cloud's start: the engine that runs, its model's licence, and
    why Robust Video Matting does not run when it does not."""
    reason = rvm.unavailable_reason()
    if reason is None:
        return f"HumanSeg engine: Robust Video Matting, MobileNetV3 (weights {rvm.LICENSE})"
    return (f"HumanSeg engine: MediaPipe selfie segmentation (Apache-2.0, shipped; made for close-ups). "
            f"Robust Video Matting is off: {reason}")


def open_video(engine: Optional[str] = None) -> Callable[[np.ndarray], np.ndarray]:
    """One video's HumanSeg: `(rgb uint8) -> alpha uint8`; `engine` is one of ENGINES, by
    default the best one installed."""
    engine = engine or default_engine()
    if engine == "rvm":
        return rvm.RvmVideo()
    if engine != "selfie":
        raise ValueError(f"HumanSeg engine must be one of {', '.join(ENGINES)}: {engine!r}")
    seg = get_segmenter()
    return lambda rgb: cv2.convertScaleAbs(seg(rgb), alpha=255.0)
