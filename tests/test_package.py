"""The built wheel carries the configs: `python -m iid.train --cfg job` works from a non-editable install,
run from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_composes_the_configs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=300, capture_output=True)  # fmt: skip
    wheel = next(wheels.glob("iid-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "iid/conf/config.yaml" in names and "iid/conf/model/caddm.yaml" in names
    # install the wheel alone into a folder that shadows the editable install (the dependencies are
    # this interpreter's), then run from a folder that is not the repository
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300, capture_output=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    code = "import iid, sys; sys.argv = ['iid.train', '--cfg', 'job', 'model=binary']; print(iid.__file__)"
    p = subprocess.run([sys.executable, "-c", code + "; import runpy; runpy.run_module('iid.train', run_name='__main__')"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines()[0].startswith(str(target))  # the wheel's copy, not the repository's
    assert "family: binary" in p.stdout and "budget:" in p.stdout
