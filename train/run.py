"""Build everything a training run needs from a composed config and run it: ``train(cfg)``
returns the final validation metrics, so tests and scripts call it directly."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import random
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from common.device import resolve_device
from common.errors import InputError
from common.io import atomic_write_text
from common.schema import from_mapping
from config import CONFIG_DIR
from data.clip_dataset import ClipDataset, ClipTransform, ClipTransformConfig, collate_clips
from data.formats.vicr import LabelMap, read_label_map
from data.sequences import RenamedActions, mot_split, with_pseudo_labels
from losses.action_loss import ActionLoss
from losses.combined_loss import TASKS, MultiTaskLoss
from losses.detection_loss import DetectionLoss
from losses.tracking_loss import ReIDLoss
from models.checkpoint import read_checkpoint
from models.config import ModelConfig
from models.mot_action_net import MotActionNet
from train.config import DataConfig, LossConfig, check_train_config
from train.hooks import CheckpointHook, ProgressHook, TensorBoardHook, ValidationHook
from train.optim import build_optimizer, warmup_cosine
from train.trainer import ResumableSampler, Trainer

SOURCE_DIR = Path(__file__).resolve().parents[1]  # the code itself: its git commit is recorded per run


def compose_overrides(overrides: list[str], extra_file: str | None = None) -> DictConfig:
    """``config/train.yaml`` with the overrides and the extra file, composed as given (a resume
    path is not looked at: see :func:`compose_config`)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        try:
            cfg = compose("train", overrides=list(overrides))
        except Exception as exc:  # hydra's errors name the bad override
            raise InputError(f"config: {str(exc).splitlines()[0]}") from None
    if extra_file:
        if not Path(extra_file).is_file():
            raise InputError(f"{extra_file}: config file not found")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.load(extra_file))
        except Exception as exc:  # an unknown key or a wrong type, named by OmegaConf
            raise InputError(f"{extra_file}: {str(exc).splitlines()[0]}") from None
    return cfg


def compose_config(overrides: list[str] | None = None, extra_file: str | None = None) -> DictConfig:
    """``config/train.yaml`` with hydra overrides (``model=lite trainer.epochs=5``) and, optionally,
    a YAML file merged on top (the seed's ``--config``). With ``resume=<last.pt>`` the run's own
    config, stored in the checkpoint, is the base instead, and only the command's explicit changes
    apply (see :func:`resume_config`)."""
    cfg = compose_overrides(list(overrides or []), extra_file)
    if cfg.get("resume"):
        cfg = resume_config(cfg, compose_overrides([], None), given=_given_keys(list(overrides or []), extra_file))
    return cfg


def _given_keys(overrides: list[str], extra_file: str | None) -> set[str]:
    """The keys and groups a command sets itself (``trainer.max_steps=null`` -> ``trainer.max_steps``,
    ``model=lite`` -> ``model``, every key of the extra file)."""
    keys = {o.split("=", 1)[0].lstrip("+~").split("@", 1)[0] for o in overrides}
    if extra_file:
        keys |= set(_flat(OmegaConf.to_container(OmegaConf.load(extra_file))))
    return keys


# What a resumed run may not change: the network, its data, its losses, its optimizer and
# schedule. Anything else (logging, checkpoint cadence, max_steps, device, workers) may change.
_FIXED_ON_RESUME = ("model.", "data.", "loss.", "optimizer.", "seed", "trainer.epochs", "trainer.ema_decay",
                    "trainer.amp")
_FREE_ON_RESUME = ("data.num_workers",)


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def resume_config(cfg: DictConfig, defaults: DictConfig, given=()) -> DictConfig:
    """The config a resumed run continues with: the one stored in the checkpoint, plus what the
    command changed relative to the defaults (``defaults``: the composed config without
    overrides) or set explicitly (``given``: keys or groups, see :func:`_given_keys`) where that
    is allowed; a change to the model, data, loss, optimizer or schedule is an
    :class:`InputError` listing it, since the run would not be the run it claims to continue."""
    path = cfg.resume
    state = read_checkpoint(path)
    stored = state.get("config")
    if not isinstance(stored, dict):
        print(f"note: {path} holds no config (written by an older version): resuming with this command's config",
              flush=True)
        return cfg
    mine = _flat(OmegaConf.to_container(cfg, resolve=True))
    base = _flat(OmegaConf.to_container(defaults, resolve=True))
    run = _flat(stored)
    # A value the command names counts even when it equals the default: the run may hold another
    # (trainer.max_steps=null lifts the cap of a run stopped at max_steps=2).
    named = tuple(given)
    changed = {k: v for k, v in mine.items() if k != "resume" and (k not in base or base[k] != v or
                                                                   any(k == g or k.startswith(g + ".") for g in named))}
    fixed = sorted((k for k, v in changed.items() if k.startswith(_FIXED_ON_RESUME) and k not in _FREE_ON_RESUME
                    and run.get(k) != v), key=lambda k: (k != "model.variant", k))
    if fixed:
        shown = ", ".join(f"{k}={changed[k]!r} (the run has {run.get(k)!r})" for k in fixed[:4])
        raise InputError(f"{path}: a resumed run keeps its model, data, loss, optimizer and schedule; this command "
                         f"changes {shown}{' and more' if len(fixed) > 4 else ''}. Drop those overrides, or start a "
                         "new run")
    free = {k: v for k, v in changed.items() if run.get(k) != v}
    if free:
        print("resuming with the run's config; changed by this command: "
              + ", ".join(f"{k} {run.get(k)!r} -> {v!r}" for k, v in sorted(free.items())), flush=True)
    result = OmegaConf.create(stored)
    for key, value in free.items():
        OmegaConf.update(result, key, value, force_add=True)
    result.resume = path
    return result


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


