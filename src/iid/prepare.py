"""`python -m iid.prepare data=<name> data.root=DIR [prepare.workers=N] [prepare.landmarks=oracle]`

Builds the frame store (docs/interfaces.md) of a data set, and of the cross-data test sets named in
`data.cross`, from the raw layout. The engine is `iid.data.preparation` (`prepare_dataset(...)` is the
same as a Python call).
"""

from __future__ import annotations

import logging

from iid.data.preparation import prepare_dataset
from iid.errors import UserError
from iid.runs import hydra_entry

log = logging.getLogger(__name__)


def _from_config(cfg) -> list[dict]:
    """The prepare_dataset calls a composed config asks for: the data set, then its cross test sets."""
    from omegaconf import OmegaConf

    data, p = cfg.data, cfg.prepare
    workers = cfg.get("workers") if cfg.get("workers") is not None else p.workers
    common = {
        "store_root": data.store_root,
        "frames": p.frames if p.get("frames") is not None else data.get("frames", 32),
        "landmarks": p.landmarks if p.get("landmarks") is not None else data.get("landmarks", "dlib"),
        "store_size": p.store_size,
        "face_scale": p.face_scale,
        "workers": workers,
        "progress": p.get("progress", True),
    }
    if data.get("root") is None:
        raise UserError(f"data.root is not set: pass data.root=<{data.get('name', 'raw data')} folder>")
    calls = [{
        "reader": data.get("reader", data.get("name")), "root": data.root,
        "methods": OmegaConf.to_object(data.methods) if data.get("methods") is not None else None,
        "compression": data.get("compression"), "json_file": data.get("json"), **common,
    }]  # fmt: skip
    for name, c in (data.get("cross") or {}).items():
        if c.get("root") is None:
            log.info("cross test set %s: no root set, not prepared", name)
            continue
        calls.append({"reader": c.get("reader", name), "root": c.root, "compression": c.get("compression"), **common})
    return calls


def _prepare_all(cfg) -> None:
    for call in _from_config(cfg):
        summary = prepare_dataset(**call)
        print(
            f"prepared {'+'.join(summary['datasets'])} -> {summary['store_root']}: {summary['videos']} videos "
            f"({summary['processed']} processed, {summary['skipped_done']} already done), "
            f"status {summary['status']}, rows {summary['rows']}, {summary['seconds']} s"
        )


def main() -> None:
    hydra_entry("prepare", _prepare_all)


if __name__ == "__main__":
    main()
