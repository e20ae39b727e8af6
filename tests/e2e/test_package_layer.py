"""`cos-matting package`: reproducible zips within size targets, runnable on CPython 3.10.

The layer needs wheels: from the cache (.cache/wheels) when warm, else pip downloads
them from the configured index. When neither works the layer tests are skipped with
the reason (never silently passed). Function-zip tests need no network.
"""
import importlib.metadata
import json
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy import checks, package  # noqa: E402
from deploy.components import function_environment  # noqa: E402
from deploy.files import load_serverless  # noqa: E402
from localcloud import scfenv  # noqa: E402

CACHE = ROOT / ".cache" / "wheels"


PY310 = scfenv.find_python310()


def _build(out: Path, **kw):
    return {a.path.name: a for a in package.build(out, CACHE, log=lambda m: None, **kw)}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The full build, twice, into two clean folders (skips when wheels cannot be had)."""
    first, second = tmp_path_factory.mktemp("dist1"), tmp_path_factory.mktemp("dist2")
    try:
        a = _build(first)
    except package.PackageError as exc:
        if "pip download failed" in str(exc) or "not in the wheel cache" in str(exc):
            pytest.skip(f"layer wheels unavailable: no cache in {CACHE} and pip cannot reach the index: "
                        f"{str(exc).splitlines()[-1][:300]}")
        raise
    b = _build(second, offline=True)  # the second build must come from the cache alone
    return first, a, second, b


def test_function_zips_are_reproducible_and_small(tmp_path):
    one = _build(tmp_path / "a", layer=False)
    two = _build(tmp_path / "b", layer=False)
    assert sorted(one) == ["cos-matting-callback.zip", "cos-matting-reconcile.zip", "cos-matting-submit.zip"]
    for name, art in one.items():
        assert art.path.read_bytes() == two[name].path.read_bytes(), name
        assert art.size < package.FUNCTION_LIMIT, f"{name}: {art.size} bytes"
        with zipfile.ZipFile(art.path) as zf:
            names = zf.namelist()
        assert "index.py" in names and "shared/__init__.py" in names and "shared/config.py" in names
        assert all(n == "index.py" or n.startswith("shared/") for n in names), names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        fn = name[len("cos-matting-"):-len(".zip")]
        assert (tmp_path / "a" / "scf" / fn / "index.py").read_bytes() == \
            (ROOT / "functions" / fn / "index.py").read_bytes()


def test_zip_metadata_is_fixed(tmp_path):
    tree = {"b.py": b"b", "a/x.py": b"x", "a/__pycache__/x.pyc": b"junk"}
    tree = {k: v for k, v in tree.items() if not package._skip(k)}
    data = package.zip_bytes(tree)
    path = tmp_path / "t.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["a/x.py", "b.py"]
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644
    assert package.zip_bytes(dict(reversed(list(tree.items())))) == data  # order of input does not matter


def test_lock_is_hashed_and_pins_the_tested_versions():
    pins = {p.name: p for p in package.read_lock()}
    assert pins["cos-python-sdk-v5"].version == "1.9.44"
    assert "crcmod" not in pins  # sdist only: handled by package.CRCMOD
    for dist in ("cos-python-sdk-v5", "pydantic", "pydantic-core", "flask", "werkzeug", "serverless-wsgi",
                 "typing-extensions", "annotated-types", "typing-inspection"):
        assert dist in pins, dist
        assert pins[dist].version == importlib.metadata.version(dist), \
            f"{dist}: layer pins {pins[dist].version}, tests run {importlib.metadata.version(dist)}"
    for dist in ("tencentcloud-sdk-python-scf", "tencentcloud-sdk-python-common", *package.NOT_SHIPPED):
        assert dist not in pins, dist  # deployed code does not call the Tencent Cloud API, nor encrypt client-side
    for dist in package.PURE_PYTHON:  # the lock pins the pure-Python wheel, whose hash pip then selects
        assert pins[dist].version == importlib.metadata.version(dist), dist


@pytest.mark.slow  # the first user of `builds`: two full layer builds
def test_layer_reproducible_within_target(builds, capsys):
    first, a, second, b = builds
    for name in a:
        assert a[name].path.read_bytes() == b[name].path.read_bytes(), f"{name} differs between two builds"
    layer = a["cos-matting-layer.zip"]
    assert layer.size < package.LAYER_LIMIT
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["cos-matting-layer.zip"]["sha256"] == layer.sha256
    with capsys.disabled():
        print("\n" + "\n".join(f"  {n}: {x.size:,d} bytes ({package.human(x.size)})" for n, x in sorted(a.items())))


def test_rebuild_into_the_same_folder_reuses_the_layer_until_the_lock_changes(builds, tmp_path):
    first, a, _, _ = builds
    out = tmp_path / "dist"
    shutil.copytree(first, out)
    empty = tmp_path / "no-wheels"
    again = {x.path.name: x for x in package.build(out, empty, offline=True, log=lambda m: None)}
    assert again["cos-matting-layer.zip"].sha256 == a["cos-matting-layer.zip"].sha256  # no wheel was needed
    lock = tmp_path / "lock.txt"
    lock.write_text(package.LOCK.read_text() + "# changed\n")
    with pytest.raises(package.PackageError, match="not in the wheel cache"):
        package.build(out, empty, lock=lock, offline=True, log=lambda m: None)


def test_layer_contents(builds):
    first, a, _, _ = builds
    with zipfile.ZipFile(a["cos-matting-layer.zip"].path) as zf:
        names = zf.namelist()
    # SCF unpacks the layer to /opt and puts /opt itself on the path: packages at the root.
    assert not any(n.startswith("python/") for n in names), [n for n in names if n.startswith("python/")][:3]
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "cos_python_sdk_v5-1.9.44.dist-info/METADATA" in names and "qcloud_cos/__init__.py" in names
    assert "crcmod/_crcfunpy.py" in names and not any("_crcfunext" in n for n in names)
    assert any(n.startswith("pydantic_core/_pydantic_core.cpython-310-x86_64-linux-gnu") for n in names)
    assert not any(n.startswith("bin/") for n in names)
    assert "charset_normalizer/md.py" in names and not any(  # package.PURE_PYTHON: no compiled speed-ups
        n.startswith("charset_normalizer/") and n.endswith(".so") for n in names)
    meta = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: missing-dist>=1\n" \
           b"Requires-Dist: only-on-windows; sys_platform == 'win32'\n"
    assert package.check_closure({"demo-1.0.dist-info/METADATA": meta}) == \
        ["demo needs missing-dist>=1: not in the layer"]
    assert (first / "layer" / "qcloud_cos" / "__init__.py").is_file()


@pytest.mark.parametrize("function", ["submit", "callback", "reconcile"])
def test_handler_imports_on_python310_from_the_zips(builds, function, tmp_path):
    if PY310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv root)/versions/3.10.*/bin/python3.10")
    first, a, _, _ = builds
    opt, code = tmp_path / "opt", tmp_path / "var" / "user"
    with zipfile.ZipFile(a["cos-matting-layer.zip"].path) as zf:
        zf.extractall(opt)
    with zipfile.ZipFile(a[f"cos-matting-{function}.zip"].path) as zf:
        zf.extractall(code)
    sf = load_serverless(checks.SERVERLESS, checks.example_environ())
    env = {k: v for k, v in function_environment(sf, function).items() if v}
    env.update(TENCENTCLOUD_SECRETID="AKIDplaceholder", TENCENTCLOUD_SECRETKEY="placeholder",
               TENCENTCLOUD_SESSIONTOKEN="token", TENCENTCLOUD_REGION="ap-guangzhou", PATH="/usr/bin:/bin")
    # The probe runs under the SCF-like runtime (localcloud/scfenv.py): it sets nothing itself.
    probe = f"""
