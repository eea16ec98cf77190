"""ReID loss: identity classification over training identities + batch-hard triplet across frames."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.task import TaskTerms


def batch_hard_triplet(embeddings: torch.Tensor, ids: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Cosine-distance triplet loss with the hardest positive and negative of each anchor.

    ``embeddings (K, D)`` unit vectors, ``ids (K,)``. Anchors without a positive or a negative are
    skipped; returns 0 when none is usable.
    """
    dist = 1.0 - embeddings @ embeddings.t()  # (K, K)
    same = ids[:, None] == ids[None, :]
    eye = torch.eye(len(ids), dtype=torch.bool, device=ids.device)
    pos_mask, neg_mask = same & ~eye, ~same
    usable = pos_mask.any(1) & neg_mask.any(1)
    if not usable.any():
        return embeddings.sum() * 0.0
    hardest_pos = dist.masked_fill(~pos_mask, -1.0).max(1).values
    hardest_neg = dist.masked_fill(~neg_mask, 4.0).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin)[usable].mean()


class ReIDLoss(nn.Module):
    """``num_identities``-way cosine classifier (scale ``s``, label smoothing) plus triplet loss.

    The classifier's weights belong to the loss: they are trained (in the optimizer) and saved in
    checkpoints, but are not part of the network used at inference.
    """

    def __init__(self, num_identities: int, dim: int = 128, scale: float = 16.0, margin: float = 0.3,
                 label_smoothing: float = 0.1, triplet_weight: float = 1.0):
        super().__init__()
        if num_identities < 1:
            raise ValueError("ReIDLoss needs at least one training identity")
        self.weight = nn.Parameter(torch.randn(num_identities, dim) * 0.01)
        self.scale, self.margin, self.smoothing, self.triplet_weight = scale, margin, label_smoothing, triplet_weight

    def forward(self, embeddings: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """``embeddings (K, D)`` unit vectors of ground-truth boxes, ``ids (K,)`` identity classes."""
        if len(ids) == 0:
            zero = self.weight.sum() * 0.0
            return {"reid_id": zero, "reid_triplet": zero}
        logits = self.scale * embeddings @ F.normalize(self.weight, dim=1).t()  # (K, num_identities)
        return {"reid_id": F.cross_entropy(logits, ids, label_smoothing=self.smoothing),
                "reid_triplet": self.triplet_weight * batch_hard_triplet(embeddings, ids, self.margin)}

    def task_terms(self, outputs: dict, batch: dict) -> TaskTerms:
        """The multi-task loss's call: every ground-truth box of a known identity (-1: none, as
        for a still image's people)."""
        B, T, N = batch["mask"].shape
        ids = batch["identities"][:, None, :].expand(B, T, N)  # (B, T, N)
        keep = batch["mask"] & (ids >= 0)
        return TaskTerms(self(outputs["embeddings"][keep], ids[keep]), bool(keep.any()))
