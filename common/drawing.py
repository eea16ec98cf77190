"""Drawing boxes, identities and actions on frames: the one drawing routine of the project, in
``common`` so that every layer that draws (data previews, training images, inference) can use it."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour per identity (golden-ratio hue walk)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_label(image: np.ndarray, text: str, top_left: tuple[int, int], background, foreground,
               font_scale: float, pad: tuple[int, int] = (0, 0)) -> int:
    """``text`` on a filled ``background`` box whose top-left corner is ``top_left``, in place,
    with ``pad`` (x, y) pixels around it; returns the box's height (to stack labels)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    (x, y), (px, py) = top_left, pad
    height = th + base + 2 * py
    cv2.rectangle(image, (x, y), (x + tw + 2 * px, y + height), background, -1)
    cv2.putText(image, text, (x + px, y + py + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, foreground, 1, cv2.LINE_AA)
    return height


def draw_tracks(image: np.ndarray, boxes: np.ndarray, track_ids=None, captions=None,
                trails: dict | None = None, thickness: int = 1, font_scale: float = 0.35) -> np.ndarray:
    """Draw ``(N, 4)`` xyxy pixel boxes on a copy of a BGR ``image``.

    ``track_ids`` colour the boxes and start each caption (``"7 walking 0.93"``); ``captions`` are
    extra per-box texts; ``trails`` maps a track id to its recent ``(x, y)`` points.
    """
    out = image.copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        tid = None if track_ids is None else int(track_ids[i])
        colour = id_colour(tid) if tid is not None else (0, 255, 0)
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(out, p1, p2, colour, thickness, cv2.LINE_AA)
        text = " ".join(s for s in (str(tid) if tid is not None else "", captions[i] if captions else "") if s)
        if text:
            (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            top = max(p1[1], th + base) - th - base  # above the box, inside the image
            draw_label(out, text, (p1[0], top), colour, (0, 0, 0), font_scale)
    for tid, points in (trails or {}).items():
        pts = np.asarray(points, dtype=np.int32).reshape(-1, 1, 2)
        if len(pts) > 1:
            cv2.polylines(out, [pts], False, id_colour(tid), 1, cv2.LINE_AA)
    return out
