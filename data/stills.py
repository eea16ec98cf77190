"""Still-image person datasets as clips (CrowdHuman ``.odgt``, COCO-format person annotations,
YOLO-format label folders):
every strong MOT recipe (FairMOT, ByteTrack) adds them to MOT17 for detection. An image becomes a
clip of T frames by a random smooth affine motion across the frames (CenterTrack's trick): each
person keeps one track id in every frame, crowds and ignore-tagged boxes become ignore regions, and
there are no action labels (the action loss is masked for them) and no identities (ReID learns
from the video sources).

Formats:

* CrowdHuman ``annotation_*.odgt``: one JSON object per line, ``{"ID": ..., "gtboxes": [{"tag":
  "person" | "mask", "fbox": [x, y, w, h], "extra": {"ignore": 0 | 1}}, ...]}``; images are
  ``<root>/<ID>.jpg``. The full-body box ``fbox`` is used; ``tag: mask`` (crowds, reflections)
  and ``extra.ignore: 1`` boxes are ignore regions.
* COCO ``instances_*.json``: ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``,
  ``bbox [x, y, w, h]``, ``category_id``, ``iscrowd``), ``categories`` (``id``, ``name``); boxes of
  the ``person`` category are people, ``iscrowd: 1`` ones ignore regions; images are
  ``<root>/<file_name>``.
* YOLO (ultralytics') labels: a folder of ``<image stem>.txt``, one object per line ``class cx cy w
  h`` as fractions of the image's width and height; an image with no label file holds nobody.
  Lines of the person class (``0``, COCO's order, unless said) are people; other classes are
  neither people nor ignored (as in the COCO reader). Extra numbers after the box (a segment's
  polygon) are not read.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.errors import FormatError, InputError
from data.sequences import FrameAnnotations, Sequence
from data.video import read_image


@dataclass
class StillImage:
    path: Path
    boxes: np.ndarray  # (N, 4) xyxy people
    ignore_boxes: np.ndarray  # (K, 4) xyxy regions neither people nor background
    # boxes as fractions of the image's width and height (YOLO labels: the size is known only once
    # the image is read, and reading every image to load a dataset would take minutes on COCO)
    normalised: bool = False

    def in_pixels(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """``(people, ignore_boxes)`` xyxy in pixels of the image, ``width`` x ``height``."""
        if not self.normalised:
            return self.boxes, self.ignore_boxes
        scale = np.array([width, height, width, height], np.float64)
        return self.boxes * scale, self.ignore_boxes * scale


STILL_KINDS = ("crowdhuman", "coco", "yolo")


def still_kind_of(annotations: str | os.PathLike | None) -> str:
    """The format of a still-image annotation path: a folder (or none: the YOLO labels beside the
    images) is YOLO's, a ``.json`` COCO's, an ``.odgt`` CrowdHuman's."""
    if annotations is None or Path(annotations).is_dir():
        return "yolo"
    suffix = Path(annotations).suffix.lower()
    if suffix in (".json", ".odgt"):
        return "coco" if suffix == ".json" else "crowdhuman"
    raise InputError(f"{annotations}: not still-image annotations (a COCO .json, a CrowdHuman .odgt, or a folder "
                     "of YOLO labels)")


def read_stills(kind: str, image_root: str | os.PathLike, annotations: str | os.PathLike | None = None,
                person_class: int = 0) -> list[StillImage]:
    """The images with people of a still-image dataset of ``kind`` (:data:`STILL_KINDS`);
    ``annotations``: its annotation file, or YOLO's labels folder (default: beside the images)."""
    if kind == "yolo":
        labels = Path(annotations) if annotations else default_yolo_labels(image_root)
        images = read_yolo_persons(labels, image_root, person_class)
        if not images:
            raise InputError(f"{labels}: no image under {image_root} with a person (class {person_class})")
        return images
    if kind not in STILL_KINDS:
        raise ValueError(f"kind must be one of {STILL_KINDS}, got {kind!r}")
    if annotations is None:
        raise InputError(f"{image_root}: a {kind} dataset needs its annotation file")
    images = (read_crowdhuman if kind == "crowdhuman" else read_coco_persons)(annotations, image_root)
    if not images:
        raise InputError(f"{annotations}: no image with a person")
    return images


