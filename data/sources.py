"""Training and validation data as a list of sources, mixed with a weight each
(``data.sources`` / ``data.val_sources``; without them the config's ``data.root`` synthetic or
MOTChallenge splits are used)::

    sources:
      - {kind: mot, root: /data/MOT17/train}                          # every sequence folder under it
      - {kind: mot, root: ../shared/data/real/mot/PETS09-S2L1, frames: [1, 430]}   # one sequence, frames 1-430
      - {kind: synthetic, root: data/generated/synthetic, split: train, weight: 0.5}
      - {kind: crowdhuman, root: /data/CrowdHuman/Images, annotations: /data/CrowdHuman/annotation_train.odgt, weight: 0.5}
      - {kind: coco, root: /data/coco/train2017, annotations: /data/coco/annotations/instances_train2017.json}
      - {kind: yolo, root: /data/coco128/images/train2017}     # YOLO labels in .../labels/train2017
      - {kind: clips, root: /data/UCF101, split: all, tracks: /data/UCF101_tracks}  # a clip-level action dataset

A ``weight`` of 0.5 takes half of that source's clips each epoch (a different half each time), 2
takes them twice.

Each ``kind`` is a dataset format registered in :mod:`data.registry`; the six above register at
the end of this module, and a new format is one ``register_format`` call in its own module.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import InputError
from common.schema import from_mapping
from data.formats.vicr import LabelMap, read_label_map
from data.registry import LoadContext, kind_problem, register_format, resolve_path, source_format
from data.sequences import FrameRange, MotSequence, Sequence


@dataclass(frozen=True)
class SourceConfig:
    kind: str  # a registered source kind (data/registry.py): synthetic, mot, crowdhuman, coco, yolo, clips, ...
    root: str  # synthetic/mot: the dataset (split folders), a split folder, or one sequence; stills: the images;
    #            clips: the action dataset (class folders, CSV files, or a JSON list: data/action_clips.py)
    split: str | None = None  # synthetic/mot: the split folder under root (train, val, test)
    frames: tuple[int, int] | None = None  # mot: MOT frames first-last (1-based, inclusive) of every sequence
    annotations: str | None = None  # crowdhuman: the .odgt file; coco: the instances JSON; yolo: the labels
    #                                 folder (default: root's .../images/<split> as .../labels/<split>)
    person_class: int = 0  # yolo: the label class that is a person (0 in COCO's order, as ultralytics' datasets)
    tracks: str | None = None  # clips: a folder of <video>.txt (MOT) or <video>.json (V-ICR) with each video's tracks
    weight: float = 1.0

    # Each message starts with the field, as from_mapping's own ones do: "config.data.sources[1]: frames: ...".
    def check(self) -> None:
        problem = kind_problem(self.kind)
        if problem:
            raise ValueError(f"kind: {problem}")
        if self.weight < 0:
            raise ValueError(f"weight: expected a number >= 0, got {self.weight:g}")
        own_check = source_format(self.kind).check
        if own_check is not None:
            own_check(self)
        if self.frames is not None and not 1 <= self.frames[0] <= self.frames[1]:
            raise ValueError(f"frames: expected [first, last] with 1 <= first <= last, got {list(self.frames)}")


def read_sources(entries, where: str) -> tuple[SourceConfig, ...] | None:
    """``data.sources`` / ``data.val_sources`` (``where``) checked entry by entry, so a bad entry
    is named with its index, field and value (``config.data.sources[1].kind: expected one of
    ...``, the registered kinds); checked as one ``X | None`` value, any bad entry only read
    "expected a list of mappings or null"."""
    if entries is None:
        return None
    if not isinstance(entries, (list, tuple)):
        raise InputError(f"{where}: expected a list of sources or null, got {repr(entries)[:80]}")
    for i, entry in enumerate(entries):
        # Before the other fields, and named as a field of its own as an unknown Literal was.
        problem = kind_problem(entry["kind"]) if isinstance(entry, dict) and "kind" in entry else None
        if problem:
            raise InputError(f"{where}[{i}].kind: {problem}")
    return tuple(from_mapping(SourceConfig, entry, f"{where}[{i}]") for i, entry in enumerate(entries))


def load_source(source: SourceConfig, clip_span: int, min_visibility: float = 0.0, seed: int = 0,
                where: str = "source") -> list[Sequence]:
    """The sequences of one source, by its kind's registered ``load`` (stills: one short sequence
    per image, ``clip_span`` frames); ``where`` names the source in errors (``config.data.sources[0]``)."""
    problem = kind_problem(source.kind)  # an entry built in code, not read through read_sources
    if problem:
        raise InputError(f"{where}.kind: {problem}")
    context = LoadContext(resolve_path(source.root), clip_span, min_visibility, seed, where)
    sequences = source_format(source.kind).load(source, context)
    if not sequences:  # the built-in kinds say why themselves; a new format may not
        raise InputError(f"{where}: no sequences in {context.root} (a {source.kind} source)")
    return sequences


def cut_to_frames(sequences: list[Sequence], source: SourceConfig, where: str) -> list[Sequence]:
    """Each sequence cut to the entry's ``frames`` (MOT frames, 1-based, inclusive), when it gives them."""
    if source.frames is None:
        return sequences
    # Clipping a range to a shorter sequence trained on other frames than asked for (and a range
    # past the end left no clip, failing later in the ReID loss).
    for s in sequences:
        if source.frames[1] > len(s):
            raise InputError(f"{where}.frames: {list(source.frames)} but {getattr(s, 'root', s.name)} has "
                             f"{len(s)} frames")
    return [FrameRange(s, *source.frames) for s in sequences]


