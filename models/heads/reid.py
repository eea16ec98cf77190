"""ReID head: a 128-d L2-normalised embedding per person, pooled at its box on the fused P3 map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from models.layers import ConvBNAct, SeparableConvBNAct


class ReIDHead(nn.Module):
    """``feature_map(P3)`` -> ReID map; ``embed(map, rois)`` -> ``(K, dim)`` unit vectors.

    ``rois`` are ``(K, 5)``: image index in the flattened ``B*T`` batch, then xyxy pixels. Pooling
    the whole box (rather than one centre pixel) sees both the shirt and the trousers.
    ``separable=True`` builds the two 3x3 convs of the map depthwise-separable: at P3's resolution
    the dense ones are as costly per frame as a backbone stage.
    """

    def __init__(self, in_channels: int, channels: int = 64, dim: int = 128, pool: tuple[int, int] = (8, 4),
                 stride: int = 8, separable: bool = False):
        super().__init__()
        self.stride, self.pool, self.dim = stride, pool, dim
        conv = SeparableConvBNAct if separable else ConvBNAct
        self.tower = nn.Sequential(conv(in_channels, channels, 3), conv(channels, channels, 3))
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(channels * pool[0] * pool[1], 2 * dim), nn.SiLU(inplace=True),
                                     nn.Linear(2 * dim, dim))

    def feature_map(self, p3: torch.Tensor) -> torch.Tensor:
        return self.tower(p3)

    def embed(self, reid_map: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be (K, 5) [image index, x1, y1, x2, y2], got {tuple(rois.shape)}")
        if len(rois) == 0:
            return reid_map.new_zeros((0, self.dim))
        return self.embed_rois(reid_map, rois)

    def embed_rois(self, reid_map: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` for at least one roi, without the checks (what an exported graph runs)."""
        pooled = roi_align(reid_map, rois, self.pool, spatial_scale=1.0 / self.stride, sampling_ratio=2, aligned=True)
        return F.normalize(self.project(pooled), dim=1)  # (K, dim)