def ensure_synthetic(data: DataConfig, rank: int, root: str | None = None, where: str = "config.data.root") -> Path:
    """The synthetic benchmark at ``root`` (default: the config's ``data.root``; ``where`` names
    it in errors). At its default location (``config/data/synthetic.yaml``), or where the config's
    ``data.generator`` knobs ask for one, it is generated on first use with those knobs and seed
    (by rank 0 under DDP); anywhere else it must exist: a typo'd root once got a fresh benchmark
    generated and trained on without a word."""
    from data.prepare import default_synthetic
    from data.synthetic import SyntheticConfig, format_summary, prepare_synthetic
    root = Path(root or data.root)
    default = default_synthetic()[0]
    # An experiment that sets data.generator declares the benchmark it wants at its root
    # (synthetic_30min's 16 training sequences); otherwise only the default location is generated.
    declared = bool(data.generator) and where == "config.data.root"
    if root.resolve() != default.resolve() and not (root / "meta.json").is_file() and not declared:
        if not root.exists():
            raise InputError(f"{where}: {root} not found (the synthetic benchmark is generated on first use only at "
                             f"its default location, {default}, or where an experiment's data.generator asks for "
                             f"it; make one elsewhere with scripts/download_data.py --dataset synthetic --out {root})")
        return root  # a split or sequence folder of a benchmark: the loaders check it
    if rank == 0:
        try:
            config = SyntheticConfig(**data.generator)
        except TypeError as exc:
            raise InputError(f"config: data.generator: {exc}") from None
        meta, generated = prepare_synthetic(root, seed=data.seed, config=config, use_existing=True,
                                            log=lambda m: print(m, flush=True))
        if generated:
            print(format_summary(meta), flush=True)
    if dist.is_initialized():
        dist.barrier()
    return root


def _transforms(data: DataConfig) -> tuple[ClipTransform, ClipTransform]:
    a = data.augment
    train = ClipTransform(ClipTransformConfig(
        size=data.size, train=True, flip_p=a.flip_p, scale_range=a.scale_range, brightness=a.brightness,
        contrast=a.contrast, saturation=a.saturation, hue=a.hue, zoom_out_p=a.zoom_out_p, zoom_out_max=a.zoom_out_max,
        crop_p=a.crop_p, crop_min=a.crop_min, blur_p=a.blur_p, noise_std=a.noise_std))
    return train, ClipTransform(ClipTransformConfig(size=data.size, train=False))


def _load_sources(data: DataConfig, rank: int, key: str) -> list[tuple[list, float]]:
    """The sequences of each source of ``data.<key>`` (``sources`` or ``val_sources``) with its
    weight. Validation keeps every box and the stills' default motion."""
    from data.sources import load_source

    span = (data.clip_len - 1) * data.stride + 1
    train = key == "sources"
    groups = []
    for i, source in enumerate(getattr(data, key) or ()):
        where = f"config.data.{key}[{i}]"
        if source.kind == "synthetic":
            ensure_synthetic(data, rank, source.root, where=f"{where}.root")
        sequences = load_source(source, span, data.min_visibility if train else 0.0, data.seed if train else 0, where)
        groups.append((sequences, source.weight))
    return groups


def _val_from_sources(data: DataConfig, rank: int) -> list:
    val = [seq for seqs, _ in _load_sources(data, rank, "val_sources") for seq in seqs]
    if not val:
        raise InputError("config: data.val_sources is empty: give the sequences (or frames) to validate on")
    return val


