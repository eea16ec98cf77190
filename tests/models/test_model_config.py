"""Model configs and checkpoints are data: checked numbers build the network; nothing in a file is
looked up or called by name."""
import base64
import pickle
import re

import pytest
import torch

from common.errors import InputError
from models.checkpoint import FORMAT, load_model_from_checkpoint
from models.config import VARIANTS, ModelConfig, model_preset
from models.mot_action_net import MotActionNet, build_model


def test_presets_come_from_the_yaml_files_and_round_trip():
    for variant in VARIANTS:
        config = model_preset(variant, num_actions=4)
        assert config.variant == variant and config.num_actions == 4
        assert ModelConfig.from_mapping(config.to_dict()) == config
    lite = model_preset("lite")
    assert lite.widths == (32, 64, 160, 320, 640) and lite.head_tower == "separable"  # lite.yaml over tiny.yaml
    assert model_preset("tiny").det_nms == "soft"
    fast = model_preset("fast")  # fast.yaml over tiny.yaml; tiny's own temporal settings stay the default (pool 1)
    assert fast.temporal.pool == 2 and fast.temporal.d_model == 96 and fast.head_tower == "separable"
    assert model_preset("tiny").temporal.pool == 1


@pytest.mark.parametrize("change, message", [
    ({"widths": [16, 32, "64", 128, 192]}, "model.widths[2]: expected an integer, got '64'"),
    ({"widths": [16, 32, 64]}, "widths needs 5 entries"),
    ({"head_tower": "dense"}, "model.head_tower: expected one of 'gn', 'bn', 'separable', got 'dense'"),
    ({"det_soft_sigma": float("nan")}, "model.det_soft_sigma: expected a number"),
    ({"fpn_channels": True}, "model.fpn_channels: expected an integer, got True"),
    ({"temporal": {"d_model": 96, "num_layers": 2, "num_heads": 5, "ff_mult": 2}}, "not a multiple of num_heads"),
    ({"widht": 3}, "model: unknown key 'widht'"),
    ({"activation": "gelu"}, "model.activation: expected one of 'silu', 'relu', got 'gelu'"),
    ({"temporal": {"d_model": 96, "num_layers": 2, "num_heads": 4, "ff_mult": 2, "pool": 0}}, "temporal sizes must be positive"),
])
def test_bad_model_configs_are_one_line_errors(change, message):
    data = {**model_preset("tiny").to_dict(), **change}
    with pytest.raises(InputError) as info:
        ModelConfig.from_mapping(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_activation_follows_every_convolution_and_old_configs_keep_silu():
    relu, silu = model_preset("fast"), model_preset("fast+activation=silu")  # fast.yaml: relu
    assert relu.activation == "relu" and silu.variant == "fast" and model_preset("tiny").activation == "silu"
    silu_net, relu_net = MotActionNet.from_config(silu), MotActionNet.from_config(relu)
    # The same parameters (a SiLU checkpoint's tensors load into the ReLU network and back) ...
    assert {k: v.shape for k, v in silu_net.state_dict().items()} == {k: v.shape for k, v in relu_net.state_dict().items()}
    # ... and a ReLU after every convolution, where the SiLU network has its SiLU; the MLPs on
    # pooled boxes (ReID projection, action head) keep SiLU in both.
    for (name, a), (_, b) in zip(silu_net.named_modules(), relu_net.named_modules()):
        per_box = name.startswith(("action_head", "reid_head.project"))
        if isinstance(a, torch.nn.SiLU):
            assert isinstance(b, torch.nn.SiLU if per_box else torch.nn.ReLU), name
    assert sum(isinstance(m, torch.nn.ReLU) for m in relu_net.modules()) == 50
    # A checkpoint written before the option existed has no activation key: it was SiLU.
    old = relu.to_dict()
    del old["activation"]
    assert ModelConfig.from_mapping(old).activation == "silu"


@pytest.mark.parametrize("variant, message", [
    ("fast+activation", "write overrides as +key=value"),
    ("fast+nokey=1", "model fast+nokey=1: unknown key 'nokey'"),
    ("fast+activation=gelu", "model fast+activation=gelu.activation: expected one of 'silu', 'relu'"),
    ("slow", "unknown model variant 'slow'"),
])
def test_variant_overrides_are_checked(variant, message):
    with pytest.raises((ValueError, InputError), match=re.escape(message)):
        model_preset(variant)
    assert model_preset("tiny+temporal.pool=2+head_kernel=5").temporal.pool == 2


def _checkpoint(path, model_config: dict, **extra):
    model = build_model("tiny", num_actions=2)
    state = {"format": FORMAT, "model": model.state_dict(), "model_config": model_config, "input_size": [64, 96],
             "action_names": ["a", "b"], "clip_len": 4, "stride": 2, **extra}
    torch.save(state, path)
    return model


def test_a_checkpoint_rebuilds_its_network(tmp_path):
    config = model_preset("tiny", num_actions=2)
    saved = _checkpoint(tmp_path / "ok.pt", {**config.to_dict(), "net": {"_target_": "ignored.Legacy"}})
    model, loaded_config, spec = load_model_from_checkpoint(tmp_path / "ok.pt")
    assert isinstance(model, MotActionNet) and loaded_config == config
    assert spec.input_size == (64, 96) and spec.action_names == ("a", "b") and (spec.clip_len, spec.stride) == (4, 2)
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), model.state_dict().values()))


