"""`cos-matting demo`'s output folder rules: it never touches what it did not write.
(The demo run and its report in Chromium are tests/e2e/test_demo.py.)"""
import pytest

from cli.main import main
from cli.outdir import OutputFolder


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("precious")
    assert main(["demo", "--out", str(project)]) == 2
    err = capsys.readouterr().err
    assert "not the output of an earlier demo" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in project.iterdir()) == ["README.md"]  # nothing written, nothing removed
    (tmp_path / "a-file").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "a-file")]) == 2


def test_output_folder_replaces_only_its_own_files(tmp_path):
    out = tmp_path / "out"
    first = OutputFolder(out)
    stage = first.prepare()
    (stage / "frames").mkdir()
    (stage / "frames" / "old.jpg").write_text("old frame")
    (stage / "report.html").write_text("first")
    assert first.commit() == ["frames/old.jpg", "report.html"]
    (out / "frames" / "user.jpg").write_text("user")  # the user's, in a folder we also write
    (out / "keep.txt").write_text("user")

    second = OutputFolder(out)
    stage = second.prepare()
    assert not (stage / "report.html").exists() and (out / "report.html").read_text() == "first"
    (stage / "report.html").write_text("second")
    (stage / "new.jpg").write_text("new")
    assert second.commit() == ["new.jpg", "report.html"]
    assert (out / "report.html").read_text() == "second" and not (out / "frames" / "old.jpg").exists()
    assert (out / "frames" / "user.jpg").read_text() == "user" and (out / "keep.txt").read_text() == "user"

    third = OutputFolder(out)
    stage = third.prepare()
    (stage / "keep.txt").write_text("would overwrite the user's file")
    with pytest.raises(Exception, match="keep.txt exists and was not written by an earlier demo"):
        third.commit()
    assert (out / "keep.txt").read_text() == "user"
