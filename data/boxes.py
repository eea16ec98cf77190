"""Box formats used across the project, documented once here.

Inside the project every box is ``xyxy`` in **pixels** of the frame it belongs to:
``[x1, y1, x2, y2]`` with ``x1 <= x2`` and ``y1 <= y2``; ``x2 - x1`` is the width. Arrays of boxes
are ``(N, 4)``. The other formats exist only at file boundaries and are converted on read/write:

* ``tlwh`` (MOTChallenge ``gt.txt``/``det.txt``/results): ``[left, top, width, height]`` in pixels.
  MOTChallenge coordinates are 1-based; the values are kept as written (no ``-1`` shift), so a box
  read and written again is byte-identical in value and lines up with the frames the way the
  benchmark's own tools draw it.
* ``xyxy`` normalised (AVA CSV): each coordinate divided by the frame width/height, in ``[0, 1]``.
* V-ICR JSON: ``{"x1", "y1", "x2", "y2"}`` pixel dicts.

Tensors inside models use the same ``xyxy`` pixel convention, so ``torchvision.ops`` (``box_iou``,
``generalized_box_iou_loss``, ``batched_nms``, ``roi_align``) apply directly.
"""
from __future__ import annotations

import numpy as np


def tlwh_to_xyxy(tlwh: np.ndarray) -> np.ndarray:
    """``(N, 4)`` left, top, width, height -> ``(N, 4)`` x1, y1, x2, y2."""
    tlwh = np.asarray(tlwh, dtype=np.float64).reshape(-1, 4)
    out = tlwh.copy()
    out[:, 2:] = tlwh[:, :2] + tlwh[:, 2:]
    return out


def xyxy_to_tlwh(xyxy: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 -> ``(N, 4)`` left, top, width, height."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    out = xyxy.copy()
    out[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    return out


def normalized_to_pixels(xyxy_norm: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(N, 4)`` normalised xyxy -> pixel xyxy for a ``width`` x ``height`` frame."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.asarray(xyxy_norm, dtype=np.float64).reshape(-1, 4) * scale


def pixels_to_normalized(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(N, 4)`` pixel xyxy -> normalised xyxy for a ``width`` x ``height`` frame."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) / scale


def clip_xyxy(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(N, 4)`` pixel xyxy boxes to the frame ``[0, width] x [0, height]``."""
    out = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


def box_area(xyxy: np.ndarray) -> np.ndarray:
    """``(N,)`` areas of ``(N, 4)`` xyxy boxes (zero for degenerate boxes)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return (xyxy[:, 2] - xyxy[:, 0]).clip(0) * (xyxy[:, 3] - xyxy[:, 1]).clip(0)