import sys
assert sys.path[:2] == [{str(code)!r}, {str(opt)!r}], sys.path
import index
assert callable(index.main_handler)
import qcloud_cos, crcmod, pydantic_core, flask, serverless_wsgi
assert qcloud_cos.__file__.startswith({str(opt)!r}), qcloud_cos.__file__
assert sys.modules["crcmod.crcmod"]._usingExtension is False
assert crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xffffffffffffffff, rev=True)(b"123456789") == 0x995DC9BBDF1939FA
bad = [p for p in sys.path[2:] if not p.startswith(sys.base_prefix)]  # after code + layer: the stdlib only
assert not bad and not [p for p in sys.path if "site-packages" in p or p in ("", ".")], sys.path
# VmHWM (peak RSS of this image); ru_maxrss would carry the forking pytest's peak across exec.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(sys.version_info[:2], int(hwm) // 1024)
"""
    script = tmp_path / "probe.py"
    script.write_text(probe)
    proc = subprocess.run(scfenv.command(PY310, str(code), [str(opt)], run=str(script)), cwd=str(code),
                          env=scfenv.environment(env, function), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    version, rss_mb = proc.stdout.strip().rsplit(" ", 1)[0], int(proc.stdout.split()[-1])
    assert version == "(3, 10)"
    assert rss_mb < 100, f"{function} uses {rss_mb} MB after import; serverless.yml plans 128 MB"
    print(f"  {function}: Python 3.10 import OK, peak RSS {rss_mb} MB")


def test_cli_package_help_and_skip_layer(tmp_path, capsys):
    from cli.main import build_parser, main

    help_text = build_parser()._subparsers._group_actions[0].choices["package"].format_help()
    assert "manylinux2014_x86_64" in help_text and "--offline" in help_text and "/var/user, /opt" in help_text
    assert main(["package", "--skip-layer", "--out", str(tmp_path / "dist")]) == 0
    out = capsys.readouterr().out
    assert "cos-matting-submit.zip" in out and "bytes" in out


# A probe per function: the handler on a real event, then what it loaded, by where it came from.
RUN_PROBE = """
import json, os, sys
import index
result = index.main_handler(json.loads(sys.stdin.read()), {})
assert not [p for p in sys.path if "site-packages" in p], sys.path
code, opt = sys.path[0], sys.path[1]
outside, layer = [], set()
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if not path or name == "__main__":  # the probe itself
        continue
    if path.startswith(opt + os.sep):
        layer.add(os.path.relpath(path, opt).split(os.sep)[0].split(".")[0])
    elif not path.startswith((code + os.sep, sys.base_prefix + os.sep)):
        outside.append(path)
