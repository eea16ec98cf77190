"""The training loop. It is short on purpose: checkpointing, logging, validation and the progress
bar are hooks (``after_step`` / ``after_epoch``) that read the trainer's state."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from common.errors import InputError
from models.checkpoint import check_finite, load_model_state, read_checkpoint
from train.checkpoint import save_checkpoint
from train.optim import ModelEMA


class TrainingDiverged(RuntimeError):
    """Raised after ``max_bad_steps`` consecutive non-finite losses or gradients."""


METRICS = ("det_ap50", "reid_rank1", "action_acc", "mean")  # what validation reports; best.pt follows one


@dataclass
class TrainerConfig:
    epochs: int = 10
    max_steps: int | None = None  # stop (and save) after this many optimizer steps in total
    grad_clip: float = 10.0
    amp: Literal["auto", "off"] = "auto"  # auto: bf16 (or fp16 + GradScaler) on CUDA, off on CPU
    ema_decay: float | None = 0.998  # None disables the weight EMA
    max_bad_steps: int = 5
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 0  # also save last.pt every N steps (0: at epoch ends and at the stop)
    best_metric: Literal["det_ap50", "reid_rank1", "action_acc", "mean"] = "mean"  # mean: of the three
    val_every: int = 1  # validate every N epochs (and always after the last)
    # After training, choose the tracker's settings for best.pt on the val split and record them in
    # it (evaluation.calibration; only where the val data is a split folder of whole sequences).
    calibrate_tracker: bool = True
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError(f"epochs and max_steps must be at least 1, got {self.epochs}, {self.max_steps}")
        if not self.grad_clip > 0 or self.max_bad_steps < 1 or self.log_every < 1 or self.val_every < 1:
            raise ValueError("grad_clip must be > 0 and max_bad_steps, log_every, val_every at least 1")
        if self.image_every < 0 or self.checkpoint_every < 0:
            raise ValueError("image_every and checkpoint_every must be >= 0 (0: off)")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or null, got {self.ema_decay}")


class ResumableSampler(Sampler):
    """Shuffled indices that depend only on (seed, epoch), split across ``world`` ranks, and able
    to start part-way through an epoch, so a resumed run sees exactly the batches it would have.

    ``groups`` mixes sources: ``[(size, weight), ...]`` in index order (the first ``size`` indices
    are the first source's, and so on); an epoch then takes ``round(weight * size)`` clips from
    each (a weight above 1 repeats a source's clips, below 1 uses a different part of it each epoch)."""

    def __init__(self, length: int, batch_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world: int = 1,
                 groups: list[tuple[int, float]] | None = None):
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.rank, self.world = rank, world
        self.epoch, self.start_batch = 0, 0
        self.groups = groups or [(length, 1.0)]
        if sum(size for size, _ in self.groups) != length or any(w < 0 for _, w in self.groups):
            raise ValueError(f"groups {self.groups} must cover the {length} indices with weights >= 0")
        self.length = sum(round(w * size) for size, w in self.groups)  # clips per epoch
        self.per_rank = math.ceil(self.length / world)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _epoch_order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.groups == [(self.length, 1.0)]:  # one source: one permutation (the order runs had before mixing)
            return torch.randperm(self.length, generator=g).tolist() if self.shuffle else list(range(self.length))
        order, offset = [], 0
        for size, weight in self.groups:
            count = round(weight * size)
            if self.shuffle:
                # Whole shuffled passes over the source, then part of one more: each clip appears
                # ``weight`` times, give or take one.
                repeats = -(-count // size) if size else 0
                picks = torch.cat([torch.randperm(size, generator=g) for _ in range(repeats)]) if repeats else torch.zeros(0)
                order += (picks[:count].long() + offset).tolist()
            else:
                order += [offset + k % size for k in range(count)]
            offset += size
        if self.shuffle:
            order = [order[k] for k in torch.randperm(len(order), generator=g).tolist()]
        return order

    def __iter__(self):
        order = self._epoch_order()
        order += order[: self.per_rank * self.world - len(order)]  # pad so every rank has as many
        mine = order[self.rank::self.world]
        return iter(mine[self.start_batch * self.batch_size:])

    def __len__(self) -> int:
        return max(self.per_rank - self.start_batch * self.batch_size, 0)

    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Owns the model, loss, optimizer, schedule and position; ``fit()`` runs the loop."""

    def __init__(self, *, model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 train_loader: DataLoader, sampler: ResumableSampler, config: TrainerConfig, device: torch.device,
                 run_dir: Path | None = None, hooks: list | None = None, checkpoint_meta: dict | None = None):
        self.model, self.criterion, self.optimizer, self.scheduler = model, criterion, optimizer, scheduler
        self.train_loader, self.sampler, self.cfg, self.device = train_loader, sampler, config, torch.device(device)
        self.run_dir, self.hooks, self.checkpoint_meta = run_dir, hooks or [], checkpoint_meta or {}
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if self.distributed else model
        if self.distributed:  # DDP broadcast the network from rank 0; the loss's parameters need the same
            for p in criterion.parameters():
                dist.broadcast(p.data, src=0)
        cuda = self.device.type == "cuda"
        self.amp_dtype = None
        if cuda and config.amp != "off":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # The scaler is used exactly when fp16 autocast is on (bf16 needs no loss scaling).
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.ema = ModelEMA(model, config.ema_decay) if config.ema_decay else None
        self.epoch = self.step_in_epoch = self.global_step = self.bad_steps = 0
        self.best_value = -math.inf
        self.last_terms: dict[str, float] = {}
        self.last_batch = self.last_outputs = None
        self.metrics: dict[str, float] = {}
        self.stop = False

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        self._call("before_train")
        while self.epoch < self.cfg.epochs and not self.stop:
            self.sampler.set_epoch(self.epoch, self.step_in_epoch)
            getattr(self.train_loader.dataset, "set_epoch", lambda e: None)(self.epoch)
            for batch in self.train_loader:
                self.train_step(_to_device(batch, self.device))
                self._call("after_step")
                if self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps:
                    self.stop = True
                    break
            if not self.stop:
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
                self._call("after_epoch")
        self._call("after_train")
        return self.metrics

    def train_step(self, batch: dict) -> None:
        self.net.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            outputs = self.net(batch["frames"], batch["boxes"], batch["mask"])
            terms = self.criterion(outputs, batch)
        loss = terms["total"]
        self.optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            self.scaler.scale(loss).backward()
            if self.distributed:  # the loss's own parameters are outside DDP: average their grads
                for p in self.criterion.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.world
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        else:
            grad_norm = torch.tensor(float("nan"))
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            self.bad_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler.is_enabled():
                self.scaler.update()  # lets fp16 loss scaling back off
            if self.bad_steps >= self.cfg.max_bad_steps:
                raise TrainingDiverged(f"loss or gradients were not finite for {self.bad_steps} steps in a row "
                                       f"(last loss {float(loss.detach()):.4g} at step {self.global_step}); lower the learning "
                                       "rate or check the data")
        else:
            self.bad_steps = 0
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model)
        self.scheduler.step()
        self.global_step += 1
        self.step_in_epoch += 1
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()} | {"grad_norm": float(grad_norm)}
        self.last_batch, self.last_outputs = batch, outputs

    def _call(self, event: str) -> None:
        for hook in self.hooks:
            getattr(hook, event, lambda trainer: None)(self)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "criterion": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "position": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step},
            "best_value": self.best_value, "metrics": dict(self.metrics),
            "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            **self.checkpoint_meta,
        }

    def save(self, name: str) -> Path | None:
        if self.rank != 0 or self.run_dir is None:
            return None
        path = self.run_dir / name
        save_checkpoint(path, self.state_dict())
        return path

    def resume(self, path: str | Path) -> None:
        """Weights (network, loss, EMA) through :func:`load_model_state`, which names what does
        not fit or is not finite; a NaN or inf in the optimizer or scaler state is refused too,
        naming its key, before anything is loaded."""
        state = read_checkpoint(path)
        for key in ("variant", "num_actions"):
            if key in self.checkpoint_meta and state.get(key) != self.checkpoint_meta[key]:
                raise InputError(f"{path}: checkpoint has {key}={state.get(key)!r}, this run has {self.checkpoint_meta[key]!r}")
        check_finite(_leaves({"optimizer": state.get("optimizer"), "scaler": state.get("scaler")}), str(path), "state")
        load_model_state(self.model, state["model"], str(path))
        load_model_state(self.criterion, state["criterion"], f"{path}: criterion")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"], source=f"{path}: ema")
        pos = state["position"]
        self.epoch, self.step_in_epoch, self.global_step = pos["epoch"], pos["step_in_epoch"], pos["global_step"]
        self.best_value, self.metrics = state["best_value"], state["metrics"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(_numpy_state_from(rng["numpy"]))
        random.setstate(_python_state_from(rng["python"]))
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


def _leaves(tree, key: str = "") -> dict:
    """The tensors and numbers of a nested state (an optimizer's) by dotted key, for
    :func:`check_finite`: a resumed moment that is NaN turns the weights NaN at the first step,
    with no word of where it came from."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    elif isinstance(tree, float):
        return {key: torch.tensor(tree)}
    else:
        return {key: tree} if torch.is_tensor(tree) else {}
    return {k: v for name, value in items for k, v in _leaves(value, f"{key}.{name}" if key else str(name)).items()}


def _numpy_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "gauss": float(gauss)}


def _numpy_state_from(state: dict):
    return (state["name"], state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"], state["gauss"])


def _python_state_from(state):
    version, internal, gauss = state
    return version, tuple(internal), gauss