def _from_sources(data: DataConfig, rank: int):
    """Training and validation sequences of ``data.sources`` / ``data.val_sources``, with the
    sampler's groups (clips per source and its weight are counted later) and a label map."""
    from data.sources import source_label_map

    train = _load_sources(data, rank, "sources")
    val = _val_from_sources(data, rank)
    label_map = source_label_map([*data.sources, *(data.val_sources or ())])
    if label_map is None and data.label_map:
        label_map = read_label_map(Path(data.label_map))
    if label_map is None:
        print("note: no source has action labels (and no data.label_map): the action head is left untrained", flush=True)
        label_map = LabelMap({0: "unlabelled"})
    return train, val, label_map


def build_datasets(data: DataConfig, rank: int = 0):
    """The training and validation clip datasets, the label map the action head learns, and the
    sampler's groups ``[(clips, weight), ...]`` (one per training source). With
    ``data.pseudo_labels`` (a ``scripts/pseudo_label.py`` working folder) the training sequences
    it labelled learn its soft labels and its label map, and the validation labels are moved onto
    that map by name. ``data.val_sources`` without ``data.sources`` validates on those sources
    while training on ``data.root``'s train split."""
    if data.sources:
        groups, val_seqs, label_map = _from_sources(data, rank)
    else:
        root = ensure_synthetic(data, rank) if data.name == "synthetic" else Path(data.root)
        label_map = read_label_map(root / "label_map.txt")
        groups = [(mot_split(root, "train", min_visibility=data.min_visibility), 1.0)]
        val_seqs = _val_from_sources(data, rank) if data.val_sources else mot_split(root, "val")
    if data.pseudo_labels:
        pseudo_root = Path(data.pseudo_labels)
        labelled, pseudo_map = with_pseudo_labels([s for seqs, _ in groups for s in seqs], pseudo_root)
        sizes = [len(seqs) for seqs, _ in groups]
        groups = [(labelled[sum(sizes[:k]):sum(sizes[:k + 1])], w) for k, (_, w) in enumerate(groups)]
        if [pseudo_map.names[i] for i in pseudo_map.ids()] != [label_map.names[i] for i in label_map.ids()]:
            val_seqs = [RenamedActions(s, label_map, pseudo_map) for s in val_seqs]
        label_map = pseudo_map
    train_aug, plain = _transforms(data)
    num_actions = max(label_map.ids()) + 1
    train_set = ClipDataset([s for seqs, _ in groups for s in seqs], clip_len=data.clip_len, stride=data.stride,
                            clip_step=data.train_clip_step, transform=train_aug, seed=data.seed, num_actions=num_actions)
    # Clips per source, in index order (the dataset lists them sequence by sequence).
    clips_per_sequence = Counter(si for si, _ in train_set.index)
    sampler_groups, first = [], 0
    for seqs, weight in groups:
        sampler_groups.append((sum(clips_per_sequence[k] for k in range(first, first + len(seqs))), weight))
        first += len(seqs)
    # Validation keeps every box (AP ignores the barely visible ones) and does not overlap clips.
    val_set = ClipDataset(val_seqs, clip_len=data.clip_len, stride=data.stride, transform=plain,
                          num_actions=num_actions)
    return train_set, val_set, label_map, sampler_groups


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
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_DIR, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=SOURCE_DIR, capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclasses.dataclass(frozen=True)
class ExtraTask:
    """A task trained beside detection, ReID and action: see :func:`register_task`."""

    build_loss: Callable[[LossConfig], nn.Module]
    build_head: Callable[[ModelConfig], nn.Module] | None = None


# The registered tasks, in registration order: every run built while they are here trains them.
EXTRA_TASKS: dict[str, ExtraTask] = {}


def register_task(name: str, *, build_loss: Callable[[LossConfig], nn.Module],
                  build_head: Callable[[ModelConfig], nn.Module] | None = None) -> None:
    """Train the task ``name`` in every run built after this call (:func:`build_network`,
    :func:`build_criterion`): ``build_head(model_config)`` makes its head, an extra head of
    :class:`MotActionNet` whose output the forward dict holds under ``name`` (None: the task's loss
    reads the existing outputs); ``build_loss(loss_config)`` makes its loss, a module with
    ``task_terms(outputs, batch)`` (:mod:`losses.task`). Its uncertainty weight starts at 1 (s = 0)."""
    if name in TASKS or name in EXTRA_TASKS:
        raise ValueError(f"task {name!r} is already registered")
    if not callable(build_loss) or not (build_head is None or callable(build_head)):
        raise TypeError(f"task {name!r}: build_loss and build_head must be callables")
    EXTRA_TASKS[name] = ExtraTask(build_loss=build_loss, build_head=build_head)


