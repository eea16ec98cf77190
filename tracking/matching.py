"""Association costs and Hungarian assignment."""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

INFEASIBLE = 1e6  # cost of a gated pair: never chosen


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(A, B)`` IoU of xyxy boxes (torchvision's ``box_iou``)."""
    a = np.asarray(boxes_a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def cosine_distance(track_embeddings: np.ndarray, det_embeddings: np.ndarray) -> np.ndarray:
    """``(A, B)`` cosine distance ``1 - cos`` in [0, 2] (inputs need not be normalised)."""
    a = np.asarray(track_embeddings, dtype=np.float32)
    b = np.asarray(det_embeddings, dtype=np.float32)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
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
    return matches, np.setdiff1d(np.arange(rows), matches[:, 0]), np.setdiff1d(np.arange(cols), matches[:, 1])
