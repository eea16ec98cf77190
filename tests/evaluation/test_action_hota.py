"""Action-gated HOTA on hand-built sequences with exact expected values: the gate, its parts
(DetA, AssA, ActA), unlabelled ground truth, empty sides and the combination over sequences."""
import math

import numpy as np
import pytest

from common.boxes import iou_matrix
from evaluation.action_hota import _action_pairs, action_hota
from evaluation.mot_metrics import SequenceFrames, _trackeval_data, hota_metrics

pytest.importorskip("trackeval")

# People far apart, so each track overlaps only its own person.
BOXES = np.array([[0, 0, 10, 20], [40, 0, 50, 20], [80, 0, 90, 20]], float)


def _seq(name, frames):
    """``frames``: per frame ``(gt_ids, gt_boxes, tracker_ids, tracker_boxes)``."""
    seq = SequenceFrames(name, len(frames))
    for g_ids, g_boxes, t_ids, t_boxes in frames:
        g_boxes, t_boxes = np.asarray(g_boxes, float).reshape(-1, 4), np.asarray(t_boxes, float).reshape(-1, 4)
        seq.gt_ids.append(np.asarray(g_ids, int))
        seq.gt_boxes.append(g_boxes)
        seq.tracker_ids.append(np.asarray(t_ids, int))
        seq.tracker_boxes.append(t_boxes)
        seq.similarity.append(iou_matrix(g_boxes, t_boxes, dtype=np.float64))
    return seq


def _perfect(name, people, frames):
    """``people`` people tracked perfectly (track ``10 + i`` on person ``i``) for ``frames`` frames."""
    ids = np.arange(people)
    return _seq(name, [(ids, BOXES[:people], 10 + ids, BOXES[:people])] * frames)


def _per_frame(actions, frames):
    return [np.array(actions, int)] * frames


def _score(seq, gt, tr):
    return action_hota([seq], [gt], [tr])


def test_perfect_tracks_with_every_action_wrong():
    seq = _perfect("s", 2, 10)
    out = _score(seq, _per_frame([0, 1], 10), _per_frame([2, 2], 10))["s"]
    assert out["DetA"] == pytest.approx(100) and out["AssA"] == pytest.approx(100)
    assert out["HOTA"] == pytest.approx(100)
    assert out["ActA"] == 0 and out["HOTA_act"] == 0


def test_perfect_tracks_with_every_action_right():
    seq = _perfect("s", 2, 10)
    out = _score(seq, _per_frame([0, 1], 10), _per_frame([0, 1], 10))
    for name in ("s", "COMBINED"):
        assert out[name] == pytest.approx({"HOTA_act": 100, "HOTA": 100, "DetA": 100, "AssA": 100, "ActA": 100})


def test_two_people_with_swapped_actions_are_penalised():
    # Persons 0 and 1 do actions 0 and 1; their tracks predict each other's. Person 2 is right.
    seq = _perfect("s", 3, 10)
    out = _score(seq, _per_frame([0, 1, 2], 10), _per_frame([1, 0, 2], 10))["s"]
    assert out["HOTA"] == pytest.approx(100)
    assert out["ActA"] == pytest.approx(100 / 3)  # the swapped pair scores 0 of its 20 matches
    # Gated: only person 2's 10 boxes match; the other 20 gt boxes are misses and their 20 tracker
    # boxes false positives. DetA = 10 / (10 + 20 + 20), AssA = 1 (person 2 is one whole track).
    assert out["HOTA_act"] == pytest.approx(100 * math.sqrt(10 / 50))
    assert out["HOTA_act"] < out["HOTA"]


def test_half_the_frames_with_the_wrong_action():
    seq = _perfect("s", 1, 10)
    out = _score(seq, _per_frame([3], 10), _per_frame([3], 5) + _per_frame([4], 5))["s"]
    assert out["ActA"] == pytest.approx(50)
    assert out["DetA"] == pytest.approx(100) and out["AssA"] == pytest.approx(100)
    # Gated: 5 matches, 5 misses, 5 false positives -> DetA 1/3; the gt and the track (10 boxes
    # each) share 5 matches -> AssA 5 / (10 + 10 - 5) = 1/3; HOTA = sqrt(1/3 * 1/3).
    assert out["HOTA_act"] == pytest.approx(100 / 3)


