"""Optimizer, warmup + cosine schedule, and a weight EMA."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from models.checkpoint import load_model_state


def build_optimizer(model: nn.Module, criterion: nn.Module, lr: float = 2e-3, weight_decay: float = 0.05,
                    betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    """AdamW over the network and the loss's own parameters (uncertainty weights, ReID classifier).

    Norms, biases and the uncertainty weights get no weight decay: decaying ``log_vars`` would pull
    every task weight towards 1 and undo the adaptive balancing.
    """
    decay, no_decay = [], []
    for module in (model, criterion):
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or name.endswith("log_vars") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=tuple(betas))


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 100,
                  min_lr_ratio: float = 0.05) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base LR, then cosine decay to ``min_lr_ratio`` of it."""
    total_steps = max(total_steps, 1)
    warmup_steps = min(warmup_steps, total_steps // 2)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class ModelEMA:
    """Exponential moving average of the weights (BatchNorm buffers copied), with warmup of the
    decay so early averages are not dominated by the random initialisation."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: int = 200):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.warmup))
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach(), alpha=1 - d)
            else:
                v.copy_(src[k])

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict, source: str = "ema") -> None:
        load_model_state(self.module, state["module"], source)
        self.updates = state["updates"]
