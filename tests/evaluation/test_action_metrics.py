"""Action frame-mAP on a hand-built case; the identity-aware score punishes swapped identities."""
import numpy as np
import pytest

from data.formats.mot import MotRows
from evaluation.action_metrics import frame_map, identity_action_score
from evaluation.mot_metrics import identity_assignment, preprocess_sequence


def test_frame_map_hand_computed():
    # Two frames, two classes. Class 0: gt boxes A (frame 1) and B (frame 2); class 1: gt C (frame 2).
    A, B, C = [0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]
    gt_boxes = [np.array([A], float), np.array([B, C], float)]
    gt_labels = [np.array([0]), np.array([0, 1])]
    pred_boxes = [np.array([A, [60, 60, 70, 70]], float), np.array([B, C], float)]
    pred_scores = [np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([[0.3, 0.7], [0.6, 0.4]])]
    out = frame_map(gt_boxes, gt_labels, pred_boxes, pred_scores, num_classes=2)
    # class 0 ranking: A 0.9 TP, stray 0.8 FP, C 0.6 FP, B 0.3 TP -> P/R: (1, .5) (.5, .5) (.33, .5) (.5, 1)
    assert out["per_class"][0] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    # class 1 ranking: B 0.7 FP, C 0.4 TP, stray 0.2 FP, A 0.1 FP -> (0, 0) (.5, 1) ... -> AP 0.5
    assert out["per_class"][1] == pytest.approx(0.5)
    assert out["mAP"] == pytest.approx((0.75 + 0.5) / 2)


def _two_people(track_ids, frames=20):
    boxes = [[0, 0, 10, 20], [40, 0, 50, 20]]
    f = [k for k in range(1, frames + 1) for _ in boxes]
    gt = MotRows(np.array(f), np.array([1, 2] * frames), np.array(boxes * frames, float), np.ones(2 * frames),
                 np.ones(2 * frames, int), np.ones(2 * frames))
    res = MotRows(np.array(f), np.array(track_ids), np.array(boxes * frames, float), np.ones(2 * frames),
                  np.ones(2 * frames, int), np.ones(2 * frames))
    return preprocess_sequence("s", gt, res, frames, class_aware=False)


def test_identity_score_drops_when_identities_swap_though_every_action_is_right():
    frames, fps, K = 20, 10.0, 2
    labels = [np.array([0, 1]) for _ in range(frames)]  # person 1 does action 0, person 2 action 1
    right = [np.array([[0.9, 0.1], [0.1, 0.9]]) for _ in range(frames)]  # each box's action is right
    seq = _two_people([5, 6] * frames)
    good = identity_action_score(seq, labels, right, identity_assignment(seq), fps, K)
    assert good["accuracy"] == pytest.approx(1.0) and good["mAP"] == pytest.approx(1.0)
    assert good["num_items"] == 4  # 2 people x 2 seconds
    # The tracks swap identities after second 0; every box still carries its person's right action,
    # but in second 1 the track IDF1 assigned to person 1 is on person 2: no credit there.
    swapped = _two_people([5, 6] * 10 + [6, 5] * 10)
    bad = identity_action_score(swapped, labels, right, identity_assignment(swapped), fps, K)
    assert bad["accuracy"] == pytest.approx(0.5)
    assert bad["mAP"] < good["mAP"]
    # Frame-mAP cannot see the swap.
    fm_good = frame_map(seq.gt_boxes, labels, seq.tracker_boxes, right, K)["mAP"]
    fm_bad = frame_map(swapped.gt_boxes, labels, swapped.tracker_boxes, right, K)["mAP"]
    assert fm_good == fm_bad == pytest.approx(1.0)