def test_unlabelled_ground_truth_does_not_gate():
    seq = _perfect("s", 1, 10)
    out = _score(seq, _per_frame([-1], 10), _per_frame([7], 10))["s"]
    assert out["HOTA_act"] == pytest.approx(100) and out["HOTA"] == pytest.approx(100)
    assert math.isnan(out["ActA"])  # no labelled box, no action to judge
    # 6 unlabelled frames (any prediction passes) and 4 labelled ones, 2 of them wrong: ActA counts
    # only the labelled ones; the gate only the 2 wrong ones.
    gt = _per_frame([-1], 6) + _per_frame([1], 4)
    tr = _per_frame([0], 6) + _per_frame([1], 2) + _per_frame([0], 2)
    out = _score(seq, gt, tr)["s"]
    assert out["ActA"] == pytest.approx(50)
    # Gated: 8 matches, 2 misses, 2 false positives -> DetA 8/12; AssA 8 / (10 + 10 - 8).
    assert out["HOTA_act"] == pytest.approx(100 * math.sqrt(8 / 12 * 8 / 12))


def test_acta_skips_alphas_where_nothing_matches():
    # Every track box has IoU 0.62 with its person: matched at the 12 alphas 0.05 ... 0.60 only.
    loose = [[0, 0, 10, 12.4]]
    seq = _seq("s", [([0], BOXES[:1], [10], loose)] * 10)
    out = _score(seq, _per_frame([2], 10), _per_frame([2], 10))["s"]
    assert out["DetA"] == pytest.approx(100 * 12 / 19)
    assert out["ActA"] == pytest.approx(100)  # the looseness is DetA's to report, not ActA's
    assert out["HOTA_act"] == pytest.approx(out["HOTA"])


def test_empty_sides_give_zero_and_nan_not_errors():
    no_tracker = _seq("no_tracker", [([0, 1], BOXES[:2], [], [])] * 5)
    no_gt = _seq("no_gt", [([], [], [10], BOXES[:1])] * 5)
    nothing = _seq("nothing", [([], [], [], [])] * 5)
    empty = np.zeros(0, int)
    gt_a = {"no_tracker": _per_frame([0, 1], 5), "no_gt": [empty] * 5, "nothing": [empty] * 5}
    tr_a = {"no_tracker": [empty] * 5, "no_gt": _per_frame([0], 5), "nothing": [empty] * 5}
    seqs = [no_tracker, no_gt, nothing]
    out = action_hota(seqs, [gt_a[s.name] for s in seqs], [tr_a[s.name] for s in seqs])
    for name in ("no_tracker", "no_gt", "nothing", "COMBINED"):
        assert {f: out[name][f] for f in ("HOTA_act", "HOTA", "DetA", "AssA")} == {
            "HOTA_act": 0, "HOTA": 0, "DetA": 0, "AssA": 0}
        assert math.isnan(out[name]["ActA"])


def test_combined_sums_over_sequences():
    # 10 frames all right; 20 frames, the last 10 wrong.
    a, b = _perfect("a", 1, 10), _perfect("b", 1, 20)
    gt = [_per_frame([0], 10), _per_frame([0], 20)]
    tr = [_per_frame([0], 10), _per_frame([0], 10) + _per_frame([1], 10)]
    out = action_hota([a, b], gt, tr)
    assert out["a"]["ActA"] == pytest.approx(100) and out["b"]["ActA"] == pytest.approx(50)
    assert out["COMBINED"]["ActA"] == pytest.approx(100 * 20 / 30)  # pairs pooled, not the mean 75
    # b gated: 10 matches, 10 misses, 10 FPs (DetA 1/3, AssA 10 / 30). COMBINED (TrackEval):
    # DetA = (10 + 10) / (20 + 10 + 10); AssA = TP-weighted (1 * 10 + 1/3 * 10) / 20 = 2/3.
    assert out["b"]["HOTA_act"] == pytest.approx(100 / 3)
    assert out["COMBINED"]["HOTA_act"] == pytest.approx(100 * math.sqrt(0.5 * 2 / 3))
    assert out["COMBINED"]["HOTA"] == pytest.approx(100)


