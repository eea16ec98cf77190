"""Action loss: cross-entropy on hard labels, temperature-scaled KL divergence on soft labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ActionLoss(nn.Module):
    """Per (frame, track) logits ``(..., A)``. Hard labels ``(...)`` (-1 = none) use cross-entropy;
    soft distributions ``(..., A)`` (all-zero = none) use ``KL(soft || softmax(logits / T)) * T^2``
    (Hinton et al.'s distillation scaling, so gradients keep their size across temperatures)."""

    def __init__(self, temperature: float = 2.0, soft_weight: float = 1.0, label_smoothing: float = 0.0):
        super().__init__()
        self.temperature, self.soft_weight, self.smoothing = temperature, soft_weight, label_smoothing

    def forward(self, logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        A = logits.shape[-1]
        flat, hard = logits.reshape(-1, A), hard.reshape(-1)
        has_hard = hard >= 0
        ce = F.cross_entropy(flat[has_hard], hard[has_hard], label_smoothing=self.smoothing) if has_hard.any() else flat.sum() * 0.0
        out = {"action_ce": ce}
        if soft is not None:
            soft = soft.reshape(-1, A)
            has_soft = soft.sum(-1) > 0
            if has_soft.any():
                T = self.temperature
                log_p = F.log_softmax(flat[has_soft] / T, dim=-1)
                out["action_kl"] = self.soft_weight * F.kl_div(log_p, soft[has_soft], reduction="batchmean") * T * T
            else:
                out["action_kl"] = flat.sum() * 0.0
        return out
