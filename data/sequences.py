"""Annotated sequences: frames plus per-frame boxes, identities and actions, from any source.

Every source (synthetic / MOTChallenge, AVA, V-ICR) is a :class:`Sequence` with 0-based frame
indices, so :class:`data.clip_dataset.ClipDataset` treats them alike. Annotations of one frame are
a :class:`FrameAnnotations` (boxes ``xyxy`` pixels, see :mod:`common.boxes`).
"""
from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from common.boxes import normalized_to_pixels
from common.errors import FormatError, InputError
from data.formats.ava import AvaRows
from data.formats.mot import (MotRows, read_action_sidecar, read_mot_file, read_seqinfo)
from data.formats.vicr import LabelMap, RecognitionResults, VicrVideoLabels, read_label_map, soft_label
from data.video import VIDEO_EXTENSIONS, VideoReader, list_images, read_image

#: MOT classes trained as "person" (pedestrian, person on vehicle, static person).
PERSON_CLASSES = (1, 2, 7)
#: MOT classes whose zero-marked rows are ignore regions in training, as MOTChallenge's evaluation
#: ignores them (pedestrian, person on vehicle, static person, distractor, reflection): a detector
#: must not learn that people there are background. Zero-marked cars and occluders stay background.
IGNORE_CLASSES = (1, 2, 7, 8, 12)


@dataclass
class FrameAnnotations:
    """Ground truth of one frame. ``actions`` is -1 where unknown; ``soft_actions`` (N, A) or None."""

    boxes: np.ndarray  # (N, 4) float xyxy pixels
    track_ids: np.ndarray  # (N,) int, unique within the frame
    actions: np.ndarray  # (N,) int, -1 = no action label
    soft_actions: np.ndarray | None = None  # (N, A) float rows summing to 1, or all-zero rows when unknown
    annotated: bool = True  # False for frames the source does not label (AVA between keyframes)
    visibility: np.ndarray | None = None  # (N,) visible fraction in [0, 1]; None = fully visible
    ignore_boxes: np.ndarray | None = None  # (K, 4) xyxy regions that are neither people nor background

    @classmethod
    def empty(cls, annotated: bool = True) -> "FrameAnnotations":
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, np.int64), None, annotated)


class Sequence(ABC):
    """Base class: ``len(seq)`` frames, ``seq.frame(i)`` BGR, ``seq.annotations(i)``."""

    name: str
    width: int
    height: int
    fps: float
    num_actions: int = 0

    @abstractmethod
    def __len__(self) -> int:
        """See the class docstring."""

    @abstractmethod
    def frame(self, index: int) -> np.ndarray:
        """See the class docstring."""

    @abstractmethod
    def annotations(self, index: int) -> FrameAnnotations:
        """See the class docstring."""

    def track_ids(self) -> set[int]:
        """Every track id with a training annotation (the ReID classes this sequence brings)."""
        return {int(t) for i in range(len(self)) for t in self.annotations(i).track_ids}

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: frame index {index} outside [0, {len(self)})")


class _FrameSource:
    """Frames of a folder of images or of a video file, by 0-based index.

    Training reads a video's frames in random order, and seeking in compressed video decodes from
    the previous key frame (1.5 s a clip on PETS09's MPEG-4 AVI). So the first random read of a
    video of at most ``cache_frames`` frames decodes it once, in order, and keeps every frame as a
    JPEG in memory (quality 95, about 80 KB a 768x576 frame); longer videos are read by seeking
    (``download_data.py --extract-frames`` writes their frames to disk instead)."""

    cache_frames = 5000

    def __init__(self, images: list[Path] | None = None, video: Path | None = None):
        self.images = images
        self.video_path = video
        self._video: VideoReader | None = None
        self._cache: list[bytes] | None = None

    def __len__(self) -> int:
        if self.images is not None:
            return len(self.images)
        return len(self._reader())

    def _reader(self) -> VideoReader:
        if self._video is None:  # opened lazily: DataLoader workers each open their own
            self._video = VideoReader(self.video_path)
        return self._video

    def _fill_cache(self) -> None:
        reader = VideoReader(self.video_path)
        self._cache = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for _, frame in reader]
        reader.close()

    def read(self, index: int) -> np.ndarray:
        if self.images is not None:
            return read_image(self.images[index])
        reader = self._reader()
        if self._cache is None and index != reader._next_index and len(reader) <= self.cache_frames:
            self._fill_cache()
        if self._cache is not None:
            if index >= len(self._cache):
                raise InputError(f"{self.video_path}: cannot decode frame {index} (the video ends after "
                                 f"{len(self._cache)} frames)")
            return cv2.imdecode(np.frombuffer(self._cache[index], np.uint8), cv2.IMREAD_COLOR)
        return reader.read(index)

    def __getstate__(self):
        return {**self.__dict__, "_video": None, "_cache": None}


