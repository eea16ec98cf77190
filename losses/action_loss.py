"""Action loss: cross-entropy on hard labels, temperature-scaled KL divergence on soft labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.task import TaskTerms


class ActionLoss(nn.Module):
    """Per (frame, track) logits ``(..., A)``. Hard labels ``(...)`` (-1 = none) use cross-entropy;
    soft distributions ``(..., A)`` (all-zero = none) use ``KL(soft || softmax(logits / T)) * T^2``
    (Hinton et al.'s distillation scaling, so gradients keep their size across temperatures).

    ``target_temperature`` below 1 sharpens the soft targets first (``p^(1/t)``, renormalised): a
    VLM's stated confidences are flat (its top-1 at about 0.5), and matching them as they are
    taught the synthetic benchmark's actions about as slowly with the right top-1 every time as
    with a wrong one a third of the time (see docs/pseudo_labelling.md)."""

    def __init__(self, temperature: float = 2.0, soft_weight: float = 1.0, label_smoothing: float = 0.0,
                 target_temperature: float = 1.0):
        super().__init__()
        if not temperature > 0 or not target_temperature > 0:
            raise ValueError(f"temperatures must be > 0, got {temperature}, {target_temperature}")
        self.temperature, self.soft_weight, self.smoothing = temperature, soft_weight, label_smoothing
        self.target_temperature = target_temperature

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
                target = soft[has_soft]
                if self.target_temperature != 1.0:
                    target = target.clamp(min=0) ** (1.0 / self.target_temperature)
                    target = target / target.sum(-1, keepdim=True)
                log_p = F.log_softmax(flat[has_soft] / T, dim=-1)
                out["action_kl"] = self.soft_weight * F.kl_div(log_p, target, reduction="batchmean") * T * T
            else:
                out["action_kl"] = flat.sum() * 0.0
        return out

    def task_terms(self, outputs: dict, batch: dict) -> TaskTerms:
        """The multi-task loss's call: hard labels, and soft ones where the batch has them."""
        hard, soft = batch["actions"], batch.get("soft_actions")
        supervised = bool((hard >= 0).any()) or (soft is not None and bool((soft.sum(-1) > 0).any()))
        return TaskTerms(self(outputs["action_logits"], hard, soft), supervised)
