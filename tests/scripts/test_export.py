"""scripts/export.py --int8 as a user runs it: the INT8 graphs written beside the float ones,
calibrated on a sequence's frames, then run by inference.py through --onnx; a missing calibration
source and an output over the checkpoint are refused in one line before any work."""
import shutil

import pytest

from tests.scripts.test_bad_inputs import one_line, script

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_int8_export_then_inference_on_it(tmp_path, trained_checkpoint, small_dataset):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    frames = sorted((small_dataset / "train").iterdir())[0] / "img1"
    done = script("export.py", "--checkpoint", checkpoint, "--int8", frames, "--calibration-frames", 16)
    assert done.returncode == 0, done.stderr
    assert "(calibrated on 16 frames)" in done.stdout
    for name in ("best.onnx", "best.embed.onnx", "best.tubes.onnx", "best.int8.onnx", "best.int8.embed.onnx",
                 "best.int8.tubes.onnx"):
        assert (tmp_path / name).is_file(), name
    video = sorted((small_dataset / "test").iterdir())[0] / "img1"
    mot = tmp_path / "out.txt"
    ran = script("inference.py", "--checkpoint", checkpoint, "--runtime", "onnxruntime", "--onnx",
                 tmp_path / "best.int8.onnx", "--video", video, "--save-mot", mot)
    assert ran.returncode == 0, ran.stderr
    assert mot.is_file()


def test_int8_export_refusals(tmp_path, trained_checkpoint):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    one_line(script("export.py", "--checkpoint", checkpoint, "--int8", tmp_path / "nowhere"),
             "nowhere: --int8 calibration frames not found")
    one_line(script("export.py", "--checkpoint", checkpoint, "--int8", checkpoint, "--calibration-frames", "0"),
             "--calibration-frames must be at least 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]
