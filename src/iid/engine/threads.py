"""torch's intra-op thread count for a block of work, put back afterwards.

The count is process-wide state (per OS thread for OpenMP): an entry point that sets it for its own work
and returns, called in-process (a test, a notebook, a sweep's job), must not leave the caller running
more threads than it chose, since two 2-thread processes on 2 cores slow each other several times over."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """torch.get_num_threads() is n inside the block (None or 0: unchanged), and what it was after it."""
    before = torch.get_num_threads()
    change = bool(n) and n != before
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)
