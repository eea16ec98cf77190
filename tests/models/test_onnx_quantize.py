"""INT8 export: the frame graph statically quantized (QDQ, per-channel), its companions carried,
the result bound to the same checkpoint and run by the same runtime; calibration is on real
consecutive frames; bad calibration input and a second quantization are refused in one line."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402

from common.errors import InputError  # noqa: E402
from models.checkpoint import FORMAT, InferenceSpec  # noqa: E402
from models.config import model_preset  # noqa: E402
from models.mot_action_net import MotActionNet, StreamState  # noqa: E402
from models.onnx_export import export_onnx, graph_paths  # noqa: E402
from models.onnx_quantize import calibration_images, int8_path, quantize_export  # noqa: E402
from models.onnx_runtime import OnnxStreamingModel  # noqa: E402
from tests.conftest import he_initialised  # noqa: E402

SPEC = InferenceSpec(("a", "b", "c"), (128, 192), 4, 2)


def _frames(n: int, seed: int = 0):
    """Smooth images (a moving gradient with a box), closer to video than uniform noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:192].astype(np.float32)
    for k in range(n):
        image = np.stack([(x + 4 * k) / 192, y / 128, 0.5 + 0.1 * np.sin((x + y) / 9)]) % 1.0  # (3, H, W)
        image[:, 40:100, 60 + k:90 + k] = rng.random(3, dtype=np.float32)[:, None, None]
        yield image[None].astype(np.float32)  # (1, 3, H, W)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    torch.manual_seed(0)
    config = model_preset("fast", num_actions=3)
    net = he_initialised(MotActionNet.from_config(config).eval())
    folder = tmp_path_factory.mktemp("int8")
    checkpoint = folder / "best.pt"
    torch.save({"format": FORMAT, "model": net.state_dict()}, checkpoint)
    export_onnx(net, config, SPEC, checkpoint, folder / "best.onnx", log=lambda m: None)
    paths = quantize_export(folder / "best.onnx", _frames(24), log=lambda m: None)
    return checkpoint, folder / "best.onnx", paths


def test_the_frame_graph_is_quantized_and_the_companions_carried(quantized):
    checkpoint, fp32, paths = quantized
    assert paths == graph_paths(fp32.with_name("best.int8.onnx")) == graph_paths(int8_path(fp32))
    ops = {node.op_type for node in onnx.load(str(paths["frame"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    for name, path in paths.items():
        meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["mot_action"])
        assert meta["precision"] == ("int8" if name == "frame" else "fp32")
        assert meta["calibration_frames"] == 24 and meta["graph"] == name
    # Per-channel int8 weights: the frame graph shrinks to well under half of the float one.
    assert paths["frame"].stat().st_size < 0.5 * fp32.stat().st_size


def test_the_int8_graphs_run_in_the_same_engine_close_to_float(quantized):
    checkpoint, fp32, paths = quantized
    runtimes = {"fp32": OnnxStreamingModel(fp32, checkpoint=checkpoint),
                "int8": OnnxStreamingModel(paths["frame"], checkpoint=checkpoint, input_size=SPEC.input_size)}
    assert runtimes["int8"].meta["precision"] == "int8"
    states = {k: StreamState(SPEC.clip_len, SPEC.stride) for k in runtimes}
    for k, image in enumerate(_frames(6, seed=1)):
        out = {name: rt.stream_step(torch.from_numpy(image), states[name], key=k, score_threshold=0.0)
               for name, rt in runtimes.items()}
    # The C5 kept for the temporal window: the deepest quantized map, compared over the last frame.
    c5 = {name: states[name].c5[-1].ravel() for name in runtimes}
    assert np.corrcoef(c5["fp32"], c5["int8"])[0, 1] > 0.99
    scale = np.abs(c5["fp32"]).max()
    assert np.abs(c5["fp32"] - c5["int8"]).max() < 0.1 * scale
    assert len(out["int8"].boxes) > 0 and torch.isfinite(out["int8"].scores).all()


def test_quantizing_twice_and_wrong_frames_are_refused(quantized, tmp_path):
    checkpoint, fp32, paths = quantized
    with pytest.raises(InputError, match=r"best.int8.onnx: already quantized \(int8\)"):
        quantize_export(paths["frame"], _frames(2), out=tmp_path / "again.onnx", log=lambda m: None)
    wrong = (np.zeros((1, 3, 64, 64), np.float32) for _ in range(2))
    with pytest.raises(InputError, match=r"calibration frame 0: shape \(1, 3, 64, 64\), the export takes \(1, 3, 128, 192\)"):
        quantize_export(fp32, wrong, out=tmp_path / "wrong.onnx", log=lambda m: None)
    with pytest.raises(InputError, match="no calibration frames"):
        quantize_export(fp32, iter([]), out=tmp_path / "none.onnx", log=lambda m: None)
    assert not any(tmp_path.iterdir())  # nothing half-written left behind


def test_calibration_frames_are_the_sources_first_frames_letterboxed(tmp_path):
    import cv2
    folder = tmp_path / "img1"
    folder.mkdir()
    for k in range(5):
        frame = np.full((60, 200, 3), 40 * k, np.uint8)  # a wide frame: padded top and bottom
        cv2.imwrite(str(folder / f"{k + 1:06d}.png"), frame)
    images = list(calibration_images(folder, (128, 192), 3))
    assert len(images) == 3 and all(i.shape == (1, 3, 128, 192) for i in images)
    assert [round(float(i[0, :, 64, 96].mean()) * 255) for i in images] == [0, 40, 80]  # in order
    assert float(images[1][0, 0, 0, 0]) == pytest.approx(114 / 255)  # the letterbox's padding
    with pytest.raises(InputError, match="at least 1"):
        list(calibration_images(folder, (128, 192), 0))
