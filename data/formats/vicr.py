"""V-ICR pseudo-label files, exactly as seed 000 describes them.

* ``label_map.txt``: three accepted forms. Labels only (one per line, ids 0, 1, ... in order);
  ``N: label``; or the grouped output form, where each ``N: group`` line may be followed by an
  indented ``-> original action, other action`` line listing the raw VLM actions merged into it.
  Blank lines and ``#`` comments are ignored.
* ``output/<video>.json``: per video, ``version``, ``video`` info, ``labelmap``, ``num_persons``,
  ``persons`` (``id_k`` -> ``action_summary``, per-second ``action_timeline`` and per-frame
  ``frames`` with an xyxy pixel ``bbox`` dict, ``action`` and ``action_id``) and ``summary``.
* ``recognition_results.json``: ``video_path``, ``labelmap`` (names), ``action_groups``, ``tubes``
  (``id_k`` -> per-second ``temporal_labels`` top-k candidates with confidences, and
  ``final_actions``) and ``id_time_actions``.

Readers validate every field they use and raise :class:`FormatError` naming the file and the JSON
path of the problem (``persons.id_1.frames[3].bbox: missing key 'x2'``); a number must be finite
(``NaN``/``Infinity`` are refused, and writers never write them).

One id space in every file: a label map's ids are the file's own (gaps allowed, as AVA's), the
``labelmap`` of ``output/<video>.json`` is keyed by them, and the ``labelmap`` list of
``recognition_results.json`` is indexed by them (``null`` where an id is unused).
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import FormatError
from common.io import atomic_write_json, atomic_write_text


def normalise(action: str) -> str:
    """Lower case, words only, single spaces: how labels and raw actions are compared (the reply
    matcher, grouping, and the check that a label map's names can all be told apart)."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", action.lower()).split())


# ------------------------------------------------------------------------------------ label map
@dataclass
class LabelMap:
    """Action ids -> names, with the raw actions each name groups (empty when not grouped)."""

    names: dict[int, str]
    groups: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def ids(self) -> list[int]:
        return sorted(self.names)

    def name_to_id(self) -> dict[str, int]:
        """Every group name and every grouped raw action -> its id (what soft labels map through)."""
        out = {}
        for i in self.ids():
            for original in self.groups.get(i, []):
                out.setdefault(original.strip().lower(), i)
        for i in self.ids():
            out[self.names[i].strip().lower()] = i
        return out

    @classmethod
    def from_names(cls, names: list[str]) -> "LabelMap":
        return cls({i: n for i, n in enumerate(names)})


_NUMBERED = re.compile(r"^(-?\d+)\s*:\s*(.*)$")


def read_label_map(path: str | os.PathLike, allow_empty: bool = False) -> LabelMap:
    """The label map of ``path``; a file without labels (empty, or comments only) is an error
    unless ``allow_empty``, then an empty map."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    names: dict[int, str] = {}
    groups: dict[int, list[str]] = {}
    first_line: dict[str, tuple[int, str]] = {}  # normalised name -> (line, name as written)
    numbered = None
    last_id = None
    for line_no, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("->"):
            if last_id is None:
                raise FormatError(path, "'->' line before any label", line_no)
            groups[last_id] = [a.strip() for a in text[2:].split(",") if a.strip()]
            continue
        match = _NUMBERED.match(text)
        if numbered is None:
            numbered = match is not None
        elif numbered != (match is not None):
            raise FormatError(path, "mixes 'N: label' lines with plain label lines", line_no)
        if match:
            index, name = int(match.group(1)), match.group(2).strip()
            if index < 0:
                raise FormatError(path, f"label id must be >= 0, got {index}", line_no)
        else:
            index, name = len(names), text
        if not name:
            raise FormatError(path, f"empty label name for id {index}", line_no)
        if index in names:
            raise FormatError(path, f"duplicate label id {index}", line_no)
        # Replies are matched to names after normalise(): two names equal then are one label to
        # the matcher, and the second could never be produced.
        if normalise(name) in first_line:
            line, first = first_line[normalise(name)]
            how = "" if name == first else " after normalising case and punctuation"
            raise FormatError(path, f"{name!r} is the same label as line {line} {first!r}{how}", line_no)
        first_line[normalise(name)] = (line_no, name)
        names[index] = name
        last_id = index
    if not names and not allow_empty:
        raise FormatError(path, "no labels in the file")
    return LabelMap(names, groups)


def write_label_map(path: str | os.PathLike, label_map: LabelMap) -> None:
    lines = []
    for i in label_map.ids():
        lines.append(f"{i}: {label_map.names[i]}")
        if label_map.groups.get(i):
            lines.append("   -> " + ", ".join(label_map.groups[i]))
    atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------- JSON helpers
def _load_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except UnicodeDecodeError:
        raise FormatError(path, "not UTF-8 text") from None


def _write_json(path: str | os.PathLike, payload) -> None:
    """Atomically, refusing a non-finite number (JSON has none; Python would write ``NaN``) with
    the JSON path of the first one."""
    bad = _non_finite(payload, "")
    if bad is not None:
        raise FormatError(path, f"{bad[0]}: cannot write {bad[1]}: expected a finite number")
    atomic_write_json(path, payload, ensure_ascii=False, allow_nan=False)


def _non_finite(value, where: str):
    """``(JSON path, value)`` of the first non-finite float in ``value``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "<root>", value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        inner = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        found = _non_finite(item, inner)
        if found is not None:
            return found
    return None


def _get(obj: Any, key: str, kind, path, where: str, optional: bool = False, default=None, positive: bool = False):
    """``obj[key]`` checked to be of ``kind`` (a float finite, and > 0 when ``positive``); errors
    name the JSON path ``where.key``."""
    if not isinstance(obj, dict):
        raise FormatError(path, f"{where or '<root>'}: expected an object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        if optional:
            return default
        raise FormatError(path, f"{where + ': ' if where else ''}missing key '{key}'")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise FormatError(path, f"{(where + '.') if where else ''}{key}: expected {names}, got {type(value).__name__}")
    if isinstance(value, float) and not (math.isfinite(value) and (value > 0 or not positive)):
        raise FormatError(path, f"{(where + '.') if where else ''}{key}: expected a finite number"
                                f"{' > 0' if positive else ''}, got {value}")
    return value



# ---------------------------------------------------------------------------- output/<video>.json
@dataclass
class VicrVideoInfo:
    name: str
    fps: float
    width: int
    height: int
    total_frames: int
    duration: float


@dataclass
class VicrFrame:
    frame_idx: int  # 0-based frame index in the video
    timestamp: float  # seconds
    bbox: tuple[float, float, float, float]  # xyxy pixels
    action: str | None
    action_id: int | None
    # Not in V-ICR's files, written by this project's inference (readers that do not know them skip them):
    action_scores: tuple[float, ...] | None = None  # per label-map id, the track's action probabilities
    score: float | None = None  # detection confidence


@dataclass
class VicrPerson:
    frames: list[VicrFrame]
    action_timeline: dict[int, tuple[str, int | None]]  # second -> (action, action_id)
    action_summary: list[str] = field(default_factory=list)


@dataclass
class VicrVideoLabels:
    video: VicrVideoInfo
    labelmap: LabelMap
    persons: dict[str, VicrPerson]
    version: str = "1.0"
    partial: bool = False  # the run stopped early (Ctrl-C): the file holds the frames processed so far

    def summary(self) -> dict:
        """Action instances are per person and second, as the timeline counts them."""
        counts = Counter(action for p in self.persons.values() for action, _ in p.action_timeline.values())
        return {"total_action_instances": int(sum(counts.values())),
                "action_distribution": {k: int(v) for k, v in counts.most_common()}}


def _read_labelmap_obj(obj: Any, path, where: str) -> LabelMap:
    if not isinstance(obj, dict):
        raise FormatError(path, f"{where}: expected an object of id -> {{name, original_actions}}")
    names, groups = {}, {}
    for key, entry in obj.items():
        try:
            index = int(key)
        except ValueError:
            raise FormatError(path, f"{where}: key {key!r} is not an integer id") from None
        names[index] = _get(entry, "name", str, path, f"{where}.{key}")
        originals = [str(a) for a in _get(entry, "original_actions", list, path, f"{where}.{key}",
                                          optional=True, default=[])]
        if originals:
            groups[index] = originals
    return LabelMap(names, groups)


def read_vicr_video(path: str | os.PathLike) -> VicrVideoLabels:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, "top level must be a JSON object")
    v = _get(data, "video", dict, path, "")
    video = VicrVideoInfo(
        name=_get(v, "name", str, path, "video"), fps=_get(v, "fps", float, path, "video", positive=True),
        width=_get(v, "width", int, path, "video"), height=_get(v, "height", int, path, "video"),
        total_frames=_get(v, "total_frames", int, path, "video"),
        duration=_get(v, "duration", float, path, "video", optional=True, default=0.0))
    if video.width <= 0 or video.height <= 0:
        raise FormatError(path, f"video: width and height must be positive, got {video.width}, {video.height}")
    labelmap = _read_labelmap_obj(_get(data, "labelmap", dict, path, "", optional=True, default={}), path, "labelmap")
    persons = {}
    for pid, p in _get(data, "persons", dict, path, "").items():
        where = f"persons.{pid}"
        frames = []
        for k, f in enumerate(_get(p, "frames", list, path, where)):
            fw = f"{where}.frames[{k}]"
            b = _get(f, "bbox", dict, path, fw)
            box = tuple(_get(b, c, float, path, f"{fw}.bbox") for c in ("x1", "y1", "x2", "y2"))
            if box[2] < box[0] or box[3] < box[1]:
                raise FormatError(path, f"{fw}.bbox: x2 < x1 or y2 < y1 ({box})")
            frame_idx = _get(f, "frame_idx", int, path, fw)
            if not 0 <= frame_idx < max(video.total_frames, 1):
                raise FormatError(path, f"{fw}.frame_idx {frame_idx} outside the video's {video.total_frames} frames")
            frames.append(VicrFrame(
                frame_idx=frame_idx,
                timestamp=_get(f, "timestamp", float, path, fw, optional=True, default=frame_idx / video.fps),
                bbox=box, action=_get(f, "action", str, path, fw, optional=True),
                action_id=_get(f, "action_id", int, path, fw, optional=True),
                action_scores=_scores(_get(f, "action_scores", list, path, fw, optional=True), path, fw),
                score=_get(f, "score", float, path, fw, optional=True)))
        timeline = {}
        for sec, entry in _get(p, "action_timeline", dict, path, where, optional=True, default={}).items():
            try:
                second = int(sec)
            except ValueError:
                raise FormatError(path, f"{where}.action_timeline: key {sec!r} is not an integer second") from None
            timeline[second] = (_get(entry, "action", str, path, f"{where}.action_timeline.{sec}"),
                                _get(entry, "action_id", int, path, f"{where}.action_timeline.{sec}", optional=True))
        summary = [str(a) for a in _get(p, "action_summary", list, path, where, optional=True, default=[])]
        persons[pid] = VicrPerson(frames=frames, action_timeline=timeline, action_summary=summary)
    return VicrVideoLabels(video=video, labelmap=labelmap, persons=persons,
                           version=str(data.get("version", "1.0")), partial=data.get("partial") is True)


def _scores(values, path, where: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    try:
        scores = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise FormatError(path, f"{where}.action_scores: expected a list of numbers") from None
    bad = [v for v in scores if not 0.0 <= v <= 1.0]  # NaN fails this too
    if bad:
        raise FormatError(path, f"{where}.action_scores: probabilities must be in [0, 1], got {bad[0]}")
    return scores


def _frame_json(f: VicrFrame) -> dict:
    out = {"frame_idx": f.frame_idx, "timestamp": round(f.timestamp, 4),
           "bbox": dict(zip(("x1", "y1", "x2", "y2"), (_num(c) for c in f.bbox))),
           "action": f.action, "action_id": f.action_id}
    if f.score is not None:
        out["score"] = round(float(f.score), 4)
    if f.action_scores is not None:
        out["action_scores"] = [round(float(v), 4) for v in f.action_scores]
    return out


def _num(x: float):
    """Integers stay integers in the JSON (``"x1": 1006``), as V-ICR writes them."""
    return int(x) if float(x).is_integer() else round(float(x), 3)


def write_vicr_video(path: str | os.PathLike, labels: VicrVideoLabels) -> None:
    persons = {}
    for pid, p in labels.persons.items():
        persons[pid] = {
            "action_summary": p.action_summary or sorted({a for a, _ in p.action_timeline.values()}),
            "action_timeline": {str(s): {"action": a, "action_id": i} for s, (a, i) in sorted(p.action_timeline.items())},
            "frames": [_frame_json(f) for f in p.frames],
        }
    v = labels.video
    payload = {
        "version": labels.version,
        "video": {"name": v.name, "fps": v.fps, "width": v.width, "height": v.height,
                  "total_frames": v.total_frames, "duration": round(v.duration, 4)},
        "labelmap": {str(i): {"name": labels.labelmap.names[i], "original_actions": labels.labelmap.groups.get(i, [])}
                     for i in labels.labelmap.ids()},
        "num_persons": len(persons),
        "persons": persons,
        "summary": labels.summary(),
    }
    if labels.partial:  # only then: files of complete runs keep seed 000's keys exactly
        payload["partial"] = True
    _write_json(path, payload)


# ---------------------------------------------------------------------- recognition_results.json
@dataclass
class ActionCandidate:
    action: str
    confidence: float


@dataclass
class VicrTube:
    temporal_labels: dict[int, list[ActionCandidate]]  # second -> top-k candidates, best first
    final_actions: list[tuple[int, str, float]]  # (second, action, confidence)


@dataclass
class RecognitionResults:
    video_path: str
    labelmap: list[str | None]  # index = label id; None where the label map has no such id
    action_groups: dict[str, list[str]]
    tubes: dict[str, VicrTube]

    @staticmethod
    def labelmap_of(label_map: LabelMap) -> list[str | None]:
        """``label_map``'s names indexed by their ids, the gaps None (the ids stay the file's own)."""
        return [label_map.names.get(i) for i in range(max(label_map.ids(), default=-1) + 1)]

    def id_time_actions(self) -> list[dict]:
        return [{"id": tid, "time": t, "action": a, "confidence": c}
                for tid, tube in self.tubes.items() for t, a, c in tube.final_actions]

    def to_label_map(self) -> LabelMap:
        names = {i: n for i, n in enumerate(self.labelmap) if n is not None}
        return LabelMap(names, {i: list(self.action_groups.get(n, [])) for i, n in names.items()})


def read_recognition_results(path: str | os.PathLike) -> RecognitionResults:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, "top level must be a JSON object")
    labelmap = [None if x is None else str(x) for x in _get(data, "labelmap", list, path, "")]
    groups = {str(k): [str(a) for a in v] if isinstance(v, list) else
              _get({"v": v}, "v", list, path, f"action_groups.{k}")
              for k, v in _get(data, "action_groups", dict, path, "", optional=True, default={}).items()}
    tubes = {}
    for tid, t in _get(data, "tubes", dict, path, "").items():
        where = f"tubes.{tid}"
        temporal = {}
        for sec, cands in _get(t, "temporal_labels", dict, path, where).items():
            try:
                second = int(sec)
            except ValueError:
                raise FormatError(path, f"{where}.temporal_labels: key {sec!r} is not an integer second") from None
            if not isinstance(cands, list):
                raise FormatError(path, f"{where}.temporal_labels.{sec}: expected a list of candidates")
            items = []
            for k, c in enumerate(cands):
                cw = f"{where}.temporal_labels.{sec}[{k}]"
                conf = _get(c, "confidence", float, path, cw)
                if not 0.0 <= conf <= 1.0:
                    raise FormatError(path, f"{cw}.confidence must be in [0, 1], got {conf}")
                items.append(ActionCandidate(_get(c, "action", str, path, cw), conf))
            temporal[second] = items
        finals = []
        for k, f in enumerate(_get(t, "final_actions", list, path, where, optional=True, default=[])):
            fw = f"{where}.final_actions[{k}]"
            conf = _get(f, "confidence", float, path, fw)
            if not 0.0 <= conf <= 1.0:
                raise FormatError(path, f"{fw}.confidence must be in [0, 1], got {conf}")
            finals.append((_get(f, "time", int, path, fw), _get(f, "action", str, path, fw), conf))
        tubes[tid] = VicrTube(temporal, finals)
    return RecognitionResults(str(data.get("video_path", "")), labelmap, groups, tubes)


def write_recognition_results(path: str | os.PathLike, results: RecognitionResults) -> None:
    payload = {
        "video_path": results.video_path,
        "labelmap": list(results.labelmap),
        "action_groups": {k: list(v) for k, v in results.action_groups.items()},
        "tubes": {tid: {"temporal_labels": {str(s): [{"action": c.action, "confidence": c.confidence} for c in cands]
                                            for s, cands in sorted(t.temporal_labels.items())},
                        "final_actions": [{"time": s, "action": a, "confidence": c} for s, a, c in t.final_actions]}
                  for tid, t in results.tubes.items()},
        "id_time_actions": results.id_time_actions(),
    }
    _write_json(path, payload)


def soft_label(candidates: list[ActionCandidate], label_map: LabelMap) -> np.ndarray | None:
    """Top-k VLM candidates -> a distribution over ``label_map``'s ids (index = id).

    The files keep the model's own confidences (they need not sum to one); distillation needs a
    distribution, so they are normalised here. Raw actions are mapped to their group through
    ``label_map.groups``; confidences of candidates that land on the same id add up. Returns None
    when no candidate maps to a known label.
    """
    lookup = label_map.name_to_id()
    dist = np.zeros(max(label_map.ids()) + 1, dtype=np.float64)
    for cand in candidates:
        index = lookup.get(cand.action.strip().lower())
        if index is not None:
            dist[index] += max(cand.confidence, 0.0)
    total = dist.sum()
    return dist / total if total > 0 else None
