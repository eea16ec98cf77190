"""Constant-velocity Kalman filter on boxes, with the real time step between frames.

State vector (documented once, here): ``x = [cx, cy, w, h, vcx, vcy, vw, vh]`` — box centre,
width and height in pixels and their velocities in pixels per **second**. Measurements are
``z = [cx, cy, w, h]``. Because velocities are per second and ``predict(dt)`` takes the elapsed
time, a dropped frame or a variable frame rate moves a track as far as it really moved.

Noise is proportional to the box size (as in DeepSORT): a 200-pixel person jitters more in pixels
than a 20-pixel one. :class:`BoxKalmanFilter` is one track's filter, filterpy's ``KalmanFilter``;
the tracker runs the same equations on all its tracks at once (:func:`predict_states`,
:func:`update_states`, :func:`mahalanobis_matrix` on stacked states; tests compare them with
filterpy's).

Covariance layout of the stacked functions (documented once, here): ``F``, ``Q``, ``H``, ``R`` and
the initial covariance never couple one coordinate with another, so the filter is four
independent (position, velocity) filters, one per measured coordinate, and every covariance it
ever holds is zero outside the entries ``(i, i)``, ``(i, i+4)``, ``(i+4, i)``, ``(i+4, i+4)``. The
stacked functions keep just those, as ``P (T, 3, 4)``: ``P[:, 0]`` the variances of
``[cx, cy, w, h]``, ``P[:, 1]`` each one's covariance with its velocity, ``P[:, 2]`` the
velocities' variances (:func:`full_covariance` rebuilds the ``(T, 8, 8)`` matrices). The
innovation covariance is then diagonal, and predict, update and gating are a few element-wise
operations on ``(T, 4)`` arrays instead of batched 8x8 products and 4x4 inverses (which were
most of the tracker's time at the few people of a real frame).
"""
from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom (gating on z).
CHI2_95_4DOF = 9.4877


def xyxy_to_z(box: np.ndarray) -> np.ndarray:
    """xyxy ``(4,)`` -> ``[cx, cy, w, h]``; ``(N, 4)`` -> ``(N, 4)``."""
    b = np.asarray(box, dtype=np.float64)
    wh = b[..., 2:] - b[..., :2]
    return np.concatenate([b[..., :2] + wh / 2, wh], axis=-1)


def z_to_xyxy(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(w, 1e-3), max(h, 1e-3)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalmanFilter:
    """One track's filter. ``std_position`` and ``std_velocity`` are fractions of the box height
    (per sqrt-second for the process noise); ``std_measurement`` the detector's noise, likewise."""

    def __init__(self, box_xyxy: np.ndarray, std_position: float = 0.05, std_velocity: float = 0.2,
                 std_measurement: float = 0.05):
        self.std_position, self.std_velocity, self.std_measurement = std_position, std_velocity, std_measurement
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.H = np.hstack([np.eye(4), np.zeros((4, 4))])
        x, P = initial_states(np.asarray(box_xyxy, dtype=np.float64).reshape(1, 4), std_measurement)
        kf.x, kf.P = x[0, :, None], full_covariance(P)[0]
        self.kf = kf

    @staticmethod
    def _scale(z: np.ndarray) -> np.ndarray:
        h = max(float(z[3]), 1.0)
        return np.array([h, h, h, h])

    @property
    def z(self) -> np.ndarray:
        return self.kf.x[:4, 0].copy()

    @property
    def box(self) -> np.ndarray:
        return z_to_xyxy(self.kf.x[:4, 0])

    def transition(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """``F`` and ``Q`` for a step of ``dt`` seconds (white-noise acceleration model)."""
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        s = self._scale(self.kf.x[:4, 0])
        q_pos = (self.std_position * s) ** 2 * dt
        q_vel = (self.std_velocity * s) ** 2 * dt
        return F, np.diag(np.concatenate([q_pos, q_vel]))

    def predict(self, dt: float) -> np.ndarray:
        if dt < 0:
            raise ValueError(f"time step must be >= 0 seconds, got {dt}")
        F, Q = self.transition(dt)
        self.kf.predict(F=F, Q=Q)
        self.kf.x[2:4] = np.maximum(self.kf.x[2:4], 1.0)  # a box never shrinks below a pixel
        return self.box

    def measurement_noise(self, z: np.ndarray) -> np.ndarray:
        return np.diag((self.std_measurement * self._scale(z)) ** 2)

    def update(self, box_xyxy: np.ndarray) -> np.ndarray:
        z = xyxy_to_z(box_xyxy)
        self.kf.update(z.reshape(4, 1), R=self.measurement_noise(z))
        return self.box


_DIAG4 = np.arange(4)


def boxes_of_states(x: np.ndarray) -> np.ndarray:
    """``(T, >=4)`` states ``[cx, cy, w, h, ...]`` -> ``(T, 4)`` xyxy boxes (as ``box`` does for one)."""
    half = np.maximum(x[:, 2:4], 1e-3) / 2
    return np.concatenate([x[:, :2] - half, x[:, :2] + half], axis=1)


def full_covariance(P: np.ndarray) -> np.ndarray:
    """Decoupled ``(T, 3, 4)`` covariances (see the module's docstring) -> the ``(T, 8, 8)``
    matrices filterpy holds, for comparison and inspection."""
    T = len(P)
    out = np.zeros((T, 8, 8))
    out[:, _DIAG4, _DIAG4] = P[:, 0]
    out[:, _DIAG4, _DIAG4 + 4] = out[:, _DIAG4 + 4, _DIAG4] = P[:, 1]
    out[:, _DIAG4 + 4, _DIAG4 + 4] = P[:, 2]
    return out


def initial_states(boxes_xyxy: np.ndarray, std_measurement: float) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 8)`` states and ``(N, 3, 4)`` decoupled covariances of new tracks at ``(N, 4)``
    boxes: the position known to the detector's precision; the velocity unknown (a person may move
    a body height per second in any direction); no correlation yet."""
    z = xyxy_to_z(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4))
    x = np.concatenate([z, np.zeros_like(z)], axis=1)
    h = np.maximum(z[:, 3:4], 1.0)  # (N, 1)
    P = np.zeros((len(z), 3, 4))
    P[:, 0] = (2 * std_measurement * h) ** 2
    P[:, 2] = h ** 2
    return x, P


def predict_states(x: np.ndarray, P: np.ndarray, dt, std_position, std_velocity) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`BoxKalmanFilter.predict` on stacked ``(T, 8)`` states and ``(T, 3, 4)`` decoupled
    covariances (new arrays): filterpy's ``x = F x``, ``P = F P F^T + Q`` written out per
    (position, velocity) pair. ``dt`` (seconds) and ``std_*``: scalars, or ``(T,)`` for one value
    per row."""
    dt = np.asarray(dt, dtype=np.float64)
    if dt.min(initial=0.0) < 0:
        raise ValueError(f"time step must be >= 0 seconds, got {dt}")
    step = dt if dt.ndim == 0 else dt[:, None]  # broadcasts against (T, 4)
    # Q's diagonal: (std * box height)^2 * dt, the height being each filter's noise scale.
    scale = np.maximum(x[:, 3:4], 1.0) ** 2 * step  # (T, 1)
    pos = x[:, :4] + step * x[:, 4:]
    np.maximum(pos[:, 2:4], 1.0, out=pos[:, 2:4])  # a box never shrinks below a pixel
    pp, pv, vv = P[:, 0], P[:, 1], P[:, 2]
    pv_next = pv + step * vv
    out = np.empty_like(P)
    out[:, 0] = pp + step * (pv + pv_next) + np.square(std_position)[..., None] * scale
    out[:, 1] = pv_next
    out[:, 2] = vv + np.square(std_velocity)[..., None] * scale
    return np.concatenate([pos, x[:, 4:]], axis=1), out