def unregister_task(name: str) -> None:
    """Removes a task registered for a while only (a test's own)."""
    del EXTRA_TASKS[name]


def build_network(model: ModelConfig) -> MotActionNet:
    """The network of a checked model config, with the head of each registered task."""
    heads = {name: task.build_head(model) for name, task in EXTRA_TASKS.items() if task.build_head is not None}
    return MotActionNet.from_config(model, extra_heads=heads)


def build_criterion(loss: LossConfig | DictConfig, num_identities: int, embedding_dim: int) -> MultiTaskLoss:
    """The multi-task loss of a checked ``loss`` config (a composed ``cfg.loss`` is checked here):
    the built-in tasks, then each registered one."""
    if not isinstance(loss, LossConfig):
        loss = from_mapping(LossConfig, OmegaConf.to_container(loss, resolve=True), "config.loss")
    tasks = {"detection": DetectionLoss(size_ranges=list(loss.size_ranges), center_radius=loss.center_radius,
                                        box_weight=loss.box_weight, quality=loss.quality,
                                        varifocal_alpha=loss.varifocal_alpha),
             "reid": ReIDLoss(num_identities, dim=embedding_dim, scale=loss.reid_scale, margin=loss.reid_margin),
             "action": ActionLoss(temperature=loss.action_temperature,
                                  target_temperature=loss.action_target_temperature)}
    tasks.update({name: task.build_loss(loss) for name, task in EXTRA_TASKS.items()})
    return MultiTaskLoss(tasks=tasks, adaptive=loss.adaptive, init_log_vars=dict(zip(TASKS, loss.init_log_vars)))


