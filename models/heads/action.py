"""Per-track action head: RoI features of a person's box in each of T frames -> 2-layer LSTM
(bidirectional, or unidirectional for streaming) with temporal attention -> per-frame logits."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align

MOTION_FEATURES = 6  # per frame: present flag, dx/h, dy/h, dlog w, dlog h, log(w/h)
MOTION_SCALE = torch.tensor([1.0, 10.0, 10.0, 10.0, 10.0, 1.0])  # brings per-frame changes (~0.05) to ~1


def box_motion_features(boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, N, 4)`` xyxy boxes and ``(B, T, N)`` mask -> ``(B, T, N, 6)`` motion cues.

    Displacements are in units of the box height, against the previous frame where the person is
    present (zero at the first presence), so they do not depend on image size or distance.
    """
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=1.0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=1.0)
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    cy = (boxes[..., 1] + boxes[..., 3]) / 2
    prev = torch.cat([mask[:, :1] & False, mask[:, :-1]], dim=1) & mask  # present now and in t-1

    def delta(v):
        return torch.cat([torch.zeros_like(v[:, :1]), v[:, 1:] - v[:, :-1]], dim=1)

    feats = torch.stack([mask.float(), delta(cx) / h, delta(cy) / h, delta(w.log()), delta(h.log()), (w / h).log()], dim=-1)
    feats[..., 1:5] = feats[..., 1:5] * prev[..., None]
    return feats * mask[..., None]


class ActionHead(nn.Module):
    """Input: ``P3`` of the flattened clip ``(B*T, C, H/8, W/8)``, boxes ``(B, T, N, 4)`` and mask
    ``(B, T, N)``; output: logits ``(B, T, N, num_actions)``."""

    def __init__(self, in_channels: int, num_actions: int, hidden: int = 128, pool: tuple[int, int] = (6, 4),
                 stride: int = 8, num_layers: int = 2, bidirectional: bool = True, dropout: float = 0.1):
        super().__init__()
        self.num_actions, self.stride, self.pool, self.bidirectional = num_actions, stride, pool, bidirectional
        self.reduce = nn.Conv2d(in_channels, in_channels // 2, 1)
        self.embed = nn.Sequential(nn.Linear(in_channels // 2 * pool[0] * pool[1], hidden), nn.SiLU(inplace=True))
        # Box motion gets its own embedding: concatenated raw to a thousand RoI values, six small
        # numbers would be drowned out, yet they carry most of the speed and bounce cues.
        self.motion_embed = nn.Sequential(nn.Linear(MOTION_FEATURES, hidden // 2), nn.SiLU(inplace=True),
                                          nn.Linear(hidden // 2, hidden))
        self.lstm = nn.LSTM(hidden, hidden, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if num_layers > 1 else 0.0)
        out = hidden * (2 if bidirectional else 1)
        self.attn_query = nn.Linear(out, out)
        self.attn_key = nn.Linear(out, out)
        self.classifier = nn.Sequential(nn.Linear(2 * out, hidden), nn.SiLU(inplace=True), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_actions))

    def forward(self, p3: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.from_features(self.features(p3), boxes, mask)

    def features(self, p3: torch.Tensor) -> torch.Tensor:
        """``(M, C, h, w)`` P3 maps -> ``(M, C/2, h, w)``: the per-frame part of the head, which a
        streaming caller computes once per frame and keeps (it does not depend on the boxes)."""
        return self.reduce(p3)

    def from_features(self, features: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` from the ``(B*T, C/2, h, w)`` output of :meth:`features`."""
        B, T, N, _ = boxes.shape
        if features.shape[0] != B * T or mask.shape != (B, T, N):
            raise ValueError(f"action head: features of {features.shape[0]} images, boxes {tuple(boxes.shape)}, mask "
                             f"{tuple(mask.shape)}; expected B*T images and a (B, T, N) mask")
        if N == 0:
            return boxes.new_zeros((B, T, 0, self.num_actions))
        image_index = torch.arange(B * T, device=boxes.device, dtype=boxes.dtype).reshape(B, T, 1).expand(B, T, N)
        rois = torch.cat([image_index[..., None], boxes], dim=-1).reshape(-1, 5)  # (B*T*N, 5)
        pooled = roi_align(features, rois, self.pool, spatial_scale=1.0 / self.stride, sampling_ratio=2, aligned=True)
        # Explicit sizes (no -1) so an exported graph keeps them when T and N change.
        pooled = pooled.flatten(1).reshape(B, T, N, self.embed[0].in_features) * mask[..., None]  # (B, T, N, C*ph*pw)
        motion = box_motion_features(boxes, mask) * MOTION_SCALE.to(boxes.device)
        x = self.embed(pooled) + self.motion_embed(motion)  # (B, T, N, hidden)
        x = x.permute(0, 2, 1, 3).reshape(B * N, T, self.lstm.input_size)  # (B*N, T, hidden)
        h, _ = self.lstm(x)  # (B*N, T, out)
        # Temporal attention: each frame gathers context from the frames where the person is present
        # (only earlier ones when streaming).
        present = mask.permute(0, 2, 1).reshape(B * N, T)  # (B*N, T)
        scores = self.attn_query(h) @ self.attn_key(h).transpose(1, 2) / h.shape[-1] ** 0.5  # (B*N, T, T)
        allowed = present[:, None, :].expand(-1, T, -1)
        if not self.bidirectional:
            allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.nan_to_num(scores.softmax(dim=-1), nan=0.0)  # rows with no allowed frame -> 0
        context = weights @ h  # (B*N, T, out)
        logits = self.classifier(torch.cat([h, context], dim=-1))  # (B*N, T, A)
        return logits.reshape(B, N, T, self.num_actions).permute(0, 2, 1, 3)  # (B, T, N, A)
