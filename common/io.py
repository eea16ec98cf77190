"""Atomic file writes: a crash or a kill never leaves a truncated file at the final path, and the
file that was there before stays intact until the new one is complete."""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Iterator

from common.errors import InputError


def partial_path(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path``, unique per writer, keeping the suffix (video writers pick
    the container from it): ``out.mp4`` -> ``.out.<pid>-<random>.partial.mp4``."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(3)}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "the file", clean_stale: bool = True) -> Iterator[Path]:
    """Yields a temporary path to write; it is renamed onto ``path`` when the block succeeds (if
    the block wrote it) and removed when it fails. Temporary files that killed writers of ``path``
    left are removed first (``clean_stale=False``: a writer of thousands of files in one folder
    cleans the folder once itself, see :func:`remove_stale_partials`, instead of listing it per
    file). A failed write (full disk, read-only or pseudo file system) is one :class:`InputError`
    naming ``path`` and saying whether the previous file is intact."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if clean_stale:
            remove_stale_partials(path)
        yield tmp
        if tmp.exists():
            os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename) not in (tmp, path, path.parent):
            raise  # not this write's error (the block also reads, e.g. the frames it draws)
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise InputError(f"{path}: cannot write {what} ({exc.strerror or exc}); {kept}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str, clean_stale: bool = True) -> None:
    with atomic_path(path, clean_stale=clean_stale) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, payload, **dump_options) -> None:
    dump_options.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(payload, **dump_options) + "\n")


_PARTIAL = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)-[0-9a-f]+\.partial(?P<suffix>\.[^.]*)?$")


def is_partial_name(name: str) -> bool:
    """Whether ``name`` is one of :func:`partial_path`'s temporary names."""
    return _PARTIAL.match(name) is not None


def remove_stale_partials(path: str | os.PathLike, whole_folder: bool = False) -> list[Path]:
    """Delete the temporary files that writers of ``path`` (with ``whole_folder``: of any file in
    the folder ``path``) killed mid-write left behind (their process is gone); a live writer's
    file is kept. Returns what was deleted."""
    path = Path(path)
    folder, pattern = (path, ".*.partial*") if whole_folder else (path.parent, f".{path.stem}.*-*.partial{path.suffix}")
    removed = []
    for tmp in folder.glob(pattern):
        match = _PARTIAL.match(tmp.name)
        if match is None or (not whole_folder and match["stem"] != path.stem):
            continue
        pid = int(match["pid"])
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


def check_output_path(path: str | os.PathLike, what: str) -> None:
    """A file can be created at ``path`` (its folder exists or can be made, and takes a new file:
    tried for real, since permission bits say nothing on a read-only mount, under ``/proc`` or for
    root), or an :class:`InputError` naming the path."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: {what} path is a folder")
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{path}: cannot create {what}: {probe} is a file, not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{path}: cannot overwrite {what}: the file is read-only")
    try:
        fd, name = tempfile.mkstemp(prefix=".write-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise InputError(f"{path}: cannot write {what} in {probe} ({exc.strerror or exc})") from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links and relative spellings resolved); a path that does
    not exist yet is compared by its resolved name."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_outputs_apart(outputs, inputs) -> None:
    """No output overwrites an input or another output: ``outputs`` and ``inputs`` are ``(path,
    what it is)`` pairs, or mappings of path to what (``None`` paths are skipped), e.g.
    ``[(Path("out.txt"), "--save-mot")]``. Refused before any work with one :class:`InputError`
    naming both."""
    def pairs(given):
        return [(Path(p), what) for p, what in (given.items() if isinstance(given, dict) else given) if p is not None]

    outs, ins = pairs(outputs), pairs(inputs)
    for k, (out, what) in enumerate(outs):
        for source, source_what in ins:
            if same_file(out, source):
                raise InputError(f"{out}: {what} would overwrite {source_what} {source}: choose another output path")
        for other, other_what in outs[k + 1:]:
            if same_file(out, other):
                raise InputError(f"{out}: given as both {what} and {other_what}: one would overwrite the other")
