"""Trackers chosen by name: the protocol every caller uses, the registry behind ``--tracker``, and
the one way given detections are fed to a session."""
import argparse
import importlib.util

import numpy as np
import pytest

from common.errors import InputError
from data.formats.mot import MotRows
from tracking.pipeline import (Pipeline, PipelineOptions, Session, add_pipeline_arguments,
                               options_from_args)
from tracking.recorder import TrackRecorder
from tracking.tracker import Tracker, TrackerConfig
from tracking.trackers import (DEFAULT_TRACKER, TRACKERS, FrameResult, MultiObjectTracker, ReportedTrack, TrackBase,
                               build_tracker, register_tracker, unregister_tracker)


def _parse(*argv):
    p = argparse.ArgumentParser()
    add_pipeline_arguments(p)
    return p.parse_args(list(argv))


def test_this_projects_tracker_is_the_default_and_offers_the_protocol():
    tracker = build_tracker(DEFAULT_TRACKER, config=TrackerConfig(high_score=0.7), fps=25.0)
    assert type(tracker) is Tracker and tracker.high_score == 0.7 and tracker.fps == 25.0
    assert isinstance(tracker, MultiObjectTracker)
    tracks = tracker.update(np.array([[0.0, 0, 10, 20]]), np.array([0.9]), None, 0.0)
    assert len(tracks) == 1 and isinstance(tracks[0], ReportedTrack)
    assert {DEFAULT_TRACKER, "bytetrack", "botsort"} <= set(TRACKERS)
    assert PipelineOptions().tracker_name == DEFAULT_TRACKER


def test_the_flag_chooses_among_the_registered_trackers():
    assert options_from_args(_parse()).tracker_name == DEFAULT_TRACKER
    assert options_from_args(_parse("--tracker", "bytetrack")).tracker_name == "bytetrack"
    with pytest.raises(SystemExit):
        _parse("--tracker", "nope")
    with pytest.raises(InputError, match=r"tracker 'nope': unknown; registered: .*mot-action") as error:
        PipelineOptions(tracker_name="nope")
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="unknown"):
        build_tracker("nope", config=TrackerConfig(), fps=10.0)


def test_registration_is_checked_and_reaches_the_pipeline():
    built = []

    def factory(*, config, fps):
        built.append((config, fps))
        return Tracker(config, fps=fps)

    register_tracker("test-registered", factory)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_tracker("test-registered", factory)
        assert _parse("--tracker", "test-registered").tracker == "test-registered"
        options = PipelineOptions(tracker=TrackerConfig(min_hits=2), tracker_name="test-registered")
        session = Pipeline.tracker_only(options).start(fps=5.0)
        assert built == [(options.tracker, 5.0)] and session.tracker.min_hits == 2
    finally:
        unregister_tracker("test-registered")
    with pytest.raises(ValueError, match="one word"):
        register_tracker("two words", factory)
    with pytest.raises(TypeError, match="callable"):
        register_tracker("not-callable", object())
    assert "not-callable" not in TRACKERS


def test_a_factory_that_builds_no_tracker_is_named():
    register_tracker("test-broken", lambda *, config, fps: object())
    try:
        with pytest.raises(TypeError, match="'test-broken'.*lacks part of"):
            build_tracker("test-broken", config=TrackerConfig(), fps=10.0)
    finally:
        unregister_tracker("test-broken")


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed")
def test_an_ultralytics_tracker_without_ultralytics_says_how_to_install_it():
    session_options = PipelineOptions(tracker_name="bytetrack")  # a valid name: the error comes when it is built
    with pytest.raises(InputError, match=r'bytetrack.*pip install -c constraints-bench.txt -e "\.\[bench,deploy\]"'):
        Pipeline.tracker_only(session_options).start(fps=10.0)


def test_session_and_engine_check_the_tracker():
    from tracking.streaming import StreamingEngine

    recorder = TrackRecorder()
    with pytest.raises(TypeError, match="MultiObjectTracker"):
        Session(tracker=object(), engine=None, recorder=recorder, detection_threshold=0.1, name="v", fps=10.0,
                width=0, height=0)
    with pytest.raises(TypeError, match="MultiObjectTracker"):
        StreamingEngine(model=None, tracker=object(), input_size=(64, 96))

    class OtherEngine:
        tracker = Tracker()

    with pytest.raises(ValueError, match="session's tracker"):
        Session(tracker=Tracker(), engine=OtherEngine(), recorder=recorder, detection_threshold=0.1, name="v",
                fps=10.0, width=0, height=0)


def test_step_detections_takes_the_frames_rows_above_the_threshold():
    # MOT frames are 1-based: index 0 is frame 1. Frame 2's detections must not leak into index 0.
    rows = MotRows(np.array([1, 1, 2]), np.full(3, -1), np.array([[0.0, 0, 10, 20], [50, 0, 60, 20], [0, 0, 9, 9]]),
                   np.array([0.9, 0.3, 0.95]), np.ones(3, int), np.ones(3))
    for conf, expected in ((0.5, [0.9]), (0.2, [0.9, 0.3])):
        session = Pipeline.tracker_only(PipelineOptions(conf_threshold=conf)).start(fps=10.0)
        result = session.step_detections(0, 0.0, rows)
        assert isinstance(result, FrameResult) and result.index == 0
        assert result.detection_scores.tolist() == expected and result.detections == len(expected)


def test_track_base_keeps_observations_and_smooths_actions():
    track = TrackBase(7, history=2)
    assert isinstance(track, ReportedTrack) and track.box is None and len(track.history) == 0
    detections = np.array([[0.0, 0, 10, 20], [1, 0, 11, 20], [2, 0, 12, 20]])
    for k, box in enumerate(detections):
        track.observe(k, box, 0.5 + 0.1 * k, box=box + 100 if k == 2 else None)
    detections[:] = -1  # the caller's buffer is theirs
    assert [(f, b[0]) for f, b in track.history] == [(1, 1.0), (2, 2.0)]  # the last two observed, not the reported
    assert track.box.tolist() == [102, 100, 112, 120] and track.score == pytest.approx(0.7)
    track.add_action(np.array([1.0, 0.0]), 0.1, 0.5)
    track.add_action(np.array([0.0, 1.0]), 0.2, 0.5)
    assert track.action_probs.tolist() == [0.5, 0.5]
    track.add_action(np.array([0.0, 1.0]), 1.0, 0.5)
    assert track.timeline() == {0: (0, 0.75), 1: (1, 0.75)}
