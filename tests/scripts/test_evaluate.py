"""scripts/evaluate.py: the official values on motmetrics' TUD files, a checkpoint run on the
synthetic data, output files, and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "evaluate.py"
motmetrics = pytest.importorskip("motmetrics")
pytest.importorskip("trackeval")
TUD = Path(motmetrics.__file__).parent / "data"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=900)


def _row(stdout: str, name: str) -> list[str]:
    return next(line.split() for line in stdout.splitlines() if line.startswith(name + " "))


def test_tud_results_print_the_official_values(tmp_path):
    out = tmp_path / "m.json"
    result = run("--results", TUD / "TUD-Campus" / "test.txt", TUD / "TUD-Stadtmitte" / "test.txt",
                 "--gt-root", TUD, "--json", out)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    for name, (mota, idf1, hota) in {"TUD-Campus": ("52.6462", "55.7659", 39.14),
                                     "TUD-Stadtmitte": ("56.4014", "64.4619", 39.78)}.items():
        cells = dict(zip(header, _row(result.stdout, name)[1:]))
        assert cells["MOTA"] == mota and cells["IDF1"] == idf1
        assert float(cells["HOTA"]) == pytest.approx(hota, abs=0.01)
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["TUD-Campus"]["mota"] == pytest.approx(52.6462, abs=1e-4)
    assert set(metrics) == {"TUD-Campus", "TUD-Stadtmitte", "COMBINED"}
    assert out.with_suffix(".csv").read_text().startswith("sequence,mota,idf1,HOTA")
    assert (tmp_path / "plots" / "tracking_per_sequence.png").stat().st_size > 1000


def test_checkpoint_on_a_synthetic_split(trained_checkpoint, small_dataset, tmp_path):
    # A 4-step model scores everything near its prior, so the thresholds go to 0 to get tracks
    # (and actions) to score: this checks the plumbing; the metrics have tests of their own.
    result = run("--checkpoint", trained_checkpoint, "--dataset", small_dataset, "--split", "test",
                 "--out-dir", tmp_path, "--conf-threshold", 0, "--track-high", 0, "--track-new", 0)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    for column in ("MOTA", "IDF1", "HOTA", "AP50", "fmAP", "acc"):
        assert column in header
    seq = next(p.name for p in (small_dataset / "test").iterdir() if p.is_dir())
    # The progress names the sequence once and counts frames (it read "SYN-test-01 frames/s").
    assert f"{seq}:" in result.stderr and "frames/s" in result.stderr and f"{seq} frames" not in result.stderr
    assert (tmp_path / "results" / f"{seq}.txt").is_file() and (tmp_path / "results" / f"{seq}.json").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]["COMBINED"]
    for key in ("mota", "idf1", "HOTA", "det_AP50", "action_frame_mAP", "id_action_acc"):
        assert np.isfinite(metrics[key]), key
    assert 0 <= metrics["det_AP50"] <= 100 and metrics["mota"] <= 100
    # The written results score the same when given back as files.
    again = run("--results", tmp_path / "results", "--dataset", small_dataset, "--split", "test",
                "--out-dir", tmp_path / "again", "--no-plots")
    assert again.returncode == 0, again.stderr
    metrics2 = json.loads((tmp_path / "again" / "metrics.json").read_text())["metrics"]["COMBINED"]
    for key in ("mota", "idf1", "HOTA", "action_frame_mAP", "id_action_acc"):
        assert metrics2[key] == pytest.approx(metrics[key]), key
    # V-ICR JSON alone (boxes and actions from the JSON, no MOT file) scores the same tracks.
    json_only = tmp_path / "json_only"
    json_only.mkdir()
    for f in (tmp_path / "results").glob("*.json"):
        (json_only / f.name).write_bytes(f.read_bytes())
    third = run("--results", json_only, "--dataset", small_dataset, "--split", "test", "--out-dir", tmp_path / "third",
                "--no-plots")
    assert third.returncode == 0, third.stderr
    metrics3 = json.loads((tmp_path / "third" / "metrics.json").read_text())["metrics"]["COMBINED"]
    assert metrics3["num_predictions"] == metrics["num_predictions"]
    assert metrics3["mota"] == pytest.approx(metrics["mota"], abs=0.5)  # JSON boxes are rounded to 1e-3


def _gt(tmp_path, name="seq-a", frames=5, layout_cols=9):
    seq = tmp_path / "gt" / name
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
                                     "imWidth=100\nimHeight=100\nimExt=.jpg\n")
    rows = [f"{f},1,10,10,20,40,1,1,1.0" if layout_cols == 9 else f"{f},1,10,10,20,40,1,-1,-1,-1" for f in range(1, frames + 1)]
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return tmp_path / "gt"


@pytest.mark.parametrize("content,message", [
    ("9,1,10,10,20,40,1,-1,-1,-1\n", "frame 9 is outside sequence seq-a's frames 1-5"),
    ("", "empty result"),
    ("1,1,10,10,20,40,1,3,1.0\n", "class id 3 in a tracker result"),
    ("1,1,10,ten,20,40,1,-1,-1,-1\n", ":1:"),
])
def test_bad_results_are_one_line(tmp_path, content, message):
    gt_root = _gt(tmp_path)
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "seq-a.txt").write_text(content)
    result = run("--results", tmp_path / "res", "--gt-root", gt_root, "--out-dir", tmp_path / "o")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unknown_sequence_and_label_mismatch_are_one_line(tmp_path):
    gt_root = _gt(tmp_path)
    stray = tmp_path / "other" / "seq-b.txt"
    stray.parent.mkdir()
    stray.write_text("1,1,10,10,20,40,1,-1,-1,-1\n")
    result = run("--results", stray, "--gt-root", gt_root)
    assert result.returncode == 2 and "unknown sequence" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("--results", stray, "--gt-root", gt_root, "--sequences", "seq-z")
    assert result.returncode == 2 and "seq-z not in" in result.stderr
    # A V-ICR JSON whose labelmap is not the ground truth's.
    (gt_root / "label_map.txt").write_text("0: walk\n1: run\n")
    seq = gt_root / "seq-a"
    (seq / "gt" / "actions.txt").write_text("".join(f"{f},1,0\n" for f in range(1, 6)))
    js = tmp_path / "seq-a.json"
    js.write_text(json.dumps({"video": {"name": "seq-a", "fps": 10, "width": 100, "height": 100, "total_frames": 5},
                              "labelmap": {"0": {"name": "run"}, "1": {"name": "walk"}},
                              "persons": {"id_1": {"frames": [{"frame_idx": 0, "bbox": {"x1": 10, "y1": 10, "x2": 30, "y2": 50},
                                                               "action": "run", "action_id": 0}]}}}))
    result = run("--results", js, "--gt-root", gt_root)
    assert result.returncode == 2 and "does not match the ground truth's" in result.stderr


def test_protocols_print_the_reference_values(tmp_path, real_data):
    """--protocol on the fixtures of real/action_detection: the numbers mmaction2 / the official
    AVA evaluator give, as printed lines and in the JSON."""
    folder = real_data / "action_detection"
    out = tmp_path / "ms.json"
    done = run("--protocol", "multisports", "--gt", folder / "multisports_sample" / "gt.pkl",
               "--detections", folder / "multisports_sample" / "detections.csv", "--json", out)
    assert done.returncode == 0, done.stderr
    for line in ("frame_mAP@0.5", "83.6506"), ("video_mAP@0.2", "37.5000"), ("video_mAP@0.5", "37.5000"), \
            ("video_mAP@0.10:0.90", "29.1667"):
        assert _row(done.stdout, line[0]) == list(line)
    assert json.loads(out.read_text())["metrics"]["frame_mAP@0.5"] == pytest.approx(83.6506, abs=5e-5)
    done = run("--protocol", "ava", "--gt", folder / "ava_sample" / "gt.csv", "--detections",
               folder / "ava_sample" / "pred.csv", "--label-map", folder / "ava_sample" / "action_list.txt")
    assert done.returncode == 0, done.stderr
    assert _row(done.stdout, "frame_mAP@0.5") == ["frame_mAP@0.5", "0.09385522"]


def test_protocol_refusals_are_one_line(tmp_path):
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    crafted = tmp_path / "gt.pkl"
    crafted.write_bytes(pickle.dumps({"labels": ["a"], "gttubes": Payload()}))
    dets = tmp_path / "dets.csv"
    dets.write_text("video,frame,label,score,x1,y1,x2,y2\n")
    done = run("--protocol", "multisports", "--gt", crafted, "--detections", dets)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "gt.pkl: refused to load" in lines[0], done.stderr
    assert not (tmp_path / "ran").exists()
    done = run("--protocol", "ava", "--gt", dets, "--detections", dets)
    assert done.returncode == 2 and "--protocol ava needs --label-map" in done.stderr
    done = run("--gt", crafted, "--results", dets, "--gt-root", tmp_path)
    assert done.returncode == 2 and "--gt: read with --protocol only" in done.stderr
