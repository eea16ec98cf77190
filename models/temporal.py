"""Temporal transformer over the time axis of a feature map, so the heads see motion."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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

    ``pool > 1`` runs the encoder on ``pool`` x ``pool`` average-pooled tokens (at a side that is
    not a multiple of ``pool``, the last tokens average the cells that are there) and adds each
    token's update to every location it pooled: ``pool**2`` times fewer tokens, the same
    parameters, and the residual keeps the full-resolution map.
    """

    def __init__(self, channels: int, d_model: int = 128, num_layers: int = 2, num_heads: int = 4,
                 ff_mult: int = 2, dropout: float = 0.0, causal: bool = False, max_frames: int = 64, pool: int = 1):
        super().__init__()
        if pool < 1:
            raise ValueError(f"temporal encoder: pool must be positive, got {pool}")
        self.channels, self.causal, self.max_frames, self.pool = channels, causal, max_frames, pool
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

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` -> ``(B, T, C, ceil(H/pool), ceil(W/pool))`` token maps: each the mean
        of the (up to) ``pool`` x ``pool`` cells of the map it covers."""
        if self.pool == 1:
            return x
        B, T, C, H, W = x.shape
        flat = F.avg_pool2d(x.reshape(B * T, C, H, W), self.pool, self.pool, ceil_mode=True)
        return flat.reshape(B, T, C, flat.shape[-2], flat.shape[-1])

    def _spread(self, update: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Each pooled token's update ``(N, C, h, w)`` back over the ``pool`` x ``pool`` cells it came from."""
        if self.pool == 1:
            return update
        return F.interpolate(update, scale_factor=self.pool, mode="nearest")[..., : size[0], : size[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        tokens = self._pooled(x)
        h, w = tokens.shape[-2:]
        update = self.out_proj(self._encode(tokens)).reshape(B, h, w, T, C).permute(0, 3, 4, 1, 2)  # (B, T, C, h, w)
        if self.pool > 1:
            update = self._spread(update.reshape(B * T, C, h, w), (H, W)).reshape(B, T, C, H, W)
        return x + update

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, -1]`` — the newest frame only, ``(B, C, H, W)`` — for streaming. The last
        layer computes attention and feed-forward for the newest frame's query alone (the other
        frames' outputs of that layer feed nothing), which is most of a layer's work saved."""
        B, T, C, H, W = x.shape
        tokens = self._pooled(x)
        th, tw = tokens.shape[-2:]
        h, mask = self._tokens(tokens)
        *early, last = self.encoder.layers
        for layer in early:
            h = layer(h, src_mask=mask, is_causal=self.causal)
        h = self._newest_query_layer(last, h)  # (B*H*W, 1, d_model); the newest frame sees all frames, causal or not
        if self.encoder.norm is not None:
            h = self.encoder.norm(h)
        update = self.out_proj(h[:, 0]).reshape(B, th, tw, C).permute(0, 3, 1, 2)  # (B, C, th, tw)
        return x[:, -1] + self._spread(update, (H, W))  # (B, C, H, W)

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
