"""Losses on hand-built cases: perfect predictions score lowest, assignment puts positives inside
their boxes, the uncertainty weights learn."""
import math

import pytest
import torch

from losses.action_loss import ActionLoss
from losses.combined_loss import TASKS, MultiTaskLoss
from losses.detection_loss import DetectionLoss, assign_fcos_targets, centerness_target
from losses.tracking_loss import ReIDLoss, batch_hard_triplet
from models.heads.detection import level_points

STRIDES = (8, 16, 32)
RANGES = ((0, 64), (64, 128), (128, 1e8))


def _points(H=128, W=192):
    shapes = [(H // s, W // s) for s in STRIDES]
    pts = level_points(shapes, STRIDES, "cpu")
    strides = torch.cat([torch.full((len(p),), float(s)) for p, s in zip(pts, STRIDES)])
    return torch.cat(pts), strides


def test_positives_lie_inside_their_boxes_on_the_right_level():
    points, strides = _points()
    boxes = torch.tensor([[[20.0, 10.0, 60.0, 100.0], [100.0, 20.0, 180.0, 120.0], [150.0, 50.0, 155.0, 70.0]]])
    valid = torch.tensor([[True, True, True]])
    matched, ltrb = assign_fcos_targets(points, strides, boxes, valid, RANGES, STRIDES)
    for m in range(3):
        pos = matched[0] == m
        assert pos.any(), f"box {m} got no positive"
        p = points[pos]
        # The 5-pixel-wide box contains no location centre at all: its one positive is the nearest
        # location, within half a stride of the box.
        b = boxes[0, m] + (torch.tensor([-4.0, -4.0, 4.0, 4.0]) if m == 2 else 0)
        assert ((p[:, 0] >= b[0]) & (p[:, 0] <= b[2]) & (p[:, 1] >= b[1]) & (p[:, 1] <= b[3])).all()
    # The 80x100 box (max ltrb about 50) goes to P3; the thin 5x20 box still gets its nearest P3 location.
    assert set(strides[matched[0] == 0].tolist()) == {8.0}
    assert (matched[0] == 2).sum() >= 1
    # Centre sampling: positives cluster near the centre, not over the whole box.
    far = (points[:, 0] < 25) & (points[:, 1] < 20)
    assert not (matched[0][far] == 0).any()
    # Invalid (padded) boxes are never assigned.
    matched2, _ = assign_fcos_targets(points, strides, boxes, torch.tensor([[True, False, False]]), RANGES, STRIDES)
    assert set(matched2[0].unique().tolist()) <= {-1, 0}


def _perfect_outputs(points, strides, boxes, valid, quality: float):
    """Detection outputs that are perfect at quality 1 and degrade as quality drops."""
    matched, ltrb = assign_fcos_targets(points, strides, boxes, valid, RANGES, STRIDES)
    L = len(points)
    pos = matched >= 0
    cls = torch.full((1, L, 1), -8.0 * quality)
    cls[pos] = 8.0 * quality
    box = ltrb.clamp(min=0.5) * (1 + (1 - quality) * torch.tensor([0.6, -0.4, 0.5, -0.3]))
    ctr = torch.logit(centerness_target(ltrb).clamp(1e-4, 1 - 1e-4)) * quality
    return {"cls_logits": cls, "box_ltrb": box.clamp(min=0.1), "centerness": ctr, "points": points, "strides": strides}


def test_detection_loss_is_lowest_for_the_perfect_prediction():
    points, strides = _points()
    boxes = torch.tensor([[[20.0, 10.0, 60.0, 100.0], [100.0, 20.0, 180.0, 120.0]]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    labels = torch.zeros(1, 2, dtype=torch.long)
    loss = DetectionLoss()
    totals = []
    for q in (1.0, 0.6, 0.2):
        terms = loss(_perfect_outputs(points, strides, boxes, valid, q), boxes, labels, valid)
        totals.append((terms["det_cls"].item(), terms["det_box"].item()))
    assert totals[0][0] < totals[1][0] < totals[2][0]
    assert totals[0][1] < 1e-3 < totals[1][1] < totals[2][1]
    # A frame marked unannotated contributes nothing.
    none = loss(_perfect_outputs(points, strides, boxes, valid, 0.2), boxes, labels, valid, annotated=torch.tensor([False]))
    assert none["det_cls"].item() == 0.0


def test_varifocal_loss_targets_the_iou_and_ranks_tight_boxes_first():
    from losses.detection_loss import varifocal_loss
    target = torch.tensor([0.9, 0.3, 0.0, 0.0])
    # The minimum sits at p = target for positives and p -> 0 for negatives.
    at_target = torch.logit(torch.tensor([0.9, 0.3, 1e-4, 1e-4]))
    assert varifocal_loss(at_target, target) < varifocal_loss(at_target + 0.5, target)
    assert varifocal_loss(at_target, target) < varifocal_loss(at_target - 0.5, target)
    # In the full loss, a sloppier box lowers the class target at its positives.
    points, strides = _points()
    boxes = torch.tensor([[[20.0, 10.0, 60.0, 100.0]]])
    valid, labels = torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 1, dtype=torch.long)
    joint = DetectionLoss(quality="joint")
    tight, sloppy = _perfect_outputs(points, strides, boxes, valid, 1.0), _perfect_outputs(points, strides, boxes, valid, 0.6)
    sloppy["cls_logits"] = tight["cls_logits"].clone()  # same (confident) classifier, worse boxes
    assert joint(tight, boxes, labels, valid)["det_cls"] < joint(sloppy, boxes, labels, valid)["det_cls"]
    with pytest.raises(ValueError, match="quality must be one of"):
        DetectionLoss(quality="iou-ish")


def test_reid_losses_rank_good_embeddings_first():
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    good = torch.nn.functional.normalize(torch.eye(3)[ids] + 0.01 * torch.randn(6, 3), dim=1)
    bad = torch.nn.functional.normalize(torch.randn(6, 3), dim=1)
    assert batch_hard_triplet(good, ids).item() == 0.0
    assert batch_hard_triplet(bad, ids).item() > 0.0
    loss = ReIDLoss(num_identities=3, dim=3, label_smoothing=0.0)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(3))
    assert loss(good, ids)["reid_id"] < loss(bad, ids)["reid_id"]
    assert loss(good[:0], ids[:0])["reid_id"].item() == 0.0


def test_action_losses():
    loss = ActionLoss(temperature=2.0)
    labels = torch.tensor([[0, 2, -1]])
    right = torch.tensor([[[5.0, 0, 0], [0, 0, 5.0], [9.0, 9, 9]]])
    wrong = torch.tensor([[[0, 5.0, 0], [5.0, 0, 0], [0.0, 0, 0]]])
    assert loss(right, labels)["action_ce"] < 0.05 < loss(wrong, labels)["action_ce"]
    soft = torch.tensor([[[0.7, 0.2, 0.1], [0.0, 0.0, 0.0], [0.1, 0.1, 0.8]]])
    matching = torch.log(soft.clamp(min=1e-8)) * 2.0  # logits / T reproduce the soft targets
    assert loss(matching, labels, soft)["action_kl"].item() == pytest.approx(0.0, abs=1e-5)
    assert loss(wrong, labels, soft)["action_kl"].item() > 0.1


def _batch(B=1, T=2):
    boxes = torch.tensor([[8.0, 8.0, 40.0, 60.0], [50.0, 4.0, 90.0, 60.0]]).expand(B, T, 2, 4).clone()
    return {"frames": torch.rand(B, T, 3, 64, 96), "boxes": boxes, "mask": torch.ones(B, T, 2, dtype=torch.bool),
            "labels": torch.zeros(B, T, 2, dtype=torch.long), "identities": torch.tensor([[0, 1]]).expand(B, 2),
            "actions": torch.tensor([1, 3]).expand(B, T, 2), "soft_actions": torch.zeros(B, T, 2, 4),
            "annotated": torch.ones(B, T, dtype=torch.bool)}


def test_uncertainty_weights_get_gradients_and_change():
    from models.mot_action_net import build_model
    torch.manual_seed(0)
    model = build_model("tiny", num_actions=4)
    crit = MultiTaskLoss(detection=DetectionLoss(), reid=ReIDLoss(2), action=ActionLoss())
    batch = _batch()
    terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
    expected = sum(torch.exp(-s) * terms[f"task_{t}"] + s for t, s in zip(TASKS, crit.log_vars))
    assert torch.allclose(terms["total"], expected)
    before = crit.log_vars.detach().clone()
    terms["total"].backward()
    assert crit.log_vars.grad is not None and (crit.log_vars.grad != 0).all()
    # d total / d s_i = 1 - exp(-s_i) L_i
    for t, g in zip(TASKS, crit.log_vars.grad):
        assert g.item() == pytest.approx(1 - terms[f"task_{t}"].item(), rel=1e-4)
    torch.optim.SGD(crit.parameters(), lr=0.5).step()
    assert (crit.log_vars.detach() != before).all()
    w = crit.task_weights()
    assert set(w) == set(TASKS) and all(math.isclose(w[t], math.exp(-crit.log_vars[i].item()), rel_tol=1e-6)
                                        for i, t in enumerate(TASKS))
    fixed = MultiTaskLoss(detection=DetectionLoss(), reid=ReIDLoss(2), action=ActionLoss(), adaptive=False)
    plain = fixed(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
    assert torch.allclose(plain["total"], sum(plain[f"task_{t}"] for t in TASKS))


def test_a_task_without_targets_leaves_its_weight_alone():
    """Real footage has no action labels: the action term is zero and its s must not drift (before
    the fix its weight grew from 1.0 to 2.8 over a PETS09 run, with nothing to learn)."""
    from models.mot_action_net import build_model
    torch.manual_seed(0)
    model = build_model("tiny", num_actions=4)
    crit = MultiTaskLoss(detection=DetectionLoss(), reid=ReIDLoss(2), action=ActionLoss())
    batch = _batch()
    batch["actions"] = torch.full_like(batch["actions"], -1)
    terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
    assert terms["task_action"].item() == 0.0
    terms["total"].backward()
    grad = dict(zip(TASKS, crit.log_vars.grad))
    assert grad["action"].item() == 0.0 and grad["detection"].item() != 0.0 and grad["reid"].item() != 0.0
    # soft targets alone count as targets
    crit.zero_grad()
    batch["soft_actions"][0, :, 0] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)["total"].backward()
    assert crit.log_vars.grad[TASKS.index("action")].item() != 0.0


def test_soft_targets_can_be_sharpened():
    from losses.action_loss import ActionLoss
    logits = torch.zeros(1, 3)
    soft = torch.tensor([[0.5, 0.3, 0.2]])
    plain = ActionLoss(temperature=1.0)(logits, torch.tensor([-1]), soft)["action_kl"]
    sharp = ActionLoss(temperature=1.0, target_temperature=0.25)(logits, torch.tensor([-1]), soft)["action_kl"]
    target = soft ** 4 / (soft ** 4).sum()
    expected = (target * (target.log() - torch.log(torch.full((1, 3), 1 / 3)))).sum()
    assert torch.isclose(sharp, expected) and sharp > plain  # further from uniform logits


class _MeanP3Loss(torch.nn.Module):
    """A made-up task: drive P3's mean to 1; supervised when the batch says so."""

    def __init__(self, term="p3_mean", supervised=True):
        super().__init__()
        self.term, self.supervised = term, supervised

    def task_terms(self, outputs, batch):
        from losses.task import TaskTerms
        return TaskTerms({self.term: (outputs["p3"].mean() - 1) ** 2}, self.supervised)


def test_any_number_of_tasks_each_with_its_own_weight():
    from models.mot_action_net import build_model
    torch.manual_seed(0)
    model = build_model("tiny", num_actions=4)
    batch = _batch()
    outputs = model(batch["frames"], batch["boxes"], batch["mask"])
    reid = ReIDLoss(2)
    shorthand = MultiTaskLoss(detection=DetectionLoss(), reid=reid, action=ActionLoss())
    mapping = MultiTaskLoss(tasks={"detection": DetectionLoss(), "reid": reid, "action": ActionLoss()})
    a, b = shorthand(outputs, batch), mapping(outputs, batch)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert list(mapping.state_dict()) == ["log_vars", "reid.weight"]  # what checkpoints hold

    crit = MultiTaskLoss(tasks={"detection": DetectionLoss(), "mean": _MeanP3Loss(), "idle": _MeanP3Loss("p3_idle", supervised=False)},
                         init_log_vars={"mean": 0.5})
    assert crit.task_names == ("detection", "mean", "idle") and crit.log_vars.tolist() == [0.0, 0.5, 0.0]
    terms = crit(outputs, batch)
    assert torch.equal(terms["task_mean"], terms["p3_mean"]) and "num_pos" in terms and "task_num_pos" not in terms
    s = crit.log_vars
    expected = (torch.exp(-s[0]) * terms["task_detection"] + s[0] + torch.exp(-s[1]) * terms["task_mean"] + s[1]
                + torch.exp(-s[2]) * terms["task_idle"])  # the unsupervised task adds no s
    assert torch.allclose(terms["total"], expected)
    assert set(crit.task_weights()) == {"detection", "mean", "idle"}
    assert crit.task_weights()["mean"] == pytest.approx(math.exp(-0.5))


def test_multitask_loss_refuses_what_it_cannot_weigh():
    with pytest.raises(TypeError, match="task_terms"):
        MultiTaskLoss(tasks={"mse": torch.nn.MSELoss()})
    with pytest.raises(TypeError, match="not both"):
        MultiTaskLoss(tasks={"mean": _MeanP3Loss()}, detection=DetectionLoss())
    with pytest.raises(TypeError, match="missing"):
        MultiTaskLoss(detection=DetectionLoss())
    with pytest.raises(ValueError, match="unknown tasks"):
        MultiTaskLoss(tasks={"mean": _MeanP3Loss()}, init_log_vars={"action": 1.0})
    with pytest.raises(ValueError, match="taken by MultiTaskLoss"):
        MultiTaskLoss(tasks={"log_vars": _MeanP3Loss()})
    twice = MultiTaskLoss(tasks={"one": _MeanP3Loss(), "two": _MeanP3Loss()})
    with pytest.raises(ValueError, match=r"task 'two': term names \['p3_mean'\] are taken"):
        twice({"p3": torch.zeros(1, 2, 4, 4)}, {})