def _new_run_dir(runs_root: str, exp_name: str) -> Path:
    """``<runs_root>/<exp_name>-<time>``, made now; runs started in the same second get -2, -3..."""
    root = Path(runs_root)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            run_dir = root / (f"{exp_name}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as exc:
        raise InputError(f"{root}: cannot create the run folder ({exc.strerror or exc})") from None
    raise InputError(f"{root}: no free run folder name for {exp_name}-{stamp}")


def build_trainer(cfg: DictConfig, run_dir: Path | None = None) -> Trainer:
    """Datasets, model, loss, optimizer, schedule, hooks and (when ``cfg.resume``) the restored
    state, ready for ``fit()``. The config is checked against the schema first."""
    config = check_train_config(OmegaConf.to_container(cfg, resolve=True))
    device = resolve_device(config.device)
    rank, world = _init_distributed(device)
    seed_everything(config.seed + rank)
    if rank == 0 and run_dir is None:  # before the data: a folder that cannot be made fails at once
        run_dir = _new_run_dir(config.runs_root, config.exp_name)
    train_set, val_set, label_map, groups = build_datasets(config.data, rank)
    num_actions = max(label_map.ids()) + 1
    if config.expect_num_actions is not None and config.expect_num_actions != num_actions:
        raise InputError(f"--num-actions {config.expect_num_actions} does not match the {num_actions} actions of the "
                         f"dataset's label_map.txt ({config.data.root})")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, num_actions=num_actions))
    model = build_network(config.model).to(device)
    criterion = build_criterion(config.loss, train_set.num_identities, model.reid_head.dim).to(device)

    bs = config.data.batch_size
    sampler = ResumableSampler(len(train_set), bs, seed=config.seed, rank=rank, world=world, groups=groups)
    workers = config.data.num_workers
    # Loaders get generators of their own: by default each new iterator draws its seed from the
    # global RNG, so validating (or not) would change the dropout masks that follow and a resumed
    # run would drift from an uninterrupted one.
    train_loader = DataLoader(train_set, batch_size=bs, sampler=sampler, collate_fn=collate_clips, drop_last=True,
                              num_workers=workers, pin_memory=device.type == "cuda",
                              generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(val_set, batch_size=bs, shuffle=False, collate_fn=collate_clips, num_workers=workers,
                            generator=torch.Generator().manual_seed(config.seed))
    if sampler.batches_per_epoch() < 1:
        raise InputError(f"config: data.batch_size {bs} is larger than the {len(train_set)} training clips per rank")

    tcfg = dataclasses.replace(config.trainer, seed=config.seed)
    total_steps = tcfg.epochs * sampler.batches_per_epoch()
    if tcfg.max_steps is not None:
        total_steps = min(total_steps, tcfg.max_steps)
    opt = config.optimizer
    optimizer = build_optimizer(model, criterion, lr=opt.lr, weight_decay=opt.weight_decay, betas=opt.betas)
    # The schedule spans the whole planned run (epochs), so stopping at max_steps and resuming
    # continues the same curve.
    scheduler = warmup_cosine(optimizer, tcfg.epochs * sampler.batches_per_epoch(), opt.warmup_steps, opt.min_lr_ratio)

    hooks = [ValidationHook(val_loader, fps=val_set.sequences[0].fps, every_epochs=tcfg.val_every),
             ProgressHook(total_steps), CheckpointHook()]
    action_names = [label_map.names[i] for i in sorted(label_map.names)]
    resolved = json.loads(json.dumps(dataclasses.asdict(config)))  # plain lists, as a composed config has them
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)))
        atomic_write_text(run_dir / "git_commit.txt", _git_commit() + "\n")
        _point_latest(run_dir)
        hooks.append(TensorBoardHook(run_dir / "tb", action_names))
    meta = {"variant": config.model.variant, "num_actions": num_actions, "num_identities": train_set.num_identities,
            "model_config": config.model.to_dict(), "action_names": action_names,
            "input_size": list(config.data.size), "clip_len": config.data.clip_len, "stride": config.data.stride,
            "config": resolved}
    trainer = Trainer(model=model, criterion=criterion, optimizer=optimizer, scheduler=scheduler,
                      train_loader=train_loader, sampler=sampler, config=tcfg, device=device, run_dir=run_dir,
                      hooks=hooks, checkpoint_meta=meta)
    if config.resume:
        trainer.resume(config.resume)
        if rank == 0:
            print(f"resumed from {config.resume} at epoch {trainer.epoch}, step {trainer.global_step}", flush=True)
    return trainer


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`; ``str()`` is the line to print, which says whether the run
    has a checkpoint to resume from."""


def interrupted_message(run_dir: Path | None) -> str:
    last = run_dir / "last.pt" if run_dir is not None else None
    if last is not None and last.is_file():
        return f"interrupted: the last checkpoint, {last}, is intact (written atomically); continue with --resume {last}"
    return f"interrupted: no checkpoint was written yet{f' in {run_dir}' if run_dir is not None else ''}"


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, float]:
    """Train as configured; returns the final validation metrics. Ctrl-C is a
    :class:`TrainingInterrupted` saying what the run folder holds."""
    trainer = build_trainer(cfg, run_dir)
    try:
        metrics = trainer.fit()
    except KeyboardInterrupt:
        raise TrainingInterrupted(interrupted_message(trainer.run_dir)) from None
    if trainer.rank == 0:
        print(f"run folder: {trainer.run_dir}")
        print("validation: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
        if trainer.cfg.calibrate_tracker:
            calibrate_best(cfg, trainer.run_dir / "best.pt", trainer.device)
    return metrics


def calibrate_best(cfg: DictConfig, best: Path, device) -> None:
    """Chooses the tracker's settings for ``best`` on the run's val split and records them in it;
    a run that validates on frame ranges (``data.sources`` / ``data.val_sources``) keeps the
    tracker's defaults, and says so. The training is done by then: a failure or Ctrl-C here is one
    line, and ``best.pt`` stays as it was (it is rewritten atomically, once, at the end)."""
    from evaluation.calibration import calibrate_checkpoint, format_settings
    from tracking.pipeline import PipelineOptions
    data = cfg.data
    if data.sources or data.val_sources or not best.is_file():
        why = "no best.pt" if not best.is_file() else "the val data is frame ranges, not a split of whole sequences"
        print(f"tracker settings: the defaults ({why}; scripts/calibrate_tracker.py chooses them on other data)")
        return
    root = Path(data.root)  # prepared by the training
    again = f"python scripts/calibrate_tracker.py --checkpoint {best} --gt-root {root / 'val'}"
    try:
        calibration = calibrate_checkpoint(best, root / "val", options=PipelineOptions(device=str(device)))
    except KeyboardInterrupt:
        print(f"tracker calibration interrupted: {best} keeps the tracker's defaults (later: {again})", flush=True)
        return
    except Exception as error:  # noqa: BLE001 (the run is trained and saved: report, do not lose it to a traceback)
        detail = (str(error).strip().splitlines() or [""])[0][:200]
        print(f"tracker settings: the defaults (calibration failed: {type(error).__name__}: {detail}; {again})",
              flush=True)
        return
    row = calibration.table[calibration.chosen]
    print(f"tracker settings for {best.name}, chosen by HOTA on {root / 'val'}: {format_settings(calibration.settings)}"
          + f" (val MOTA {row['MOTA']:.2f}, IDF1 {row['IDF1']:.2f}, HOTA {row['HOTA']:.2f})", flush=True)
