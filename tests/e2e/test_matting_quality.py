"""Matte quality of the local matting engine, measured against known truth.

Every clip goes through the whole engine (H.264 input -> matte -> H.264 Mask
output -> decoded again), so codec losses count against the score.
IoU = binary IoU of the mattes cut at 0.5; soft IoU = sum(min)/sum(max) of the
alpha values (penalises every alpha error, edges included).
"""
import numpy as np
import pytest

from localcloud.matting import process
from localcloud.matting.person import person_frames
from localcloud.matting.samples import (background_image, green_screen_frames, iou, read_matte, read_video,
                                        soft_iou, write_clip)
from shared import jobs

W, H, N = 320, 240, 12


def _run(tmp_path, frames_truth, opts, background=None):
    frames = [f for f, _ in frames_truth]
    truth = [t for _, t in frames_truth]
    src, out = str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4")
    write_clip(src, iter(frames), W, H, audio=False)
    info = process(src, out, opts, background)
    return truth, out, info


def _scores(out, truth):
    est = list(read_matte(out))
    assert len(est) == len(truth)
    b = [iou(e, t) for e, t in zip(est, truth)]
    s = [soft_iou(e, t) for e, t in zip(est, truth)]
    return float(np.mean(b)), float(np.min(b)), float(np.mean(s))


def test_green_screen_iou(tmp_path, record_property):
    frames = list(green_screen_frames(W, H, N))  # uneven green, noise sigma 4
    truth, out, _ = _run(tmp_path, frames, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg"))
    mean_iou, min_iou, mean_soft = _scores(out, truth)
    record_property("iou", (mean_iou, min_iou, mean_soft))
    print(f"GreenScreenSeg IoU mean {mean_iou:.4f} min {min_iou:.4f} soft {mean_soft:.4f}")
    assert min_iou >= 0.97
    assert mean_soft >= 0.95


@pytest.mark.parametrize("key", [(200, 40, 180), (245, 245, 245), (128, 128, 128)],
                         ids=["magenta", "white", "grey"])
def test_solid_color_iou(tmp_path, key, record_property):
    frames = list(green_screen_frames(W, H, N, key=key, gradient=False))
    opts = jobs.SegmentVideoOptions(SegmentType="SolidColorSeg", RemoveRed=key[0], RemoveGreen=key[1], RemoveBlue=key[2])
    truth, out, _ = _run(tmp_path, frames, opts)
    mean_iou, min_iou, mean_soft = _scores(out, truth)
    record_property("iou", (mean_iou, min_iou, mean_soft))
    print(f"SolidColorSeg {key} IoU mean {mean_iou:.4f} min {min_iou:.4f} soft {mean_soft:.4f}")
    assert min_iou >= 0.97
    assert mean_soft >= 0.95


@pytest.mark.parametrize("bg", ["gradient", "texture"])
def test_human_iou(tmp_path, bg, record_property):
    """The shipped person photo composited with its matte over a known background:
    the composite's true alpha is that matte (see localcloud/assets/README.md)."""
    if bg == "gradient":
        background = background_image(W, H)
    else:
        rng = np.random.default_rng(3)
        import cv2

        background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3)).astype(np.uint8), (0, 0), 2)
    frames = list(person_frames(W, H, N, background=background))
    truth, out, _ = _run(tmp_path, frames, jobs.SegmentVideoOptions(SegmentType="HumanSeg"))
    mean_iou, min_iou, mean_soft = _scores(out, truth)
    record_property("iou", (mean_iou, min_iou, mean_soft))
    print(f"HumanSeg ({bg}) IoU mean {mean_iou:.4f} min {min_iou:.4f} soft {mean_soft:.4f}")
    assert min_iou >= 0.9


