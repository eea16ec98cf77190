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
        kf.x, kf.P = x[0, :, None], P[0]
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


def boxes_of_states(x: np.ndarray) -> np.ndarray:
    """``(T, >=4)`` states ``[cx, cy, w, h, ...]`` -> ``(T, 4)`` xyxy boxes (as ``box`` does for one)."""
    half = np.maximum(x[:, 2:4], 1e-3) / 2
    return np.concatenate([x[:, :2] - half, x[:, :2] + half], axis=1)


def initial_states(boxes_xyxy: np.ndarray, std_measurement: float) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 8)`` states and ``(N, 8, 8)`` covariances of new tracks at ``(N, 4)`` boxes: the
    position known to the detector's precision; the velocity unknown (a person may move a body
    height per second in any direction)."""
    z = xyxy_to_z(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4))
    x = np.concatenate([z, np.zeros_like(z)], axis=1)
    h = np.maximum(z[:, 3], 1.0)[:, None]
    variances = np.concatenate([np.repeat((2 * std_measurement * h) ** 2, 4, 1), np.repeat(h ** 2, 4, 1)], axis=1)
    P = np.zeros((len(z), 8, 8))
    diagonal = np.arange(8)
    P[:, diagonal, diagonal] = variances
    return x, P


_DIAG4 = np.arange(4)


def predict_states(x: np.ndarray, P: np.ndarray, dt, std_position, std_velocity) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`BoxKalmanFilter.predict` on stacked ``(T, 8)`` states and ``(T, 8, 8)`` covariances
    (new arrays): filterpy's ``x = F x``, ``P = F P F^T + Q``. ``dt`` (seconds) and ``std_*``:
    scalars, or ``(T,)`` for one value per row."""
    dt = np.asarray(dt, dtype=np.float64)
    if (dt < 0).any():
        raise ValueError(f"time step must be >= 0 seconds, got {dt}")
    heights = np.maximum(x[:, 3], 1.0)  # the noise scale of each filter (box height)
    if dt.ndim == 0:  # one F = [[I, dt I], [0, I]] for all rows
        F = np.eye(8)
        F[_DIAG4, _DIAG4 + 4] = dt
        x, P = x @ F.T, F @ P @ F.T
    else:  # F x and F P F^T written out by blocks, a time step per row
        x, P = x.copy(), P.copy()
        x[:, :4] += dt[:, None] * x[:, 4:]
        P[:, :4, :] += dt[:, None, None] * P[:, 4:, :]
        P[:, :, :4] += dt[:, None, None] * P[:, :, 4:]
    # Q is diagonal: position and velocity noise, per row.
    P[:, _DIAG4, _DIAG4] += ((std_position * heights) ** 2 * dt)[:, None]
    P[:, _DIAG4 + 4, _DIAG4 + 4] += ((std_velocity * heights) ** 2 * dt)[:, None]
    x[:, 2:4] = np.maximum(x[:, 2:4], 1.0)  # a box never shrinks below a pixel
    return x, P


def update_states(x: np.ndarray, P: np.ndarray, boxes_xyxy: np.ndarray, std_measurement) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`BoxKalmanFilter.update` on stacked states, one measured box each (new arrays):
    filterpy's gain ``K = P H^T S^-1`` and covariance ``(I - KH) P`` (filterpy writes the Joseph
    form, equal for this optimal gain; kept symmetric here). ``std_measurement``: scalar or ``(T,)``."""
    z = xyxy_to_z(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4))  # (T, 4)
    if len(z) != len(x):
        raise ValueError(f"{len(x)} states but {len(z)} boxes")
    r = (np.asarray(std_measurement, dtype=np.float64).reshape(-1, 1) * np.maximum(z[:, 3:4], 1.0)) ** 2  # diag of R
    S = P[:, :4, :4].copy()  # H P H^T + R with H = [I 0]
    S[:, _DIAG4, _DIAG4] += r
    K = P[:, :, :4] @ np.linalg.inv(S)  # (T, 8, 4)
    x = x + (K @ (z - x[:, :4])[:, :, None])[:, :, 0]
    P = P - K @ P[:, :4, :]
    return x, (P + P.transpose(0, 2, 1)) / 2


def mahalanobis_matrix(z_pred: np.ndarray, P_pos: np.ndarray, std_measurement: np.ndarray,
                       boxes_xyxy: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``(T, N)`` squared Mahalanobis distances of N measured boxes to T predicted measurements
    (stacked states, the tracker's gate): ``z_pred (T, 4)`` predicted ``[cx, cy, w, h]``,
    ``P_pos (T, 4, 4)`` their covariance block, ``std_measurement (T,)``. With a ``(T, N)``
    boolean ``where``, only those pairs are computed and the others are ``inf`` (the tracker asks
    only for pairs its other rules leave feasible: a few per track, not all T x N)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(z_pred) == 0 or len(boxes) == 0:
        return np.zeros((len(z_pred), len(boxes)))
    if where is not None and where.size <= 4096:  # small: the dense product takes fewer numpy calls
        return np.where(where, mahalanobis_matrix(z_pred, P_pos, std_measurement, boxes), np.inf)
    zs = xyxy_to_z(boxes)  # (N, 4)
    # H = [I 0], so H P H^T is the top-left 4x4 block of P; R is measurement_noise(x), batched.
    S = P_pos.copy()  # (T, 4, 4)
    std = std_measurement * np.maximum(z_pred[:, 3], 1.0)
    S[:, _DIAG4, _DIAG4] += (std ** 2)[:, None]
    S_inv = np.linalg.inv(S)
    if where is None:
        diff = zs[None] - z_pred[:, None]  # (T, N, 4)
        # Batched matmul, not einsum: at 200 tracks x 200 boxes einsum was most of the frame's time.
        return ((diff @ S_inv) * diff).sum(-1)
    out = np.full((len(z_pred), len(boxes)), np.inf)
    t, n = np.nonzero(where)
    diff = zs[n] - z_pred[t]  # (K, 4)
    out[t, n] = ((diff[:, None, :] @ S_inv[t])[:, 0] * diff).sum(-1)
    return out
