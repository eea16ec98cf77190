"""Worked example of a new task: a head, its loss and one registration, all in this file, trained
with detection, ReID and action through the real training loop. Here: each person's visible
fraction (``visibility`` in the batch), from P3 RoI-pooled over the box."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from losses.combined_loss import TASKS
from losses.task import TaskTerms
from models.checkpoint import read_checkpoint
from models.config import model_preset
from models.mot_action_net import build_model
from train.run import build_criterion, build_network, build_trainer, compose_config, register_task, unregister_task


class VisibilityHead(nn.Module):
    """Per box, the logit of the fraction of the person that is visible."""

    P3_STRIDE = 8

    def __init__(self, channels: int, pool: tuple[int, int] = (4, 2)):
        super().__init__()
        self.pool = pool
        self.fc = nn.Sequential(nn.Linear(channels * pool[0] * pool[1], 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, pyramid: list[torch.Tensor], boxes: torch.Tensor | None, mask: torch.Tensor | None):
        if boxes is None:  # a detection-only call: no boxes to look at
            return None
        B, T, N, _ = boxes.shape
        image = torch.arange(B * T, dtype=boxes.dtype, device=boxes.device)
        image = image.reshape(B, T, 1, 1).expand(B, T, N, 1)  # (B, T, N, 1)
        rois = torch.cat([image, boxes], dim=-1).reshape(B * T * N, 5)  # (B*T*N, 5)
        pooled = roi_align(pyramid[0], rois, self.pool, spatial_scale=1.0 / self.P3_STRIDE, sampling_ratio=2,
                           aligned=True)  # (B*T*N, C, ph, pw)
        return self.fc(pooled.flatten(1)).reshape(B, T, N)  # (B*T*N, 1) -> (B, T, N)


class VisibilityLoss(nn.Module):
    """Binary cross-entropy against the visible fraction of every ground-truth box."""

    def task_terms(self, outputs: dict, batch: dict) -> TaskTerms:
        mask = batch["mask"]  # (B, T, N)
        logits = outputs["visibility"]  # (B, T, N)
        if not mask.any():
            return TaskTerms({"visibility_bce": logits.sum() * 0.0}, supervised=False)
        bce = F.binary_cross_entropy_with_logits(logits[mask], batch["visibility"][mask])
        return TaskTerms({"visibility_bce": bce}, supervised=True)


@pytest.fixture
def visibility_task():
    # The one registration: every run built from here on has the head and trains its loss.
    register_task("visibility", build_head=lambda model: VisibilityHead(model.fpn_channels),
                  build_loss=lambda loss: VisibilityLoss())
    yield
    unregister_task("visibility")  # the other tests build the plain network


def test_a_registered_head_trains_end_to_end(visibility_task, small_dataset, tmp_path):
    overrides = {"data.root": small_dataset, "data.size": "[128,192]", "data.batch_size": 2, "data.clip_len": 4,
                 "data.stride": 2, "data.train_clip_step": 8, "data.num_workers": 0, "trainer.epochs": 1,
                 "trainer.max_steps": 3, "trainer.log_every": 1, "trainer.image_every": 0, "runs_root": tmp_path}
    trainer = build_trainer(compose_config([f"{k}={v}" for k, v in overrides.items()]), run_dir=tmp_path / "run")
    head = trainer.model.extra_heads["visibility"]
    before = [p.detach().clone() for p in head.parameters()]
    trainer.fit()

    crit = trainer.criterion
    assert crit.task_names == (*TASKS, "visibility") and crit.log_vars.shape == (4,)
    assert crit.log_vars[-1].item() != 0.0  # its own uncertainty weight learned
    assert crit.task_weights()["visibility"] == pytest.approx(torch.exp(-crit.log_vars[-1]).item())
    assert {"visibility_bce", "task_visibility", "det_cls", "reid_id", "action_ce"} <= set(trainer.last_terms)
    assert all(not torch.equal(a, b) for a, b in zip(before, head.parameters())), "the head was not trained"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set(EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Tags()["scalars"])
    assert {"loss/visibility_bce", "loss/task_visibility", "task_weight/visibility", "task_weight/detection"} <= tags
    state = read_checkpoint(tmp_path / "run" / "last.pt")
    assert any(k.startswith("extra_heads.visibility.") for k in state["model"])
    assert state["criterion"]["log_vars"].shape == (4,)


def _batch(B=1, T=2):
    boxes = torch.tensor([[8.0, 8.0, 40.0, 60.0], [50.0, 4.0, 90.0, 60.0]]).expand(B, T, 2, 4).clone()
    return {"frames": torch.rand(B, T, 3, 64, 96), "boxes": boxes, "mask": torch.ones(B, T, 2, dtype=torch.bool),
            "labels": torch.zeros(B, T, 2, dtype=torch.long), "identities": torch.tensor([[0, 1]]).expand(B, 2),
            "actions": torch.tensor([1, 3]).expand(B, T, 2), "soft_actions": torch.zeros(B, T, 2, 4),
            "visibility": torch.tensor([1.0, 0.3]).expand(B, T, 2), "annotated": torch.ones(B, T, dtype=torch.bool)}


def test_gradients_reach_the_new_head_and_its_weight_moves_only_when_supervised(visibility_task):
    torch.manual_seed(0)
    model = build_network(model_preset("tiny", num_actions=4))
    crit = build_criterion(compose_config([]).loss, 2, model.reid_head.dim)
    batch = _batch()
    terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
    terms["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.extra_heads["visibility"].parameters())
    # d total / d s = 1 - exp(-s) L, with s = 0 at the start
    assert crit.log_vars.grad[-1].item() == pytest.approx(1 - terms["task_visibility"].item(), rel=1e-4)
    crit.zero_grad()
    batch["mask"] = torch.zeros_like(batch["mask"])  # no box, so nothing to learn visibility from
    terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
    terms["total"].backward()
    assert terms["task_visibility"].item() == 0.0 and crit.log_vars.grad[-1].item() == 0.0


def test_without_a_registration_the_network_and_loss_are_the_built_in_ones():
    model = build_network(model_preset("tiny", num_actions=4))
    assert list(model.state_dict()) == list(build_model("tiny", num_actions=4).state_dict())
    crit = build_criterion(compose_config([]).loss, 2, model.reid_head.dim)
    assert crit.task_names == TASKS and list(crit.state_dict()) == ["log_vars", "reid.weight"]


def test_registration_refuses_taken_names(visibility_task):
    with pytest.raises(ValueError, match="already registered"):
        register_task("visibility", build_loss=lambda loss: VisibilityLoss())
    with pytest.raises(ValueError, match="already registered"):
        register_task("reid", build_loss=lambda loss: VisibilityLoss())
    register_task("embeddings", build_head=lambda model: VisibilityHead(model.fpn_channels),
                  build_loss=lambda loss: VisibilityLoss())
    try:
        with pytest.raises(ValueError, match="outputs of the network itself"):
            build_network(model_preset("tiny", num_actions=4))
    finally:
        unregister_task("embeddings")
