"""`cos-matting demo`, the main job, through its real entry point; its report checked in headless
Chromium; its output folder rules are tests/unit/test_demo_outdir.py."""
import json
import os
import re

import pytest

from cli import browser
from cli.main import main
from cli.outdir import MARKER


def chromium_or_skip():
    binary = browser.find()
    if binary is None:
        assert not os.environ.get("CI"), ".ci/run installs chromium: the report check must run in CI"
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


@pytest.mark.slow
def test_demo_writes_outputs_and_a_report_that_loads_in_chromium(tmp_path, capsys):
    binary = chromium_or_skip()
    out = tmp_path / "demo-out"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report: " in printed and "4/4 jobs finished" in printed
    assert "images and videos ok" in printed
    assert "HumanSeg engine: Robust Video Matting" in printed  # make demo installs the rvm extra
    report = (out / "report.html").read_text()
    assert report.count("<section>") == 4 and report.count("'state ok'") == 4
    videos = re.findall(r"<video [^>]*src='([^']+)'", report)
    assert len(videos) == 8  # input and output of every job, playable in the page
    for src in videos:
        assert (out / src).stat().st_size > 1000
    images = re.findall(r"<img src='([^']+)'", report)
    assert len(images) == 8 * 4  # four frames across every clip
    for src in images:
        assert (out / src).stat().st_size > 1000
    for section in report.split("<section>")[1:]:
        captions = [float(t) for t in re.findall(r"<figcaption>([\d.]+) s</figcaption>", section)]
        assert len(captions) == 8 and captions[3] - captions[0] > 1.0  # spread over the 3 s clip
        assert re.search(r"upload → final \(measured\)</th><td>\d+\.\d\d s<", section)  # sub-second, with unit
        assert re.search(r"\d+\.\d KiB, \d\.\d\d s, 320x240 px", section)  # sizes and durations with units
        assert "3.018005" not in section  # no bare numbers
    records = json.loads((out / "records.json").read_text())
    assert sorted(r["request"]["Operation"]["SegmentVideoBody"]["Mode"] for r in records) == [
        "Combination", "Foreground", "Foreground", "Mask"]
    assert all((out / r["output"]["key"]).stat().st_size > 1000 for r in records)
    # The test's own look in the browser, next to the report: nothing broken, and a screenshot.
    assert browser.media_mark(out / "report.html", binary) == "ok"
    shot = browser.screenshot(out / "report.html", out / "report-test.png", binary)
    assert shot.stat().st_size > 50_000
    listed = json.loads((out / MARKER).read_text())["files"]
    assert "report.html" in listed and "report.png" in listed and "records.json" in listed

    # A second run that fails (it cannot finish in 0.01 s) leaves the previous output and the
    # user's own file in the folder exactly as they were.
    (out / "my notes.txt").write_text("mine")
    before = (out / "report.html").read_bytes()
    assert main(["demo", "--out", str(out), "--timeout", "0.01", "--no-browser-check"]) == 1
    assert (out / "report.html").read_bytes() == before and (out / "my notes.txt").read_text() == "mine"
    assert not (out / ".cos-matting-demo.staging").exists()


def test_chromium_finds_a_broken_image_or_video(tmp_path):
    """The check itself: a page whose video and image do not exist is reported broken by name."""
    binary = chromium_or_skip()
    from cli.report import write_report

    page = write_report(tmp_path / "report.html", ["<video src='missing.mp4'></video><img src='gone.jpg'>"], {})
    mark = browser.media_mark(page, binary)
    assert mark.startswith("broken: ") and "missing.mp4" in mark and "gone.jpg" in mark
