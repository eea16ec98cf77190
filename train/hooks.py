"""Hooks hung off the training loop: validation, checkpoints, TensorBoard, progress bar."""
from __future__ import annotations

import math
import sys

import numpy as np
import torch

from evaluation.validation import validate
from common.drawing import draw_tracks
from common.progress import ProgressBar


def fresh_metrics(trainer) -> bool:
    """Validation ran at this step (epochs between ``val_every`` ones have none of their own)."""
    return bool(trainer.metrics) and getattr(trainer, "metrics_step", None) == trainer.global_step


class ValidationHook:
    """Validates the EMA (or plain) weights after each epoch and at the end; tracks the best."""

    def __init__(self, loader, fps: float, every_epochs: int = 1):
        self.loader, self.fps, self.every = loader, fps, every_epochs
        self._validated_at = -1

    def _run(self, trainer) -> None:
        if self.loader is None or trainer.rank != 0 or self._validated_at == trainer.global_step:
            return
        self._validated_at = trainer.metrics_step = trainer.global_step
        metrics = validate(trainer.eval_model, self.loader, trainer.device, fps=self.fps)
        values = [v for v in metrics.values() if not math.isnan(v)]
        metrics["mean"] = float(np.mean(values)) if values else float("nan")
        trainer.metrics = metrics
        value = metrics.get(trainer.cfg.best_metric, float("nan"))
        trainer.is_best = not math.isnan(value) and value > trainer.best_value
        if trainer.is_best:
            trainer.best_value = value

    def after_epoch(self, trainer) -> None:
        if trainer.epoch % self.every == 0 or trainer.epoch == trainer.cfg.epochs:
            self._run(trainer)

    def after_train(self, trainer) -> None:
        self._run(trainer)


class CheckpointHook:
    """``last.pt`` after every epoch, every ``checkpoint_every`` steps and at the stop; ``best.pt``
    when validation improves the configured metric. Both written atomically."""

    def after_step(self, trainer) -> None:
        every = trainer.cfg.checkpoint_every
        if every and trainer.global_step % every == 0:
            trainer.save("last.pt")

    def after_epoch(self, trainer) -> None:
        trainer.save("last.pt")
        if getattr(trainer, "is_best", False):
            trainer.save("best.pt")
            trainer.is_best = False

    def after_train(self, trainer) -> None:
        self.after_epoch(trainer)


class TensorBoardHook:
    """Every loss term, the task weights and the learning rate every ``log_every`` steps; the
    validation metrics; and images of predicted vs. true boxes with ids and actions."""

    def __init__(self, log_dir, action_names: list[str]):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(log_dir))
        self.action_names = action_names

    def after_step(self, trainer) -> None:
        step = trainer.global_step
        if step % trainer.cfg.log_every == 0 or step == 1:
            for k, v in trainer.last_terms.items():
                self.writer.add_scalar(f"loss/{k}", v, step)
            for task, w in trainer.criterion.task_weights().items():
                self.writer.add_scalar(f"task_weight/{task}", w, step)
            self.writer.add_scalar("lr", trainer.optimizer.param_groups[0]["lr"], step)
        if trainer.cfg.image_every and step % trainer.cfg.image_every == 0:
            self.writer.add_image("train/pred_vs_true", self._image(trainer), step, dataformats="HWC")

    def after_epoch(self, trainer) -> None:
        if fresh_metrics(trainer):
            for k, v in trainer.metrics.items():
                self.writer.add_scalar(f"val/{k}", v, trainer.global_step)
        self.writer.flush()

    def after_train(self, trainer) -> None:
        self.after_epoch(trainer)
        self.writer.close()

    @torch.no_grad()
    def _image(self, trainer) -> np.ndarray:
        """First frame of the last batch. Left: true boxes with id and true action. Right: detected
        boxes with scores, and the action predicted for each true tube."""
        batch, out = trainer.last_batch, trainer.last_outputs
        frame = (batch["frames"][0, 0].permute(1, 2, 0).float().cpu().numpy() * 255).astype(np.uint8)[:, :, ::-1]
        m = batch["mask"][0, 0].cpu()
        boxes = batch["boxes"][0, 0][m].cpu().numpy()
        ids = batch["track_ids"][0][m].cpu().numpy()

        def names(indices):
            return [self.action_names[i] if 0 <= i < len(self.action_names) else "?" for i in indices]

        true = draw_tracks(frame, boxes, ids, names(batch["actions"][0, 0][m].tolist()))
        first = {k: (v[:1] if k in ("cls_logits", "box_ltrb", "centerness", "scores") else v) for k, v in out["detections"].items()}
        head = getattr(trainer.model, "module", trainer.model).detection_head
        det = head.postprocess(first, out["image_size"], score_threshold=0.3)[0]
        pred = draw_tracks(frame, det["boxes"].float().cpu().numpy(), captions=[f"{s:.2f}" for s in det["scores"].tolist()])
        pred = draw_tracks(pred, boxes, ids, names(out["action_logits"][0, 0].argmax(-1)[m].tolist()))
        return np.concatenate([true, pred], axis=1)[:, :, ::-1].copy()


class ProgressHook:
    """The progress bar (with ETA, loss and task weights) of the training loop."""

    def __init__(self, total_steps: int, stream=sys.stderr):
        self.total, self.stream = max(total_steps, 1), stream
        self.bar: ProgressBar | None = None

    def before_train(self, trainer) -> None:
        self.bar = ProgressBar(self.total, unit="steps", stream=self.stream, every=trainer.cfg.log_every,
                               initial=trainer.global_step)

    def after_step(self, trainer) -> None:
        if trainer.rank != 0:
            return
        weights = trainer.criterion.task_weights()
        self.bar.update(trainer.global_step, f"epoch {trainer.epoch + 1} loss {trainer.last_terms.get('total', float('nan')):.3f} "
                                             f"w[{' '.join(f'{w:.2f}' for w in weights.values())}]")

    def after_epoch(self, trainer) -> None:
        if trainer.rank == 0 and fresh_metrics(trainer):
            self.bar.close()
            print(f"epoch {trainer.epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in trainer.metrics.items()),
                  file=self.stream, flush=True)

    def after_train(self, trainer) -> None:
        if trainer.rank == 0:
            self.bar.close()
