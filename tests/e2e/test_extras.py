"""The command line without the matting engine (pyproject's `cli` extra), and clean metadata.

The engine's modules are made unimportable in a child interpreter (a meta-path finder that
refuses them and records each attempt), as in an install of `cos-matting[cli]` alone.
"""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cli.errors import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENGINE = sorted(name for name, extra in EXTRAS.items() if extra == "engine")

WITHOUT_ENGINE = f"""
import importlib.abc, json, sys
tried = []
class NoEngine(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ENGINE!r}:
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NoEngine())
from cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "tried": tried}}), file=sys.stderr)
"""


def without_engine(tmp_path, *argv):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_ENGINE, *argv], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60)
    *lines, last = proc.stderr.strip().splitlines()
    return json.loads(last), proc.stdout, lines


def test_every_command_helps_without_the_engine_and_imports_none_of_it(tmp_path):
    from cli.main import build_parser

    commands = list(build_parser()._subparsers._group_actions[0].choices)
    result, out, err = without_engine(tmp_path, "--help")
    assert result == {"code": 0, "tried": []} and all(c in out for c in commands), (result, err)
    for command in ("status", "deploy", "doctor", "localcloud", "demo", "samples"):
        result, out, err = without_engine(tmp_path, command, "--help")
        assert result == {"code": 0, "tried": []}, (command, result, err)
        assert f"usage: cos-matting {command}" in out


def test_commands_that_need_the_engine_say_so_in_one_line(tmp_path):
    for argv, which in ((["samples", str(tmp_path / "clips")], "samples"), (["demo", "--out", str(tmp_path / "d")], "demo"),
                        (["localcloud", "--engine", "matting", "--port", "0"], "--engine matting")):
        result, out, err = without_engine(tmp_path, *argv)
        assert result["code"] == 2, (argv, result, err)
        assert err == [f"cos-matting: error: {which}: needs the matting engine, which is not installed "
                       f"(no module 'av'); pip install 'cos-matting[engine]'"], (argv, err)
    assert not (tmp_path / "clips").exists() and not (tmp_path / "d").exists()  # refused before any work


def test_a_missing_module_of_an_extra_is_one_line_naming_the_extra():
    from cli.errors import explain

    assert explain(ModuleNotFoundError("No module named 'cv2'", name="cv2")) == \
        (2, "the matting engine is not installed (no module 'cv2'); pip install 'cos-matting[engine]'")
    assert explain(ModuleNotFoundError("No module named 'tencentcloud.scf'", name="tencentcloud.scf")) == \
        (2, "the command line's extras are not installed (no module 'tencentcloud'); pip install 'cos-matting[cli]'")
    assert explain(ModuleNotFoundError("No module named 'nope'", name="nope"))[0] == 1


def norm(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]).lower()


def test_extras_split_the_engine_from_the_command_line():
    extras = PROJECT["project"]["optional-dependencies"]
    engine = {norm(r) for r in extras["engine"]}
    assert engine == {"av", "numpy", "opencv-python-headless", "ai-edge-litert"}
    assert not engine & {norm(r) for r in extras["cli"]}
    assert {"tencentcloud-sdk-python-scf", "tencentcloud-sdk-python-cam", "pyyaml", "wcwidth", "packaging"} <= \
        {norm(r) for r in extras["cli"]}
    assert extras["local"] == ["cos-matting[cli,engine]"] and "cos-matting[local]" in extras["dev"]
    # cli.errors.EXTRAS names the extra of each import the commands make lazily
    assert {"av", "cv2", "numpy", "ai_edge_litert"} == set(ENGINE)


def test_licence_is_an_spdx_expression_with_the_apache_text_at_the_root():
    assert PROJECT["project"]["license"] == "Apache-2.0"
    assert PROJECT["project"]["license-files"] == ["LICENSE"]
    assert PROJECT["build-system"]["requires"] == ["setuptools>=77"]  # PEP 639 `license` strings
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "http://www.apache.org/licenses/LICENSE-2.0" in text
