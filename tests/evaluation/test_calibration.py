"""Tracker calibration on a validation split: replay equals running the tracker, the grid's choice
follows the detector's scores, and the choice travels in the checkpoint to every command."""
import shutil
import subprocess
import sys
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackeval")

from common.errors import InputError  # noqa: E402
from data.formats.mot import MotRows  # noqa: E402
from evaluation.calibration import (FrameDetections, RecordedSequence, calibrate, format_calibration,  # noqa: E402
                                    grid_for, record_rows, replay)
from evaluation.protocol import find_gt_sequences  # noqa: E402
from models.checkpoint import read_inference_spec  # noqa: E402
from tracking.pipeline import Pipeline, PipelineOptions, options_from_args  # noqa: E402
from tracking.tracker import Tracker, TrackerConfig  # noqa: E402
from train.checkpoint import record_tracker_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_the_grid_tries_the_reported_box_only_where_the_tracker_has_the_choice():
    ours, theirs = grid_for("mot-action"), grid_for("bytetrack")
    assert len(ours) == 2 * len(theirs) and {g["report_observation"] for g in ours} == {False, True}
    assert all(set(g) == {"high_score", "new_track_score"} for g in theirs)
    assert all(g["new_track_score"] >= g["high_score"] for g in theirs)


def _recording(seed: int = 0, frames: int = 30) -> RecordedSequence:
    """Three people walking, detected with noisy boxes and scores from 0.2 to 1, with embeddings."""
    rng = np.random.default_rng(seed)
    identity = rng.normal(size=(3, 8))
    out = []
    for k in range(frames):
        boxes = np.array([[10 + 3 * k + 60 * i, 20, 40 + 3 * k + 60 * i, 100] for i in range(3)], float)
        boxes += rng.normal(scale=2.0, size=boxes.shape)
        scores = rng.uniform(0.2, 1.0, size=3)
        embeddings = (identity + rng.normal(scale=0.1, size=identity.shape)).astype(np.float32)
        out.append(FrameDetections(k / 10, boxes, scores, np.where((scores >= 0.3)[:, None], embeddings, 0)))
    return RecordedSequence("s", 10.0, 640, 480, tuple(out))


@pytest.mark.parametrize("settings", [{"high_score": 0.5, "new_track_score": 0.6},
                                      {"high_score": 0.7, "new_track_score": 0.7, "report_observation": True}])
def test_replay_gives_what_the_tracker_gives_on_the_network_s_own_outputs(settings):
    recording = _recording()
    config = replace(TrackerConfig(), **settings)
    rows = replay(recording, "mot-action", config)
    # As the engine feeds it: the network embeds only detections at or above the tracker's high_score.
    tracker, expected = Tracker(config, fps=10.0), []
    for k, frame in enumerate(recording.frames):
        keep = frame.scores >= config.low_score
        embeddings = np.where((frame.scores >= config.high_score)[:, None], frame.embeddings, 0)[keep]
        for track in tracker.update(frame.boxes[keep], frame.scores[keep], embeddings, frame.timestamp):
            expected.append((k + 1, track.box.copy()))
    assert len(rows) == len(expected) > 0
    order = np.lexsort((rows.track_id, rows.frame))
    got = sorted((int(f), tuple(np.round(b, 6))) for f, b in zip(rows.frame[order], rows.boxes[order]))
    assert got == sorted((f, tuple(np.round(b, 6))) for f, b in expected)


