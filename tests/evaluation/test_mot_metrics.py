"""Tracking metrics: the official values on motmetrics' TUD files, MOTChallenge preprocessing,
IDF1's identity assignment."""
import os

import numpy as np
import pytest

from data.formats.mot import MotRows, read_mot_file
from evaluation.mot_metrics import (clear_identity_metrics, hota_metrics, identity_assignment,
                                    motmetrics_accumulator, preprocess_sequence)

motmetrics = pytest.importorskip("motmetrics")
pytest.importorskip("trackeval")
TUD = os.path.join(os.path.dirname(motmetrics.__file__), "data")
# MOTChallenge devkit (MOTA, IDF1) and TrackEval (HOTA) on motmetrics' shipped tracker outputs.
OFFICIAL = {"TUD-Campus": (52.6462, 55.7659, 39.14), "TUD-Stadtmitte": (56.4014, 64.4619, 39.78)}


def _tud(name):
    gt, res = read_mot_file(f"{TUD}/{name}/gt.txt"), read_mot_file(f"{TUD}/{name}/test.txt")
    return preprocess_sequence(name, gt, res, int(max(gt.frame.max(), res.frame.max())), class_aware=False)


def test_tud_matches_the_devkit_and_trackeval():
    seqs = [_tud(n) for n in OFFICIAL]
    clear, hota = clear_identity_metrics(seqs), hota_metrics(seqs)
    for name, (mota, idf1, h) in OFFICIAL.items():
        assert clear[name]["mota"] == pytest.approx(mota, abs=0.01)
        assert clear[name]["idf1"] == pytest.approx(idf1, abs=0.01)
        assert hota[name]["HOTA"] == pytest.approx(h, abs=0.01)
    # Combined CLEAR sums the counts over sequences.
    c = clear["COMBINED"]
    assert c["num_switches"] == clear["TUD-Campus"]["num_switches"] + clear["TUD-Stadtmitte"]["num_switches"]
    total_gt = c["num_objects"]
    assert c["mota"] == pytest.approx(100 * (1 - (c["num_misses"] + c["num_false_positives"] + c["num_switches"]) / total_gt))


def test_identity_assignment_gives_motmetrics_idtp():
    for name in OFFICIAL:
        seq = _tud(name)
        mapping = identity_assignment(seq)
        idtp = sum(int(np.sum([(seq.similarity[k][list(g).index(gid), list(t).index(tid)] >= 0.5)
                               for gid, tid in mapping.items() if gid in g and tid in t]))
                   for k, (g, t) in enumerate(zip(seq.gt_ids, seq.tracker_ids)))
        assert idtp == clear_identity_metrics([seq])[name]["idtp"]
        assert len(set(mapping.values())) == len(mapping)  # one to one


def _rows(frames, ids, boxes, conf=None, classes=None):
    n = len(frames)
    return MotRows(np.array(frames), np.array(ids), np.array(boxes, float).reshape(-1, 4),
                   np.ones(n) if conf is None else np.array(conf, float),
                   np.ones(n, int) if classes is None else np.array(classes), np.ones(n))


def test_preprocessing_drops_distractor_matches_and_ignored_ground_truth():
    # frame 1: a pedestrian, a distractor (class 8) and a zero-marked pedestrian.
    gt = _rows([1, 1, 1], [1, 2, 3], [[0, 0, 10, 20], [50, 0, 60, 20], [100, 0, 110, 20]],
               conf=[1, 1, 0], classes=[1, 8, 1])
    res = _rows([1, 1, 1], [7, 8, 9], [[0, 0, 10, 20], [50, 0, 60, 21], [100, 0, 110, 20]])
    seq = preprocess_sequence("s", gt, res, 1, class_aware=True)
    assert seq.gt_ids[0].tolist() == [1]          # distractor and zero-marked gone
    assert seq.tracker_ids[0].tolist() == [7, 9]  # the box on the distractor is removed, not a FP
    c = clear_identity_metrics([seq])["s"]
    assert (c["num_false_positives"], c["num_misses"]) == (1, 0)  # the zero-marked match stays a FP
    # MOT15 ground truth has no classes: the class-8 row is an ordinary person.
    seq15 = preprocess_sequence("s", gt, res, 1, class_aware=False)
    assert seq15.gt_ids[0].tolist() == [1, 2] and seq15.tracker_ids[0].tolist() == [7, 8, 9]


def test_perfect_tracking_and_an_id_switch():
    boxes = [[0, 0, 10, 20], [30, 0, 40, 20]]
    frames = [f for f in range(1, 11) for _ in boxes]
    gt = _rows(frames, [1, 2] * 10, boxes * 10)
    perfect = preprocess_sequence("p", gt, _rows(frames, [5, 6] * 10, boxes * 10), 10, class_aware=False)
    r = {**clear_identity_metrics([perfect])["p"], **hota_metrics([perfect])["p"]}
    assert r["mota"] == pytest.approx(100) and r["idf1"] == pytest.approx(100) and r["HOTA"] == pytest.approx(100)
    # The two tracks swap ids half-way: 2 switches, IDF1 50%.
    swapped_ids = [5, 6] * 5 + [6, 5] * 5
    swapped = preprocess_sequence("w", gt, _rows(frames, swapped_ids, boxes * 10), 10, class_aware=False)
    r = clear_identity_metrics([swapped])["w"]
    assert r["num_switches"] == 2 and r["idf1"] == pytest.approx(50.0)
    assert hota_metrics([swapped])["w"]["AssA"] < 100


def test_results_outside_the_sequence_or_with_duplicate_ids_are_refused():
    gt = _rows([1], [1], [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="frame 5 is outside"):
        preprocess_sequence("s", gt, _rows([5], [1], [[0, 0, 10, 10]]), 3, class_aware=False)
    with pytest.raises(ValueError, match="track id 4 appears more than once in frame 1"):
        preprocess_sequence("s", gt, _rows([1, 1], [4, 4], [[0, 0, 10, 10]] * 2), 3, class_aware=False)


def test_accumulator_skips_pairs_below_half_iou():
    gt = _rows([1], [1], [[0, 0, 10, 10]])
    res = _rows([1], [2], [[0, 0, 10, 4.9]])  # IoU 0.49
    acc = motmetrics_accumulator(preprocess_sequence("s", gt, res, 1, class_aware=False))
    assert set(acc.mot_events["Type"]) == {"MISS", "FP"}
