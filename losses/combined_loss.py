"""Adaptive multi-task loss with learned uncertainty weights (Kendall, Gal & Cipolla, CVPR 2018)."""
from __future__ import annotations

import torch
from torch import nn

from losses.action_loss import ActionLoss
from losses.detection_loss import DetectionLoss
from losses.tracking_loss import ReIDLoss

TASKS = ("detection", "reid", "action")
TASK_TERMS = {"detection": ("det_cls", "det_box", "det_ctr"), "reid": ("reid_id", "reid_triplet"),
              "action": ("action_ce", "action_kl")}


class MultiTaskLoss(nn.Module):
    """``total = sum_i exp(-s_i) * L_i + s_i`` over the tasks, ``s_i = log sigma_i^2`` learned; a
    task without targets in the batch adds no ``s_i`` (its ``L_i`` is zero).

    The ``log_vars`` are parameters of this module: the trainer puts them in the optimizer, saves
    them in checkpoints and logs ``exp(-s_i)`` (the task weights) every step.
    """

    def __init__(self, *, detection: DetectionLoss, reid: ReIDLoss, action: ActionLoss, adaptive: bool = True,
                 init_log_vars: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        super().__init__()
        self.detection, self.reid, self.action = detection, reid, action
        self.adaptive = adaptive
        self.log_vars = nn.Parameter(torch.tensor(init_log_vars, dtype=torch.float32), requires_grad=adaptive)

    def task_weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-v)) for t, v in zip(TASKS, self.log_vars.detach())}

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        B, T = outputs["clip"]
        boxes, mask = batch["boxes"], batch["mask"]  # (B, T, N, 4), (B, T, N)
        N = boxes.shape[2]
        ignore = batch.get("ignore_boxes")
        K = 0 if ignore is None else ignore.shape[2]
        terms = self.detection(outputs["detections"], boxes.reshape(B * T, N, 4), batch["labels"].clamp(min=0).reshape(B * T, N),
                               mask.reshape(B * T, N), batch["annotated"].reshape(B * T),
                               None if not K else ignore.reshape(B * T, K, 4),  # (B, T, K, 4) -> (B*T, K, 4)
                               None if not K else batch["ignore_mask"].reshape(B * T, K))
        ids = batch["identities"][:, None, :].expand(B, T, N)  # (B, T, N)
        keep = mask & (ids >= 0)
        terms.update(self.reid(outputs["embeddings"][keep], ids[keep]))
        soft = batch.get("soft_actions")
        terms.update(self.action(outputs["action_logits"], batch["actions"], soft))
        # A task with no target in this batch (real footage has no action labels; a still image has no
        # identities) adds no s_i: alone, that term would push s_i down step after step and inflate the
        # task's weight for the batches that do carry its targets.
        supervised = {"detection": bool(batch["annotated"].any()), "reid": bool(keep.any()),
                      "action": bool((batch["actions"] >= 0).any()) or (soft is not None and bool((soft.sum(-1) > 0).any()))}
        total = 0.0
        for task, s in zip(TASKS, self.log_vars):
            task_loss = sum(terms[k] for k in TASK_TERMS[task] if k in terms)
            terms[f"task_{task}"] = task_loss.detach()
            if not self.adaptive:
                total = total + task_loss
            else:
                total = total + torch.exp(-s) * task_loss + (s if supervised[task] else 0.0)
        terms["total"] = total
        return terms
