"""Atomic file writes: a crash or a kill never leaves a truncated file at the final path, and the
file that was there before stays intact until the new one is complete."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

from common.errors import InputError


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


def remove_stale_partials(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writers of ``path`` killed mid-write left behind (their
    process is gone); a live writer's file is kept. Returns what was deleted."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.stem}.*-*.partial{path.suffix}"):
        try:
            pid = int(tmp.name[len(path.stem) + 2:].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def check_output_path(path: Path, what: str) -> None:
    """A file can be created at ``path`` (its folder exists or can be made, and is writable), or
    an :class:`InputError` naming the path."""
    parent = path.parent
    if path.is_dir():
        raise InputError(f"{path}: {what} path is a folder")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{path}: cannot create {what}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write {what}: {probe} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{path}: cannot overwrite {what}: the file is read-only")