def _xywh(box, path, where) -> list[float]:
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        raise FormatError(path, f"{where}: expected a box [x, y, w, h], got {box!r}")
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def read_crowdhuman(odgt: str | os.PathLike, image_root: str | os.PathLike) -> list[StillImage]:
    odgt, image_root = Path(odgt), Path(image_root)
    if not odgt.is_file():
        raise InputError(f"{odgt}: CrowdHuman annotation file not found")
    images = []
    for line_no, line in enumerate(odgt.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise FormatError(odgt, f"not a JSON object ({exc})", line_no) from None
        if not isinstance(record, dict) or "ID" not in record or not isinstance(record.get("gtboxes"), list):
            raise FormatError(odgt, "expected an object with 'ID' and a 'gtboxes' list", line_no)
        people, ignore = [], []
        for k, box in enumerate(record["gtboxes"]):
            if not isinstance(box, dict) or "fbox" not in box:
                raise FormatError(odgt, f"gtboxes[{k}]: expected an object with 'fbox'", line_no)
            xyxy = _xywh(box["fbox"], odgt, f"line {line_no} gtboxes[{k}].fbox")
            ignored = box.get("tag") != "person" or (box.get("extra") or {}).get("ignore", 0) == 1
            (ignore if ignored else people).append(xyxy)
        images.append(StillImage(image_root / f"{record['ID']}.jpg", np.array(people, np.float64).reshape(-1, 4),
                                 np.array(ignore, np.float64).reshape(-1, 4)))
    return images


def read_coco_persons(annotations: str | os.PathLike, image_root: str | os.PathLike) -> list[StillImage]:
    path, image_root = Path(annotations), Path(image_root)
    if not path.is_file():
        raise InputError(f"{path}: COCO annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FormatError(path, f"not JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise FormatError(path, f"missing list '{key}' (not a COCO instances file)")
    person = {c.get("id") for c in data["categories"] if isinstance(c, dict) and c.get("name") == "person"}
    if not person:
        raise FormatError(path, "no 'person' category")
    files = {}
    for k, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise FormatError(path, f"images[{k}]: expected an object with 'id' and 'file_name'")
        files[image["id"]] = image["file_name"]
    people: dict = {i: [] for i in files}
    ignore: dict = {i: [] for i in files}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or ann.get("category_id") not in person:
            continue
        if ann.get("image_id") not in files:
            raise FormatError(path, f"annotations[{k}]: image_id {ann.get('image_id')!r} is not in 'images'")
        xyxy = _xywh(ann.get("bbox"), path, f"annotations[{k}].bbox")
        (ignore if ann.get("iscrowd", 0) else people)[ann["image_id"]].append(xyxy)
    return [StillImage(image_root / files[i], np.array(people[i], np.float64).reshape(-1, 4),
                       np.array(ignore[i], np.float64).reshape(-1, 4)) for i in sorted(files) if people[i]]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def default_yolo_labels(image_root: str | os.PathLike) -> Path:
    """ultralytics' convention: the labels of ``.../images/<split>`` are in ``.../labels/<split>``."""
    parts = Path(image_root).parts
    if "images" not in parts:
        raise InputError(f"{image_root}: no 'images' folder in the path to find its 'labels' folder by; "
                         "give the labels folder as the source's annotations")
    k = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:k], "labels", *parts[k + 1:])


