"""Spatio-temporal action detection scores: the reference fixtures and small cases worked by hand."""
import numpy as np
import pytest

from data.formats.act import ActAnnotations, ActDetections, read_act_annotations, read_act_detections
from data.formats.ava import AvaRows, read_ava_csv, read_ava_results, read_pbtxt_label_map
from evaluation.action_detection import (Tube, ava_frame_map, frame_ap, gt_tubes_from_identities, link_tubes,
                                         multisports_metrics, rescore_overlaps, spatiotemporal_iou, tubes_from_tracks,
                                         video_ap)


@pytest.fixture(scope="module")
def action_data(real_data):
    """``real/action_detection``; skipped when absent."""
    folder = real_data / "action_detection"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


def _percent(metrics: dict) -> dict:
    return {k: round(100 * v, 4) for k, v in metrics.items()}


def test_multisports_sample_matches_mmaction2(action_data):
    ann = read_act_annotations(action_data / "multisports_sample" / "gt.pkl")
    dets = read_act_detections(action_data / "multisports_sample" / "detections.csv", ann)
    got = _percent(multisports_metrics(ann, dets, mmaction2_scores=True))
    assert got["frame_mAP@0.5"] == 83.6506
    assert got["video_mAP@0.2"] == 37.5 and got["video_mAP@0.5"] == 37.5
    assert got["video_mAP@0.10:0.90"] == 29.1667


def test_multisports_sample_with_each_box_scored(action_data):
    """ACT / MOC linking (each box keeps its own score): the reference code with its score bug
    fixed gives these on the sample; frame-mAP does not link and is unchanged."""
    ann = read_act_annotations(action_data / "multisports_sample" / "gt.pkl")
    dets = read_act_detections(action_data / "multisports_sample" / "detections.csv", ann)
    got = _percent(multisports_metrics(ann, dets))
    assert got == {"frame_mAP@0.5": 83.6506, "video_mAP@0.2": 50.0, "video_mAP@0.5": 50.0,
                   "video_mAP@0.05:0.45": 50.0, "video_mAP@0.10:0.90": 40.2778, "video_mAP@0.50:0.95": 32.5}


def test_ava_sample_matches_the_official_evaluator(action_data):
    folder = action_data / "ava_sample"
    result = ava_frame_map(read_ava_csv(folder / "gt.csv"), read_ava_results(folder / "pred.csv"),
                           read_pbtxt_label_map(folder / "action_list.txt"))
    assert round(result["mAP"], 8) == 0.09385522
    assert {c: round(ap, 4) for c, ap in result["per_class"].items()} == {1: 0.1705, 2: 0.0, 3: 0.1111}


def _annotations(gttubes: dict, labels=("jump", "run"), nframes=40) -> ActAnnotations:
    videos = sorted(gttubes)
    return ActAnnotations(list(labels), [videos], [], {v: nframes for v in videos},
                          {v: (100, 200) for v in videos},
                          {v: {k: [np.asarray(t, np.float64) for t in ts] for k, ts in d.items()}
                           for v, d in gttubes.items()})


def _detections(rows) -> ActDetections:
    video, frame, label, score, *box = zip(*rows)
    return ActDetections(np.array(video, dtype=object), np.array(frame), np.array(label), np.array(score, float),
                         np.array(box, float).T.copy())


def _tube(first, last, box):
    return np.array([[f, *box] for f in range(first, last + 1)], float)


def test_frame_ap_by_hand():
    # Frame 1 holds two overlapping boxes A and B; frame 2 one box C.
    a, b, c = [0, 0, 10, 10], [0, 1, 10, 11], [50, 50, 60, 60]
    ann = _annotations({"v": {0: [np.array([[1, *a], [2, *c]]), np.array([[1, *b]])]}})
    dets = _detections([("v", 1, 0, 0.9, *a),  # TP on A
                        ("v", 1, 0, 0.8, *a),  # best overlap is A, taken: FP although B overlaps by 0.82
                        ("v", 2, 0, 0.7, *c),  # TP
                        ("v", 2, 1, 0.95, *c)])  # other label: no ground truth there, left out of the mean
    result = frame_ap(ann, dets)
    # precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3: AP = 1/3 * 1 + 1/3 * 2/3
    assert result["per_label"] == {"jump": pytest.approx(5 / 9)}
    assert result["mAP"] == pytest.approx(5 / 9)
    skipped = _annotations({"v": {0: [np.array([[1, *a]])]}}, labels=("aerobic kick jump",))
    assert frame_ap(skipped, dets)["per_label"] == {}  # a label MultiSports does not evaluate


