"""The network's shape as plain, typed numbers and choices.

A :class:`ModelConfig` is all :meth:`models.mot_action_net.MotActionNet.from_config` needs; it is
what checkpoints store and what ``config/model/<variant>.yaml`` holds (those files are the one
place the variants' numbers are written; ``lite``, ``full`` and ``fast`` extend ``tiny``).
Building the network never looks anything up by name from a file, so a shared checkpoint or config
can only set numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from common.schema import from_mapping
from config import CONFIG_DIR

VARIANTS = ("tiny", "lite", "full", "fast")
# Keys older checkpoints stored beside the numbers (a hydra `net:` block, a training flag): never read.
LEGACY_KEYS = ("net", "strict_num_actions")


def _positive(name: str, *values: int) -> None:
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be positive, got {values if len(values) > 1 else values[0]}")


@dataclass(frozen=True)
class TemporalConfig:
    d_model: int
    num_layers: int
    num_heads: int
    ff_mult: int
    causal: bool = False
    pool: int = 1  # > 1: the encoder runs on pool x pool average-pooled C5 tokens (see TemporalEncoder)

    def check(self) -> None:
        _positive("temporal sizes", self.d_model, self.num_layers, self.num_heads, self.ff_mult, self.pool)
        if self.d_model % self.num_heads:
            raise ValueError(f"temporal.d_model {self.d_model} is not a multiple of num_heads {self.num_heads}")


@dataclass(frozen=True)
class ReIDConfig:
    channels: int
    dim: int
    separable: bool = False

    def check(self) -> None:
        _positive("reid sizes", self.channels, self.dim)


@dataclass(frozen=True)
class ActionConfig:
    hidden: int
    bidirectional: bool = True

    def check(self) -> None:
        _positive("action.hidden", self.hidden)


@dataclass(frozen=True)
class ModelConfig:
    """See ``config/model/tiny.yaml`` for what each field means."""

    variant: str
    num_actions: int
    num_classes: int
    widths: tuple[int, ...]  # stem, then the stages at strides 4, 8, 16, 32
    depths: tuple[int, ...]  # CSP blocks per stage
    fpn_channels: int
    fpn_separable: bool
    temporal: TemporalConfig
    head_depth: int
    head_tower: Literal["gn", "bn", "separable"]
    head_kernel: int
    det_score: Literal["cls", "cls_quality"]
    det_nms: Literal["soft", "hard"]
    det_soft_sigma: float
    reid: ReIDConfig
    action: ActionConfig
    activation: Literal["silu", "relu"] = "silu"  # after every convolution (models.layers.ACTIVATIONS)

    def check(self) -> None:
        if len(self.widths) != 5 or len(self.depths) != 4:
            raise ValueError(f"widths needs 5 entries and depths 4, got {list(self.widths)} and {list(self.depths)}")
        _positive("widths", *self.widths)
        _positive("depths", *self.depths)
        _positive("num_actions, num_classes, fpn_channels, head_depth", self.num_actions, self.num_classes,
                  self.fpn_channels, self.head_depth)
        groups = min(16, self.fpn_channels // 4)  # the GroupNorm towers' groups
        if self.head_tower == "gn" and (groups < 1 or self.fpn_channels % groups):
            raise ValueError(f"fpn_channels {self.fpn_channels} does not split into GroupNorm's {groups} groups")
        if self.fpn_channels < 2:
            raise ValueError(f"fpn_channels must be at least 2, got {self.fpn_channels}")
        if self.head_kernel < 1 or self.head_kernel % 2 == 0:
            raise ValueError(f"head_kernel must be odd, got {self.head_kernel}")
        if not self.det_soft_sigma > 0:
            raise ValueError(f"det_soft_sigma must be > 0, got {self.det_soft_sigma}")

    @classmethod
    def from_mapping(cls, data, where: str = "model") -> "ModelConfig":
        """Checked conversion of a plain mapping (a resolved config or a checkpoint's record)."""
        return from_mapping(cls, data, where, ignore=LEGACY_KEYS)

    def to_dict(self) -> dict:
        return asdict(self)


def model_preset(variant: str, num_actions: int = 6, num_classes: int = 1) -> ModelConfig:
    """``config/model/<variant>.yaml`` (following its defaults list) with the task sizes set.
    ``variant`` may carry model overrides after ``+``, as the training command line writes them
    after ``model.``: ``fast+activation=relu+temporal.pool=1`` (for measuring a route without a
    file of its own)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    name, *overrides = variant.split("+")
    if name not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; choose one of {VARIANTS}")
    if any("=" not in item for item in overrides):
        raise ValueError(f"model variant {variant!r}: write overrides as +key=value, e.g. fast+activation=relu")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        try:
            model = compose("train", overrides=[f"model={name}", *(f"++model.{item}" for item in overrides)]).model
        except (HydraException, OmegaConfBaseException) as error:
            raise ValueError(f"model variant {variant!r}: {str(error).splitlines()[0]}") from None
    data = OmegaConf.to_container(model, resolve=True)
    data.update(num_actions=num_actions, num_classes=num_classes)
    return ModelConfig.from_mapping(data, f"model {variant}" if overrides else f"config/model/{name}.yaml")