def test_binary_threshold_cuts_the_matte(tmp_path):
    frames = list(green_screen_frames(W, H, 6))
    truth, out, _ = _run(tmp_path, frames, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg", BinaryThreshold=128))
    est = list(read_matte(out))
    for e, t in zip(est, truth):
        hard = np.count_nonzero((e < 0.12) | (e > 0.88)) / e.size
        assert hard > 0.985  # only codec ringing along the cut is in between
        assert iou(e, t) >= 0.97


def test_binary_threshold_levels(tmp_path):
    """A higher threshold keeps fewer edge pixels: the matte shrinks monotonically."""
    frames = list(green_screen_frames(W, H, 3))
    areas = []
    for t in (1, 128, 255):
        truth, out, _ = _run(tmp_path, frames, jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg", BinaryThreshold=t))
        areas.append(sum(np.count_nonzero(e >= 0.5) for e in read_matte(out)))
    assert areas[0] > areas[1] > areas[2] > 0


def test_foreground_over_solid_colour(tmp_path):
    frames = list(green_screen_frames(W, H, 6))
    opts = jobs.SegmentVideoOptions(Mode="Foreground", SegmentType="GreenScreenSeg",
                                    BackgroundRed=255, BackgroundGreen=0, BackgroundBlue=0)
    truth, out, _ = _run(tmp_path, frames, opts)
    for (src, t), got in zip(frames, read_video(out)):
        bg, fg = t < 0.01, t > 0.99
        assert np.abs(got[bg].astype(int) - (255, 0, 0)).mean() < 8  # the new background is red
        assert np.abs(got[fg].astype(int) - src[fg]).mean() < 8      # the person is untouched
        edge = (t > 0.2) & (t < 0.8)
        spill = got[edge].astype(int)
        # no green fringe: along the edge green never dominates red and blue
        assert np.mean(spill[:, 1] - np.maximum(spill[:, 0], spill[:, 2])) < 0


def test_combination_over_image(tmp_path):
    import cv2

    frames = list(green_screen_frames(W, H, 6))
    bg_rgb = background_image(W * 2, H * 2)  # scaled down to cover the frame
    bg_path = str(tmp_path / "bg.png")
    cv2.imwrite(bg_path, cv2.cvtColor(bg_rgb, cv2.COLOR_RGB2BGR))
    opts = jobs.SegmentVideoOptions(Mode="Combination", SegmentType="GreenScreenSeg", BackgroundLogoUrl="bg.png")
    truth, out, _ = _run(tmp_path, frames, opts, bg_path)
    expected = cv2.resize(bg_rgb, (W, H), interpolation=cv2.INTER_AREA)
    for (src, t), got in zip(frames, read_video(out)):
        bg, fg = t < 0.01, t > 0.99
        assert np.abs(got[bg].astype(int) - expected[bg]).mean() < 8
        assert np.abs(got[fg].astype(int) - src[fg]).mean() < 8



def test_green_screen_combination_keeps_skin_colours(tmp_path):
    """The project's person (a real face, an orange suit) on a green screen, Combination over
    a warm image, frame by frame through the engine's FrameMatter (no codec, so any change is
    the keyer's): spill suppression must stop at the screen's green; the face keeps its
    colours and saturation (a G <= max(R, B) clamp or an alpha clamp reaching skin would
    grey it). Measured: mean change 0.01-0.05 of 255."""
    import cv2

    from localcloud.matting.engine import FrameMatter

    green = np.zeros((H, W, 3), np.uint8)
    green[:] = (40, 190, 60)
    bg_path = str(tmp_path / "warm.png")
    cv2.imwrite(bg_path, np.full((H, W, 3), (80, 150, 250), np.uint8))  # BGR: a warm orange
    matter = FrameMatter(jobs.SegmentVideoOptions(SegmentType="GreenScreenSeg", Mode="Combination",
                                                  BackgroundLogoUrl="warm.png"), W, H, bg_path)
    try:
        for i, (src, t) in enumerate(person_frames(W, H, 6, background=green)):
            got, _ = matter(src, i / 25)
            s, g = src.astype(int), got.astype(int)
            skin = (t > 0.99) & (s[..., 0] > 120) & (s[..., 0] > s[..., 1] + 15) & (s[..., 1] > s[..., 2])
            assert skin.sum() > 500
            assert np.abs(g[skin] - s[skin]).mean() < 0.5
            assert np.mean(np.abs(g[skin] - s[skin]).max(1) > 8) < 0.01
            sat = lambda x: (x.max(1) - x.min(1)).mean()  # noqa: E731
            assert sat(g[skin]) > 0.99 * sat(s[skin])
            assert np.abs(g[t < 0.01] - (250, 150, 80)).mean() < 2  # the screen is gone
    finally:
        matter.close()