def test_a_checkpoint_naming_code_runs_nothing(tmp_path):
    """What was reported: a `net` config whose _target_ chains torch.load over a base64 pickle ran a
    shell command through hydra's instantiate. Now the stored numbers are read and the rest is
    never looked at; a target in place of a number is refused."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    blob = base64.b64encode(pickle.dumps(Payload())).decode()
    evil = {"_target_": "torch.load", "f": {"_target_": "io.BytesIO", "initial_bytes": {
        "_target_": "base64.b64decode", "s": blob}}, "weights_only": False}
    config = model_preset("tiny", num_actions=2).to_dict()
    _checkpoint(tmp_path / "legacy.pt", {**config, "net": evil})  # the old layout: ignored, not called
    load_model_from_checkpoint(tmp_path / "legacy.pt")
    _checkpoint(tmp_path / "evil.pt", {**config, "widths": evil})
    with pytest.raises(InputError, match=r"evil.pt: model_config.widths: expected a list of integers"):
        load_model_from_checkpoint(tmp_path / "evil.pt")
    _checkpoint(tmp_path / "copy.pt", {**config, "backbone": {"_target_": "shutil.copyfile", "src": "a", "dst": "b"}})
    with pytest.raises(InputError, match="unknown key 'backbone'"):
        load_model_from_checkpoint(tmp_path / "copy.pt")
    assert not marker.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["copy.pt", "evil.pt", "legacy.pt"]


@pytest.mark.parametrize("extra, message", [
    ({"input_size": [100, 150]}, "input_size must be two multiples of 32"),
    ({"action_names": ["a"]}, "1 action names for a model with 2 actions"),
    ({"clip_len": "8"}, "clip_len: expected an integer"),
])
def test_checkpoint_fields_are_checked(tmp_path, extra, message):
    _checkpoint(tmp_path / "c.pt", model_preset("tiny", num_actions=2).to_dict(), **extra)
    with pytest.raises(InputError, match=message):
        load_model_from_checkpoint(tmp_path / "c.pt")


def test_empty_and_foreign_files_are_one_line(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(InputError, match="empty file, not a checkpoint"):
        load_model_from_checkpoint(tmp_path / "empty.pt")
    torch.save({"format": FORMAT, "model": {}}, tmp_path / "bare.pt")
    with pytest.raises(InputError, match="lacks model_config, input_size, action_names"):
        load_model_from_checkpoint(tmp_path / "bare.pt")
