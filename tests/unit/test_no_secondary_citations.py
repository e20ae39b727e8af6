"""The code cites primary sources (a Tencent doc page, an SDK file, a captured event), never the team's
summary of platform facts, a file outside this repository (RULES: cite the primary source)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("shared", "functions", "localcloud", "deploy", "cli", "tests", "benchmarks")


def test_no_file_cites_platform_md():
    name = "PLATFORM" + ".md"  # spelled apart so this file does not cite it either
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".yml")]
    files += [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "serverless.yml"]
    citing = [str(p.relative_to(ROOT)) for p in files if p.is_file() and name in p.read_text(encoding="utf-8")]
    assert len(files) > 100 and citing == []
