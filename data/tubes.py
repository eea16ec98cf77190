"""Person tubes: per track and per second, a few frames cropped around the person with some
context, as pseudo-labelling shows them to a VLM and the specialists' clip classifiers see them
(one implementation for both, so that they see the same thing). Tracks are
:data:`data.formats.mot.Tracks`; boxes xyxy pixels."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from data.formats.mot import Tracks


@dataclass
class TubeSecond:
    """One track during one second: the frames a clip model (a VLM, a clip classifier) sees and
    where to cut them."""

    track: int
    second: int
    frame_indices: list[int]  # 0-based, ascending, at least 2 (Qwen3-VL merges frames in pairs)
    crop: tuple[int, int, int, int]  # x1, y1, x2, y2 in the frame's pixels, the same for every frame
    size: tuple[int, int]  # (width, height) the crop is resized to
    frames: list[bytes] = field(default_factory=list)  # JPEG bytes, filled by extract_frames


def second_of(frame_index: int, fps: float) -> int:
    """The second a 0-based frame falls in; the epsilon keeps a frame at an exact multiple of the
    frame period (30 at 10 fps after float division) in the second it starts."""
    return int(math.floor(frame_index / fps + 1e-9))


def _pick(indices: list[int], count: int) -> list[int]:
    if len(indices) <= count:
        return list(indices)
    return [indices[int(round(k))] for k in np.linspace(0, len(indices) - 1, count)]


def _resize_to_budget(width: int, height: int, min_pixels: int, max_pixels: int, multiple: int = 32) -> tuple[int, int]:
    """The crop's size scaled into ``[min_pixels, max_pixels]``, sides multiples of ``multiple``
    (the vision encoder's patch times its merge), aspect kept as well as that allows."""
    area = width * height
    scale = math.sqrt(min(max(area, min_pixels), max_pixels) / max(area, 1))
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    while w * h > max_pixels and (w > multiple or h > multiple):
        if w >= h:
            w -= multiple
        else:
            h -= multiple
    return w, h


def plan_tubes(tracks: Tracks, fps: float, width: int, height: int, frames_per_second: int = 4, margin: float = 0.25,
               min_pixels: int = 64 * 64, max_pixels: int = 256 * 256) -> list[TubeSecond]:
    """Per track and per second it covers: ``frames_per_second`` frames evenly spread over the
    track's frames in that second (borrowing the nearest ones of its neighbouring seconds when a
    second holds fewer than two), one crop around the union of their boxes widened by ``margin``
    on every side, and its size within the pixel budget."""
    tubes = []
    for track, items in tracks.items():
        frames = [f for f, _ in items]
        boxes = {f: b for f, b in items}
        seconds = sorted({second_of(f, fps) for f in frames})
        for second in seconds:
            inside = [f for f in frames if second_of(f, fps) == second]
            if len(inside) < 2:  # borrow the nearest frames of this track around the second
                centre = (second + 0.5) * fps
                inside = sorted(sorted(frames, key=lambda f: (abs(f - centre), f))[:2])
                if len(inside) < 2:
                    continue
            chosen = _pick(inside, frames_per_second)
            union = np.array([boxes[f] for f in chosen])
            x1, y1 = union[:, 0].min(), union[:, 1].min()
            x2, y2 = union[:, 2].max(), union[:, 3].max()
            dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
            crop = (int(max(0, math.floor(x1 - dx))), int(max(0, math.floor(y1 - dy))),
                    int(min(width, math.ceil(x2 + dx))), int(min(height, math.ceil(y2 + dy))))
            if crop[2] - crop[0] < 2 or crop[3] - crop[1] < 2:
                continue  # the person is outside the frame
            size = _resize_to_budget(crop[2] - crop[0], crop[3] - crop[1], min_pixels, max_pixels)
            tubes.append(TubeSecond(track, second, chosen, crop, size))
    return tubes


def crop_tube_frame(frame: np.ndarray, tube: TubeSecond) -> np.ndarray:
    """One of the tube's frames (BGR, the whole frame) cut to its crop and resized to its size."""
    x1, y1, x2, y2 = tube.crop
    return cv2.resize(frame[y1:y2, x1:x2], tube.size, interpolation=cv2.INTER_AREA)
