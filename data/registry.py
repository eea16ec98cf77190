"""Dataset formats by name: how a ``data.sources`` entry of each ``kind`` becomes training
sequences, and how evaluation finds ground-truth sequences in a folder of that layout.

A format is one :func:`register_format` call, made when the module that defines it is imported::

    register_format("csvboxes", load=load_csv_source, find_gt=find_csv_gt, gt_layout="boxes.csv")

* ``load(source, ctx) -> list[Sequence]``: the training sequences of one source entry
  (:class:`data.sources.SourceConfig`; ``ctx`` a :class:`LoadContext`); raise ``InputError`` /
  ``FormatError`` naming the file on bad input.
* ``check(source)``: raise ``ValueError("field: problem")`` for an entry this kind cannot use (a
  missing ``annotations`` file, say); the config check reports it under the entry's index.
* ``label_map(source) -> LabelMap | None``: the action classes the source brings, if any.
* ``find_gt(folder) -> list[GtSequence]``: the ground-truth sequences of this layout under
  ``folder`` (the folder itself when it is one sequence), ``[]`` when it holds none; ``gt_layout``
  says what the layout looks for, for the error when no registered layout finds any.

The built-in formats (synthetic, mot, crowdhuman, coco, yolo, clips) register in ``data/sources.py``;
``tests/extending/test_new_dataset_format.py`` defines and uses a new one end to end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from data.formats.mot import MotRows
    from data.formats.vicr import LabelMap
    from data.sequences import Sequence
    from data.sources import SourceConfig

def resolve_path(text: str) -> Path:
    """A path of a source entry: absolute, or relative to the working directory, as every path a
    user gives (an installed copy has no checkout to be relative to)."""
    return Path(text).expanduser()


@dataclass(frozen=True)
class LoadContext:
    """What training asks of a source besides the entry itself."""

    root: Path  # the entry's ``root``, resolved with :func:`resolve_path`
    clip_span: int  # frames one training clip covers (still images become sequences this long)
    min_visibility: float  # drop training boxes less visible than this, where the format records visibility
    seed: int  # for formats that make random motion (still images)
    where: str  # names the entry in errors: ``config.data.sources[0]``


@dataclass
class GtSequence:
    """One evaluation ground-truth sequence. Frames are MOT frames: 1-based, ``1..num_frames``."""

    name: str
    root: Path  # the sequence folder
    gt: MotRows  # the ground-truth boxes (xyxy pixels), ids and frames
    gt_path: Path  # the file they came from (errors and the "never overwrite an input" check name it)
    num_frames: int
    fps: float  # 0 when the layout does not record it
    class_aware: bool  # 9-column ground truth: MOT16/17/20 class preprocessing applies
    actions: dict = field(default_factory=dict)  # (frame, id) -> action id
    size: tuple[int, int] | None = None  # (width, height) of the frames, when the layout records it


@dataclass(frozen=True)
class DatasetFormat:
    """One registered format; see the module docstring for what each function returns."""

    name: str
    load: Callable[[SourceConfig, LoadContext], list[Sequence]] | None = None
    check: Callable[[SourceConfig], None] | None = None
    label_map: Callable[[SourceConfig], LabelMap | None] | None = None
    find_gt: Callable[[Path], list[GtSequence]] | None = None
    gt_layout: str = ""


# The one registration mapping (name -> format), in registration order: the built-ins first (the
# kinds' error message lists them in that order, and MOT's ground-truth layout is tried first),
# then any a researcher's module adds at its import. Nothing else writes to it.
_FORMATS: dict[str, DatasetFormat] = {}


def _registered() -> dict[str, DatasetFormat]:
    # The built-ins register when data.sources is imported; importing it here makes every lookup
    # (and a researcher's own registration) see them first, whichever module was imported first.
    import data.sources  # noqa: F401
    return _FORMATS


def register_format(name: str, *, load=None, check=None, label_map=None, find_gt=None,
                    gt_layout: str = "") -> DatasetFormat:
    """Add a dataset format (see the module docstring); returns it. A name registered twice, or a
    format that can neither load a source nor find ground truth, is a programming error."""
    formats = _registered()
    if name in formats:
        raise ValueError(f"dataset format {name!r} is already registered")
    if load is None and find_gt is None:
        raise ValueError(f"dataset format {name!r}: give load (a training source), find_gt (ground truth) or both")
    if find_gt is not None and not gt_layout:
        raise ValueError(f"dataset format {name!r}: find_gt needs gt_layout (what its sequence folders hold)")
    formats[name] = DatasetFormat(name, load, check, label_map, find_gt, gt_layout)
    return formats[name]


def unregister_format(name: str) -> None:
    """Remove a format registered for a while only (a test's own)."""
    del _registered()[name]


def source_kinds() -> list[str]:
    """The names a ``data.sources`` entry's ``kind`` may take, in registration order."""
    return [name for name, fmt in _registered().items() if fmt.load is not None]


def kind_problem(kind) -> str | None:
    """Why ``kind`` names no registered source kind (the text after ``...kind: ``), or None."""
    if isinstance(kind, str) and kind in source_kinds():
        return None
    return f"expected one of {', '.join(repr(k) for k in source_kinds())}, got {repr(kind)[:80]}"


def source_format(kind: str) -> DatasetFormat:
    """The format of a checked ``kind`` (:func:`kind_problem` returned None for it)."""
    return _registered()[kind]


def gt_formats() -> list[DatasetFormat]:
    """The formats with a ground-truth layout, in the order evaluation tries them (MOT first)."""
    return [fmt for fmt in _registered().values() if fmt.find_gt is not None]
