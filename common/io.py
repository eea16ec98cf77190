"""Atomic file writes: a crash or a kill never leaves a truncated file at the final path, and the
file that was there before stays intact until the new one is complete."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterator


def partial_path(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path``, unique per writer, keeping the suffix (video writers pick
    the container from it): ``out.mp4`` -> ``.out.<pid>-<random>.partial.mp4``."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(3)}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; it is renamed onto ``path`` when the block succeeds (if
    the block wrote it) and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        yield tmp
        if tmp.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, payload, **dump_options) -> None:
    dump_options.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(payload, **dump_options) + "\n")
