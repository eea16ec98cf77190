"""scripts/benchmark_specialists.py --quick end to end (the bench environment: skipped without
ultralytics): every pipeline of both sides gets every metric as a number in range, its tracker
settings chosen on the val split, and the report files are written. Nothing is tuned or measured here."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_scores_every_pipeline(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark_specialists.py"), "--quick", "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = report["rows"]
    expected = {"joint network (ours)"} | {f"YOLO11n + {t} + {c}" for t in ("bytetrack", "botsort", "mot-action")
                                           for c in ("r3d_18", "cnn_lstm")}
    assert set(rows) == expected
    for name, row in rows.items():
        for key in ("mota", "idf1", "HOTA", "det_AP50", "det_AP", "action_frame_mAP", "id_action_acc", "video_mAP@0.5",
                    "HOTA_act"):
            value = row[key]
            assert math.isfinite(value) and (-1e6 < value <= 100 if key == "mota" else 0 <= value <= 100), (name, key, value)
        assert row["fps"] > 0 and row["train_cpu_min"] > 0
    assert report["training"]["yolo11n"]["cpu_s"] > 0 and report["budget_s"] == 10.0
    # Every pipeline's tracker settings were chosen on the val split, each from the grid of its own tracker.
    settings = report["tracker_settings"]
    assert set(settings) == {"joint network (ours)"} | {f"YOLO11n + {t}" for t in ("bytetrack", "botsort", "mot-action")}
    assert set(settings["YOLO11n + botsort"]) == {"high_score", "new_track_score"}
    assert "report_observation" in settings["joint network (ours)"] and "report_observation" in settings["YOLO11n + mot-action"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| joint network (ours) |" in markdown and "chosen by HOTA on the validation sequences" in markdown
    # The raw boxes AP scored, written where scripts/evaluate.py --detections reads them: scoring them
    # again gives the report's AP50 (evaluate.py prints it for the detections).
    from evaluation.protocol import find_gt_sequences as gt_sequences, run_evaluation
    from tracking.pipeline import Pipeline, PipelineOptions
    test_root = tmp_path / "out" / "data" / "test"
    for side, row in (("joint", "joint network (ours)"), ("YOLO11n", "YOLO11n + bytetrack + r3d_18")):
        folder = tmp_path / "out" / "detections" / side
        assert {p.stem for p in folder.glob("*.txt")} == set(gt_sequences(test_root, None)), side
        again = run_evaluation(gt_root=test_root, detections=str(folder), out_dir=tmp_path / side, plots=False,
                               tracker=Pipeline.tracker_only(PipelineOptions(conf_threshold=0.0, device="cpu")))
        assert again["table"]["COMBINED"]["det_AP50"] == pytest.approx(rows[row]["det_AP50"], abs=1e-6), side

    assert report["weights"] == "best" and report["held_out"] == {}

    # Frames past the ground truth (PETS09's 531-795): both sides' tracks written for whoever holds it.
    from data.formats.mot import read_mot_file
    from evaluation.protocol import find_gt_sequences
    from evaluation.specialists.benchmark import TRACKERS, load_trained, quick_setting, write_held_out
    from tracking.pipeline import PipelineOptions
    from tracking.tracker import TrackerConfig
    out = tmp_path / "out"
    detector, _, _ = load_trained(out, quick_setting(out / "data"), 10.0)
    found = find_gt_sequences(out / "data" / "test", None)
    folders = write_held_out(out / "joint" / "best.pt", detector, found, (21, 30), tmp_path / "held", (128, 192), 1,
                             PipelineOptions(device="cpu"), {t: TrackerConfig() for t in TRACKERS}, log=lambda m: None)
    assert set(folders) == {"joint network (ours)"} | {f"YOLO11n + {t}" for t in TRACKERS}
    for folder in folders.values():
        for name in found:
            rows = read_mot_file(folder / f"{name}.txt")
            assert len(rows) == 0 or (rows.frame.min() >= 21 and rows.frame.max() <= 30)
    with pytest.raises(Exception, match="held-out frames 21-99 are not in its 30 frames"):
        write_held_out(out / "joint" / "best.pt", detector, found, (21, 99), tmp_path / "held2", (128, 192), 1,
                       PipelineOptions(device="cpu"), {t: TrackerConfig() for t in TRACKERS}, log=lambda m: None)

    # Stills of other scenes: both detectors scored on the same people.
    import cv2
    import numpy as np
    from evaluation.specialists.benchmark import score_stills
    images, labels = tmp_path / "stills" / "images", tmp_path / "stills" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for k, size in enumerate(((120, 160), (200, 150))):  # stills of different sizes, each run alone
        still = np.full((*size, 3), 90, np.uint8)
        still[30:90, 40:60] = (0, 0, 255)
        cv2.imwrite(str(images / f"{k}.jpg"), still)
        (labels / f"{k}.txt").write_text(f"0 {50 / size[1]} {60 / size[0]} {20 / size[1]} {60 / size[0]}\n")
    scores = score_stills(out / "joint" / "best.pt", detector, (str(images), str(labels)), (128, 192), 1,
                          PipelineOptions(device="cpu", conf_threshold=0.0), log=lambda m: None)
    assert set(scores) == {"joint network (ours)", "YOLO11n"}
    for row in scores.values():
        assert row["images"] == 2 and row["people"] == 2 and 0 <= row["det_AP50"] <= 100 and 0 <= row["det_AP"] <= 100
