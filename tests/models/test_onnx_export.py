"""The exported graphs equal the PyTorch streaming step (random He-initialised weights, so a wrong
wiring fails) at three input sizes (one with odd C5 sides, which fast's pooled temporal tokens
cover partly) and 0, 1 and 5 tubes, for tiny, fast (ReLU) and fast with SiLU; the ONNX Runtime engine tracks like the
eager one; a file from another checkpoint or input size is refused in one line."""
import copy

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from common.errors import InputError  # noqa: E402
from models.checkpoint import FORMAT, InferenceSpec  # noqa: E402
from models.config import model_preset  # noqa: E402
from models.mot_action_net import MotActionNet, StreamState  # noqa: E402
from models.onnx_export import export_onnx  # noqa: E402
from models.onnx_runtime import OnnxStreamingModel  # noqa: E402
from tracking.streaming import StreamingEngine  # noqa: E402
from tests.conftest import he_initialised  # noqa: E402
from tracking.tracker import Tracker  # noqa: E402

SPEC = InferenceSpec(("a", "b", "c"), (128, 192), 4, 2)


@pytest.fixture(scope="module", params=["tiny", "fast", "fast+activation=silu"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    config = model_preset(request.param, num_actions=3)
    net = he_initialised(MotActionNet.from_config(config).eval())
    folder = tmp_path_factory.mktemp("onnx")
    checkpoint = folder / "best.pt"
    torch.save({"format": FORMAT, "model": net.state_dict()}, checkpoint)
    export_onnx(net, config, SPEC, checkpoint, folder / "best.onnx", log=lambda m: None)
    return net, checkpoint, folder / "best.onnx"


@pytest.mark.parametrize("size", [(128, 192), (192, 256), (160, 224)])
def test_graphs_equal_the_pytorch_streaming_step(exported, size):
    from models.onnx_export import _Embed, _Frame
    net, checkpoint, onnx = exported
    runtime = OnnxStreamingModel(onnx, checkpoint=checkpoint)
    eager = copy.deepcopy(net)
    frame_graph, embed_graph = runtime.sessions["frame"], runtime.sessions["embed"]
    rng = np.random.default_rng(1)
    c5 = eager.backbone.out_channels[-1]
    for past in (0, 1, 3):  # the window filling up
        image = torch.from_numpy(rng.random((1, 3, *size), dtype=np.float32))
        window = torch.from_numpy(rng.normal(size=(1, past, c5, size[0] // 32, size[1] // 32)).astype(np.float32))
        with torch.no_grad():
            want = _Frame(eager)(image, window)
        got = frame_graph.run(None, {"image": image.numpy(), "c5_past": window.numpy()})
        for name, a, b in zip(("cls_logits", "box_ltrb", "centerness", "reid_map", "action_features", "c5"), got, want):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-3 * float(b.abs().max()), err_msg=name)
    rois = torch.tensor([[0.0, 10, 12, 50, 100], [0.0, 60, 5, 90, 70], [0.0, 0, 0, 8, 8]])
    reid_map = want[3]
    with torch.no_grad():
        embedded = _Embed(eager)(reid_map, rois)
    (got,) = embed_graph.run(None, {"reid_map": reid_map.numpy(), "rois": rois.numpy()})
    np.testing.assert_allclose(got, embedded.numpy(), rtol=1e-3, atol=1e-5)
    # The tube step, through the runtime's stream_actions, for 1 and 5 tubes over a filled window.
    states = {"torch": StreamState(4, 2), "onnx": StreamState(4, 2)}
    for k in range(7):
        image = torch.from_numpy(rng.random((1, 3, *size), dtype=np.float32))
        with torch.no_grad():
            eager.stream_step(image, states["torch"], key=k, score_threshold=0.5)
        runtime.stream_step(image, states["onnx"], key=k, score_threshold=0.5)
    for tubes in (1, 5):
        boxes = torch.tensor([20.0, 10, 60, 110]).repeat(1, 4, tubes, 1) + torch.arange(tubes).float()[None, None, :, None] * 9
        mask = torch.ones(1, 4, tubes, dtype=torch.bool)
        mask[0, 0, 0] = False
        with torch.no_grad():
            want = eager.stream_actions(states["torch"], boxes, mask)
        torch.testing.assert_close(runtime.stream_actions(states["onnx"], boxes, mask), want, rtol=1e-4, atol=1e-5)


def test_the_onnx_engine_tracks_as_the_eager_one_even_with_nobody(exported):
    net, checkpoint, onnx = exported
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(5)]
    results = {}
    for name, model in (("torch", net), ("onnx", OnnxStreamingModel(onnx, checkpoint=checkpoint))):
        engine = StreamingEngine(model=model, tracker=Tracker(fps=10.0), input_size=(128, 192), clip_len=4, stride=2,
                                 conf_threshold=0.99)  # a high threshold: no detection, no track, no tube
        results[name] = [engine.process(f, k, k / 10) for k, f in enumerate(frames)]
    for a, b in zip(results["torch"], results["onnx"]):
        assert len(a.tracks) == len(b.tracks) == 0
        np.testing.assert_allclose(a.detection_scores, b.detection_scores, atol=1e-4)


def test_a_file_from_another_checkpoint_or_size_is_refused(exported, tmp_path):
    net, checkpoint, onnx = exported
    state = torch.load(checkpoint, weights_only=True)
    other = tmp_path / "other.pt"
    torch.save({**state, "model": {k: v + (k.endswith("weight") and v.ndim > 1) for k, v in state["model"].items()}},
               other)
    with pytest.raises(InputError, match="exported from another checkpoint than"):
        OnnxStreamingModel(onnx, checkpoint=other)
    # The same weights in a rewritten file (the tracker settings calibrate_tracker.py records): still its export.
    rewritten = tmp_path / "rewritten.pt"
    torch.save({**state, "tracker_settings": {"high_score": 0.5, "new_track_score": 0.7}}, rewritten)
    assert rewritten.read_bytes() != checkpoint.read_bytes()
    OnnxStreamingModel(onnx, checkpoint=rewritten)
    with pytest.raises(InputError, match=r"exported for input size \[128, 192\], asked \[256, 320\]"):
        OnnxStreamingModel(onnx, input_size=(256, 320))
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(onnx.read_bytes())
    with pytest.raises(InputError, match="the embed graph of .* is missing"):
        OnnxStreamingModel(lone)


@pytest.fixture(scope="module")
def tracking_checkpoint(small_dataset, tmp_path_factory):
    """tiny trained for 200 steps (about 45 s): enough to find some people with confident scores.
    The 4-step ``trained_checkpoint`` scores everything near 0.01, where the last float bit decides
    each of thousands of false positives (MOTA about -2,000 either way), so it cannot show parity."""
    from train.run import build_trainer, compose_config
    runs = tmp_path_factory.mktemp("runs")
    overrides = [f"data.root={small_dataset}", "data.size=[128,192]", "data.batch_size=2", "data.clip_len=4",
                 "data.stride=2", "data.train_clip_step=1", "data.num_workers=0", "trainer.epochs=100",
                 "trainer.max_steps=200", "trainer.val_every=1000", "trainer.image_every=0", f"runs_root={runs}"]
    build_trainer(compose_config(overrides), run_dir=runs / "run").fit()
    return runs / "run" / "last.pt"


@pytest.mark.slow
def test_evaluate_with_onnxruntime_matches_eager(tracking_checkpoint, small_dataset, tmp_path):
    """evaluate.py on a short synthetic split at the default thresholds: the ONNX Runtime path's
    MOTA and IDF1 within 0.5 of the eager path's (the same arithmetic; float rounding may flip a
    threshold)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    export = subprocess.run([sys.executable, str(root / "scripts" / "export.py"), "--checkpoint", str(tracking_checkpoint),
                             "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=900)
    assert export.returncode == 0, export.stderr[-2000:]
    metrics = {}
    for runtime in ("torch", "onnxruntime"):
        extra = ["--runtime", runtime] + (["--onnx", str(tmp_path / "m.onnx")] if runtime == "onnxruntime" else [])
        result = subprocess.run([sys.executable, str(root / "scripts" / "evaluate.py"), "--checkpoint",
                                 str(tracking_checkpoint), "--dataset", str(small_dataset), "--split", "test",
                                 "--out-dir", str(tmp_path / runtime), "--no-plots", *extra],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics[runtime] = json.loads((tmp_path / runtime / "metrics.json").read_text())["metrics"]["COMBINED"]
    assert metrics["torch"]["idf1"] > 5, metrics["torch"]  # it tracks people, so the comparison means something
    for key in ("mota", "idf1"):
        assert abs(metrics["torch"][key] - metrics["onnxruntime"][key]) <= 0.5, (key, metrics)