def read_yolo_persons(labels: str | os.PathLike, image_root: str | os.PathLike,
                      person_class: int = 0) -> list[StillImage]:
    """The images under ``image_root`` with at least one ``person_class`` box in ``labels``."""
    labels, image_root = Path(labels), Path(image_root)
    for folder, what in ((image_root, "image"), (labels, "label")):
        if not folder.is_dir():
            raise InputError(f"{folder}: YOLO {what} folder not found")
    images = []
    for image in sorted(p for p in image_root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        path = labels / f"{image.stem}.txt"
        if not path.is_file():
            continue
        people = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                cls, values = float(fields[0]), [float(v) for v in fields[1:5]]
            except ValueError:
                raise FormatError(path, f"expected 'class cx cy w h' numbers, got {line.strip()[:60]!r}", line_no) from None
            if len(values) < 4 or cls != int(cls):
                raise FormatError(path, f"expected 'class cx cy w h' (an integer class), got {line.strip()[:60]!r}", line_no)
            cx, cy, w, h = values
            if not (all(np.isfinite(values)) and 0 <= cx <= 1 and 0 <= cy <= 1 and 0 <= w <= 1 and 0 <= h <= 1):
                raise FormatError(path, f"box {values} is not in fractions of the image (0-1): not YOLO labels", line_no)
            if int(cls) == person_class:
                people.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if people:
            images.append(StillImage(image, np.array(people, np.float64).clip(0, 1), np.zeros((0, 4)), normalised=True))
    return images


def _affine(scale: float, angle: float, tx: float, ty: float, width: int, height: int) -> np.ndarray:
    """2x3 matrix: rotate and scale about the image centre, then shift."""
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += (tx, ty)
    return matrix


def _warp_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The axis-aligned boxes around the warped corners of ``(N, 4)`` xyxy boxes."""
    if not len(boxes):
        return boxes.reshape(0, 4)
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], axis=1)  # (N, 4, 2)
    warped = corners @ matrix[:, :2].T + matrix[:, 2]  # (N, 4, 2)
    return np.concatenate([warped.min(axis=1), warped.max(axis=1)], axis=1)  # (N, 4)


class StillClipSequence(Sequence):
    """One still image as ``length`` frames of a smooth random camera motion: scale, rotation and
    shift move linearly from one random pose to another (drawn once from ``seed`` and the image),
    so the people move consistently across the clip and keep their track ids 1..N."""

    def __init__(self, image: StillImage, length: int, fps: float = 10.0, seed: int = 0, max_scale: float = 0.15,
                 max_shift: float = 0.08, max_angle: float = 3.0):
        self.image, self.length, self.fps = image, length, fps
        self.name = f"still:{image.path.name}"
        self.num_actions = 0
        self._pixels: np.ndarray | None = None
        self._seed = zlib.crc32(f"{seed}|{image.path}".encode())
        self._limits = (max_scale, max_shift, max_angle)

    def _load(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = read_image(self.image.path)
            self.height, self.width = self._pixels.shape[:2]
        return self._pixels

    def __getstate__(self):  # DataLoader workers read the image themselves
        return {**self.__dict__, "_pixels": None}

    def _matrix(self, index: int) -> np.ndarray:
        pixels = self._load()
        h, w = pixels.shape[:2]
        rng = np.random.default_rng(self._seed)
        s, d, a = self._limits
        ends = [(1 + rng.uniform(-s, s), rng.uniform(-a, a), rng.uniform(-d, d) * w, rng.uniform(-d, d) * h)
                for _ in range(2)]
        t = index / max(self.length - 1, 1)
        pose = [(1 - t) * p + t * q for p, q in zip(*ends)]
        return _affine(*pose, w, h)

    def __len__(self) -> int:
        return self.length

    def track_ids(self) -> set[int]:
        return set()  # no identities: ReID learns from video sources

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        pixels = self._load()
        return cv2.warpAffine(pixels, self._matrix(index), (pixels.shape[1], pixels.shape[0]),
                              flags=cv2.INTER_LINEAR, borderValue=(114, 114, 114))

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        matrix = self._matrix(index)
        h, w = self._load().shape[:2]
        people, ignored = self.image.in_pixels(w, h)
        boxes = _warp_boxes(people, matrix)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        inside = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
        ids = np.arange(1, len(boxes) + 1)[inside]
        ignore = _warp_boxes(ignored, matrix)
        return FrameAnnotations(boxes[inside], ids, np.full(len(ids), -1, np.int64), ignore_boxes=ignore)
