"""Typed, validated settings built from a config group (a Hydra node or a plain mapping).

Each group the suite reads itself (budget, eval, checkpoint, the trainer's hardware keys, a model
family's options) is a frozen dataclass; `settings(cls, group, node)` builds one and turns every
problem into one `UserError` line naming the key: an unknown key (a typo would otherwise never take
effect), a value of the wrong type, or one outside its range. Ranges live beside the fields:

    batch_size: int = field(default=8, metadata=bounds(1))          # >= 1
    iou_threshold: float = field(default=0.5, metadata=bounds(0, 1, open_low=True, open_high=True))

A field whose default is None, or marked `nullable=True`, accepts None ("not set") besides its type;
the type comes from the annotation, or from `bounds(..., type=int)` where the annotation is a union.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from iid.errors import UserError

T = TypeVar("T")


def bounds(low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False, type: type | None = None, choices: tuple | None = None,  # noqa: A002
           nullable: bool = False) -> dict[str, Any]:
    """Field metadata: the value's allowed range (and its type when the annotation is a union)."""
    return {"low": low, "high": high, "open_low": open_low, "open_high": open_high, "type": type,
            "choices": choices, "nullable": nullable}  # fmt: skip


def plain(node: Any) -> dict[str, Any]:
    """A resolved plain dict of a DictConfig, dataclass or mapping (None -> {})."""
    if node is None:
        return {}
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.asdict(node)
    if not isinstance(node, Mapping):
        raise UserError(f"expected a config group (a mapping), got {type(node).__name__} {node!r}")
    return dict(node)


def _kind(f: dataclasses.Field, cls: type) -> type:
    meta_type = f.metadata.get("type")
    if meta_type is not None:
        return meta_type
    hints = typing.get_type_hints(cls)
    hint = hints[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args and typing.get_origin(hint) is not None and len(args) == 1 else hint


def _coerce(where: str, kind: Any, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise UserError(f"{where}: expected an integer")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UserError(f"{where}: expected a number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string")
        return value
    origin = typing.get_origin(kind)
    if origin is tuple or kind is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where}: expected a list")
        inner = [a for a in typing.get_args(kind) if a is not Ellipsis]
        return tuple(_coerce(where, inner[0], v) if inner else v for v in value)
    return value


def _check_range(where: str, meta: Mapping[str, Any], value: Any) -> None:
    values = value if isinstance(value, tuple) else (value,)
    if meta.get("choices") is not None and any(v not in meta["choices"] for v in values):
        raise UserError(f"{where}: choose {'each ' if isinstance(value, tuple) else ''}one of "
                        f"{', '.join(map(str, meta['choices']))}")
    lo, hi = meta.get("low"), meta.get("high")
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if lo is not None and (v <= lo if meta.get("open_low") else v < lo):
            raise UserError(f"{where}: must be {'>' if meta.get('open_low') else '>='} {lo:g}")
        if hi is not None and (v >= hi if meta.get("open_high") else v > hi):
            raise UserError(f"{where}: must be {'<' if meta.get('open_high') else '<='} {hi:g}")


def settings(cls: type[T], group: str, node: Any) -> T:
    """Build dataclass `cls` from config group `group`; every bad key or value is one UserError."""
    raw = plain(node)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UserError(f"{group}: unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
    values = {}
    for name, value in raw.items():
        f = known[name]
        where = f"{group}.{name}={value!r}"
        if value is None:
            if f.default is not None and not f.metadata.get("nullable"):
                raise UserError(f"{where}: must be set")
            values[name] = None
            continue
        v = _coerce(where, _kind(f, cls), value)
        _check_range(where, f.metadata, v)
        values[name] = v
    return cls(**values)


def as_dict(obj: Any) -> dict[str, Any]:
    """The settings as a plain dict (for configs stored in checkpoints and results)."""
    return dataclasses.asdict(obj)
