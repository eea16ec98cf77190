"""Taking the specialists an earlier benchmark run trained (``--reuse``): the record written as
each part finishes is read back into the same detector and classifiers, and a record of another
setting or budget, or one whose files are gone, is refused in one line naming the file."""
import json

import numpy as np
import pytest
import torch

from common.errors import InputError
from evaluation.specialists.actions import TrainedClassifier, build_classifier, predict
from evaluation.specialists.benchmark import SETTINGS, TRAINED, _record_trained, load_trained
from evaluation.specialists.detector import TrainedDetector

SYNTHETIC = SETTINGS["synthetic"]


def _classifier(seed: int) -> TrainedClassifier:
    torch.manual_seed(seed)
    model = build_classifier("cnn_lstm", 3).eval()
    return TrainedClassifier("cnn_lstm", model, 3, 4, (24, 16), 0.25, 7, 1.5, 2.0, 3.0, val_accuracy=0.5)


@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    weights = out / "yolo" / "yolo11n" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    detector = TrainedDetector(weights, 3862.0, 2661.0, 5, 640, out / "yolo" / "train.log")
    classifier = _classifier(0)
    classifier.save(out / "classifiers" / "cnn_lstm.pt")
    _record_trained(out, SYNTHETIC, 4011.0, detector, {"cnn_lstm": classifier})
    return out, detector, classifier


def test_the_record_reads_back_into_the_same_specialists(run):
    out, detector, classifier = run
    got, classifiers, budget = load_trained(out, SYNTHETIC, 4011.0)
    assert budget == 4011.0
    assert got.weights == detector.weights.resolve() and got.cpu_seconds == 3862.0 and got.epochs == 5
    assert set(classifiers) == {"cnn_lstm"} and classifiers["cnn_lstm"].steps == 7
    clips = np.random.default_rng(0).integers(0, 255, (2, 4, 24, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(predict(classifiers["cnn_lstm"], clips), predict(classifier, clips), atol=1e-6)


def test_a_detection_only_report_gives_its_detector(tmp_path):
    out = tmp_path / "det"
    weights = out / "yolo" / "yolo11n" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    (out / "report.json").write_text(json.dumps({
        "setting": "synthetic", "experiment": "synthetic_30min", "budget_s": 4011.0,
        "training": {"joint": {"cpu_s": 4011.0}, "yolo11n": {"cpu_s": 3861.6, "wall_s": 2661.4, "epochs": 5}},
        "rows": {}}))
    detector, classifiers, _ = load_trained(out, SYNTHETIC, 4011.0)
    assert detector.weights == weights and detector.cpu_seconds == 3861.6 and classifiers == {}


def test_a_smaller_budget_or_another_setting_is_refused(run):
    out, _, _ = run
    assert load_trained(out, SYNTHETIC, 3000.0)[2] == 4011.0  # a cheaper joint run: the specialists had more
    with pytest.raises(InputError, match=rf"{TRAINED}: trained with a budget of 4011.0 CPU s, under this joint "
                                         r"run's 5000: each specialist must have at least"):
        load_trained(out, SYNTHETIC, 5000.0)
    with pytest.raises(InputError, match="trained for setting synthetic .* not pets09"):
        load_trained(out, SETTINGS["pets09"], 4011.0)
    # A detector kept by validation on the scored frames is not the last weights PETS09 keeps.
    _record_trained(out, SETTINGS["pets09"], 4011.0, run[1], {})
    with pytest.raises(InputError, match=r"the detector kept is best.pt, but the pets09 setting keeps last.pt"):
        load_trained(out, SETTINGS["pets09"], 4011.0)


def test_missing_files_and_bad_records_are_one_line_errors(run, tmp_path):
    out, detector, _ = run
    (out / "classifiers" / "cnn_lstm.pt").unlink()
    with pytest.raises(InputError, match="the cnn_lstm classifier's file .* is missing"):
        load_trained(out, SYNTHETIC, 4011.0)
    detector.weights.unlink()
    with pytest.raises(InputError, match="the detector's weights .* are missing"):
        load_trained(out, SYNTHETIC, 4011.0)
    (out / TRAINED).write_text("{not json")
    with pytest.raises(InputError, match=f"{TRAINED}: not a readable record"):
        load_trained(out, SYNTHETIC, 4011.0)
    with pytest.raises(InputError, match="not the --out of a benchmark run"):
        load_trained(tmp_path / "empty", SYNTHETIC, 4011.0)


def test_each_setting_keeps_checkpoints_not_chosen_by_its_scored_frames():
    from omegaconf import OmegaConf

    from evaluation.specialists.benchmark import Setting
    from train.run import compose_config
    # PETS09 validates on the frames it is scored on, so both sides keep their last weights.
    pets09 = SETTINGS["pets09"]
    cfg = compose_config([f"experiment={pets09.experiment}"])
    _, scored = pets09.test_data(cfg)
    assert list(OmegaConf.to_container(cfg.data.val_sources[0].frames)) == list(scored) and pets09.weights == "last"
    assert SYNTHETIC.weights == "best"  # its val split is apart from the test split it is scored on
    with pytest.raises(ValueError, match="'best' or 'last'"):
        Setting("x", "smoke", weights="final")