def test_rescore_overlaps_scales_instead_of_dropping():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 8], [50, 50, 60, 60.0]])
    kept, scores = rescore_overlaps(boxes, np.array([0.9, 0.8, 0.5]))
    # The second box overlaps the first by 10 * 9 / (10 * 10) = 0.9 in inclusive pixels: 0.8 * 0.1.
    np.testing.assert_allclose(scores, [0.9, 0.5, 0.08])
    np.testing.assert_array_equal(kept, boxes[[0, 2, 1]])
    assert len(rescore_overlaps(np.tile(boxes[2], (12, 1)) + np.arange(12)[:, None] * 20,
                                np.linspace(0.1, 0.9, 12))[1]) == 10


def test_linking_drops_short_tubes_and_ends_at_gaps():
    rows = [("v", f, 0, 0.9, 10 + f, 10, 40 + f, 40) for f in range(1, 21)]  # slides 1 px a frame
    rows += [("v", f, 0, 0.6, 100, 10, 130, 40) for f in range(1, 11)]  # 10 frames: too short
    rows += [("v", f, 1, 0.7, 0, 0, 30, 30) for f in list(range(1, 8)) + list(range(9, 26))]  # gap at 8
    ann = _annotations({"v": {}})
    tubes = link_tubes(ann, _detections(rows))
    assert [(t.video, t.boxes[0, 0], t.boxes[-1, 0], round(t.score, 6)) for t in tubes[0]] == [("v", 1, 20, 0.9)]
    np.testing.assert_array_equal(tubes[0][0].boxes[4], [5, 15, 10, 45, 40])
    assert [(t.boxes[0, 0], t.boxes[-1, 0]) for t in tubes[1]] == [(9, 25)]  # 1-7 is too short
    short = link_tubes(ann, _detections(rows), min_length=5)
    assert sorted((t.boxes[0, 0], t.boxes[-1, 0]) for t in short[0]) == [(1, 10), (1, 20)]
    assert sorted((t.boxes[0, 0], t.boxes[-1, 0]) for t in short[1]) == [(1, 7), (9, 25)]


def test_spatiotemporal_iou_by_hand():
    a = _tube(1, 10, [0, 0, 10, 10])
    b = _tube(6, 15, [0, 0, 10, 5])  # per-frame IoU 0.5 over frames 6-10
    assert spatiotemporal_iou(a, b) == pytest.approx(0.5 * (10 - 6) / (15 - 1))
    assert spatiotemporal_iou(b, a) == spatiotemporal_iou(a, b)
    assert spatiotemporal_iou(a, a) == 1.0
    assert spatiotemporal_iou(a, _tube(11, 20, [0, 0, 10, 10])) == 0.0
    assert spatiotemporal_iou(a, _tube(10, 20, [0, 0, 10, 10])) == 0.0  # one shared frame: no interval
    gap = np.delete(b, 2, axis=0)  # b without frame 8 counts IoU 0 there
    assert spatiotemporal_iou(a, gap) == pytest.approx(4 * 0.5 / 5 * 4 / 14)


def test_video_ap_by_hand():
    g1, g2 = _tube(1, 20, [0, 0, 10, 10]), _tube(1, 20, [50, 50, 60, 60])
    ann = _annotations({"v": {0: [g1, g2]}, "w": {}})
    tubes = {0: [Tube("v", g1, 0.9),  # TP
                 Tube("v", g1, 0.8),  # best match g1 already taken: FP
                 Tube("w", g2, 0.75),  # no ground truth in that video: FP
                 Tube("v", g2, 0.7)]}  # TP
    # precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1: AP = 1/2 * 1 + 1/2 * 1/2
    assert video_ap(ann, tubes, 0.5)["per_label"] == {"jump": pytest.approx(0.75)}
    partial = {0: [Tube("v", _tube(11, 30, [0, 0, 10, 10]), 0.9)]}  # overlaps g1 over frames 11-20
    assert spatiotemporal_iou(g1, partial[0][0].boxes) == pytest.approx(9 / 29)
    assert video_ap(ann, partial, 0.3)["mAP"] == pytest.approx(0.5)
    assert video_ap(ann, partial, 0.4)["mAP"] == 0.0
    assert video_ap(ann, {}, 0.5)["mAP"] == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        Tube("v", g1[::-1], 0.5)


def _ava(rows) -> AvaRows:
    video, ts, action, score, *box = zip(*rows)
    return AvaRows(np.array(video, dtype=object), np.array(ts), np.array(box, float).T.copy(), np.array(action),
                   np.full(len(rows), -1), np.array(score, float))


