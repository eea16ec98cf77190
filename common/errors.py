"""Errors a user can act on: each prints as one line naming the file and the problem.

Scripts catch :class:`InputError` at the top and print ``str(error)`` instead of a traceback.
"""
from __future__ import annotations

import os


class InputError(Exception):
    """Bad user input (file, argument, checkpoint). ``str()`` is a complete one-line message."""


class FormatError(InputError):
    """A file does not follow its format. Carries the path and, when known, the 1-based line."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = os.fspath(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def from_worker(exc: BaseException) -> InputError | None:
    """The one-line error a DataLoader worker process raised. PyTorch re-raises a worker's
    exception in the main process with the worker's whole traceback as its message (or as a
    RuntimeError when the type cannot be rebuilt, as for :class:`FormatError`); this recovers the
    original line when it was one of ours, else returns None."""
    text = str(exc)
    if "Original Traceback" not in text:
        return None
    last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
    for kind in ("FormatError", "InputError"):
        for prefix in (f"common.errors.{kind}: ", f"{kind}: "):
            if last.startswith(prefix):
                return InputError(last[len(prefix):])
    return None
