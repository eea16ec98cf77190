"""The training config's schema: every key of the composed ``config/train.yaml`` with its type and
range, checked once after composition (:func:`check_train_config`), so ``trainer.epochs=abc``,
``data.batch_size=0`` or ``trainer.best_metric=mAP`` stop at once with one line naming the key,
the value and what is expected, instead of a traceback later or a run that silently does nothing.
The values themselves stay in the yaml files; these classes hold no defaults of their own except
for keys that older configs lacked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.schema import from_mapping
from data.sources import SourceConfig, read_sources
from models.config import ModelConfig
from train.trainer import METRICS, TrainerConfig


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float
    scale_range: tuple[float, float]
    brightness: float
    contrast: float
    saturation: float
    hue: float
    # Off unless a config turns them on (configs stored before they existed lack them).
    zoom_out_p: float = 0.0
    zoom_out_max: float = 2.0
    crop_p: float = 0.0
    crop_min: float = 0.5
    blur_p: float = 0.0
    noise_std: float = 0.0

    def check(self) -> None:
        if not 0 <= self.flip_p <= 1:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be 0 < low <= high, got {list(self.scale_range)}")
        if min(self.brightness, self.contrast, self.saturation) < 0 or not 0 <= self.hue <= 0.5:
            raise ValueError("brightness, contrast and saturation must be >= 0 and hue in [0, 0.5]")
        if not (0 <= self.zoom_out_p <= 1 and 0 <= self.crop_p <= 1 and 0 <= self.blur_p <= 1):
            raise ValueError("zoom_out_p, crop_p and blur_p are probabilities in [0, 1]")
        if self.zoom_out_max < 1 or not 0 < self.crop_min <= 1 or self.noise_std < 0:
            raise ValueError("need zoom_out_max >= 1, 0 < crop_min <= 1 and noise_std >= 0")


@dataclass(frozen=True)
class DataConfig:
    name: str
    root: str
    seed: int
    generator: dict
    clip_len: int
    stride: int
    train_clip_step: int
    size: tuple[int, int]  # (H, W) of the network input
    min_visibility: float
    batch_size: int
    num_workers: int
    augment: AugmentConfig
    pseudo_labels: str | None = None  # a scripts/pseudo_label.py working folder (see train/run.py build_datasets)
    sources: tuple[SourceConfig, ...] | None = None  # training data as weighted sources (data/sources.py)
    val_sources: tuple[SourceConfig, ...] | None = None
    label_map: str | None = None  # the action head's classes when no source brings a label map

    def check(self) -> None:
        if any(v < 32 or v % 32 for v in self.size):
            raise ValueError(f"size must be two multiples of 32 (H, W), got {list(self.size)}")
        if min(self.clip_len, self.stride, self.train_clip_step, self.batch_size) < 1:
            raise ValueError(f"clip_len, stride, train_clip_step and batch_size must be at least 1, got "
                             f"{self.clip_len}, {self.stride}, {self.train_clip_step}, {self.batch_size}")
        if self.num_workers < 0 or not 0 <= self.min_visibility <= 1:
            raise ValueError(f"num_workers must be >= 0 and min_visibility in [0, 1], got {self.num_workers}, "
                             f"{self.min_visibility}")


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    warmup_steps: int
    min_lr_ratio: float

    def check(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(f"need lr > 0, weight_decay >= 0 and warmup_steps >= 0, got {self.lr}, "
                             f"{self.weight_decay}, {self.warmup_steps}")
        if not all(0 <= b < 1 for b in self.betas) or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"betas must be in [0, 1) and min_lr_ratio in [0, 1], got {list(self.betas)}, "
                             f"{self.min_lr_ratio}")


@dataclass(frozen=True)
class LossConfig:
    adaptive: bool
    init_log_vars: tuple[float, float, float]  # detection, reid, action
    center_radius: float
    box_weight: float
    quality: Literal["joint", "iou", "centerness"]
    size_ranges: tuple[tuple[float, float], ...]
    reid_scale: float
    reid_margin: float
    action_temperature: float
    varifocal_alpha: float = 0.75
    action_target_temperature: float = 1.0

    def check(self) -> None:
        if min(self.center_radius, self.box_weight, self.reid_scale, self.action_temperature,
               self.action_target_temperature) <= 0:
            raise ValueError("center_radius, box_weight, reid_scale and the action temperatures must be > 0")
        if len(self.size_ranges) != 3 or any(lo >= hi for lo, hi in self.size_ranges):
            raise ValueError(f"size_ranges needs three [low, high) ranges, one per level, got {self.size_ranges}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    data: DataConfig
    optimizer: OptimizerConfig
    loss: LossConfig
    trainer: TrainerConfig
    exp_name: str
    runs_root: str
    device: str
    resume: str | None
    seed: int
    expect_num_actions: int | None = None

    def check(self) -> None:
        if not self.exp_name or "/" in self.exp_name or self.exp_name.startswith("."):
            raise ValueError(f"exp_name must be a plain folder name, got {self.exp_name!r}")
        if (self.loss.quality == "joint") != (self.model.det_score == "cls"):
            raise ValueError(f"loss.quality={self.loss.quality} and model.det_score={self.model.det_score} do not go "
                             "together: an IoU-aware classifier (loss.quality=joint) is scored by its class "
                             "probability alone (model.det_score=cls), and only it")


def check_train_config(container: dict) -> TrainConfig:
    """The resolved config (plain containers) checked against the schema; raises ``InputError``."""
    data = container.get("data") if isinstance(container, dict) else None
    if isinstance(data, dict):
        for key in ("sources", "val_sources"):  # first, so a bad entry is named by its index and field
            read_sources(data.get(key), f"config.data.{key}")
    return from_mapping(TrainConfig, container, "config")


__all__ = ["TrainConfig", "DataConfig", "OptimizerConfig", "LossConfig", "AugmentConfig", "check_train_config",
           "METRICS"]
