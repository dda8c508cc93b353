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


def _dist_name(requirement: str) -> str:
    import re

    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _installed_with(core: set[str]) -> set[str]:
    """The core distributions and everything they require (not their extras), as installed here."""
    import importlib.metadata as md

    seen, todo = set(), list(core)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        todo += [_dist_name(r) for r in reqs if "extra ==" not in r]
    return seen


# imported only where an optional backend is chosen (none today: the dlib landmark backend is core, since
# iid.predict on a video needs it right after `make train`)
OPTIONAL_MODULES: set[str] = set()


def test_every_module_the_package_imports_comes_with_a_plain_install():
    # `pip install iid` without extras must run training, reports and analyses: a module imported by
    # src/iid that only a dev extra provides (matplotlib once was) fails a user's first run
    import ast
    import importlib.metadata as md
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    available = _installed_with({_dist_name(r) for r in project["dependencies"]})
    providers = md.packages_distributions()
    for dist in md.distributions():  # top_level.txt may leave modules out (dlib-bin names only _dlib_pybind11)
        for top in {f.parts[0].removesuffix(".py") for f in dist.files or [] if len(f.parts) > 1 or f.suffix == ".py"}:
            providers.setdefault(top, [])
            if dist.metadata["Name"] not in providers[top]:
                providers[top].append(dist.metadata["Name"])
    missing = {}
    for path in (ROOT / "src" / "iid").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module.split(".")[0]]
            else:
                continue
            for mod in mods:
                if mod == "iid" or mod in sys.stdlib_module_names or mod in OPTIONAL_MODULES:
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(mod, [])}
                if not dists & available:
                    missing.setdefault(mod, str(path.relative_to(ROOT)))
    assert not missing, f"imported by src/iid but not installed by the core dependencies: {missing}"


# installed for Hydra to find, never imported: the launchers that conf/hydra/launcher/*.yaml select
PLUGINS = {"hydra-joblib-launcher", "hydra-submitit-launcher"}


def test_every_core_dependency_is_imported_by_the_package():
    # a core dependency nothing imports costs every user its install; it belongs in the extra that needs it
    import ast
    import importlib.metadata as md
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    imported = set()
    for path in (ROOT / "src" / "iid").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    # modules the package imports by name: the ImageNet weight packages (importlib, by backbone) and
    # dlib's landmark model (found with importlib.util.find_spec)
    from iid.models.packaged_weights import PACKAGES

    imported |= {module for module, _ in PACKAGES.values()} | {"face_recognition_models"}
    provides: dict[str, set[str]] = {}
    for r in project["dependencies"]:  # dlib-bin's top_level.txt names only _dlib_pybind11: read its files
        try:
            files = md.distribution(_dist_name(r)).files or []
        except md.PackageNotFoundError:
            continue
        provides.setdefault(_dist_name(r), set()).update(
            f.parts[0].split(".")[0] for f in files if not f.parts[0].endswith((".dist-info", ".libs")))
    for module, dists in md.packages_distributions().items():
        for d in dists:
            provides.setdefault(_dist_name(d), set()).add(module)
    unused = [r for r in project["dependencies"]
              if _dist_name(r) not in PLUGINS and not provides.get(_dist_name(r), set()) & imported]  # fmt: skip
    assert not unused, f"core dependencies that no module of src/iid imports: {unused}"
