"""Feature pyramid: top-down fusion of C3-C5 into P3-P5."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers import ConvBNAct, SeparableConvBNAct


class FPN(nn.Module):
    """Lateral 1x1 convs, nearest-neighbour top-down additions, 3x3 output convs (depthwise-separable
    with ``separable=True``: the dense ones cost as much per frame as a backbone stage, mostly on P3)."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int = 64, separable: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = tuple(in_channels), out_channels
        self.lateral = nn.ModuleList(ConvBNAct(c, out_channels, 1) for c in in_channels)
        output = SeparableConvBNAct if separable else ConvBNAct
        self.output = nn.ModuleList(output(out_channels, out_channels, 3) for _ in in_channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if [f.shape[1] for f in features] != list(self.in_channels):
            raise ValueError(f"FPN expects channels {self.in_channels}, got {[f.shape[1] for f in features]}")
        laterals = [lat(f) for lat, f in zip(self.lateral, features)]
        for i in range(len(laterals) - 1, 0, -1):  # coarse to fine
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        return [out(lat) for out, lat in zip(self.output, laterals)]  # [P3, P4, P5]