def test_calibration_chooses_thresholds_above_a_detector_s_false_positives(small_dataset):
    sequences = find_gt_sequences(small_dataset / "val", None)
    rng = np.random.default_rng(1)
    rows_of = {}
    for name, seq in sequences.items():
        gt = seq.gt.select(seq.gt.conf > 0)
        # Every person found at 0.8-1.0, and a false positive at 0.42 in every frame at a fixed place.
        frames = np.arange(1, seq.num_frames + 1)
        fp_boxes = np.tile([[150.0, 10.0, 170.0, 50.0]], (len(frames), 1))
        rows_of[name] = MotRows(frame=np.concatenate([gt.frame, frames]),
                                track_id=np.full(len(gt) + len(frames), -1),
                                boxes=np.concatenate([gt.boxes, fp_boxes]),
                                conf=np.concatenate([rng.uniform(0.8, 1.0, len(gt)), np.full(len(frames), 0.42)]),
                                class_id=np.ones(len(gt) + len(frames), int),
                                visibility=np.ones(len(gt) + len(frames)))
    recorded = record_rows(rows_of, sequences)
    calibration = calibrate(recorded, sequences, tracker_name="mot-action", base=TrackerConfig())
    table = calibration.table
    assert len(table) == len(grid_for("mot-action")) and 0 <= calibration.chosen < len(table)
    chosen = table[calibration.chosen]
    assert calibration.settings["new_track_score"] > 0.42 and chosen["FP"] < table[0]["FP"]
    assert chosen["HOTA"] == max(row["HOTA"] for row in table) and chosen["MOTA"] > table[0]["MOTA"]
    assert "(chosen)" in format_calibration(calibration).splitlines()[2 + calibration.chosen]
    with pytest.raises(InputError, match="criterion"):
        calibrate(recorded, sequences, tracker_name="mot-action", base=TrackerConfig(), criterion="AP")


def test_the_checkpoint_carries_the_settings_to_the_pipeline(trained_checkpoint, tmp_path):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    assert read_inference_spec(checkpoint)[1].track_high is None
    plain = Pipeline.from_checkpoint(checkpoint, PipelineOptions(device="cpu"))
    assert plain.options.tracker == TrackerConfig() and plain.thresholds_note is None
    with pytest.raises(InputError, match="scores must be in"):
        record_tracker_settings(checkpoint, {"high_score": 1.5, "new_track_score": 0.6}, "test", "mot-action")
    with pytest.raises(InputError, match="tracker_settings: unknown key 'gate'"):
        record_tracker_settings(checkpoint, {"high_score": 0.5, "gate": 3.0}, "test", "mot-action")
    assert read_inference_spec(checkpoint)[1].track_high is None  # refused: the file is as it was
    chosen = {"high_score": 0.4, "new_track_score": 0.7, "report_observation": True}
    record_tracker_settings(checkpoint, chosen, "val", "mot-action")
    spec = read_inference_spec(checkpoint)[1]
    assert (spec.track_high, spec.track_new, spec.track_report_observation, spec.tracker_chosen_on,
            spec.tracker_name) == (0.4, 0.7, True, "val", "mot-action")
    pipeline = Pipeline.from_checkpoint(checkpoint, PipelineOptions(device="cpu"))
    tracker = pipeline.options.tracker
    assert (tracker.high_score, tracker.new_track_score, tracker.report_observation) == (0.4, 0.7, True)
    assert pipeline.thresholds_note.startswith("tracker settings: high 0.4, new track 0.7, reported box the detection")
    off = Pipeline.from_checkpoint(checkpoint, PipelineOptions(device="cpu", checkpoint_thresholds=False))
    assert off.options.tracker == TrackerConfig() and "not the checkpoint's" in off.thresholds_note
    # Settings chosen for this project's tracker are not given to another one.
    other = Pipeline.from_checkpoint(checkpoint, PipelineOptions(device="cpu", tracker_name="bytetrack"))
    assert other.options.tracker == TrackerConfig()
    # The command line: a threshold given replaces the checkpoint's for that field only.
    flags = dict(conf_threshold=None, tracker="mot-action", device="cpu")
    assert options_from_args(Namespace(track_high=None, track_new=None, **flags)).given == ()
    given = options_from_args(Namespace(track_high=0.3, track_new=None, **flags))
    assert given.given == ("high_score",)
    tracker = Pipeline.from_checkpoint(checkpoint, given).options.tracker
    assert (tracker.high_score, tracker.new_track_score, tracker.report_observation) == (0.3, 0.7, True)


