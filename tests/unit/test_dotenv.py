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


def test_the_environment_wins_over_dotenv_and_empty_values_are_no_values():
    """python-dotenv's rule (override=False), plus: an empty value on either side is no value."""
    from cli.env import credential_aliases, merged

    dotenv = {"COS_MATTING_ENDPOINT": "", "COS_MATTING_REGION": "ap-guangzhou", "COS_MATTING_BUCKET": "a-1",
              "TENCENT_SECRET_ID": "AKIDx", "TENCENT_SECRET_KEY": "k"}
    process = {"COS_MATTING_ENDPOINT": "http://127.0.0.1:9000", "COS_MATTING_BUCKET": "b-2",
               "COS_MATTING_REGION": "", "PATH": "/bin"}
    env = credential_aliases(merged(process, dotenv))
    assert env["COS_MATTING_ENDPOINT"] == "http://127.0.0.1:9000"  # .env's empty line does not hide the export
    assert env["COS_MATTING_BUCKET"] == "b-2"  # the shell wins
    assert env["COS_MATTING_REGION"] == "ap-guangzhou"  # an empty export does not hide .env's value
    assert env["TENCENTCLOUD_SECRETID"] == "AKIDx" and env["TENCENTCLOUD_SECRETKEY"] == "k"  # Deploy step 3's names
    assert merged({}, {"COS_MATTING_OUTPUT_PREFIX": ""}) == {}  # empty: unset, the code's default applies
    exported = credential_aliases({"TENCENTCLOUD_SECRETID": "A", "TENCENTCLOUD_SECRETKEY": "B",
                                   "TENCENT_SECRET_ID": "C", "TENCENT_SECRET_KEY": "D"})
    assert exported["TENCENTCLOUD_SECRETID"] == "A"  # the SDK's own names first, as deploy/clients.py reads them


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("24h", 86400), ("7d", 604800)])
def test_since_takes_durations_back_from_now(text, seconds):
    from datetime import datetime, timezone

    from cli.ui import parse_since

    back = (datetime.now(timezone.utc) - parse_since(text)).total_seconds()
    assert seconds - 1 <= back <= seconds + 5
    assert parse_since("2026-11-01").year == 2026


def test_the_local_cls_query_subset_is_refused_not_guessed():
    from localcloud.clsbackend import parse_query
    from localcloud.tcapi import ApiError

    assert parse_query('SCF_Namespace:"default" AND SCF_FunctionName:"a-b" AND "input/x y.mp4"') == \
        [("SCF_Namespace", "default"), ("SCF_FunctionName", "a-b"), (None, "input/x y.mp4")]
    assert parse_query("") == parse_query("*") == []
    for query in ('a OR b', 'NOT a', '(a)', '* | select count(*)'):
        with pytest.raises(ApiError) as refused:
            parse_query(query)
        assert refused.value.code == "FailedOperation.QueryError"
