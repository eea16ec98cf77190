"""The specialists' clip action classifiers (issue 20): tubes cut from ground truth as the
pseudo-labelling cuts them, both classifiers learn, and per-row labels of tracks are one per
track-second and equal to the training-style tube's prediction."""
from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
import pytest

from data.formats.mot import MotRows, tracks_from_rows
from data.sequences import mot_split
from evaluation.specialists.actions import (TrainedClassifier, accuracy, cut_tubes, label_tracks,
                                            label_tracks_timed, predict, train_classifier)
from data.tubes import plan_tubes


@pytest.fixture(scope="module")
def train_tubes(small_dataset):
    return cut_tubes(mot_split(small_dataset, "train"), frames_per_second=4, size=(24, 16))


def test_tubes_are_the_pseudo_labelling_crops_with_majority_labels(small_dataset, train_tubes):
    seqs = {s.name: s for s in mot_split(small_dataset, "train")}
    assert len(train_tubes) > 10
    for tube in train_tubes:
        seq = seqs[tube.sequence]
        assert tube.clip.shape == (4, 24, 16, 3) and tube.clip.dtype == np.uint8
        votes = Counter()
        for i in range(len(seq)):
            if int(i // seq.fps) == tube.second:
                ann = seq.annotations(i)
                votes.update(int(a) for a in ann.actions[(ann.track_ids == tube.track) & (ann.actions >= 0)])
        assert votes[tube.label] == max(votes.values())  # the person's majority action that second
    # The crops are plan_tubes' on the ground truth, and the clip is that crop resized, in RGB.
    tube = train_tubes[0]
    seq = seqs[tube.sequence]
    planned = {(p.track, p.second): p for p in plan_tubes(tracks_from_rows(seq.gt), seq.fps, seq.width, seq.height,
                                                          frames_per_second=4)}
    plan = planned[(tube.track, tube.second)]
    assert tube.plan.crop == plan.crop and tube.plan.frame_indices == plan.frame_indices
    x1, y1, x2, y2 = plan.crop
    first = cv2.resize(seq.frame(plan.frame_indices[0])[y1:y2, x1:x2], (16, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(tube.clip[0], first[:, :, ::-1])


def _two_classes(tubes, count=4):
    """``count`` tubes of each of the two most frequent actions, relabelled 0 and 1."""
    common = [a for a, _ in Counter(t.label for t in tubes).most_common(2)]
    return [replace(t, label=k) for k, action in enumerate(common)
            for t in [t for t in tubes if t.label == action][:count]]


@pytest.mark.parametrize("kind, steps", [("r3d_18", 3), ("cnn_lstm", 8)])
def test_both_classifiers_overfit_a_few_tubes(train_tubes, kind, steps):
    few = _two_classes(train_tubes)
    clf = train_classifier(kind, few, 2, budget_s=0, min_steps=steps, seed=0, batch_size=8, threads=2)
    assert clf.steps == steps and len(clf.losses) == steps and clf.cpu_seconds > 0
    assert clf.losses[-1] < 0.5 * clf.losses[0]  # batch = all 8 tubes: memorising them drives the loss down
    assert clf.frames == 4 and clf.size == (24, 16)


def test_training_spends_its_budget_and_keeps_the_best_validated_weights(train_tubes, tmp_path):
    few = _two_classes(train_tubes)
    clf = train_classifier("cnn_lstm", few, 2, budget_s=3.0, seed=1, batch_size=4, val_tubes=few)
    assert clf.cpu_seconds >= 3.0 and clf.steps >= 2 and clf.epochs >= 1  # the budget is CPU seconds
    best = max(h["val_accuracy"] for h in clf.history)
    assert clf.val_accuracy == best == pytest.approx(accuracy(clf, few))
    clf.save(tmp_path / "clf.pt")
    again = TrainedClassifier.load(tmp_path / "clf.pt")
    clips = np.stack([t.clip for t in few])
    np.testing.assert_allclose(predict(again, clips), predict(clf, clips), atol=1e-6)


def test_label_tracks_gives_one_distribution_per_track_second(small_dataset, train_tubes):
    clf = train_classifier("cnn_lstm", train_tubes, 6, budget_s=0, seed=0)
    seq = mot_split(small_dataset, "test")[0]
    rows = seq.gt
    probs, timing = label_tracks_timed(clf, seq, rows, fps=seq.fps, batch_size=5)
    assert probs.shape == (len(rows), 6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(label_tracks(clf, seq, rows, fps=seq.fps), probs)
    assert timing.tubes > 0 and 0 < timing.classify_seconds <= timing.wall_seconds

    seconds = (rows.frame - 1) // int(seq.fps)
    kept = set(tracks_from_rows(rows))
    for track, second in {(int(t), int(s)) for t, s in zip(rows.track_id, seconds)}:
        same = probs[(rows.track_id == track) & (seconds == second)]
        assert np.all(same == same[0])
        if track not in kept:
            np.testing.assert_allclose(same[0], 1 / 6)  # ignored ground truth and distractors: no label
    # Each track-second's label is the classifier's on the tube cut as for training.
    tubes = cut_tubes([seq], frames_per_second=clf.frames, size=clf.size)
    expected = predict(clf, np.stack([t.clip for t in tubes]))
    for tube, p in zip(tubes, expected):
        row = np.flatnonzero((rows.track_id == tube.track) & (seconds == tube.second))[0]
        np.testing.assert_allclose(probs[row], p, atol=1e-5)

    # A track of one row has no tube: uniform. A second whose boxes leave the image has no tube:
    # its rows take the nearest second's labels of the same track.
    first = rows.select((rows.track_id == 1) & (rows.frame <= 20))
    outside = np.tile([seq.width + 10.0, 10.0, seq.width + 30.0, 50.0], (5, 1))
    extra = MotRows(np.r_[first.frame, 21, 22, 23, 24, 25, 5], np.r_[[901] * 25, 900],
                    np.r_[first.boxes, outside, first.boxes[:1]], np.ones(26), np.ones(26, int), np.ones(26))
    got = label_tracks(clf, seq, extra, fps=seq.fps)
    np.testing.assert_allclose(got[-1], 1 / 6)
    np.testing.assert_array_equal(got[20:25], np.tile(got[19], (5, 1)))
    assert not np.allclose(got[19], 1 / 6)
