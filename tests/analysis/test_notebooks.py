"""Every notebook executes against the analyses' outputs of two tiny checkpoints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _executor():
    spec = importlib.util.spec_from_file_location("nb_execute", NOTEBOOKS / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_one_notebook_per_figure_group():
    names = {p.stem for p in _executor().notebooks()}
    assert names == {"fig2_fig5bd_id_probe", "table1_interaction", "fig7_id_overlap", "fig5ac_feature_space",
                     "fig6_visual_results"}  # fmt: skip


@pytest.mark.parametrize("name", ["fig2_fig5bd_id_probe", "table1_interaction", "fig7_id_overlap",
                                  "fig5ac_feature_space", "fig6_visual_results"])  # fmt: skip
def test_notebook_executes(name: str, analyses: Path):
    nb = _executor().execute(NOTEBOOKS / f"{name}.py", analyses, timeout=300)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("outputs") is not None for c in code)
    kinds = {o.get("output_type") for c in code for o in c.outputs}
    assert "error" not in kinds
    data = [o.get("data", {}) for c in code for o in c.outputs if o.get("output_type") == "display_data"]
    assert any("image/png" in d for d in data)  # the figure is shown
    assert any("text/markdown" in d for d in data)  # and its numbers
