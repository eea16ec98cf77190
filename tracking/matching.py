"""Association costs and Hungarian assignment."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6  # cost of a gated pair: never chosen


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


def cosine_distance(track_embeddings: np.ndarray, det_embeddings: np.ndarray, unit: bool = False) -> np.ndarray:
    """``(A, B)`` cosine distance ``1 - cos`` in [0, 2]. Inputs need not be normalised unless
    ``unit=True`` says they already are (the tracker normalises once per frame, not per stage)."""
    a = np.asarray(track_embeddings, dtype=np.float32)
    b = np.asarray(det_embeddings, dtype=np.float32)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    if not unit:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - a @ b.T


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching (scipy's Hungarian solver) keeping pairs with ``cost <= max_cost``.

    Returns ``matches (K, 2)`` of (row, col), and the unmatched rows and columns.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(rows), np.arange(cols)
    r, c = linear_sum_assignment(np.minimum(cost, INFEASIBLE))
    keep = cost[r, c] <= max_cost
    matches = np.stack([r[keep], c[keep]], axis=1).astype(np.int64)
    row_free = np.ones(rows, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(cols, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