def _messy(name, seed, frames=30):
    """Random people; tracks that jitter, drop out, switch ids half-way and add a stray box; actions
    mostly right, some wrong, some ground truth unlabelled."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 200, (6, 2))  # (people, 2)
    half = np.array([8.0, 16.0])
    rows, gt_a, tr_a = [], [], []
    for k in range(frames):
        centres += rng.normal(0, 3, centres.shape)
        present = np.flatnonzero(rng.random(len(centres)) < 0.85)
        seen = present[rng.random(len(present)) < 0.8]
        stray = rng.uniform(0, 200, (1, 2))  # (1, 2)
        g_boxes = np.concatenate([centres[present] - half, centres[present] + half], 1)  # (G, 4)
        t_centres = np.concatenate([centres[seen] + rng.normal(0, 2, (len(seen), 2)), stray])  # (T, 2)
        t_boxes = np.concatenate([t_centres - half, t_centres + half], 1)  # (T, 4)
        t_ids = np.append(100 + seen + 10 * (k >= frames // 2) * (seen % 2), 999)  # odd people switch track
        rows.append((present, g_boxes, t_ids, t_boxes))
        gt_a.append(np.where(rng.random(len(present)) < 0.2, -1, present % 3))
        tr_a.append(np.where(rng.random(len(t_ids)) < 0.7, np.append(seen % 3, 0), rng.integers(0, 3, len(t_ids))))
    return _seq(name, rows), gt_a, tr_a


def test_plain_parts_are_trackevals_and_pairs_are_its_matches():
    from trackeval.metrics import HOTA

    cases = [_messy(f"m{i}", i) for i in range(3)]
    seqs, gt, tr = ([c[i] for c in cases] for i in range(3))
    out = action_hota(seqs, gt, tr)
    reference = hota_metrics(seqs)
    for name in [s.name for s in seqs] + ["COMBINED"]:
        for f in ("HOTA", "DetA", "AssA"):
            assert out[name][f] == pytest.approx(reference[name][f], abs=1e-9)
        assert 0 < out[name]["ActA"] < 100 and 0 < out[name]["HOTA_act"] < out[name]["HOTA"]
    for seq, g, t in zip(seqs, gt, tr):
        data = _trackeval_data(seq)
        assert np.array_equal(_action_pairs(data, g, t, HOTA().array_labels)[0], HOTA().eval_sequence(data)["HOTA_TP"])
    # Everybody doing action 0 and every box predicting it: the gate passes every pair.
    zeros = [[np.zeros(len(ids), int) for ids in s.gt_ids] for s in seqs]
    zeros_tr = [[np.zeros(len(ids), int) for ids in s.tracker_ids] for s in seqs]
    same = action_hota(seqs, zeros, zeros_tr)
    for name in [s.name for s in seqs] + ["COMBINED"]:
        assert same[name]["HOTA_act"] == same[name]["HOTA"] == pytest.approx(reference[name]["HOTA"], abs=1e-9)
        assert same[name]["ActA"] == pytest.approx(100)


def test_inputs_that_do_not_fit_are_refused():
    seq = _perfect("s", 2, 3)
    gt = _per_frame([0, 1], 3)
    with pytest.raises(ValueError, match="argmax"):
        _score(seq, gt, [np.zeros((2, 4))] * 3)  # scores instead of action ids
    with pytest.raises(ValueError, match="frame 2"):
        _score(seq, gt, _per_frame([0, 1], 1) + _per_frame([0], 1) + _per_frame([0, 1], 1))
    with pytest.raises(ValueError, match="3 frames"):
        _score(seq, gt[:2], _per_frame([0, 1], 3))
    with pytest.raises(ValueError, match="unique"):
        action_hota([seq, seq], [gt, gt], [gt, gt])
    with pytest.raises(ValueError, match="no sequences"):
        action_hota([], [], [])


def test_a_matching_that_differs_from_trackevals_is_refused(monkeypatch):
    import evaluation.action_hota as module

    seq = _perfect("s", 2, 3)
    no_pairs = [(np.zeros(0, int), np.zeros(0, int))] * 3
    monkeypatch.setattr(module, "_hota_matches", lambda data: no_pairs)
    with pytest.raises(RuntimeError, match="matching has changed"):
        _score(seq, _per_frame([0, 1], 3), _per_frame([0, 1], 3))