def source_label_map(sources: list[SourceConfig]) -> LabelMap | None:
    """The label map of the first source that has one (its kind's registered ``label_map``): a
    synthetic benchmark's ``label_map.txt``, or an action dataset's classes (sorted by name, over
    all its splits)."""
    for source in sources:
        find = source_format(source.kind).label_map
        label_map = find(source) if find is not None else None
        if label_map is not None:
            return label_map
    return None


# ------------------------------------------------------------------------------- built-in kinds
def _load_mot(source: SourceConfig, context: LoadContext) -> list[Sequence]:
    folder = context.root / source.split if source.split else context.root
    if (folder / "seqinfo.ini").is_file():
        sequences = [MotSequence(folder, min_visibility=context.min_visibility)]
    elif folder.is_dir():
        sequences = [MotSequence(p, min_visibility=context.min_visibility) for p in sorted(folder.iterdir())
                     if (p / "seqinfo.ini").is_file()]
    else:
        raise InputError(f"{folder}: {source.kind} source not found")
    if not sequences:
        raise InputError(f"{folder}: no sequence folders with a seqinfo.ini")
    return cut_to_frames(sequences, source, context.where)


def _mot_label_map(source: SourceConfig) -> LabelMap | None:
    root = resolve_path(source.root)
    for candidate in (root / "label_map.txt", root.parent / "label_map.txt"):
        if candidate.is_file():
            return read_label_map(candidate)
    return None


def _load_stills(source: SourceConfig, context: LoadContext) -> list[Sequence]:
    from data.stills import StillClipSequence, read_stills
    images = read_stills(source.kind, context.root, resolve_path(source.annotations) if source.annotations else None,
                         source.person_class)
    return [StillClipSequence(image, context.clip_span, seed=context.seed) for image in images]


def _check_stills(source: SourceConfig) -> None:
    if source.person_class < 0:
        raise ValueError(f"person_class: expected a class id >= 0, got {source.person_class}")
    if source.kind != "yolo" and not source.annotations:
        raise ValueError(f"annotations: missing (a {source.kind} source needs its annotation file)")


def _clip_videos(source: SourceConfig, root: Path):
    from data.action_clips import read_action_dataset
    videos = read_action_dataset(root)
    split = [v for v in videos if source.split is None or v.split == source.split]
    if not split:
        raise InputError(f"{root}: no videos in split {source.split!r} (it has {', '.join(sorted({v.split for v in videos}))})")
    return videos, split


def _load_clips(source: SourceConfig, context: LoadContext) -> list[Sequence]:
    from data.action_clips import ActionClipSequence, action_label_map, read_tracks
    videos, split = _clip_videos(source, context.root)
    label_map = action_label_map(videos)
    ids = {name: i for i, name in label_map.names.items()}
    tracks_dir = resolve_path(source.tracks)
    sequences = []
    for video in split:
        path = next((tracks_dir / f"{video.path.stem}{ext}" for ext in (".txt", ".json")
                     if (tracks_dir / f"{video.path.stem}{ext}").is_file()), None)
        if path is None:
            raise InputError(f"{tracks_dir}: no {video.path.stem}.txt or .json with the tracks of {video.path}")
        sequences.append(ActionClipSequence(video, read_tracks(path), ids[video.label], len(label_map)))
    return sequences


def _clips_label_map(source: SourceConfig) -> LabelMap:
    from data.action_clips import action_label_map
    return action_label_map(_clip_videos(source, resolve_path(source.root))[0])


def _check_clips(source: SourceConfig) -> None:
    if not source.tracks:
        raise ValueError("tracks: missing (a clips source needs each video's tracks: scripts/pseudo_label.py "
                         "--skip-recognition --checkpoint ... writes them)")


def _register_builtins() -> None:
    from data.formats.mot import find_gt_sequences
    # This order is the order the kinds are listed in errors; "mot" is the first ground-truth layout.
    register_format("synthetic", load=_load_mot, label_map=_mot_label_map)
    register_format("mot", load=_load_mot, label_map=_mot_label_map, find_gt=find_gt_sequences,
                    gt_layout="gt/gt.txt or gt.txt")
    register_format("crowdhuman", load=_load_stills, check=_check_stills)
    register_format("coco", load=_load_stills, check=_check_stills)
    register_format("yolo", load=_load_stills, check=_check_stills)
    register_format("clips", load=_load_clips, check=_check_clips, label_map=_clips_label_map)


_register_builtins()
