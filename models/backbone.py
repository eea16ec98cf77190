"""A CSP backbone trained from scratch (no pretrained weights): C3, C4, C5 at strides 8, 16, 32."""
from __future__ import annotations

import torch
from torch import nn

from models.layers import CSPBlock, ConvBNAct, SPPF


class CSPBackbone(nn.Module):
    """Stem (stride 2) and four stages, each a strided 3x3 conv and a CSP block.

    ``widths`` are the channels of the stem and the four stages (strides 2, 4, 8, 16, 32);
    ``depths`` the bottlenecks per stage. Input ``(N, 3, H, W)`` with H, W multiples of 32; output
    ``[C3, C4, C5]`` of ``out_channels`` channels.
    """

    strides = (8, 16, 32)

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128, 192), depths: tuple[int, ...] = (1, 1, 2, 1)):
        super().__init__()
        if len(widths) != 5 or len(depths) != 4:
            raise ValueError(f"widths needs 5 entries and depths 4, got {widths}, {depths}")
        self.stem = ConvBNAct(3, widths[0], 3, 2)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvBNAct(widths[i], widths[i + 1], 3, 2), CSPBlock(widths[i + 1], widths[i + 1], depths[i]))
            for i in range(4))
        self.sppf = SPPF(widths[4])
        self.out_channels = tuple(widths[2:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"backbone input must be (N, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"frame height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == 3:
                x = self.sppf(x)
            if i >= 1:
                outs.append(x)
        return outs  # [C3 (N, c3, H/8, W/8), C4 (N, c4, H/16, W/16), C5 (N, c5, H/32, W/32)]
