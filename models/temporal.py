"""Temporal transformer over the time axis of a feature map, so the heads see motion."""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_encoding(length: int, dim: int, device=None) -> torch.Tensor:
    """``(length, dim)`` fixed sine/cosine encoding of frame order."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(position * freq)
    enc[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return enc


class TemporalEncoder(nn.Module):
    """Self-attention across the T frames at every spatial location of one level.

    Input and output ``(B, T, C, H, W)``; the update is residual, so a freshly initialised encoder
    starts close to identity. ``causal=True`` lets frame t attend only to frames <= t (streaming).
    """

    def __init__(self, channels: int, d_model: int = 128, num_layers: int = 2, num_heads: int = 4,
                 ff_mult: int = 2, dropout: float = 0.0, causal: bool = False, max_frames: int = 64):
        super().__init__()
        self.channels, self.causal, self.max_frames = channels, causal, max_frames
        self.in_proj = nn.Linear(channels, d_model)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, ff_mult * d_model, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out_proj = nn.Linear(d_model, channels)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)
        self.register_buffer("position", sinusoidal_encoding(max_frames, d_model), persistent=False)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T, C, H, W)`` -> the encoder's input ``(B*H*W, T, d_model)`` and its attention mask."""
        B, T, C, H, W = x.shape
        if C != self.channels or T > self.max_frames:
            raise ValueError(f"temporal encoder expects (B, T<={self.max_frames}, {self.channels}, H, W), got {tuple(x.shape)}")
        tokens = x.permute(0, 3, 4, 1, 2).reshape(B * H * W, T, C)  # (B*H*W, T, C)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device) if self.causal else None
        return self.in_proj(tokens) + self.position[:T], mask

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        h, mask = self._tokens(x)
        return self.encoder(h, mask=mask, is_causal=self.causal)  # (B*H*W, T, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        update = self.out_proj(self._encode(x)).reshape(B, H, W, T, C).permute(0, 3, 4, 1, 2)  # (B, T, C, H, W)
        return x + update

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, -1]`` — the newest frame only, ``(B, C, H, W)`` — for streaming. The last
        layer computes attention and feed-forward for the newest frame's query alone (the other
        frames' outputs of that layer feed nothing), which is most of a layer's work saved."""
        B, T, C, H, W = x.shape
        h, mask = self._tokens(x)
        *early, last = self.encoder.layers
        for layer in early:
            h = layer(h, src_mask=mask, is_causal=self.causal)
        h = self._newest_query_layer(last, h)  # (B*H*W, 1, d_model); the newest frame sees all frames, causal or not
        if self.encoder.norm is not None:
            h = self.encoder.norm(h)
        return x[:, -1] + self.out_proj(h[:, 0]).reshape(B, H, W, C).permute(0, 3, 1, 2)  # (B, C, H, W)

    @staticmethod
    def _newest_query_layer(layer: nn.TransformerEncoderLayer, h: torch.Tensor) -> torch.Tensor:
        """``layer(h)[:, -1:]`` for a pre-norm layer, computing only that row."""
        if not layer.norm_first:
            return layer(h)[:, -1:]
        normed = layer.norm1(h)  # (N, T, d)
        q = normed[:, -1:]  # (N, 1, d)
        out = h[:, -1:] + layer.dropout1(layer.self_attn(q, normed, normed, need_weights=False)[0])
        ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(out)))))
        return out + layer.dropout2(ff)
