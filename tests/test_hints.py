"""Every `key=value` a user-facing message names is a key the command it belongs to accepts.

The messages are the string literals and f-strings (and the module constants they use) in the calls
of src/iid that reach the user: `UserError(...)`, warnings and log warnings, prints. A hint belongs
to the entry points of its module (ENTRY_POINTS) or, after `python -m iid.<name>` in the same message,
to that command; it must compose against at least one of them with Hydra's compose API: a literal
value is composed as written (`data.landmarks=oracle`, `perturb=compression`), a placeholder
(`data.root=<folder>`, `out={out}`, `ckpt=PATH`) only needs its key to exist, in the primary config
or in an option of the key's group (`optim.milestones` is a key of optim=multistep).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HINT = re.compile(r"(?<![\w.\-/$<{])([a-z_]\w*(?:\.\w+)*)=(\S*)")
COMMAND = re.compile(r"python -m iid\.(\w+)")
MESSAGE_CALLS = {"UserError", "warn", "warning", "error", "print"}
ENTRY_OF_COMMAND = {"train": "config"}
# the entry points whose command lines reach a module's messages (first match, by path prefix)
ENTRY_POINTS = [
    ("iid/inference/", ["predict"]), ("iid/predict.py", ["predict"]),
    ("iid/synth/", ["synth"]),
    ("iid/analysis/", ["analyze"]), ("iid/analyze.py", ["analyze"]),
    ("iid/augment/show.py", ["show"]), ("iid/augment/sbi", ["config", "sbi_show"]),
    ("iid/models/etd_cam.py", ["etd_cam"]),
    ("iid/report.py", ["report"]), ("iid/reporting/robustness.py", ["report"]),
    ("iid/reporting/", ["config", "report"]),
    ("iid/engine/checkpoints.py", ["config", "evaluate", "predict", "analyze"]),
    ("iid/data/faces.py", ["prepare", "config", "predict"]),
    ("", ["config", "evaluate", "prepare"]),
]  # fmt: skip


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    """A string expression's text, with "\\0" where an f-string inserts a value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _text(node.left, constants), _text(node.right, constants)
        return None if a is None or b is None else a + b
    return None


def _messages(tree: ast.Module) -> list[tuple[int, str]]:
    constants = {}
    for node in tree.body:  # module-level message constants (_DLIB_HINT = ("..." "..."))
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if (text := _text(node.value, {})) is not None:
                constants[node.targets[0].id] = text
    out = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name not in MESSAGE_CALLS:
            continue
        texts = [t for arg in [*call.args, *(k.value for k in call.keywords)] for node in ast.walk(arg)
                 if isinstance(node, (ast.Constant, ast.JoinedStr, ast.Name, ast.BinOp))
                 and (t := _text(node, constants)) is not None]  # fmt: skip
        # the whole message only, not again each literal piece of it
        out += [(call.lineno, t) for t in dict.fromkeys(texts) if not any(t != u and t in u for u in texts)]
    return out


def collect_hints() -> list[tuple[str, tuple[str, ...], str, str]]:
    """(where, entry points, key, value) of every hint in the messages of src/iid."""
    hints = set()
    for path in sorted((SRC / "iid").rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        entries = next(e for prefix, e in ENTRY_POINTS if rel.startswith(prefix))
        for line, text in _messages(ast.parse(path.read_text())):
            # a `python -m iid.<name>` in the message: the hints after it are that command's
            parts = COMMAND.split(text)
            segments = [(tuple(entries), parts[0])]
            for cmd, seg in zip(parts[1::2], parts[2::2]):
                command, _, rest = seg.partition("`")  # a command in backticks ends at the backtick
                segments += [((ENTRY_OF_COMMAND.get(cmd, cmd),), command), (tuple(entries), rest)]
            for owners, seg in segments:
                for m in HINT.finditer(seg):
                    hints.add((f"{rel}:{line}", owners, m.group(1), m.group(2).rstrip("`'\").,;:")))
    return sorted(hints)


def is_placeholder(value: str) -> bool:
    """`<folder>`, `{value}`, `PATH`, `...`, a list to fill in: only the key must exist."""
    return not value or "\0" in value or value.isupper() or not re.fullmatch(r"[\w.\-/]+", value) or value == "..."


@cache
def _compose(entry: str, overrides: tuple[str, ...]):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module("iid.conf", version_base="1.3"):
        cfg = compose(entry, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=False)


def _has(node, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def composes(entry: str, key: str, value: str) -> bool:
    from iid.engine.cli import CONF_DIR, primary_groups

    try:
        if not is_placeholder(value):
            _compose(entry, (f"{key}={value}",))  # a group option or a key's value, as the user would type it
            return True
        if _has(_compose(entry, ()), key) or key in primary_groups(entry):
            return True
        group = key.split(".")[0]
        if group in primary_groups(entry):  # a key of another option of its group
            for option in sorted((CONF_DIR / group).rglob("*.yaml")):
                name = option.relative_to(CONF_DIR / group).with_suffix("").as_posix()
                if _has(_compose(entry, (f"{group}={name}",)), key):
                    return True
    except Exception:
        return False
    return False


HINTS = collect_hints()


def test_the_collector_finds_the_hints():
    # the scan itself: hints inside f-strings, module constants and `python -m` commands are seen
    keys = {(h[2], h[1]) for h in HINTS}
    assert ("data.landmarks", ("prepare", "config", "predict")) in keys  # faces.py's constant
    assert ("data.test_sets", ("config", "evaluate", "prepare")) in keys  # an f-string
    assert any(k == "ckpt" and owners == ("evaluate",) for k, owners in keys)  # after python -m iid.evaluate
    assert len(HINTS) > 40


@pytest.mark.parametrize("where,entries,key,value", HINTS, ids=[f"{h[0]}:{h[2]}" for h in HINTS])
def test_every_hint_composes(where, entries, key, value):
    assert any(composes(e, key, value) for e in entries), (
        f"{where} names {key}={value}, which `python -m iid.{'/'.join(entries)}` does not accept")
