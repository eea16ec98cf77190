"""What the network is given: a frame letterboxed to its input size (aspect kept, padded), as RGB
floats in [0, 1]. One implementation for every runtime and caller (streaming inference, clip
accuracy), so that they feed the network exactly what it was trained on."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass
class Letterbox:
    """Resize keeping the aspect ratio, then pad to ``(H, W)``; maps boxes both ways."""

    scale: float
    pad_x: float
    pad_y: float
    size: tuple[int, int]  # (H, W) of the network input

    @classmethod
    def fit(cls, width: int, height: int, size: tuple[int, int]) -> "Letterbox":
        H, W = size
        scale = min(W / width, H / height)
        return cls(scale, (W - width * scale) / 2, (H - height * scale) / 2, size)

    def image(self, frame: np.ndarray) -> np.ndarray:
        H, W = self.size
        h, w = frame.shape[:2]
        new_w, new_h = int(round(w * self.scale)), int(round(h * self.scale))
        resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        out = np.full((H, W, 3), 114, dtype=np.uint8)
        x0, y0 = int(round(self.pad_x - 0.1)), int(round(self.pad_y - 0.1))
        out[y0:y0 + new_h, x0:x0 + new_w] = resized[: H - y0, : W - x0]
        return out

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * self.scale
        return b + np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y])

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y])
        return b / self.scale


def network_input(images: list[np.ndarray], device: str | torch.device = "cpu", channels_last: bool = False) -> torch.Tensor:
    """Letterboxed BGR uint8 frames, each ``(H, W, 3)``, -> ``(N, 3, H, W)`` RGB float32 in [0, 1] on
    ``device``; ``channels_last`` for the eager network's convolutions (about a third faster on CPU)."""
    rgb = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images])  # (N, H, W, 3)
    x = torch.from_numpy(rgb).to(device).permute(0, 3, 1, 2).float().div_(255.0)  # (N, H, W, 3) -> (N, 3, H, W)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