def test_calibrate_tracker_script_records_its_choice(trained_checkpoint, small_dataset, tmp_path):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    script = [sys.executable, str(ROOT / "scripts" / "calibrate_tracker.py"), "--checkpoint", str(checkpoint),
              "--dataset", str(small_dataset), "--device", "cpu"]
    dry = subprocess.run(script + ["--dry-run"], capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert read_inference_spec(checkpoint)[1].track_high is None
    assert len([line for line in dry.stdout.splitlines() if line.startswith("| 0.")]) == len(grid_for("mot-action"))
    done = subprocess.run(script, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    spec = read_inference_spec(checkpoint)[1]
    assert spec.track_high is not None and f"{small_dataset / 'val'}" in spec.tracker_chosen_on
    assert f"high_score={spec.track_high}" in done.stdout.splitlines()[-1]
    missing = subprocess.run(script[:-4] + ["--gt-root", str(tmp_path / "nowhere")], capture_output=True, text=True,
                             timeout=600)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in missing.stderr
    nothing = subprocess.run(script[:-4], capture_output=True, text=True, timeout=600)  # no sequences named
    assert nothing.returncode == 2 and "give --dataset" in nothing.stderr and "Traceback" not in nothing.stderr
    # Ground truth with nobody to score: every setting would tie at 0 or NaN; nothing is recorded.
    empty = tmp_path / "empty"
    shutil.copytree(small_dataset / "val", empty)
    for gt in empty.glob("*/gt/gt.txt"):
        gt.write_text("")
    before = read_inference_spec(checkpoint)[1]
    nobody = subprocess.run(script[:-4] + ["--gt-root", str(empty)], capture_output=True, text=True, timeout=600)
    assert nobody.returncode == 2 and "no ground-truth people to calibrate on" in nobody.stderr
    assert "Traceback" not in nobody.stderr and read_inference_spec(checkpoint)[1] == before


def test_a_tie_keeps_the_tracker_s_own_settings(small_dataset):
    """An untrained network finds no one: every setting scores the same, and nothing is chosen
    over the defaults by the order of the grid."""
    sequences = find_gt_sequences(small_dataset / "val", None)
    empty = [RecordedSequence(name, seq.fps, 192, 128, tuple(
        FrameDetections(k / seq.fps, np.zeros((0, 4)), np.zeros(0), None) for k in range(seq.num_frames)))
        for name, seq in sequences.items()]
    calibration = calibrate(empty, sequences, tracker_name="mot-action", base=TrackerConfig())
    assert calibration.settings == {"high_score": 0.5, "new_track_score": 0.6, "report_observation": False}
    assert len({row["MOTA"] for row in calibration.table}) == 1


def test_the_tracker_s_own_settings_are_tried_even_off_the_grid(small_dataset):
    """ultralytics' trackers default to 0.25 thresholds, below the grid: calibrating a tracker must
    still try (and may keep) its own settings, so it never loses to them on the data it sees."""
    sequences = find_gt_sequences(small_dataset / "val", None)
    empty = [RecordedSequence(name, seq.fps, 192, 128, tuple(
        FrameDetections(k / seq.fps, np.zeros((0, 4)), np.zeros(0), None) for k in range(seq.num_frames)))
        for name, seq in sequences.items()]
    own = TrackerConfig(high_score=0.25, new_track_score=0.25)
    calibration = calibrate(empty, sequences, tracker_name="mot-action", base=own)
    assert len(calibration.table) == len(grid_for("mot-action")) + 1
    assert (calibration.table[0]["high_score"], calibration.table[0]["new_track_score"]) == (0.25, 0.25)
    assert calibration.settings == {"high_score": 0.25, "new_track_score": 0.25,
                                    "report_observation": False}  # a tie keeps its own
    assert len(calibrate(empty, sequences, tracker_name="mot-action", base=TrackerConfig()).table) == \
        len(grid_for("mot-action"))  # this project's defaults are on the grid already


@pytest.mark.parametrize("stored, message", [
    ("high", "tracker_settings: expected a mapping, got str"),
    ({"high_score": 0.5}, "tracker_settings.new_track_score: missing"),
    ({"high_score": 0.5, "new_track_score": 7}, "tracker_settings: scores must be in [0, 1], got 7"),
    ({"high_score": "0.5; import os", "new_track_score": 0.6}, "tracker_settings.high_score: expected a number, got"),
    ({"high_score": 0.5, "new_track_score": 0.6, "report_observation": "yes"},
     "tracker_settings.report_observation: expected true or false or null"),
    # Printed by every command: a line break or a terminal escape would forge an output line.
    ({"high_score": 0.5, "new_track_score": 0.6, "chosen_on": "val\nerror: forged\x1b[31m"},
     "chosen_on and tracker must be printable text on one line"),
])
def test_a_crafted_tracker_settings_entry_is_one_line(trained_checkpoint, tmp_path, stored, message):
    import torch
    state = torch.load(trained_checkpoint, weights_only=True)
    state["tracker_settings"] = stored
    bad = tmp_path / "crafted.pt"
    torch.save(state, bad)
    with pytest.raises(InputError) as info:
        Pipeline.from_checkpoint(bad, PipelineOptions(device="cpu"))
    assert str(info.value).startswith(f"{bad}: ") and message in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def live_network(small_dataset):
    """A network that finds (random) boxes everywhere, its pipeline, and one recording of it on the val split."""
    import torch
    from evaluation.calibration import record_network
    from models.checkpoint import InferenceSpec
    from models.mot_action_net import build_model
    from tests.conftest import he_initialised

    torch.manual_seed(0)
    model = he_initialised(build_model("tiny", num_actions=3).eval())
    with torch.no_grad():  # scores of 0.4-0.9: boxes everywhere, tracks from them
        model.detection_head.cls_logits.bias.fill_(1.0)
        model.detection_head.centerness.bias.fill_(1.0)
    spec = InferenceSpec(("a", "b", "c"), (128, 192), 4, 2)
    sequences = find_gt_sequences(small_dataset / "val", None)
    network = Pipeline(options=PipelineOptions(device="cpu"), model=model, spec=spec, device=torch.device("cpu"))
    return model, spec, sequences, record_network(network, sequences)


def test_recording_once_and_replaying_equals_running_the_network_with_those_settings(live_network):
    """The claim calibration rests on: one recorded run of the network, replayed, gives the tracks
    a live run of network + tracker with the same settings gives (a setting above the recording's:
    embeddings from 0.3 recorded, read from 0.4)."""
    import torch
    from data.sequences import MotSequence

    model, spec, sequences, recorded = live_network
    config = TrackerConfig().with_scores(high_score=0.4, new_track_score=0.6, report_observation=True)
    live = Pipeline(options=PipelineOptions(tracker=config, device="cpu", checkpoint_thresholds=False), model=model,
                    spec=spec, device=torch.device("cpu"))
    for recording, (name, gt_seq) in zip(recorded, sequences.items(), strict=True):
        seq = MotSequence(gt_seq.root)
        session = live.start(fps=seq.fps, name=name, width=seq.width, height=seq.height)
        for index in range(gt_seq.num_frames):
            session.step(index, index / seq.fps, seq.frame(index))
        expected, got = session.mot_rows(), replay(recording, "mot-action", config)
        assert len(expected) > 20  # tracks to compare, not two empty files
        np.testing.assert_array_equal(got.frame, expected.frame)
        np.testing.assert_array_equal(got.track_id, expected.track_id)
        np.testing.assert_allclose(got.boxes, expected.boxes, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="would need what was not recorded"):
        replay(recorded[0], "mot-action", TrackerConfig().with_scores(high_score=0.2, new_track_score=0.2))
