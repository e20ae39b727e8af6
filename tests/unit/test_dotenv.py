"""deploy/dotenv.py: the one .env reader of the CLI and the deploy tools, case by case."""
import pytest

from deploy.dotenv import DotenvError, parse, read


@pytest.mark.parametrize("line, value", [
    ("A=foo", "foo"),
    ("A = foo ", "foo"),
    ("A=foo # note", "foo"),            # an inline comment is not part of the value
    ("A=foo\t# note", "foo"),
    ("A=foo#bar", "foo#bar"),           # no blank before '#': part of the value
    ("A=https://x.example.com/cb?a=1#frag", "https://x.example.com/cb?a=1#frag"),
    ("export A=foo", "foo"),            # a file written for `source` works too
    ("A='foo # not a note'", "foo # not a note"),
    ('A="foo # not a note"', "foo # not a note"),
    ("A='it\"s'", 'it"s'),
    ('A="say \\"hi\\""', 'say "hi"'),
    ('A="a\\\\b"', "a\\b"),
    ("A='a\\b'", "a\\b"),                # single quotes are literal
    ('A="x" # note', "x"),
    ("A=", ""),
    ("A=''", ""),
    ("A=a=b", "a=b"),                   # only the first '=' separates
])
def test_values(line, value):
    assert parse(line) == {"A": value}


def test_comments_blank_lines_and_the_last_assignment_wins():
    text = "# settings\n\nA=1\n  # indented comment\nB=2\nA=3\n"
    assert parse(text) == {"A": "3", "B": "2"}


@pytest.mark.parametrize("line, message", [
    ("just words", "expected KEY=VALUE"),
    ("=value", "expected KEY=VALUE"),
    ("MY-KEY=1", "expected KEY=VALUE"),
    ("A='open", "unbalanced quotes in A"),
    ('A="x" y', "text after the closing quote in A"),
])
def test_bad_lines_name_the_file_and_line(line, message):
    with pytest.raises(DotenvError) as err:
        parse(f"OK=1\n{line}\n", "conf/.env")
    assert str(err.value).startswith("conf/.env:2: ") and message in str(err.value)


def test_read_a_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("export COS_MATTING_BUCKET=videos-1250000000 # the source bucket\n", encoding="utf-8")
    assert read(path) == {"COS_MATTING_BUCKET": "videos-1250000000"}
    with pytest.raises(OSError):
        read(tmp_path / "absent.env")


def test_the_projects_env_example_reads_cleanly():
    from deploy.checks import ENV_EXAMPLE

    values = read(ENV_EXAMPLE)
    assert "COS_MATTING_BUCKET" in values and all("#" not in v for v in values.values())


def test_the_cli_and_the_deploy_tools_read_a_file_alike(tmp_path):
    """The two readers that used to disagree (issue 15) are one: the same file, the same values."""
    from cli.errors import UsageError
    from cli.env import read_env_file
    from deploy import checks

    path = tmp_path / ".env"
    path.write_text("A=foo # note\nexport B=bar\nC='x # y'\nD=\"q\"\n", encoding="utf-8")
    expected = {"A": "foo", "B": "bar", "C": "x # y", "D": "q"}
    assert read_env_file(str(path)) == checks.read_dotenv(path) == expected
    path.write_text("A=1\nnot a line\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"^--env-file .*\.env:2: expected KEY=VALUE"):
        read_env_file(str(path))
    with pytest.raises(DotenvError, match=r"\.env:2: expected KEY=VALUE"):
        checks.read_dotenv(path)
