"""What a task's loss gives the multi-task loss (:class:`losses.combined_loss.MultiTaskLoss`).

A task loss is an ``nn.Module`` with ``task_terms(outputs, batch) -> TaskTerms``: ``outputs`` is
the network's forward dict, ``batch`` the collated clip batch. Its ``forward`` stays free for the
loss's own tensor-level call (``DetectionLoss(det, boxes, labels, valid)``), which tests and
other code use directly.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple

import torch


class TaskTerms(NamedTuple):
    """One task's loss on one batch."""

    terms: dict[str, torch.Tensor]  # summed, in this order, into the task's loss L_i; logged as loss/<name>
    supervised: bool  # the batch holds targets of this task (without any, its s_i is left out: see MultiTaskLoss)
    stats: Mapping[str, torch.Tensor] = MappingProxyType({})  # logged beside the terms, never summed
