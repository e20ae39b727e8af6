"""tests/e2e fixtures shared by several modules."""
import os
import shutil

import pytest

from .ci_support import Receiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="session")
def built_dist(tmp_path_factory):
    """One `cos-matting package` build (zips, the 7 MB layer) per test process: building the layer
    costs seconds of CPU, and its bytes depend only on the lock (tests/e2e/test_package_layer.py)."""
    from deploy import package

    out = tmp_path_factory.mktemp("built") / "dist"
    package.build(out, log=lambda m: None)
    return out


@pytest.fixture
def dist(built_dist, tmp_path):
    """tmp_path/dist holding that build, as a user's dist/ after an earlier `package`: a deploy into it
    rebuilds the function zips and reuses the layer (package.build's manifest check). Hard links are
    safe: package.build replaces files (os.replace, rmtree), it never writes into one."""
    dest = tmp_path / "dist"
    shutil.copytree(built_dist, dest, copy_function=os.link)
    return dest
