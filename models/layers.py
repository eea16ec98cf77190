"""Small building blocks shared by the backbone, FPN and heads."""
from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> SiLU, 'same' padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.SiLU(inplace=True))


class SeparableConvBNAct(nn.Sequential):
    """Depthwise ``kernel`` x ``kernel`` conv then pointwise 1x1, each ConvBNAct: about
    ``kernel**2`` times fewer multiply-adds than a dense conv of the same width, which is where the
    detection towers spent most of a frame on CPU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__(ConvBNAct(c_in, c_in, kernel, groups=c_in), ConvBNAct(c_in, c_out, 1))


#: The convolutions' activation choices (``ModelConfig.activation``). ReLU is what CPU runtimes
#: fold into the convolution (ONNX Runtime's Conv+Relu fusion, QLinearConv in INT8); SiLU, which
#: YOLO and this network were designed with, runs as a separate pass over every feature map there.
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


def set_conv_activation(module: nn.Module, activation: str) -> nn.Module:
    """Replace the activation after every convolution of ``module`` (each :class:`ConvBNAct`'s,
    and the SiLU of GroupNorm towers) by ``activation``, in place, before training. The MLPs that
    follow pooled boxes (ReID projection, action head) keep theirs: they run per box, not per pixel."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    make = ACTIVATIONS[activation]
    for child in module.modules():
        if isinstance(child, nn.Sequential):
            for index, layer in enumerate(child):
                after_conv_norm = index >= 2 and isinstance(child[index - 1], (nn.BatchNorm2d, nn.GroupNorm, nn.Identity)) \
                    and isinstance(child[index - 2], nn.Conv2d)
                if after_conv_norm and isinstance(layer, tuple(ACTIVATIONS.values())):
                    child[index] = make(inplace=True)
    return module


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold each :class:`ConvBNAct`'s BatchNorm into its convolution, in place, for inference: the
    eval-mode outputs stay the same (up to float rounding) and every frame skips one pass over
    each feature map. The module must be in eval mode; it is not meant for training afterwards."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if module.training:
        raise ValueError("fuse_conv_bn: put the module in eval mode first (BatchNorm must use its running statistics)")
    for child in module.modules():
        if isinstance(child, ConvBNAct) and isinstance(child[1], nn.BatchNorm2d):
            child[0] = fuse_conv_bn_eval(child[0], child[1])
            child[1] = nn.Identity()
    return module


class Bottleneck(nn.Module):
    """Residual 3x3 -> 3x3 block."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(channels, channels, 3), ConvBNAct(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CSPBlock(nn.Module):
    """Cross-stage-partial block (YOLOv8's C2f shape): split, a chain of residual bottlenecks on
    one half, concatenate every intermediate output, fuse with a 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, depth: int):
        super().__init__()
        hidden = c_out // 2
        self.split = ConvBNAct(c_in, 2 * hidden, 1)
        self.blocks = nn.ModuleList(Bottleneck(hidden) for _ in range(depth))
        self.fuse = ConvBNAct((2 + depth) * hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.split(x).chunk(2, dim=1))
        for block in self.blocks:
            parts.append(block(parts[-1]))
        return self.fuse(torch.cat(parts, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): widens the receptive field of the coarsest level cheaply."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = channels // 2
        self.reduce = ConvBNAct(channels, hidden, 1)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.fuse = ConvBNAct(4 * hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        p1 = self.pool(x)
        p2 = self.pool(p1)
        return self.fuse(torch.cat([x, p1, p2, self.pool(p2)], dim=1))


def check_video(x: torch.Tensor, name: str = "frames") -> tuple[int, int, int, int, int]:
    """Validate a ``(B, T, C, H, W)`` float tensor and return its sizes."""
    if x.dim() != 5:
        raise ValueError(f"{name} must be (B, T, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got {x.dtype}")
    return tuple(x.shape)
