"""Clip-level action datasets (UCF101, HMDB51, Kinetics, QEVD, ...) as data for this framework.

Users already have them in one of three layouts:

* **class folders**: ``<root>/<split>/<class>/<video>`` (Kinetics, a refactored QEVD), or
  ``<root>/<class>/<video>`` (UCF101 and HMDB51 as downloaded: one split, ``all``);
* **CSV**: ``<root>/<split>.csv`` files of ``video_name,label`` (with that header), the videos in
  ``<root>/videos/``, ``<root>/<split>/`` or ``<root>/``;
* **JSON list** (QEVD's ``fine_grained_labels_release.json``): ``[{"video_path", "label", "split"}]``,
  paths relative to the JSON file's folder.

A video's label is the action of its **main person**: the longest-lived, largest track in it (from
a checkpoint of this framework, or given boxes), for every frame the clip covers. Other people are
unlabelled (their action is masked out of the loss), never negatives.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import FormatError, InputError
from data.formats.vicr import LabelMap
from data.sequences import FrameAnnotations, VideoSequence
from data.video import VIDEO_EXTENSIONS

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ActionVideo:
    path: Path
    label: str
    split: str


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def read_class_folders(root: Path) -> list[ActionVideo]:
    splits = [s for s in SPLITS if (root / s).is_dir()]
    if splits:
        return [ActionVideo(v, c.name, s) for s in splits for c in sorted((root / s).iterdir()) if c.is_dir()
                for v in _videos_in(c)]
    return [ActionVideo(v, c.name, "all") for c in sorted(root.iterdir()) if c.is_dir() for v in _videos_in(c)]


def read_csv_splits(root: Path) -> list[ActionVideo]:
    out = []
    for split in SPLITS:
        path = root / f"{split}.csv"
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["video_name", "label"]:
                raise FormatError(path, f"expected the header 'video_name,label', got {header!r}", 1)
            for line_no, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2 or not row[0].strip() or not row[1].strip():
                    raise FormatError(path, f"expected 'video_name,label', got {','.join(row)!r}", line_no)
                name = row[0].strip()
                candidates = [root / "videos" / name, root / split / name, root / name]
                video = next((c for c in candidates if c.is_file()), candidates[0])
                out.append(ActionVideo(video, row[1].strip(), split))
    return out


def read_json_list(path: Path) -> list[ActionVideo]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FormatError(path, f"not JSON ({exc})") from None
    if not isinstance(entries, list):
        raise FormatError(path, "expected a list of {video_path, label, split} objects")
    out = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in ("video_path", "label")):
            raise FormatError(path, f"[{k}]: expected an object with string 'video_path' and 'label'")
        out.append(ActionVideo(path.parent / entry["video_path"], entry["label"], str(entry.get("split", "all"))))
    return out


def read_action_dataset(location: str | os.PathLike) -> list[ActionVideo]:
    """The videos of a dataset in any of the three layouts (a JSON file, or a folder with CSV
    files or class folders)."""
    location = Path(location)
    if location.is_file() and location.suffix.lower() == ".json":
        videos = read_json_list(location)
    elif location.is_dir():
        videos = read_csv_splits(location) if any((location / f"{s}.csv").is_file() for s in SPLITS) \
            else read_class_folders(location)
    else:
        raise InputError(f"{location}: action dataset not found (a folder of class folders or CSV files, or a JSON list)")
    if not videos:
        raise InputError(f"{location}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    return videos


def action_label_map(videos: list[ActionVideo]) -> LabelMap:
    return LabelMap.from_names(sorted({v.label for v in videos}))


# ------------------------------------------------------------------------------ the main person
def main_track(tracks: dict) -> int | None:
    """The track that is there longest, ties broken by its mean box area: the person a clip-level
    label is about. ``tracks``: track id -> [(frame index, xyxy box)]."""
    best, best_key = None, None
    for track, items in tracks.items():
        boxes = np.array([b for _, b in items]).reshape(-1, 4)
        area = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).mean()) if len(boxes) else 0.0
        key = (len(items), area)
        if best_key is None or key > best_key:
            best, best_key = track, key
    return best


def read_tracks(path: Path) -> dict:
    """Tracks of one video from a MOT file (``<video>.txt``) or a V-ICR JSON (``<video>.json``)."""
    if path.suffix.lower() == ".json":
        from data.formats.vicr import read_vicr_video
        labels = read_vicr_video(path)
        return {int(pid.rsplit("_", 1)[-1]): [(f.frame_idx, np.array(f.bbox)) for f in person.frames]
                for pid, person in labels.persons.items()}
    from data.formats.mot import read_mot_file, tracks_from_rows
    return tracks_from_rows(read_mot_file(path))


class ActionClipSequence(VideoSequence):
    """One labelled video: its frames, every tracked person's box, and the video's action on its
    main person (the others unlabelled)."""

    def __init__(self, video: ActionVideo, tracks: dict, label_id: int, num_actions: int):
        super().__init__(video.path)
        self.video, self.label_id, self.num_actions = video, label_id, num_actions
        self.name = video.path.stem
        self.main = main_track(tracks)
        self._by_frame: dict[int, list[tuple[int, np.ndarray]]] = {}
        for track, items in tracks.items():
            for frame, box in items:
                self._by_frame.setdefault(frame, []).append((track, box))

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        entries = self._by_frame.get(index, [])
        if not entries:
            return FrameAnnotations.empty()
        tracks = np.array([t for t, _ in entries], np.int64)
        actions = np.where(tracks == self.main, self.label_id, -1)
        return FrameAnnotations(np.array([b for _, b in entries], np.float64).reshape(-1, 4), tracks, actions)
