"""Dataset readers: one module per on-disk layout, each `reader(root, **opts) -> list[VideoRecord]`.

`get_reader(name)` returns the reader wrapped with the load-time checks of `iid.data.checks`
(no video in two splits, Celeb-DF's test list respected, identities shared across splits reported).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from iid.data.checks import check_records
from iid.data.records import VideoRecord
from iid.data.sources.celebdf import read_celebdf, read_test_list
from iid.data.sources.deepfakebench import read_deepfakebench
from iid.data.sources.dfdc import read_dfdc, read_dfdc_preview
from iid.data.sources.ffpp import read_ffpp
from iid.errors import UserError

Reader = Callable[..., list[VideoRecord]]

READERS: dict[str, Reader] = {
    "ffpp": read_ffpp,
    "celebdf": read_celebdf,
    "celebdf_v1": functools.partial(read_celebdf, dataset="celebdf_v1"),
    "dfdc": read_dfdc,
    "dfdc_preview": read_dfdc_preview,
    "deepfakebench": read_deepfakebench,
}


def get_reader(name: str) -> Reader:
    """The reader for layout `name`, with load-time checks; unknown names are a one-line UserError."""
    if name not in READERS:
        raise UserError(f"unknown data set layout {name!r}: choose one of {sorted(READERS)}")
    raw = READERS[name]

    @functools.wraps(raw)
    def read(root: str | Path, **opts: object) -> list[VideoRecord]:
        if not Path(root).is_dir():
            raise UserError(f"data root {root} is not a folder: set data.root to the {name} data set")
        records = sorted(raw(root, **opts), key=lambda r: r.key)
        test_files = read_test_list(Path(root)) if name.startswith("celebdf") else None
        check_records(records, test_files)
        return records

    return read


__all__ = ["READERS", "Reader", "get_reader"]
