"""Build the SCF deployment artefacts in dist/, reproducibly.

    dist/cos-matting-layer.zip        <deps> at the zip's root -> /opt on SCF
    dist/cos-matting-<fn>.zip         index.py + shared/   (fn = submit, callback, reconcile)
    dist/layer/, dist/scf/<fn>/       the same trees unpacked, for the `layer` and
                                      `multi-scf` components (`src:` is a folder there)

SCF unpacks a layer under /opt and its Python runtime's path is /var/user (the
code) then /opt, so packages sit at the root of the layer zip, not under python/
(AWS Lambda's layout). Source: Tencent's layer page ("将依赖库的代码包文件夹直接打包并
创建为层，则在函数代码中可直接通过 import 引用", cloud.tencent.com/document/product/583/40159)
and SCF's built-in environment (PYTHONPATH=/var/user:/opt, cloud.tencent.com/document/product/583/32748).

Dependencies are wheels for the SCF runtime (CPython 3.10, manylinux2014_x86_64),
fetched with `pip download --only-binary=:all: --platform ... --no-deps` from the
fully pinned, hashed lock `requirements-deploy.txt` (a missing transitive dependency
fails the build instead of being resolved silently). cos-python-sdk-v5 1.9.x needs
`crcmod`, published only as a source package; with `--only-binary` pip would quietly
fall back to SDK 1.8.3, which is why the SDK is pinned in the lock and crcmod's
pure-Python implementation is copied from its (hash-checked) sdist instead of
building a C extension for the wrong interpreter.

The layer ships only what the functions import. Two requirements are not followed on
purpose (NOT_SHIPPED): cos-python-sdk-v5 declares pycryptodome, but only its client-side
encryption module (qcloud_cos/crypto.py, CosEncryptionClient) imports `Crypto`, and
`import qcloud_cos` does not load it. charset-normalizer comes as its pure-Python wheel
(PURE_PYTHON): the same modules without the mypyc-compiled speed-ups, ~190 KB smaller
zipped. tests/e2e/test_package_layer.py imports the handlers and runs the SDK calls we
make on CPython 3.10 from the zips alone, and checks that every top-level package of the
layer is imported there.

Wheels are cached in .cache/wheels: when every pinned wheel is there with the right
hash, pip is not run at all. Same inputs give the same zip bytes: entries sorted,
timestamps fixed at 1980-01-01, permissions 0644, no __pycache__/*.pyc.
"""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("submit", "callback", "reconcile")
LOCK = ROOT / "requirements-deploy.txt"
REQUIREMENTS_IN = ROOT / "deploy" / "requirements-deploy.in"
DEFAULT_CACHE = ROOT / ".cache" / "wheels"
DEFAULT_OUT = ROOT / "dist"

PYTHON_VERSION = (3, 10)
PLATFORM = "manylinux2014_x86_64"
PIP_TARGET = ["--platform", PLATFORM, "--python-version", "3.10", "--implementation", "cp",
              "--only-binary=:all:"]

# crcmod 1.7 (sdist only): copy python3/crcmod/*.py; crcmod.crcmod falls back to _crcfunpy
# when the C extension `_crcfunext` is absent, which is the case on purpose.
CRCMOD = ("crcmod", "1.7", "dc7051a0db5f2bd48665a990d3ec1cc305a466a77358ca4492826f41f283601e")
CRCMOD_FILES = ("__init__.py", "crcmod.py", "predefined.py", "_crcfunpy.py")

# Declared requirements the layer leaves out, each with why nothing deployed imports it.
NOT_SHIPPED = {
    "pycryptodome": "cos-python-sdk-v5 imports Crypto only in qcloud_cos/crypto.py (CosEncryptionClient, "
                    "client-side encryption), which `import qcloud_cos` does not load and we never use",
}
# Shipped as the pure-Python wheel (same modules, no compiled speed-ups): the lock pins its hash.
PURE_PYTHON = ("charset-normalizer",)
PURE_TARGET = ["--platform", "any", "--python-version", "3.10", "--implementation", "py", "--only-binary=:all:"]

LAYER_LIMIT = 15 * 1024 * 1024
LAYER_TARGET = 4 * 1024 * 1024  # issue 24: the layer ships only what runs
FUNCTION_LIMIT = 100 * 1024
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = (".pyc", ".pyo")

Log = Callable[[str], None]


