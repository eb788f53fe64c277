"""Progress reporting. The library calls a :data:`ProgressFn`; only CLIs draw progress bars."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressFn", "null_progress"]

#: ``progress(task, done, total)``: ``task`` names the step ("import run-01"), ``total`` may be None.
ProgressFn = Callable[[str, int, int | None], None]


def null_progress(task: str, done: int, total: int | None) -> None:
    """A progress callback that does nothing."""
