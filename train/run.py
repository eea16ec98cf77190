"""Build everything a training run needs from a composed config and run it: ``train(cfg)``
returns the final validation metrics, so tests and scripts call it directly."""
from __future__ import annotations

import datetime
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from data.clip_dataset import ClipDataset, ClipTransform, ClipTransformConfig, collate_clips
from common.device import resolve_device
from common.errors import InputError
from data.formats.vicr import read_label_map
from data.sequences import mot_split
from losses.action_loss import ActionLoss
from losses.combined_loss import MultiTaskLoss
from losses.detection_loss import DetectionLoss
from losses.tracking_loss import ReIDLoss
from models.config import ModelConfig
from models.mot_action_net import MotActionNet
from train.hooks import CheckpointHook, ProgressHook, TensorBoardHook, ValidationHook
from train.optim import build_optimizer, warmup_cosine
from train.trainer import ResumableSampler, Trainer, TrainerConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "config"


def compose_config(overrides: list[str] | None = None, extra_file: str | None = None) -> DictConfig:
    """``config/train.yaml`` with hydra overrides (``model=lite trainer.epochs=5``) and, optionally,
    a YAML file merged on top (the seed's ``--config``)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        try:
            cfg = compose("train", overrides=list(overrides or []))
        except Exception as exc:  # hydra's errors name the bad override
            raise InputError(f"config: {str(exc).splitlines()[0]}") from None
    if extra_file:
        if not Path(extra_file).is_file():
            raise InputError(f"{extra_file}: config file not found")
        cfg = OmegaConf.merge(cfg, OmegaConf.load(extra_file))
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _init_distributed(device: torch.device) -> tuple[int, int]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; gloo on CPU, NCCL on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def ensure_synthetic(data_cfg: DictConfig, rank: int) -> Path:
    """The synthetic benchmark the config names, generated on first use (by rank 0 under DDP)."""
    from data.synthetic import SyntheticConfig, format_summary, prepare_synthetic
    root = Path(data_cfg.root)
    root = root if root.is_absolute() else ROOT / root
    if rank == 0:
        # An empty `generator: {}` is an empty (falsy) DictConfig: test for None, not truth.
        generator = data_cfg.get("generator")
        knobs = OmegaConf.to_container(generator) if generator is not None else {}
        try:
            config = SyntheticConfig(**knobs)
        except TypeError as exc:
            raise InputError(f"config: data.generator: {exc}") from None
        meta, generated = prepare_synthetic(root, seed=data_cfg.seed, config=config, use_existing=True,
                                            log=lambda m: print(m, flush=True))
        if generated:
            print(format_summary(meta), flush=True)
    if dist.is_initialized():
        dist.barrier()
    return root


def build_datasets(data_cfg: DictConfig, rank: int = 0):
    root = ensure_synthetic(data_cfg, rank) if data_cfg.name == "synthetic" else Path(data_cfg.root)
    label_map = read_label_map(root / "label_map.txt")
    size = tuple(data_cfg.size)
    aug = ClipTransform(ClipTransformConfig(size=size, train=True, **OmegaConf.to_container(data_cfg.augment)))
    plain = ClipTransform(ClipTransformConfig(size=size, train=False))
    train_set = ClipDataset(mot_split(root, "train", min_visibility=data_cfg.min_visibility), clip_len=data_cfg.clip_len,
                            stride=data_cfg.stride, clip_step=data_cfg.train_clip_step, transform=aug, seed=data_cfg.seed)
    # Validation keeps every box (AP ignores the barely visible ones) and does not overlap clips.
    val_set = ClipDataset(mot_split(root, "val"), clip_len=data_cfg.clip_len, stride=data_cfg.stride, transform=plain)
    return train_set, val_set, label_map


def _point_latest(run_dir: Path) -> None:
    """``<runs_root>/latest`` -> the newest run folder, so commands that follow a training (the
    Quick start's evaluation) can name its checkpoint without knowing the timestamp."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # file systems without symlinks: the timestamped folder is still printed
        pass


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_criterion(loss_cfg: DictConfig, num_identities: int, embedding_dim: int) -> MultiTaskLoss:
    return MultiTaskLoss(
        detection=DetectionLoss(size_ranges=[tuple(r) for r in loss_cfg.size_ranges], center_radius=loss_cfg.center_radius,
                                box_weight=loss_cfg.box_weight, quality=loss_cfg.quality,
                                varifocal_alpha=loss_cfg.get("varifocal_alpha", 0.75)),
        reid=ReIDLoss(num_identities, dim=embedding_dim, scale=loss_cfg.reid_scale, margin=loss_cfg.reid_margin),
        action=ActionLoss(temperature=loss_cfg.action_temperature),
        adaptive=loss_cfg.adaptive, init_log_vars=tuple(loss_cfg.init_log_vars))


def build_trainer(cfg: DictConfig, run_dir: Path | None = None) -> Trainer:
    """Datasets, model, loss, optimizer, schedule, hooks and (when ``cfg.resume``) the restored
    state, ready for ``fit()``."""
    device = resolve_device(cfg.device)
    rank, world = _init_distributed(device)
    seed_everything(cfg.seed + rank)
    train_set, val_set, label_map = build_datasets(cfg.data, rank)
    num_actions = max(label_map.ids()) + 1
    expected = cfg.get("expect_num_actions")
    if expected is not None and expected != num_actions:
        raise InputError(f"--num-actions {expected} does not match the {num_actions} actions of the dataset's "
                         f"label_map.txt ({cfg.data.root})")
    cfg.model.num_actions = num_actions
    model_config = ModelConfig.from_mapping(OmegaConf.to_container(cfg.model, resolve=True), "config: model")
    model = MotActionNet.from_config(model_config).to(device)
    if (cfg.loss.quality == "joint") != (model.detection_head.score == "cls"):
        raise InputError(f"loss.quality={cfg.loss.quality} and model.det_score={model.detection_head.score} do not go together: "
                         "an IoU-aware classifier (loss.quality=joint) is scored by its class probability alone "
                         "(model.det_score=cls), and only it")
    criterion = build_criterion(cfg.loss, train_set.num_identities, model.reid_head.dim).to(device)

    bs = cfg.data.batch_size
    sampler = ResumableSampler(len(train_set), bs, seed=cfg.seed, rank=rank, world=world)
    workers = cfg.data.num_workers
    # Loaders get generators of their own: by default each new iterator draws its seed from the
    # global RNG, so validating (or not) would change the dropout masks that follow and a resumed
    # run would drift from an uninterrupted one.
    train_loader = DataLoader(train_set, batch_size=bs, sampler=sampler, collate_fn=collate_clips, drop_last=True,
                              num_workers=workers, pin_memory=device.type == "cuda",
                              generator=torch.Generator().manual_seed(cfg.seed))
    val_loader = DataLoader(val_set, batch_size=bs, shuffle=False, collate_fn=collate_clips, num_workers=workers,
                            generator=torch.Generator().manual_seed(cfg.seed))

    tcfg = TrainerConfig(**OmegaConf.to_container(cfg.trainer), seed=cfg.seed)
    total_steps = tcfg.epochs * sampler.batches_per_epoch()
    if tcfg.max_steps is not None:
        total_steps = min(total_steps, tcfg.max_steps)
    optimizer = build_optimizer(model, criterion, lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay,
                                betas=cfg.optimizer.betas)
    # The schedule spans the whole planned run (epochs), so stopping at max_steps and resuming
    # continues the same curve.
    scheduler = warmup_cosine(optimizer, tcfg.epochs * sampler.batches_per_epoch(), cfg.optimizer.warmup_steps,
                              cfg.optimizer.min_lr_ratio)

    if run_dir is None and rank == 0:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        runs_root = Path(cfg.runs_root) if Path(cfg.runs_root).is_absolute() else ROOT / cfg.runs_root
        run_dir = runs_root / f"{cfg.exp_name}-{stamp}"
    hooks = [ValidationHook(val_loader, fps=val_set.sequences[0].fps, every_epochs=max(1, tcfg.val_every)), ProgressHook(total_steps), CheckpointHook()]
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        (run_dir / "git_commit.txt").write_text(_git_commit() + "\n")
        _point_latest(run_dir)
        hooks.append(TensorBoardHook(run_dir / "tb", [label_map.names[i] for i in sorted(label_map.names)]))
    meta = {"variant": cfg.model.variant, "num_actions": num_actions, "num_identities": train_set.num_identities,
            "model_config": model_config.to_dict(),
            "action_names": [label_map.names[i] for i in sorted(label_map.names)], "input_size": list(cfg.data.size),
            "clip_len": cfg.data.clip_len, "stride": cfg.data.stride}
    trainer = Trainer(model=model, criterion=criterion, optimizer=optimizer, scheduler=scheduler,
                      train_loader=train_loader, sampler=sampler, config=tcfg, device=device, run_dir=run_dir,
                      hooks=hooks, checkpoint_meta=meta)
    if cfg.resume:
        trainer.resume(cfg.resume)
        if rank == 0:
            print(f"resumed from {cfg.resume} at epoch {trainer.epoch}, step {trainer.global_step}", flush=True)
    return trainer


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, float]:
    """Train as configured; returns the final validation metrics."""
    trainer = build_trainer(cfg, run_dir)
    metrics = trainer.fit()
    if trainer.rank == 0:
        print(f"run folder: {trainer.run_dir}")
        print("validation: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return metrics
