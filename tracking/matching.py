"""Association costs and Hungarian assignment."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6  # cost of a gated pair: never chosen


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
    matches = np.empty((int(keep.sum()), 2), dtype=np.int64)
    matches[:, 0], matches[:, 1] = r[keep], c[keep]
    row_free = np.ones(rows, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(cols, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
