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
