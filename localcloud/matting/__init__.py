"""The local cloud's video matting engine (CI `SegmentVideoBody` emulated on the CPU).

    engine(job, request, input_path, background_path, output_path) -> dict

Reads the video at `input_path`, writes an H.264 MP4 to `output_path` and returns
the output's `MediaInfo` as the wire dict (`shared.jobs.MediaInfoSpec`, strings
only). Raises `MattingError(code, message)` for input it cannot process (codes in
`errors.py`: InvalidInput, InputNotVideo, UnsupportedFormat, BackgroundNotFound,
InvalidBackground).

Options (`SegmentVideoOptions`, from `request`, else from `job`):

* SegmentType
  - HumanSeg: Robust Video Matting, MobileNetV3, with onnxruntime (`rvm.py`; weights
    GPL-3.0 from the optional extra `cos-matting[rvm]`, never shipped), recurrent state
    per video; without the extra, MediaPipe Selfie Segmentation, general 256x256 model
    (`human.py`; the model and its Apache-2.0 licence in `localcloud/models/`), run with
    ai-edge-litert on one core. Either model is loaded once per process;
    `describe_humanseg()` says which one runs.
  - GreenScreenSeg: colour-distance key against the green screen colour, which is
    estimated on every frame (`keying.py`), soft edges, green spill removed.
  - SolidColorSeg: colour-distance key against (RemoveRed, RemoveGreen, RemoveBlue),
    soft edges, spill of a primary key colour removed.
* Mode
  - Mask: the matte as a grey video (alpha 0..255 -> luma, neutral chroma;
    limited range, so a decoder's RGB gives back the alpha within rounding).
  - Foreground: the person over the solid colour (BackgroundRed/Green/Blue).
  - Combination: the person over the background file `background_path` (an image
    or a video; scaled to cover the frame and centre-cropped; a video background
    plays along in time and loops).
* BinaryThreshold: 0 keeps the soft matte (0..255). 1..255 cuts it at that level:
  alpha >= BinaryThreshold -> 255, else 0 (a hard-edged matte; with 255 only
  fully opaque pixels stay).

Video: PyAV decodes frame by frame and a writer thread encodes (a queue of six
frames between them), so memory stays flat however long the video; every decoded
frame is written with its own timestamp, so the frame count, frame rate (also
variable) and duration are kept. Output: H.264 (libx264, preset veryfast, CRF 20),
yuv420p, limited range; RGB<->YUV is OpenCV's BT.601 both ways, so untouched pixels
keep their YUV values and the input's colour tags are copied. `+faststart`.
Odd sizes: H.264 in 4:2:0 cannot code an odd width or height (its cropping works in
2-pixel units, and libx264 refuses them), so an odd dimension is padded by one
pixel (the last column/row repeated): a 321x241 input gives a 322x242 output; even
sizes are kept exactly. Audio: the first audio stream is copied packet for packet
when MP4 can hold its codec (AAC, MP3, Opus, AC-3, FLAC, ALAC...), transcoded to
AAC otherwise. Not kept: rotation metadata, subtitles, further audio streams.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from shared import jobs

from .engine import media_info, options_of, process
from .errors import MattingError
from .human import describe as describe_humanseg

__all__ = ["engine", "MattingError", "process", "media_info", "options_of", "describe_humanseg"]


def engine(job: jobs.JobDetail, request: jobs.JobRequest, input_path: str,
           background_path: Optional[str], output_path: str) -> Dict[str, Any]:
    """Run one SegmentVideoBody job locally; returns the output's MediaInfo wire dict.

    Thread-safe (a worker pool may run several at once; the model is shared behind
    a lock).
    """
    opts = options_of(job, request)
    return process(input_path, output_path, opts, background_path)