class MotSequence(Sequence):
    """A MOTChallenge sequence folder (``seqinfo.ini``, ``img1/`` or a video file, ``gt/``, ``det/``).

    Frame index ``i`` is MOT frame ``i + 1``. Training annotations keep ground-truth rows with
    ``conf == 1`` of the person classes with visibility >= ``min_visibility``; actions come from
    ``gt/actions.txt`` when present and are named by ``label_map`` (default: the dataset's
    ``label_map.txt`` two levels up, as the synthetic benchmark writes it).
    """

    def __init__(self, root: str | os.PathLike, min_visibility: float = 0.0, label_map: LabelMap | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: sequence folder not found")
        self.info = read_seqinfo(self.root / "seqinfo.ini")
        self.name, self.width, self.height, self.fps = self.info.name, self.info.width, self.info.height, self.info.frame_rate
        img_dir = self.root / self.info.im_dir
        images = list_images(img_dir) if img_dir.is_dir() else []
        if images:
            if len(images) < self.info.seq_length:
                raise InputError(f"{img_dir}: {len(images)} images but seqinfo.ini says seqLength={self.info.seq_length}")
            self._frames = _FrameSource(images=images[: self.info.seq_length])
        else:
            videos = sorted(p for p in self.root.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            if not videos:
                raise InputError(f"{self.root}: no frames ({self.info.im_dir}/ is missing or empty and there is no video file)")
            self._frames = _FrameSource(video=videos[0])
        self.min_visibility = min_visibility
        gt_path = self.root / "gt" / "gt.txt"
        self.gt = read_mot_file(gt_path) if gt_path.is_file() else None
        det_path = self.root / "det" / "det.txt"
        self.det_path = det_path if det_path.is_file() else None
        actions_path = self.root / "gt" / "actions.txt"
        self.actions = read_action_sidecar(actions_path) if actions_path.is_file() else {}
        if label_map is None and (self.root.parent.parent / "label_map.txt").is_file():
            label_map = read_label_map(self.root.parent.parent / "label_map.txt")
        self.label_map = label_map
        self.num_actions = (max(label_map.ids()) + 1) if label_map else 0
        if self.gt is not None:
            if len(self.gt) and self.gt.frame.max() > self.info.seq_length:
                raise FormatError(gt_path, f"frame {int(self.gt.frame.max())} beyond seqLength={self.info.seq_length}")
            person = (self.gt.conf > 0) & np.isin(self.gt.class_id, PERSON_CLASSES)
            keep = person & (self.gt.visibility >= min_visibility)
            # People too hidden to learn from, and zero-marked people, are ignored rather than background.
            ignore = (person & ~keep) | ((self.gt.conf == 0) & np.isin(self.gt.class_id, IGNORE_CLASSES))
            self._train_rows = self.gt.select(keep)
            self._rows_by_frame = {int(f): np.flatnonzero(self._train_rows.frame == f) for f in np.unique(self._train_rows.frame)}
            self._ignore_rows = self.gt.select(ignore)
            self._ignore_by_frame = {int(f): np.flatnonzero(self._ignore_rows.frame == f)
                                     for f in np.unique(self._ignore_rows.frame)}
        if self.actions and self.num_actions and max(self.actions.values()) >= self.num_actions:
            raise FormatError(actions_path, f"action id {max(self.actions.values())} not in the label map "
                                            f"({self.num_actions} actions)")

    def __len__(self) -> int:
        return self.info.seq_length

    def track_ids(self) -> set[int]:
        return set() if self.gt is None else {int(t) for t in np.unique(self._train_rows.track_id)}

    @property
    def frames_from(self) -> str:
        """Where frames come from: ``"img1"`` (image files) or ``"video"``."""
        return "video" if self._frames.video_path is not None else "img1"

    @property
    def video_path(self) -> Path | None:
        return self._frames.video_path

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return self._frames.read(index)

    def detections(self) -> MotRows:
        if self.det_path is None:
            raise InputError(f"{self.root}: no det/det.txt")
        return read_mot_file(self.det_path)

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        if self.gt is None:
            return FrameAnnotations.empty(annotated=False)
        rows = self._train_rows.select(self._rows_by_frame.get(index + 1, np.zeros(0, np.int64)))
        actions = np.array([self.actions.get((index + 1, int(t)), -1) for t in rows.track_id], dtype=np.int64)
        ignored = self._ignore_by_frame.get(index + 1)
        return FrameAnnotations(rows.boxes.copy(), rows.track_id.copy(), actions, visibility=rows.visibility.copy(),
                                ignore_boxes=None if ignored is None else self._ignore_rows.boxes[ignored].copy())


class FrameRange(Sequence):
    """MOT frames ``first``..``last`` (1-based, inclusive) of a sequence, as a sequence of its own:
    training on frames 1-430 of PETS09-S2L1 and validating on 431-530 never mixes the two."""

    def __init__(self, base: Sequence, first: int, last: int):
        if not 1 <= first <= last <= len(base):
            raise InputError(f"{base.name}: frames {first}-{last} outside its frames 1-{len(base)}")
        self.base, self.first, self.last = base, first, last
        self.name, self.width, self.height, self.fps = base.name, base.width, base.height, base.fps
        self.num_actions = base.num_actions
        self.label_map = getattr(base, "label_map", None)

    def __len__(self) -> int:
        return self.last - self.first + 1

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return self.base.frame(index + self.first - 1)

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        return self.base.annotations(index + self.first - 1)


class AvaSequence(Sequence):
    """One AVA video: frames extracted at ``fps`` into ``frames_dir`` (mmaction2's
    ``img_00001.jpg`` layout, frame 1 = second ``start_second``), labelled at the keyframes.

    AVA is multi-label: ``soft_actions`` spreads each box's labels evenly and ``actions`` holds the
    first of them. ``action_ids`` lists the AVA ids in the order of the model's action outputs.
    """

    def __init__(self, frames_dir: str | os.PathLike, rows: AvaRows, action_ids: list[int], fps: float = 30.0,
                 start_second: int = 900, name: str | None = None):
        self.root = Path(frames_dir)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: AVA frames folder not found")
        images = list_images(self.root)
        if not images:
            raise InputError(f"{self.root}: no extracted frames")
        self._frames = _FrameSource(images=images)
        first = read_image(images[0])
        self.height, self.width = first.shape[:2]
        self.fps, self.name, self.start_second = fps, name or self.root.name, start_second
        self.action_index = {a: i for i, a in enumerate(action_ids)}
        self.num_actions = len(action_ids)
        self._by_frame: dict[int, FrameAnnotations] = {}
        unknown = ~np.isin(rows.action_id, list(self.action_index))
        if unknown.any():
            ids = sorted(set(rows.action_id[unknown].tolist()))
            warnings.warn(f"{self.name}: {int(unknown.sum())} AVA labels with action ids outside the model's "
                          f"{self.num_actions} actions ({', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''}) "
                          "are left out", stacklevel=2)
        for t in np.unique(rows.timestamp):
            at = rows.select(rows.timestamp == t)
            index = int(round((int(t) - start_second) * fps))
            if not 0 <= index < len(images):
                continue
            persons = np.unique(at.person_id)
            boxes, soft = [], np.zeros((len(persons), self.num_actions))
            for k, pid in enumerate(persons):
                mine = at.select(at.person_id == pid)
                boxes.append(normalized_to_pixels(mine.boxes[:1], self.width, self.height)[0])
                for a in mine.action_id:
                    if int(a) in self.action_index:
                        soft[k, self.action_index[int(a)]] = 1.0
            sums = soft.sum(1, keepdims=True)
            hard = np.where(sums[:, 0] > 0, soft.argmax(1), -1)
            soft = np.divide(soft, sums, out=np.zeros_like(soft), where=sums > 0)
            self._by_frame[index] = FrameAnnotations(np.array(boxes).reshape(-1, 4), persons.astype(np.int64), hard, soft)

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return self._frames.read(index)

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        return self._by_frame.get(index, FrameAnnotations.empty(annotated=False))


class VideoSequence(Sequence):
    """A sequence whose frames are a video file's (annotations from a subclass)."""

    def __init__(self, video: str | os.PathLike, fps: float | None = None):
        self._frames = _FrameSource(video=Path(video))
        reader = self._frames._reader()
        self.width, self.height = reader.width, reader.height
        self.fps = fps or reader.fps or 25.0
        self._length = len(reader)

    def __len__(self) -> int:
        return self._length

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return self._frames.read(index)


class VicrSequence(VideoSequence):
    """A video with V-ICR pseudo-labels (``output/<video>.json``), optionally with the VLM's
    per-second top-k candidates (``recognition_results.json``) as soft action targets."""

    def __init__(self, video: str | os.PathLike, labels: VicrVideoLabels, recognition: RecognitionResults | None = None):
        super().__init__(video, fps=labels.video.fps)
        self.name = labels.video.name
        if (self.width, self.height) != (labels.video.width, labels.video.height):
            raise InputError(f"{video}: frames are {self.width}x{self.height} but the labels say "
                             f"{labels.video.width}x{labels.video.height}")
        self.label_map = labels.labelmap if len(labels.labelmap) else (recognition.to_label_map() if recognition else None)
        if recognition is not None and self.label_map is not None:
            # Soft labels name the VLM's raw actions; the grouping that maps them to ids may live
            # only in recognition_results.json.
            groups = {i: list(self.label_map.groups.get(i, [])) + recognition.action_groups.get(n, [])
                      for i, n in self.label_map.names.items()}
            self.label_map = LabelMap(dict(self.label_map.names), groups)
        self.num_actions = (max(self.label_map.ids()) + 1) if self.label_map else 0
        self._by_frame: dict[int, list] = {}
        for pid, person in labels.persons.items():
            track = int("".join(ch for ch in pid if ch.isdigit()) or -1)
            tube = recognition.tubes.get(pid) if recognition else None
            for f in person.frames:
                soft = None
                if tube is not None and self.label_map is not None:
                    soft = soft_label(tube.temporal_labels.get(int(f.timestamp), []), self.label_map)
                action = f.action_id if f.action_id is not None and 0 <= f.action_id < max(self.num_actions, 1) else -1
                self._by_frame.setdefault(f.frame_idx, []).append((f.bbox, track, action, soft))

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        entries = self._by_frame.get(index, [])
        if not entries:
            return FrameAnnotations.empty()
        boxes, tracks, actions, softs = zip(*entries)
        soft = np.zeros((len(entries), self.num_actions))
        for k, s in enumerate(softs):
            if s is not None:
                soft[k, : len(s)] = s
        return FrameAnnotations(np.array(boxes, dtype=np.float64), np.array(tracks, np.int64),
                                np.array(actions, np.int64), soft if any(s is not None for s in softs) else None)


class SequenceView(Sequence):
    """Another sequence's frames and identities with its annotations changed by a subclass."""

    def __init__(self, base: Sequence):
        self.base = base
        self.name, self.width, self.height, self.fps = base.name, base.width, base.height, base.fps
        self.num_actions = base.num_actions

    def __len__(self) -> int:
        return len(self.base)

    def frame(self, index: int) -> np.ndarray:
        return self.base.frame(index)

    def track_ids(self) -> set[int]:
        return self.base.track_ids()


class PseudoLabelledSequence(SequenceView):
    """A sequence whose action targets are a VLM's: boxes and identities are the sequence's own,
    actions the soft per-second top-k of ``recognition_results.json`` for the same track ids
    (pseudo-labels made from the sequence's own tracks, ``scripts/pseudo_label.py --tracks gt``).
    Hard labels are dropped (the network distils the soft ones); a track or second without a
    pseudo-label is unlabelled (masked out of the action loss, never a negative); candidates
    naming actions outside ``label_map`` are dropped and counted in ``unmapped``."""

    def __init__(self, base: Sequence, recognition: RecognitionResults, label_map: LabelMap):
        super().__init__(base)
        self.label_map = label_map
        self.num_actions = max(label_map.ids()) + 1
        known = label_map.name_to_id()
        self.unmapped = 0
        self._soft: dict[tuple[int, int], np.ndarray] = {}
        for key, tube in recognition.tubes.items():
            try:
                track = int(key.rsplit("_", 1)[-1])
            except ValueError:
                raise InputError(f"{recognition.video_path}: tube {key!r} is not named id_<track>") from None
            for second, candidates in tube.temporal_labels.items():
                self.unmapped += sum(c.action.strip().lower() not in known for c in candidates)
                soft = soft_label(candidates, label_map)
                if soft is not None:
                    self._soft[(track, second)] = soft

    def annotations(self, index: int) -> FrameAnnotations:
        ann = self.base.annotations(index)
        second = int(np.floor(index / self.fps + 1e-9))
        soft = np.zeros((len(ann.track_ids), self.num_actions))
        for k, track in enumerate(ann.track_ids):
            target = self._soft.get((int(track), second))
            if target is not None:
                soft[k, : len(target)] = target
        return replace(ann, actions=np.full(len(ann.track_ids), -1, np.int64), soft_actions=soft)


class RenamedActions(SequenceView):
    """A sequence's action labels moved onto another label map by name (unlabelled where the name
    is not in it): validation labels of a dataset scored against a network trained on a
    pseudo-label map."""

    def __init__(self, base: Sequence, source: LabelMap, target: LabelMap):
        super().__init__(base)
        lookup = target.name_to_id()
        self.num_actions = max(target.ids()) + 1
        self._to = {i: lookup.get(n.strip().lower(), -1) for i, n in source.names.items()}

    def annotations(self, index: int) -> FrameAnnotations:
        ann = self.base.annotations(index)
        actions = np.array([self._to.get(int(a), -1) if a >= 0 else -1 for a in ann.actions], np.int64)
        return replace(ann, actions=actions, soft_actions=None)


def with_pseudo_labels(sequences: list[Sequence], working_dir: str | os.PathLike) -> tuple[list[Sequence], LabelMap]:
    """The sequences with the pseudo-labels ``scripts/pseudo_label.py`` wrote to ``working_dir`` for
    them (``<working>/<sequence>/tubes/recognition_results.json``); sequences it has none for keep
    their own labels. Returns them with the run's label map (``<working>/label_map.txt``)."""
    from data.formats.vicr import read_recognition_results
    working_dir = Path(working_dir)
    label_map = read_label_map(working_dir / "label_map.txt")
    out, found = [], 0
    for seq in sequences:
        path = working_dir / seq.name / "tubes" / "recognition_results.json"
        if path.is_file():
            seq = PseudoLabelledSequence(seq, read_recognition_results(path), label_map)
            found += 1
            if seq.unmapped:
                warnings.warn(f"{path}: {seq.unmapped} candidate labels outside {working_dir / 'label_map.txt'} "
                              "were dropped", stacklevel=2)
        out.append(seq)
    if not found:
        raise InputError(f"{working_dir}: no recognition_results.json for any of the sequences "
                         f"({', '.join(s.name for s in sequences[:3])}...)")
    return out, label_map


def mot_split(root: str | os.PathLike, split: str, min_visibility: float = 0.0) -> list[MotSequence]:
    """All sequences of ``root/split`` (the synthetic benchmark's or a MOTChallenge ``train/``)."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise InputError(f"{folder}: split folder not found")
    seqs = sorted(p for p in folder.iterdir() if (p / "seqinfo.ini").is_file())
    if not seqs:
        raise InputError(f"{folder}: no sequence folders with a seqinfo.ini")
    return [MotSequence(p, min_visibility=min_visibility) for p in seqs]
