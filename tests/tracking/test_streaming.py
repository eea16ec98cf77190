"""StreamingEngine: frame-by-frame results equal the network on the clip, the letterbox maps boxes
both ways, and the bfloat16 path gives the float32 path's outputs."""
import numpy as np
import pytest
import torch

from models.mot_action_net import build_model
from tests.conftest import he_initialised
from models.inputs import Letterbox
from tracking.streaming import StreamingEngine
from tracking.tracker import Tracker

H, W = 128, 192


def _engine(model, **kwargs):
    return StreamingEngine(model=model, tracker=Tracker(fps=10.0), input_size=(H, W), clip_len=4, stride=2, **kwargs)


def _head_outputs(engine) -> list[dict]:
    """Every detection-head output the engine computes, in order."""
    seen = []
    engine.model.detection_head.register_forward_hook(lambda module, args, out: seen.append(out))
    return seen


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return he_initialised(build_model("tiny", num_actions=3).eval())


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(9)]


def test_streaming_equals_the_network_on_the_strided_clip(model, frames):
    engine = _engine(model)
    outputs = _head_outputs(engine)
    for k, frame in enumerate(frames):
        engine.process(frame, k, k / 10)
    # Frame 8 saw frames 2, 4, 6, 8 (clip_len 4, stride 2); frame 3 only 1 and 3 (the buffer filling).
    for newest, window in ((8, [2, 4, 6, 8]), (3, [1, 3])):
        clip = torch.stack([torch.from_numpy(frames[i][:, :, ::-1].copy()) for i in window])  # BGR -> RGB
        clip = clip.permute(0, 3, 1, 2).float().div(255.0)[None]  # (1, T, 3, H, W)
        with torch.no_grad():
            expected = model.detection_head(model.features(clip))
        got = outputs[newest]
        for key in ("scores", "box_ltrb", "centerness"):
            torch.testing.assert_close(got[key][0], expected[key][len(window) - 1], rtol=1e-3, atol=1e-4)


def _tracks(upto: int):
    """Two hand-made tracks, their histories keyed by the tracker's frame count up to ``upto``:
    one seen in every frame and moving right, one seen in frames 5, 6 and 8 only."""
    from tracking.tracker import Track
    walker = Track(1, np.array([20.0, 10, 60, 110]), 0.9, None, 0.0, 0, history=16)
    for k in range(1, upto + 1):
        walker.history.append((k, np.array([20.0 + 5 * k, 10, 60 + 5 * k, 110])))
    late = Track(2, np.array([100.0, 30, 140, 120]), 0.9, None, 0.0, 5, history=16)
    for k in (6, 8):
        if k <= upto:
            late.history.append((k, np.array([100.0 + k, 31, 141, 121])))
    return [walker, late]


def _expected_actions(model, frames, window, tracks) -> np.ndarray:
    """``(N, A)`` action probabilities of the head run on the whole clip, at its newest frame."""
    clip = torch.stack([torch.from_numpy(frames[i][:, :, ::-1].copy()) for i in window])
    clip = clip.permute(0, 3, 1, 2).float().div(255.0)[None]  # (1, T, 3, H, W)
    boxes = torch.zeros(1, len(window), len(tracks), 4)
    mask = torch.zeros(1, len(window), len(tracks), dtype=torch.bool)
    for n, track in enumerate(tracks):
        for f, box in track.history:
            if f in window:
                boxes[0, window.index(f), n], mask[0, window.index(f), n] = torch.from_numpy(box).float(), True
    with torch.no_grad():
        p3 = model.features(clip)[0]  # (T, C, h, w)
        return model.action_head(p3, boxes, mask).softmax(-1)[0, -1].numpy()


def test_track_actions_equal_the_action_head_on_the_clip(model, frames):
    """The engine keeps P3 and the action head's features of it, computed once, and builds each
    track's tube from its history; the result must be the head run on the whole clip. The caller's
    frame indices skip (as after undecodable frames): tubes follow the tracker's frame count."""
    engine = _engine(model)
    for k, frame in enumerate(frames[:7]):
        engine.process(frame, 100 + 3 * k, k / 10)
    tracks = _tracks(6)
    with torch.no_grad():  # as process() runs it
        engine._actions(tracks, 0.6)
    expected = _expected_actions(model, frames, [0, 2, 4, 6], tracks)
    np.testing.assert_allclose(np.stack([t.action_probs for t in tracks]), expected, rtol=1e-3, atol=1e-4)
    for k in (7, 8):  # frames 2, 4 and 6 now reuse the features computed above
        engine.process(frames[k], 100 + 3 * k, k / 10)
    tracks = _tracks(8)
    with torch.no_grad():
        engine._actions(tracks, 0.8)
    expected = _expected_actions(model, frames, [2, 4, 6, 8], tracks)
    np.testing.assert_allclose(np.stack([t.action_probs for t in tracks]), expected, rtol=1e-3, atol=1e-4)


