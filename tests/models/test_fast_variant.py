"""The fast variant (issue 21): at most half of tiny's GFLOPs per frame at 640x384, the pooled
temporal encoder's semantics, streaming equal to the network on the strided clip, a training step;
and tiny exactly as before (its ONNX export is checked in test_onnx_export.py)."""
import argparse
import hashlib
import sys
from pathlib import Path

import pytest
import torch

from models.config import model_preset
from models.mot_action_net import MotActionNet, StreamState, build_model
from models.temporal import TemporalEncoder
from tests.conftest import he_initialised

ROOT = Path(__file__).resolve().parents[2]

# tiny's state_dict as it was before `fast` existed (commit f3b6a6d): keys and shapes, and the
# values torch.manual_seed(0) gives them (the values are pinned for the constraints' torch).
TINY_KEYS_SHAPES = "43c6c9276d03c283"
TINY_VALUES = "4d627b046837dcc8"


def _digest(state: dict, values: bool) -> str:
    h = hashlib.sha256()
    for key, tensor in state.items():
        h.update(key.encode())
        h.update(str(tuple(tensor.shape)).encode())
        if values:
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def test_tiny_is_unchanged():
    torch.manual_seed(0)
    model = build_model("tiny", num_actions=3)
    assert model_preset("tiny").temporal.pool == 1 and model.temporal.pool == 1
    assert _digest(model.state_dict(), values=False) == TINY_KEYS_SHAPES
    if torch.__version__.split("+")[0] == "2.13.0":
        assert _digest(model.state_dict(), values=True) == TINY_VALUES


def test_fast_is_at_most_half_of_tiny_per_frame():
    """What ``python scripts/model_stats.py --variants tiny,fast`` prints, at its defaults."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import model_stats
    args = argparse.Namespace(width=640, height=384, clip_len=8, tracks=10)
    gflops = {v: model_stats.clip_gflops(build_model(v).eval(), args) for v in ("tiny", "fast")}
    assert gflops["fast"] <= 0.5 * gflops["tiny"], gflops
    assert 4.0 < gflops["tiny"] < 4.4, gflops  # the attention is counted (4.13 without it)


@pytest.mark.parametrize("size", [(4, 6), (5, 7), (1, 1)])
def test_pooled_temporal_encoder_is_the_encoder_on_pooled_tokens_spread_back(size):
    torch.manual_seed(0)
    pooled = TemporalEncoder(8, d_model=16, num_layers=2, num_heads=2, pool=2).eval()
    torch.nn.init.normal_(pooled.out_proj.weight)
    plain = TemporalEncoder(8, d_model=16, num_layers=2, num_heads=2).eval()
    plain.load_state_dict(pooled.state_dict())  # the same parameters: pooling adds none
    H, W = size
    x = torch.randn(2, 3, 8, H, W)
    tokens = torch.nn.functional.avg_pool2d(x.flatten(0, 1), 2, 2, ceil_mode=True)  # the cells inside the map
    tokens = tokens.reshape(2, 3, 8, *tokens.shape[-2:])
    with torch.no_grad():
        token_update = plain(tokens) - tokens
        update = pooled(x) - x
        last = pooled.forward_last(x)
    spread = token_update.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :H, :W]
    torch.testing.assert_close(update, spread, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, x[:, -1] + spread[:, -1], rtol=1e-5, atol=1e-5)


def test_fast_streams_as_the_network_on_the_strided_clip():
    """stream_step (the backbone once per frame, the pooled encoder's newest-frame pass over the
    cached C5 window) gives what forward gives for the newest frame of the strided clip, at a size
    whose C5 sides are odd (5 x 7: the last pooled tokens cover fewer cells)."""
    torch.manual_seed(0)
    model = he_initialised(build_model("fast", num_actions=3).eval())
    seen = []
    model.detection_head.register_forward_hook(lambda module, args, out: seen.append(out))
    frames = torch.rand(9, 3, 160, 224)
    state = StreamState(clip_len=4, stride=2)
    for k in range(len(frames)):
        model.stream_step(frames[k:k + 1], state, key=k, score_threshold=0.5)
    streamed = list(seen)
    for newest, window in ((8, [2, 4, 6, 8]), (3, [1, 3])):
        with torch.no_grad():
            expected = model.detection_head(model.features(frames[window][None]))
        for key in ("scores", "box_ltrb", "centerness"):
            torch.testing.assert_close(streamed[newest][key][0], expected[key][len(window) - 1], rtol=1e-3, atol=1e-4)


def test_fast_trains_a_step(small_dataset, tmp_path):
    """``model=fast`` composes from config/model/fast.yaml, trains, and its checkpoint rebuilds it."""
    from models.checkpoint import load_model_from_checkpoint
    from train.run import build_trainer, compose_config
    overrides = ["model=fast", f"data.root={small_dataset}", "data.size=[128,192]", "data.batch_size=2",
                 "data.clip_len=4", "data.stride=2", "data.train_clip_step=4", "data.num_workers=0",
                 "trainer.epochs=1", "trainer.max_steps=2", "trainer.image_every=0", f"runs_root={tmp_path}"]
    cfg = compose_config(overrides)
    assert cfg.model.variant == "fast" and cfg.model.temporal.pool == 2
    trainer = build_trainer(cfg, run_dir=tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].dtype.is_floating_point)
    model, config, _ = load_model_from_checkpoint(tmp_path / "run" / "last.pt")
    assert isinstance(model, MotActionNet) and config == model_preset("fast", num_actions=config.num_actions)