print(json.dumps({"result": result, "layer": sorted(layer), "outside": outside}))
"""


def test_the_zips_alone_run_each_handler_on_python310_and_the_layer_holds_only_what_they_import(builds, cloud,
                                                                                               tmp_path):
    """The packaged layer + each function zip, on an isolated CPython 3.10, handle a real event against
    the local cloud (submit: a COS upload, callback: the Function URL health check, reconcile: a timer
    tick); every module they load comes from the zips or the standard library, and every top-level
    package of the layer is one of them (nothing unused is shipped)."""
    if PY310 is None:
        pytest.skip("no CPython 3.10 interpreter found (pyenv root)/versions/3.10.*/bin/python3.10")
    first, a, _, _ = builds
    opt = tmp_path / "opt"
    with zipfile.ZipFile(a["cos-matting-layer.zip"].path) as zf:
        zf.extractall(opt)
        shipped = {n.split("/")[0].split(".")[0] for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert a["cos-matting-layer.zip"].size <= package.LAYER_TARGET, package.human(a["cos-matting-layer.zip"].size)
    event = json.loads((ROOT / "events" / "cos" / "put-video.json").read_text())
    obj = event["Records"][0]["cos"]["cosObject"]
    key = obj["key"].split("/", 3)[3]
    uploaded = cloud.upload("videos-1250000000", key, b"\x00\x00\x00\x18ftypmp42 packaged")
    obj["meta"]["ETag"] = f'"{uploaded.etag}"'
    events = {"submit": event, "callback": json.loads((ROOT / "events" / "funcurl" / "get-health.json").read_text()),
              "reconcile": json.loads((ROOT / "events" / "timer" / "reconcile-every-10-minutes.json").read_text())}
    sf = load_serverless(checks.SERVERLESS, checks.example_environ())
    script = tmp_path / "probe.py"
    script.write_text(RUN_PROBE)
    imported, results = set(), {}
    for function, fn_event in events.items():
        code = tmp_path / function / "var" / "user"
        with zipfile.ZipFile(a[f"cos-matting-{function}.zip"].path) as zf:
            zf.extractall(code)
        env = {k: v for k, v in function_environment(sf, function).items() if v}
        env.update({**cloud.function_env(), "COS_MATTING_BUCKET": "videos-1250000000",
                    "COS_MATTING_REGION": "ap-guangzhou", "PATH": "/usr/bin:/bin"})
        proc = subprocess.run(scfenv.command(PY310, str(code), [str(opt)], run=str(script)),
                              input=json.dumps(fn_event), cwd=str(code), env=scfenv.environment(env, function),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{function}: {proc.stderr[-3000:]}"
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["outside"] == [], f"{function} loaded modules from outside the zips: {report['outside']}"
        imported |= set(report["layer"])
        results[function] = report["result"]
    [outcome] = results["submit"]["outcomes"]
    assert outcome["outcome"] == "submitted"
    assert [j.JobId for j in cloud.list_jobs("videos-1250000000")] == [outcome["job_id"]]
    assert results["callback"]["statusCode"] == 200, results["callback"]
    assert results["reconcile"]["failed"] == 0, results["reconcile"]
    assert {"qcloud_cos", "pydantic_core", "flask", "serverless_wsgi", "crcmod"} <= imported
    assert not {"Crypto", "tencentcloud"} & shipped  # package.NOT_SHIPPED, and no deployed code calls the API
    assert shipped - imported == set(), f"shipped but never imported by a handler: {sorted(shipped - imported)}"