class PackageError(RuntimeError):
    """The build cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    sha256: Tuple[str, ...]


@dataclass(frozen=True)
class Artefact:
    path: Path
    size: int
    sha256: str
    limit: int

    @property
    def within_limit(self) -> bool:
        return self.size <= self.limit


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the lock ----------------------------------------------------------------------------------


def read_lock(path: Path = LOCK) -> List[Pin]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(.*)$", line)
        if not m:
            raise PackageError(f"{path.name}: every line must be name==version --hash=sha256:...: {line!r}")
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", m.group(3)))
        if not hashes:
            raise PackageError(f"{path.name}: {m.group(1)} has no --hash=sha256:... (run --update-lock)")
        pins.append(Pin(normalize(m.group(1)), m.group(2), hashes))
    return pins


def target_tags() -> set:
    from packaging import tags

    platforms = ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    platforms += [f"manylinux_2_{minor}_x86_64" for minor in range(17, 4, -1)]
    found = set(tags.cpython_tags(PYTHON_VERSION, abis=["cp310", "abi3", "none"], platforms=platforms))
    found |= set(tags.compatible_tags(PYTHON_VERSION, interpreter="cp310", platforms=platforms))
    return found


def _wheel_matches(path: Path, pin: Pin, tags_ok: set) -> bool:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, _, wheel_tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return False
    return normalize(name) == pin.name and str(version) == pin.version and bool(set(wheel_tags) & tags_ok)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cached(pins: Sequence[Pin], cache: Path) -> Dict[str, Path]:
    tags_ok = target_tags()
    found: Dict[str, Path] = {}
    for pin in pins:
        for path in sorted(cache.glob("*.whl")):
            if _wheel_matches(path, pin, tags_ok) and sha256_file(path) in pin.sha256:
                found[pin.name] = path
                break
    return found


def _pip(args: List[str], log: Log) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", *args]
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackageError("pip download failed (is the package index reachable?):\n" + (proc.stderr or proc.stdout)[-3000:])


def fetch_wheels(pins: Sequence[Pin], cache: Path, log: Log, offline: bool = False) -> Dict[str, Path]:
    """A wheel per pin, for the SCF runtime, hash-checked; pip only runs for missing ones."""
    cache.mkdir(parents=True, exist_ok=True)
    found = _cached(pins, cache)
    missing = [p for p in pins if p.name not in found]
    if missing:
        if offline:
            raise PackageError("not in the wheel cache (run without --offline once): "
                               + ", ".join(f"{p.name}=={p.version}" for p in missing))
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            for p in missing:
                req.write(f"{p.name}=={p.version} " + " ".join(f"--hash=sha256:{h}" for h in p.sha256) + "\n")
        try:
            _pip(["--dest", str(cache), "--no-deps", *PIP_TARGET, "-r", req.name], log)
        finally:
            os.unlink(req.name)
        found = _cached(pins, cache)
        still = [p for p in pins if p.name not in found]
        if still:
            raise PackageError("pip did not produce a matching wheel for: "
                               + ", ".join(f"{p.name}=={p.version}" for p in still))
    return found


def fetch_crcmod(cache: Path, log: Log, offline: bool = False) -> Path:
    name, version, digest = CRCMOD
    path = cache / f"{name}-{version}.tar.gz"
    if not (path.exists() and sha256_file(path) == digest):
        if offline:
            raise PackageError(f"{path.name} is not in the wheel cache (run without --offline once)")
        cache.mkdir(parents=True, exist_ok=True)
        _pip(["--dest", str(cache), "--no-deps", "--no-binary=:all:", f"{name}=={version}"], log)
        if not path.exists() or sha256_file(path) != digest:
            raise PackageError(f"{path.name}: missing or sha256 mismatch (expected {digest})")
    return path


# --- trees -------------------------------------------------------------------------------------

Tree = Dict[str, bytes]  # archive name -> content


def _skip(name: str) -> bool:
    parts = name.split("/")
    return any(p in SKIP_DIRS for p in parts) or name.endswith(SKIP_SUFFIXES)


def wheel_tree(path: Path) -> Tree:
    """Install a wheel by unpacking it (purelib/platlib land at the root; scripts/headers/data are dropped)."""
    tree: Tree = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or _skip(name):
                continue
            m = re.match(r"^[^/]+\.data/(purelib|platlib|scripts|headers|data)/(.*)$", name)
            if m:
                if m.group(1) not in ("purelib", "platlib"):
                    continue
                name = m.group(2)
            tree[name] = zf.read(info)
    return tree


def crcmod_tree(sdist: Path) -> Tree:
    name, version, _ = CRCMOD
    tree: Tree = {}
    with tarfile.open(sdist, "r:gz") as tf:
        base = f"{name}-{version}"
        for fname in CRCMOD_FILES:
            member = tf.extractfile(f"{base}/python3/crcmod/{fname}")
            if member is None:
                raise PackageError(f"{sdist.name}: python3/crcmod/{fname} missing")
            tree[f"crcmod/{fname}"] = member.read()
        licence = tf.extractfile(f"{base}/LICENSE")
        dist_info = f"{name}-{version}.dist-info/"
        tree[dist_info + "METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                        "Summary: CRC generator (pure-Python part of the sdist; no C extension)\n"
                                        "License: MIT\n").encode()
        if licence is not None:
            tree[dist_info + "LICENSE"] = licence.read()
        tree[dist_info + "INSTALLER"] = b"cos-matting deploy/package.py\n"
    return tree


def source_tree(function: str, root: Path = ROOT) -> Tree:
    """functions/<function>/index.py at the root, plus the shared/ package."""
    index = root / "functions" / function / "index.py"
    if not index.is_file():
        raise PackageError(f"{index.relative_to(root)} does not exist")
    tree: Tree = {"index.py": index.read_bytes()}
    shared = root / "shared"
    for path in sorted(shared.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not _skip(rel):
            tree[rel] = path.read_bytes()
    return tree


def layer_tree(pins: Sequence[Pin], wheels: Dict[str, Path], crcmod_sdist: Path) -> Tree:
    tree: Tree = {}
    for pin in pins:
        for name, data in wheel_tree(wheels[pin.name]).items():
            if name in tree and tree[name] != data:
                raise PackageError(f"two wheels ship {name} with different content ({pin.name})")
            tree[name] = data
    tree.update(crcmod_tree(crcmod_sdist))
    return tree


def check_closure(tree: Tree) -> List[str]:
    """Requirements (for CPython 3.10 on Linux) of the unpacked dists that nothing in the tree provides."""
    from email.parser import BytesParser

    from packaging.requirements import Requirement

    provided: Dict[str, str] = {}
    requires: List[Tuple[str, str]] = []
    env = {"python_version": "3.10", "python_full_version": "3.10.13", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    for name, data in tree.items():
        if re.match(r"^[^/]+\.dist-info/METADATA$", name):
            meta = BytesParser().parsebytes(data)
            dist = normalize(meta["Name"])
            provided[dist] = meta["Version"]
            for req in meta.get_all("Requires-Dist") or []:
                requires.append((dist, req))
    problems = []
    for dist, spec in requires:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        have = provided.get(normalize(req.name))
        if have is None and normalize(req.name) in NOT_SHIPPED:
            continue
        if have is None:
            problems.append(f"{dist} needs {spec}: not in the layer")
        elif req.specifier and not req.specifier.contains(have, prereleases=True):
            problems.append(f"{dist} needs {spec}: layer has {have}")
    return problems


# --- zips --------------------------------------------------------------------------------------


def zip_bytes(tree: Tree) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(tree):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr is read as a mode
            info.external_attr = (0o100644 & 0xFFFF) << 16
            zf.writestr(info, tree[name], compresslevel=9)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_tree(tree: Tree, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    for name in sorted(tree):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tree[name])


def _artefact(path: Path, data: bytes, limit: int) -> Artefact:
    write_atomic(path, data)
    return Artefact(path, len(data), hashlib.sha256(data).hexdigest(), limit)


LAYOUT = "root-v1"  # bump when the layer's tree changes for the same lock (e.g. python/ -> root)


def layer_inputs(lock: Path = LOCK) -> str:
    """What the layer's bytes depend on: the hashed lock, crcmod's pinned sdist, the layout."""
    return hashlib.sha256(lock.read_bytes() + repr((CRCMOD, CRCMOD_FILES, LAYOUT)).encode()).hexdigest()


def build(out: Path = DEFAULT_OUT, cache: Path = DEFAULT_CACHE, *, root: Path = ROOT, lock: Path = LOCK,
          functions: Iterable[str] = FUNCTIONS, layer: bool = True, offline: bool = False,
          log: Log = print) -> List[Artefact]:
    """Build the zips (and their unpacked trees) into `out`; returns what was written."""
    artefacts: List[Artefact] = []
    for fn in functions:
        tree = source_tree(fn, root)
        artefacts.append(_artefact(out / f"cos-matting-{fn}.zip", zip_bytes(tree), FUNCTION_LIMIT))
        write_tree(tree, out / "scf" / fn)
    manifest_path = out / "manifest.json"
    try:  # a partial build (--function, --skip-layer) updates its entries and keeps the others
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    inputs = layer_inputs(lock)
    previous = manifest.get("cos-matting-layer.zip") or {}
    layer_zip = out / "cos-matting-layer.zip"
    if layer and previous.get("inputs") == inputs and layer_zip.is_file() and sha256_file(layer_zip) == previous["sha256"]:
        # Same lock, same layout: the zip would come out byte for byte the same (the build is reproducible).
        artefacts.append(Artefact(layer_zip, layer_zip.stat().st_size, previous["sha256"], LAYER_LIMIT))
        layer = False
        if not (out / "layer").is_dir():
            with zipfile.ZipFile(layer_zip) as zf:
                zf.extractall(out / "layer")
    if layer:
        pins = read_lock(lock)
        wheels = fetch_wheels(pins, cache, log, offline)
        tree = layer_tree(pins, wheels, fetch_crcmod(cache, log, offline))
        problems = check_closure(tree)
        if problems:
            raise PackageError("the lock is incomplete (run --update-lock):\n  " + "\n  ".join(problems))
        artefacts.append(_artefact(out / "cos-matting-layer.zip", zip_bytes(tree), LAYER_LIMIT))
        write_tree(tree, out / "layer")
    manifest.update({a.path.name: {"bytes": a.size, "sha256": a.sha256} for a in artefacts})
    if "cos-matting-layer.zip" in manifest and any(a.path.name == "cos-matting-layer.zip" for a in artefacts):
        manifest["cos-matting-layer.zip"]["inputs"] = inputs
    write_atomic(out / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return artefacts


# --- updating the lock -------------------------------------------------------------------------


def update_lock(requirements_in: Path = REQUIREMENTS_IN, lock: Path = LOCK, cache: Path = DEFAULT_CACHE,
                log: Log = print) -> List[Pin]:
    """Resolve requirements-deploy.in for the SCF target and write the pinned, hashed lock.

    cos-python-sdk-v5 is downloaded with --no-deps and its other requirements are resolved
    alongside the rest: resolving it normally with --only-binary would fall back to 1.8.3.
    """
    from email.parser import BytesParser

    from packaging.requirements import Requirement

    top = []
    for line in requirements_in.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            top.append(line)
    sdk = [r for r in top if normalize(Requirement(r).name) == "cos-python-sdk-v5"]
    rest = [r for r in top if r not in sdk]
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        if sdk:
            _pip(["--dest", tmp, "--no-deps", *PIP_TARGET, *sdk], log)
            wheel = next(tmpdir.glob("cos_python_sdk_v5-*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                meta = BytesParser().parsebytes(zf.read(meta_name))
            for spec in meta.get_all("Requires-Dist") or []:
                if normalize(Requirement(spec).name) not in (CRCMOD[0], *NOT_SHIPPED):
                    rest.append(spec)
        _pip(["--dest", tmp, *PIP_TARGET, *rest], log)
        from packaging.utils import parse_wheel_filename

        resolved = {}
        for wheel in sorted(tmpdir.glob("*.whl")):
            name, version, _, _ = parse_wheel_filename(wheel.name)
            resolved[normalize(name)] = (str(version), wheel)
        for name in PURE_PYTHON:
            if name in resolved:
                version, compiled = resolved[name]
                compiled.unlink()
                _pip(["--dest", tmp, "--no-deps", *PURE_TARGET, f"{name}=={version}"], log)
                resolved[name] = (version, next(tmpdir.glob(f"{name.replace('-', '_')}-{version}-py3-none-any.whl")))
        pins = []
        cache.mkdir(parents=True, exist_ok=True)
        for name, (version, wheel) in sorted(resolved.items()):
            pins.append(Pin(name, version, (sha256_file(wheel),)))
            shutil.copy2(wheel, cache / wheel.name)
    lines = ["# Pinned, hashed dependencies of the SCF layer (CPython 3.10, manylinux2014_x86_64).",
             "# Generated by `cos-matting package --update-lock` from deploy/requirements-deploy.in; do not edit.",
             f"# crcmod=={CRCMOD[1]} (sdist only) is pinned by hash in deploy/package.py (CRCMOD)."]
    for pin in sorted(pins, key=lambda p: p.name):
        lines.append(f"{pin.name}=={pin.version} \\\n    " + " \\\n    ".join(f"--hash=sha256:{h}" for h in pin.sha256))
    write_atomic(lock, ("\n".join(lines) + "\n").encode())
    return pins


def human(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MiB"


def artefacts(dist: Path, log: Log) -> Dict[str, bytes]:
    """{"layer" | function: zip bytes} as `build` leaves them in `dist` (what deploy uploads and doctor
    compares the deployed code with)."""
    built = {a.path.name: a.path for a in build(dist, log=log)}
    out = {"layer": built["cos-matting-layer.zip"].read_bytes()}
    for fn in FUNCTIONS:
        out[fn] = built[f"cos-matting-{fn}.zip"].read_bytes()
    return out