def test_letterbox_maps_boxes_both_ways():
    box = Letterbox.fit(1920, 1080, (384, 640))  # wider than 16:10: padded above and below
    assert box.scale == pytest.approx(640 / 1920) and box.pad_x == 0 and box.pad_y == pytest.approx((384 - 360) / 2)
    boxes = np.array([[0.0, 0.0, 1920.0, 1080.0], [100.0, 200.0, 300.0, 700.0]])
    np.testing.assert_allclose(box.to_original(box.to_network(boxes)), boxes, atol=1e-9)
    np.testing.assert_allclose(box.to_network(boxes)[0], [0, 12, 640, 372])
    image = box.image(np.zeros((1080, 1920, 3), np.uint8))
    assert image.shape == (384, 640, 3)


def test_bf16_gives_the_fp32_outputs(model, frames):
    engines = {p: _engine(model, precision=p) for p in ("fp32", "bf16")}
    outputs = {p: _head_outputs(e) for p, e in engines.items()}
    for p, engine in engines.items():
        for k, frame in enumerate(frames[:5]):
            result = engine.process(frame, k, k / 10)
            assert result.detection_boxes.dtype == np.float64 and result.detection_scores.dtype == np.float32
    # The action path too: bfloat16 features and LSTM, probabilities back in float32.
    for p, engine in engines.items():
        tracks = _tracks(4)
        with torch.no_grad(), engine._autocast():
            engine._actions(tracks, 0.4)
        assert all(t.action_probs.dtype == np.float64 for t in tracks)
        if p == "fp32":
            fp32_actions = np.stack([t.action_probs for t in tracks])
        else:
            np.testing.assert_allclose(np.stack([t.action_probs for t in tracks]), fp32_actions, atol=0.02)
    for a, b in zip(outputs["fp32"], outputs["bf16"]):
        assert b["cls_logits"].dtype == torch.bfloat16  # really computed in bfloat16
        torch.testing.assert_close(b["scores"].float(), a["scores"], rtol=0, atol=2e-3)
        # Box distances (pixels): bfloat16 keeps 8 bits of mantissa through every layer, so
        # they agree to about a percent typically and a few percent at worst.
        relative = (b["box_ltrb"].float() - a["box_ltrb"]).abs() / a["box_ltrb"].clamp(min=1.0)
        assert relative.median() < 0.02 and relative.max() < 0.1


def test_precision_is_checked_and_emulated_bf16_warns(model, monkeypatch):
    with pytest.raises(ValueError, match="precision"):
        _engine(model, precision="fp16")
    import tracking.streaming as streaming
    monkeypatch.setattr(streaming, "native_bf16", lambda device: False)
    with pytest.warns(UserWarning, match="emulated"):
        _engine(model, precision="bf16")


class _ScriptedTracker:
    """Reports the tracks a script gives for each frame (a MultiObjectTracker)."""

    high_score, action_smoothing = 0.5, 0.4

    def __init__(self, script):
        self.script, self.frame_index, self.tracks, self.removed = script, -1, [], []

    def update(self, boxes, scores, embeddings=None, timestamp=None):
        self.frame_index += 1
        self.tracks = self.script[self.frame_index]
        return self.tracks

    def reset(self):
        self.frame_index = -1


def test_the_action_interval_runs_the_head_on_schedule_and_new_tracks_at_once(model, frames):
    from tracking.trackers import TrackBase
    first, second = TrackBase(1, history=4), TrackBase(2, history=4)
    script = [[first]] * 3 + [[first, second]] * 6  # the second track appears at frame 3
    engine = StreamingEngine(model=model, tracker=_ScriptedTracker(script), input_size=(H, W), clip_len=4, stride=2,
                             action_interval_s=0.25)
    ran = []

    def actions(tracks, timestamp):
        ran.append((round(timestamp, 2), [t.track_id for t in tracks]))
        for t in tracks:
            t.action_probs = np.ones(3) / 3

    engine._actions = actions
    for k, frame in enumerate(frames):
        engine.process(frame, k, k / 10)
    # Every track at 0.0, 0.3, 0.6 (0.25 s apart at 10 fps: every third frame); the new track
    # at once at 0.3, which is also a scheduled frame; nothing else.
    assert ran == [(0.0, [1]), (0.3, [1, 2]), (0.6, [1, 2])]
    late = TrackBase(3, history=4)
    engine = StreamingEngine(model=model, tracker=_ScriptedTracker([[first]] * 4 + [[first, late]] * 5),
                             input_size=(H, W), clip_len=4, stride=2, action_interval_s=0.25)
    ran.clear()
    engine._actions = actions
    for k, frame in enumerate(frames):
        engine.process(frame, k, k / 10)
    assert ran == [(0.0, [1]), (0.3, [1]), (0.4, [3]), (0.6, [1, 3])]  # the late one waits for no schedule
    with pytest.raises(ValueError, match="action_interval_s"):
        _engine(model, action_interval_s=-1)
