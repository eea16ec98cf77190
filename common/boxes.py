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


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray, dtype=np.float32) -> np.ndarray:
    """``(A, B)`` IoU of xyxy boxes held in numpy arrays (the tracker's and the evaluators' IoU;
    tensors use ``torchvision.ops.box_iou``). Written in numpy because at tracker sizes (tens of
    boxes) converting to tensors and dispatching torch ops costs more than the arithmetic: this
    runs about 10x faster per frame. ``dtype=np.float64`` for evaluation, where a pair at IoU 0.5
    exactly must fall on the same side as in the official tools."""
    a = np.asarray(boxes_a, dtype=dtype).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=dtype).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=dtype)
    # Per coordinate on (A, B) arrays: about twice as fast as (A, B, 2) corner arrays at 200 x 200.
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0, out=w) * np.maximum(h, 0, out=h)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return (inter / np.where(union > 0, union, 1)).astype(dtype, copy=False)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray, areas: np.ndarray | None = None) -> np.ndarray:
    """``(M,)`` float64 IoU of one xyxy ``box (4,)`` with each of ``boxes (M, 4)``: the same
    arithmetic as a row of :func:`iou_matrix` at ``dtype=np.float64``, for loops that compare
    one box with many again and again (Soft-NMS), which pass the ``areas`` of ``boxes`` once known."""
    inter = (np.maximum(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0)
             * np.maximum(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0))
    if areas is None:
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - inter
    return inter / np.where(union > 0, union, 1)