def test_ava_frame_map_by_hand():
    a, b, c, far = [0.1, 0.1, 0.4, 0.9], [0.5, 0.1, 0.9, 0.9], [0.2, 0.2, 0.6, 0.6], [0.0, 0.0, 0.05, 0.05]
    gt = _ava([("v", 902, 1, 1, *a), ("v", 902, 2, 1, *b), ("v", 903, 1, 1, *c), ("v", 902, 9, 1, *b)])
    pred = _ava([("v", 902, 1, 0.9, *a),  # TP
                 ("v", 902, 2, 0.8, *a),  # FP: action 2 is on b
                 ("v", 902, 2, 0.7, *b),  # TP
                 ("v", 905, 2, 0.95, *b),  # FP: a keyframe without ground truth
                 ("v", 903, 1, 0.99, *far),  # FP unless 903 is excluded
                 ("v", 902, 3, 0.99, *a)])  # not in the label map: ignored
    labels = {1: "stand", 2: "sit"}
    # With 903 excluded: action 1 has AP 1; action 2 ranks FP, FP, TP: AP 1/3.
    kept = ava_frame_map(gt, pred, labels, excluded={("v", 903)})
    assert kept["per_class"] == {1: 1.0, 2: pytest.approx(1 / 3)} and kept["mAP"] == pytest.approx(2 / 3)
    # Without: action 1 has 2 boxes and ranks FP, TP: precision 1/2 at recall 1/2.
    assert ava_frame_map(gt, pred, labels)["per_class"] == {1: 0.25, 2: pytest.approx(1 / 3)}


def test_ava_keeps_50_detections_a_keyframe():
    gt = _ava([("v", 902, 1, 1, 0.1, 0.1, 0.4, 0.9)])
    misses = [("v", 902, 1, 0.5 + i / 200, 0.6, 0.6, 0.7, 0.7) for i in range(50)]
    pred = _ava(misses + [("v", 902, 1, 0.1, 0.1, 0.1, 0.4, 0.9), ("v", 902, 1, 0.99, 0.3, 0.3, 0.3, 0.4)])
    assert ava_frame_map(gt, pred, {1: "stand"})["mAP"] == 0.0  # the hit ranks 51st of 52 and is cut
    # Uncapped, the degenerate box (zero width) is still dropped: the hit comes 51st.
    assert ava_frame_map(gt, pred, {1: "stand"}, max_detections=0)["mAP"] == pytest.approx(1 / 51)


def test_tracked_identities_become_tubes_cut_at_action_changes_and_long_gaps():
    """Track 7 at 2 fps: seconds 0-1 mostly action 0 (one flickering frame does not cut it), second
    2 action 1; track 8 lost for 3 frames (more than a second) becomes two tubes."""
    box = np.array([[0.0, 0, 10, 20]])
    p0, p1 = np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])
    frames = [(7, p0), (7, p0), (7, p1), (7, p0), (7, p1), (7, p1)]  # frames 1-6: seconds 0, 0, 1, 1, 2, 2
    ids = [np.array([t]) for t, _ in frames]
    scores = [p for _, p in frames]
    tubes = tubes_from_tracks("v", ids, [box] * 6, scores, fps=2)
    assert [t.boxes[:, 0].tolist() for t in tubes[0]] == [[1, 2, 3, 4]]
    assert [t.boxes[:, 0].tolist() for t in tubes[1]] == [[5, 6]]
    assert tubes[0][0].score == pytest.approx((0.9 * 3 + 0.2) / 4) and tubes[1][0].score == pytest.approx(0.8)
    present = [np.array([8]), np.array([8]), np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.array([8])]
    boxes = [box if len(i) else np.zeros((0, 4)) for i in present]
    probs = [p0 if len(i) else np.zeros((0, 2)) for i in present]
    assert [t.boxes[:, 0].tolist() for t in tubes_from_tracks("v", present, boxes, probs, fps=2)[0]] == [[1, 2], [6]]


def test_ground_truth_tubes_follow_each_identity_and_its_action():
    ids = [np.array([1, 2]), np.array([1, 2]), np.array([1]), np.array([1, 2])]
    boxes = [np.array([[0.0, 0, 10, 10], [20, 0, 30, 10]])[: len(i)] for i in ids]
    labels = [np.array([0, 1]), np.array([0, -1]), np.array([1]), np.array([1, 1])]
    tubes = gt_tubes_from_identities(ids, boxes, labels)
    assert sorted(t[:, 0].tolist() for t in tubes[0]) == [[1, 2]]
    assert sorted(t[:, 0].tolist() for t in tubes[1]) == [[1], [3, 4], [4]]  # id 2 unlabelled in frame 2
    np.testing.assert_array_equal(tubes[0][0][:, 1:], [[0, 0, 10, 10]] * 2)
