"""Adaptive multi-task loss with learned uncertainty weights (Kendall, Gal & Cipolla, CVPR 2018)."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

# The built-in tasks, in the order of their entries in ``log_vars`` (checkpoints store it so).
TASKS = ("detection", "reid", "action")


class MultiTaskLoss(nn.Module):
    """``total = sum_i exp(-s_i) * L_i + s_i`` over the tasks, ``s_i = log sigma_i^2`` learned; a
    task without targets in the batch adds no ``s_i`` (its ``L_i`` is zero).

    ``tasks`` maps each task's name to its loss, a module with ``task_terms(outputs, batch)`` (see
    :mod:`losses.task`); ``detection=, reid=, action=`` is shorthand for the built-in three. Each
    task loss is a submodule under its name, and ``log_vars`` holds one ``s_i`` per task in the
    mapping's order; ``init_log_vars`` gives a task's starting ``s_i`` by name. The ``log_vars``
    are parameters of this module: the trainer puts them in the optimizer, saves them in
    checkpoints and logs ``exp(-s_i)`` (the task weights) every step.
    """

    def __init__(self, *, tasks: Mapping[str, nn.Module] | None = None, detection: nn.Module | None = None,
                 reid: nn.Module | None = None, action: nn.Module | None = None, adaptive: bool = True,
                 init_log_vars: Mapping[str, float] | None = None):
        super().__init__()
        builtin = {"detection": detection, "reid": reid, "action": action}
        if tasks is None:
            missing = [t for t, loss in builtin.items() if loss is None]
            if missing:
                raise TypeError(f"MultiTaskLoss needs tasks= or all of detection=, reid=, action= (missing {missing})")
            tasks = builtin
        elif any(loss is not None for loss in builtin.values()):
            raise TypeError("MultiTaskLoss takes tasks= or detection=, reid=, action=, not both")
        if not tasks:
            raise ValueError("MultiTaskLoss needs at least one task")
        for name, loss in tasks.items():
            if not isinstance(loss, nn.Module) or not callable(getattr(loss, "task_terms", None)):
                raise TypeError(f"task {name!r}: the loss must be an nn.Module with task_terms(outputs, batch), got "
                                f"{type(loss).__name__}")
        init = dict(init_log_vars or {})
        if set(init) - set(tasks):
            raise ValueError(f"init_log_vars names unknown tasks {sorted(set(init) - set(tasks))}; the tasks are "
                             f"{list(tasks)}")
        self.adaptive = adaptive
        self.task_names = tuple(tasks)
        self.log_vars = nn.Parameter(torch.tensor([float(init.get(t, 0.0)) for t in tasks], dtype=torch.float32),
                                     requires_grad=adaptive)
        for name, loss in tasks.items():
            if hasattr(self, name):  # a task named "log_vars" or "forward" would replace the loss's own
                raise ValueError(f"task name {name!r} is taken by MultiTaskLoss itself")
            self.add_module(name, loss)

    def task_weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-v)) for t, v in zip(self.task_names, self.log_vars.detach())}

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        terms, results = {}, []
        for task in self.task_names:
            result = self._modules[task].task_terms(outputs, batch)
            named = {**result.terms, **result.stats}
            clash = set(named) & (set(terms) | {"total"} | {f"task_{t}" for t in self.task_names})
            if clash or not result.terms:
                why = f"term names {sorted(clash)} are taken" if clash else "no loss terms"
                raise ValueError(f"task {task!r}: {why}")
            terms.update(named)
            results.append(result)
        total = 0.0
        for task, result, s in zip(self.task_names, results, self.log_vars):
            task_loss = sum(result.terms.values())
            terms[f"task_{task}"] = task_loss.detach()
            if not self.adaptive:
                total = total + task_loss
            else:
                # A task with no target in this batch (real footage has no action labels; a still image
                # has no identities) adds no s_i: alone, that term would push s_i down step after step
                # and inflate the task's weight for the batches that do carry its targets.
                total = total + torch.exp(-s) * task_loss + (s if result.supervised else 0.0)
        terms["total"] = total
        return terms