def update_states(x: np.ndarray, P: np.ndarray, z: np.ndarray, std_measurement) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`BoxKalmanFilter.update` on stacked states, one measurement ``z (T, 4)``
    ``[cx, cy, w, h]`` each (:func:`xyxy_to_z` of the boxes; new arrays):
    filterpy's gain ``K = P H^T S^-1`` and covariance ``(I - KH) P`` per (position, velocity)
    pair, where ``S`` is a scalar (filterpy writes the Joseph form, equal for this optimal gain).
    ``std_measurement``: scalar or ``(T,)``."""
    if z.shape != (len(x), 4):
        raise ValueError(f"{len(x)} states need ({len(x)}, 4) measurements, got {z.shape}")
    r = (np.asarray(std_measurement, dtype=np.float64).reshape(-1, 1) * np.maximum(z[:, 3:4], 1.0)) ** 2  # (T, 1)
    pp, pv, vv = P[:, 0], P[:, 1], P[:, 2]
    s = pp + r  # (T, 4): the innovation variance of each coordinate
    gain_pos, gain_vel = pp / s, pv / s
    residual = z - x[:, :4]
    out = np.empty_like(P)
    out[:, 0] = pp * (r / s)  # (1 - gain_pos) * pp
    out[:, 1] = pv * (r / s)
    out[:, 2] = vv - gain_vel * pv
    return np.concatenate([x[:, :4] + gain_pos * residual, x[:, 4:] + gain_vel * residual], axis=1), out


def mahalanobis_matrix(z_pred: np.ndarray, position_variance: np.ndarray, std_measurement: np.ndarray,
                       z_measured: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``(T, N)`` squared Mahalanobis distances of N measurements ``z_measured (N, 4)``
    ``[cx, cy, w, h]`` (:func:`xyxy_to_z` of the boxes) to T predicted measurements
    (stacked states, the tracker's gate): ``z_pred (T, 4)`` predicted ``[cx, cy, w, h]``,
    ``position_variance (T, 4)`` their variances (``P[:, 0]``), ``std_measurement`` scalar or ``(T,)``. The
    innovation covariance is diagonal (the coordinates are independent), so this is a sum of four
    squared, scaled differences. With a ``(T, N)`` boolean ``where``, only those pairs are
    computed and the others are ``inf`` (the tracker asks only for pairs its other rules leave
    feasible: a few per track, not all T x N)."""
    if len(z_pred) == 0 or len(z_measured) == 0:
        return np.zeros((len(z_pred), len(z_measured)))
    # S = H P H^T + R with R = measurement_noise(predicted box): diagonal.
    std = np.asarray(std_measurement, dtype=np.float64).reshape(-1, 1) * np.maximum(z_pred[:, 3:4], 1.0)  # (T, 1)
    inv_s = 1.0 / (position_variance + std ** 2)  # (T, 4)
    if where is None or where.size <= 4096:  # small: the dense product takes fewer numpy calls
        diff = z_measured[None] - z_pred[:, None]  # (T, N, 4)
        dense = (diff * diff) @ inv_s[:, :, None]  # (T, N, 1)
        return dense[:, :, 0] if where is None else np.where(where, dense[:, :, 0], np.inf)
    out = np.full((len(z_pred), len(z_measured)), np.inf)
    t, n = np.nonzero(where)
    diff = z_measured[n] - z_pred[t]  # (K, 4)
    out[t, n] = (diff * diff * inv_s[t]).sum(-1)
    return out
