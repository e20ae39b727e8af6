"""`cos-matting demo`, the main job, through its real entry point."""
import json
import re

import pytest

from cli.main import main


@pytest.mark.slow
def test_demo_writes_outputs_and_a_report(tmp_path, capsys):
    out = tmp_path / "demo-out"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report: " in printed and "4/4 jobs finished" in printed
    report = (out / "report.html").read_text()
    assert report.count("<section>") == 4 and report.count("'state ok'") == 4
    for src in re.findall(r"src='([^']+)'", report):
        assert (out / src).stat().st_size > 1000  # every before/after frame is a real picture
    records = json.loads((out / "records.json").read_text())
    assert sorted(r["request"]["Operation"]["SegmentVideoBody"]["Mode"] for r in records) == [
        "Combination", "Foreground", "Foreground", "Mask"]
    assert all((out / r["output"]["key"]).stat().st_size > 1000 for r in records)
