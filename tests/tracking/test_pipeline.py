"""The one builder of checkpoint -> model -> tracker -> engine -> recorder, and the flags that
configure it (defaults written once, in TrackerConfig)."""
import argparse

import numpy as np
import pytest

from common.errors import InputError
from tracking.pipeline import Pipeline, PipelineOptions, add_pipeline_arguments, options_from_args
from tracking.tracker import TrackerConfig


def _parse(*argv):
    p = argparse.ArgumentParser()
    add_pipeline_arguments(p)
    return p.parse_args(list(argv))


def test_flag_defaults_are_the_tracker_defaults():
    options = options_from_args(_parse())
    assert options.tracker == TrackerConfig() and options.detection_threshold == TrackerConfig().low_score
    options = options_from_args(_parse("--conf-threshold", "0.7", "--track-high", "0.6", "--track-new", "0.65"))
    # Detections above conf are kept; the tracker reads low scores down to min(conf, high).
    assert options.detection_threshold == 0.7 and options.tracker.low_score == 0.6
    assert (options.tracker.high_score, options.tracker.new_track_score) == (0.6, 0.65)
    with pytest.raises(InputError, match="--track-high must be in"):
        options_from_args(_parse("--track-high", "1.5"))


def test_tracker_only_session_tracks_and_records():
    session = Pipeline.tracker_only(PipelineOptions()).start(fps=10.0, name="walk", width=200, height=100)
    for k in range(6):
        boxes = np.array([[10.0 + 5 * k, 20, 40 + 5 * k, 90], [120, 10, 150, 80]])
        result = session.step(k, k / 10, detections=(boxes, np.array([0.9, 0.8])))
    assert len(result.tracks) == 2 and len(result.detection_boxes) == 2
    rows = session.mot_rows()
    assert sorted(set(rows.track_id.tolist())) == [1, 2] and rows.frame.max() == 6
    labels = session.vicr_labels(total_frames=6)
    assert labels.video.name == "walk" and labels.video.total_frames == 6 and len(labels.persons) == 2
    with pytest.raises(ValueError, match="give them"):
        session.step(6, 0.6, frame=np.zeros((100, 200, 3), np.uint8))


def test_network_session_equals_the_engine(tmp_path):
    """Pipeline.start builds what StreamingEngine was given by hand before: same detections."""
    import torch

    from models.checkpoint import InferenceSpec
    from models.mot_action_net import build_model
    from tracking.streaming import StreamingEngine
    from tracking.tracker import Tracker

    torch.manual_seed(0)
    model = build_model("tiny", num_actions=2).eval()
    spec = InferenceSpec(("a", "b"), (64, 96), 4, 2)
    pipeline = Pipeline(options=PipelineOptions(conf_threshold=0.0), model=model, spec=spec, device=torch.device("cpu"))
    session = pipeline.start(fps=10.0)
    engine = StreamingEngine(model=model, tracker=Tracker(fps=10.0), input_size=(64, 96), clip_len=4, stride=2,
                             conf_threshold=0.0)
    rng = np.random.default_rng(0)
    for k in range(3):
        frame = rng.integers(0, 256, (120, 180, 3), dtype=np.uint8)
        a, b = session.step(k, k / 10, frame), engine.process(frame, k, k / 10)
        np.testing.assert_allclose(a.detection_boxes, b.detection_boxes)
        np.testing.assert_allclose(a.detection_scores, b.detection_scores)
    assert pipeline.action_names == ["a", "b"]


def test_a_model_trained_without_actions_reports_none():
    """A checkpoint trained on footage without action labels has a one-class action head (its
    probability is always 1): no action is drawn or written for it, and the head does not run."""
    import torch

    from models.checkpoint import InferenceSpec
    from models.mot_action_net import build_model

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 180, 3), dtype=np.uint8)] * 6  # a still scene: stable detections
    # The random network's scores are ~0.01: every threshold at 0 so its detections become tracks.
    options = PipelineOptions(tracker=TrackerConfig(high_score=0.0, new_track_score=0.0, low_score=0.0), conf_threshold=0.0)
    probs = {}
    for names in (("unlabelled",), ("a", "b")):
        torch.manual_seed(0)
        model = build_model("tiny", num_actions=len(names)).eval()
        pipeline = Pipeline(options=options, model=model, spec=InferenceSpec(names, (64, 96), 4, 2), device=torch.device("cpu"))
        session = pipeline.start(fps=10.0, width=180, height=120)
        for k, frame in enumerate(frames):
            result = session.step(k, k / 10, frame)
        assert result.tracks, "the random model should track something at threshold 0"
        probs[names] = [t.action_probs for t in result.tracks]
        labels = session.vicr_labels(total_frames=len(frames))
        actions = {f.action for person in labels.persons.values() for f in person.frames}
        if names == ("unlabelled",):
            assert pipeline.action_names == [] and actions == {None}
    assert all(p is None for p in probs[("unlabelled",)])
    assert any(p is not None for p in probs[("a", "b")])
