"""User-facing errors: raised for bad input, printed by entry points as one line, exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix (bad path, bad config value, unreadable input)."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Turn a UserError escaping an entry point into `error: <message>` on stderr and exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
