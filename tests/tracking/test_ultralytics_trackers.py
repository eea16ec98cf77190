"""ultralytics' ByteTrack and BoT-SORT behind the tracker protocol (the bench extra: skipped
without ultralytics)."""
import numpy as np
import pytest

pytest.importorskip("ultralytics")

from tracking.pipeline import Pipeline, PipelineOptions  # noqa: E402
from tracking.tracker import TrackerConfig  # noqa: E402
from tracking.trackers import MultiObjectTracker, build_tracker  # noqa: E402

KINDS = ("bytetrack", "botsort")


def _walk(k: int) -> np.ndarray:
    """Two people at frame ``k``: one walking right, one standing."""
    return np.array([[10.0 + 5 * k, 20, 40 + 5 * k, 90], [120, 10, 150, 80]])


@pytest.mark.parametrize("kind", KINDS)
def test_two_people_tracked_through_the_pipeline(kind):
    session = Pipeline.tracker_only(PipelineOptions(tracker_name=kind)).start(fps=10.0, name="walk", width=200,
                                                                             height=100)
    assert isinstance(session.tracker, MultiObjectTracker)
    for k in range(8):
        result = session.step(k, k / 10, detections=(_walk(k), np.array([0.9, 0.8])))
        assert len(result.tracks) == 2 and session.tracker.frame_index == k
    rows = session.mot_rows()
    assert sorted(set(rows.track_id.tolist())) == [1, 2] and rows.frame.min() == 1 and rows.frame.max() == 8
    walker = min(result.tracks, key=lambda t: t.box[0])
    # The history holds the detections themselves (the action tube), keyed by the tracker's frame count.
    assert [f for f, _ in walker.history] == list(range(8))
    np.testing.assert_array_equal(walker.history[-1][1], _walk(7)[0])
    np.testing.assert_allclose(walker.box, _walk(7)[0], atol=3.0)  # ultralytics' Kalman estimate
    assert len(session.vicr_labels(total_frames=8).persons) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_the_pipeline_thresholds_reach_the_tracker(kind):
    """A detection below new_track_score starts no track; lowered with the flag's field, it does."""
    for new_track_score, expected in ((0.6, 0), (0.5, 1)):
        tracker = build_tracker(kind, config=TrackerConfig(new_track_score=new_track_score), fps=10.0)
        for k in range(3):
            tracks = tracker.update(_walk(k)[:1], np.array([0.55]), None, k / 10)
        assert len(tracks) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_a_track_gone_longer_than_the_lost_buffer_is_removed_with_its_timeline(kind):
    tracker = build_tracker(kind, config=TrackerConfig(lost_buffer_s=0.3), fps=10.0)  # 3 frames
    for k in range(4):
        for t in tracker.update(_walk(k), np.array([0.9, 0.8]), None, k / 10):
            t.add_action(np.array([0.2, 0.8]), k / 10, tracker.action_smoothing)
    stander = max(tracker.tracks, key=lambda t: t.box[0])
    for k in range(4, 10):
        tracker.update(_walk(k)[:1], np.array([0.9]), None, k / 10)
    assert stander in tracker.removed and stander not in tracker.tracks and len(tracker.tracks) == 1
    assert stander.timeline() == {0: (1, pytest.approx(0.8))}
    tracker.reset()
    assert tracker.frame_index == -1 and tracker.tracks == [] and tracker.removed == []


class ScriptedNetwork:
    """Stands in for the network (the engine runs any model with its streaming step): the two
    people of :func:`_walk`, confidently, every frame; each tube's action is [0.2, 0.8]; the tube
    masks it is given are kept."""

    def __init__(self):
        self.masks = []

    def stream_step(self, image, state, *, key, score_threshold, nms_threshold, embed_min_score):
        import torch

        from models.mot_action_net import StreamOutput
        state.frames.append([key, None, None])
        return StreamOutput(torch.tensor(_walk(key), dtype=torch.float32), torch.tensor([0.9, 0.8]), None)

    def stream_actions(self, state, boxes, mask):
        import torch
        self.masks.append(mask.numpy().copy())
        return torch.tensor([[0.2, 0.8]]).repeat(mask.shape[2], 1)


@pytest.mark.parametrize("kind", KINDS)
def test_the_engine_cuts_action_tubes_from_their_tracks(kind):
    """The engine keys its frames by the tracker's frame_index and cuts each tube from the track's
    history: every tube covers the whole action window, and each track gets its action."""
    import torch

    from models.checkpoint import InferenceSpec

    network = ScriptedNetwork()
    pipeline = Pipeline(options=PipelineOptions(tracker_name=kind), model=network,
                        spec=InferenceSpec(("a", "b"), (100, 200), 4, 2), device=torch.device("cpu"))
    session = pipeline.start(fps=10.0, width=200, height=100)
    for k in range(6):
        result = session.step(k, k / 10, np.zeros((100, 200, 3), np.uint8))
    assert len(result.tracks) == 2
    assert network.masks[-1].shape == (1, 3, 2) and network.masks[-1].all()  # window: frames 1, 3, 5
    assert all(np.allclose(t.action_probs, [0.2, 0.8]) for t in result.tracks)


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
@pytest.mark.parametrize("fps", [7.0, 25.0])
def test_its_own_defaults_reach_it_unchanged_at_any_frame_rate(kind, fps):
    """A specialist "at its defaults" runs with ultralytics' yaml (0.25 thresholds, a 30-frame
    buffer, as model.track builds it), not with this project's tracker's 0.5 / 0.6."""
    import ultralytics
    import yaml
    from pathlib import Path

    from tracking.ultralytics_trackers import UltralyticsTracker, default_config
    own = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml").read_text())
    args = UltralyticsTracker(kind=kind, config=default_config(kind, fps), fps=fps)._args
    for key in ("track_high_thresh", "track_low_thresh", "new_track_thresh", "track_buffer"):
        assert getattr(args, key) == own[key], key
    assert own["track_high_thresh"] < TrackerConfig().high_score  # another tracker's defaults, indeed
    with pytest.raises(ValueError, match="kind must be one of"):
        default_config("sort", fps)
