"""An unknown key's one-line error names the closest keys the command has, for every entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iid.engine.cli import CONF_DIR, check_overrides
from iid.errors import UserError

SRC = Path(__file__).resolve().parents[1] / "src" / "iid"
ENTRY_POINTS = sorted({m for f in SRC.rglob("*.py") for m in re.findall(r'hydra_entry\("(\w+)"', f.read_text())})


def error_of(config_name: str, overrides: list[str]) -> str:
    with pytest.raises(UserError) as err:
        check_overrides(config_name, overrides)
    return str(err.value)


def leaves(config_name: str) -> dict[str, object]:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module("iid.conf", version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name), resolve=False)
    out: dict[str, object] = {}

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v

    walk(cfg, "")
    return out


def test_every_entry_point_has_a_primary_config():
    assert len(ENTRY_POINTS) >= 10 and all((CONF_DIR / f"{e}.yaml").is_file() for e in ENTRY_POINTS)


@pytest.mark.parametrize("config_name", ENTRY_POINTS)
def test_a_misspelt_key_names_the_key(config_name):
    keys = leaves(config_name)
    # the longest top-level and nested keys (prepare has no top-level one): their typos stay far apart
    kinds = [[k for k in keys if "." not in k and k[:-1] not in keys],  # a typo must not be a key (sweeps -> sweep)
             [k for k in keys if "." in k and k[:-1] not in keys]]
    for key in [max(kind, key=len) for kind in kinds if kind]:
        typo = key[:-1]
        value = keys[key] if isinstance(keys[key], int | float | bool) and keys[key] is not None else "x"
        value = "[x]" if isinstance(keys[key], list) else value  # a list key's typo with a list (report's analyses)
        msg = error_of(config_name, [f"{typo}={str(value).lower() if isinstance(value, bool) else value}"])
        assert msg.startswith(f"unknown key {typo!r}: did you mean ") and key in msg.split("?")[0], msg


def test_the_keys_moved_into_groups_and_renamed():
    assert "did you mean prepare.workers?" in error_of("prepare", ["data=synthetic", "workers=2"])
    assert "did you mean size?" in error_of("synth", ["scale=tiny"])
    assert "did you mean budget.epochs?" in error_of("config", ["+budget_epochs=2"])  # a new key, + form


def test_no_hint_when_nothing_is_close():
    msg = error_of("config", ["+foo=1"])
    assert "did you mean" not in msg and "--cfg job" in msg
