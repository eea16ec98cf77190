"""Network modules: shapes and finiteness for every variant, input checks, causal modes."""
import pytest
import torch

from models.backbone import CSPBackbone
from models.heads.action import ActionHead, box_motion_features
from models.heads.detection import postprocess_detections
from models.mot_action_net import VARIANTS, build_model
from models.temporal import TemporalEncoder

H, W = 64, 96


def _clip(B=1, T=3, N=2):
    frames = torch.rand(B, T, 3, H, W)
    boxes = torch.tensor([[4.0, 6.0, 30.0, 60.0], [40.0, 10.0, 70.0, 50.0]])[:N].expand(B, T, N, 4).clone()
    mask = torch.ones(B, T, N, dtype=torch.bool)
    mask[:, 0, -1] = False
    return frames, boxes, mask


@pytest.fixture(scope="module", params=VARIANTS)
def variant_model(request):
    torch.manual_seed(0)
    return request.param, build_model(request.param, num_actions=5).eval()


def test_every_variant_output_shapes_and_finite(variant_model):
    name, model = variant_model
    frames, boxes, mask = _clip(B=2, T=3)
    with torch.no_grad():
        out = model(frames, boxes, mask)
    L = (H // 8) * (W // 8) + (H // 16) * (W // 16) + (H // 32) * (W // 32)
    det = out["detections"]
    assert det["cls_logits"].shape == (6, L, 1) and det["box_ltrb"].shape == (6, L, 4) and det["centerness"].shape == (6, L)
    assert (det["box_ltrb"] >= 0).all()
    assert out["action_logits"].shape == (2, 3, 2, 5) and out["embeddings"].shape == (2, 3, 2, 128)
    for value in (det["cls_logits"], det["box_ltrb"], out["action_logits"], out["embeddings"]):
        assert torch.isfinite(value).all()
    norms = out["embeddings"].norm(dim=-1)
    assert torch.allclose(norms[mask], torch.ones(int(mask.sum())), atol=1e-5)
    assert (norms[~mask] == 0).all()
    results = postprocess_detections(det, (H, W), score_threshold=0.0)
    assert len(results) == 6
    for r in results:
        assert (r["boxes"][:, 0::2] <= W).all() and (r["boxes"][:, 1::2] <= H).all() and (r["boxes"] >= 0).all()


def test_variant_sizes_follow_the_seed():
    counts = {v: sum(p.numel() for p in build_model(v).parameters()) / 1e6 for v in VARIANTS}
    full = build_model("full")
    assert 33 <= counts["full"] <= 39 and 16 <= counts["lite"] <= 20 and counts["tiny"] < 4
    assert 14 <= sum(p.numel() for p in full.backbone.parameters()) / 1e6 <= 16
    assert 2.5 <= sum(p.numel() for p in full.temporal.parameters()) / 1e6 <= 3.5


def test_inputs_are_checked_with_clear_messages():
    model = build_model("tiny")
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        model(torch.rand(3, H, W))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 2, 3, H, W, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 2, 3, 50, 96))
    frames, boxes, mask = _clip()
    with pytest.raises(ValueError, match="boxes must be"):
        model(frames, boxes[:, :2], mask[:, :2])


def test_backbone_strides():
    feats = CSPBackbone()(torch.rand(2, 3, 96, 128))
    assert [tuple(f.shape[-2:]) for f in feats] == [(12, 16), (6, 8), (3, 4)]


def test_causal_temporal_encoder_ignores_the_future():
    torch.manual_seed(0)
    enc = TemporalEncoder(16, d_model=32, num_layers=2, causal=True)
    torch.nn.init.normal_(enc.out_proj.weight)  # starts at identity otherwise
    x = torch.randn(1, 5, 16, 2, 3)
    y = x.clone()
    y[:, 4] += 1.0
    a, b = enc(x), enc(y)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5) and not torch.allclose(a[:, 4], b[:, 4])
    bidir = TemporalEncoder(16, d_model=32, num_layers=2, causal=False)
    torch.nn.init.normal_(bidir.out_proj.weight)
    assert not torch.allclose(bidir(x)[:, 0], bidir(y)[:, 0])


def test_streaming_action_head_ignores_the_future():
    torch.manual_seed(0)
    head = ActionHead(16, num_actions=4, hidden=16, bidirectional=False).eval()
    p3 = torch.randn(4, 16, 8, 12)
    boxes = torch.tensor([5.0, 5.0, 40.0, 60.0]).expand(1, 4, 1, 4).clone()
    mask = torch.ones(1, 4, 1, dtype=torch.bool)
    changed = p3.clone()
    changed[3] += 1.0
    a, b = head(p3, boxes, mask), head(changed, boxes, mask)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6) and not torch.allclose(a[:, 3], b[:, 3])


def test_box_motion_features():
    boxes = torch.tensor([[0, 0, 10, 20], [5, 0, 15, 20], [5, 0, 15, 20]], dtype=torch.float32).reshape(1, 3, 1, 4)
    mask = torch.tensor([True, True, False]).reshape(1, 3, 1)
    f = box_motion_features(boxes, mask)[0, :, 0]
    assert f[0].tolist()[:5] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert f[1, 1].item() == pytest.approx(5 / 20)  # moved half a width = a quarter of the height
    assert (f[2] == 0).all()  # absent frame


def test_fused_batchnorm_gives_the_same_outputs():
    import copy
    from models.layers import fuse_conv_bn
    model = build_model("tiny", num_actions=3).eval()
    # Non-trivial running statistics, as after training.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    frames = torch.rand(1, 2, 3, 64, 96)
    boxes = torch.tensor([8.0, 8.0, 40.0, 60.0]).expand(1, 2, 1, 4).contiguous()
    mask = torch.ones(1, 2, 1, dtype=torch.bool)
    with torch.no_grad():
        ref = model(frames, boxes, mask)
        fused = fuse_conv_bn(copy.deepcopy(model))
        out = fused(frames, boxes, mask)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    torch.testing.assert_close(out["detections"]["cls_logits"], ref["detections"]["cls_logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["action_logits"], ref["action_logits"], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(build_model("tiny", num_actions=3).train())


def test_soft_nms_decays_duplicates_and_keeps_neighbours():
    from models.heads.detection import soft_nms
    boxes = torch.tensor([[0, 0, 10, 30.0], [1, 0, 11, 31.0], [12, 0, 22, 30.0], [0, 0, 10, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 0, 1])  # the last is another class: untouched by class 0
    kept, decayed = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.01)
    assert kept.tolist() == [0, 2, 3, 1]  # the near-duplicate falls behind the neighbour and the other class
    from torchvision.ops import box_iou
    expected = 0.8 * torch.exp(-box_iou(boxes[:1], boxes[1:2])[0, 0] ** 2 / 0.5)
    assert decayed[3].item() == pytest.approx(expected.item(), rel=1e-5)
    assert decayed[:3].tolist() == pytest.approx([0.9, 0.7, 0.6])  # the neighbour barely overlaps: IoU 0
    kept, _ = soft_nms(boxes, scores, labels, max_detections=2)
    assert len(kept) == 2


@pytest.mark.parametrize("causal", [False, True])
def test_temporal_forward_last_is_the_newest_frame_of_forward(causal):
    enc = TemporalEncoder(channels=32, d_model=16, num_layers=2, num_heads=2, causal=causal).eval()
    torch.nn.init.normal_(enc.out_proj.weight)  # zero-initialised: make the update visible
    x = torch.randn(2, 5, 32, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_last(x), enc(x)[:, -1], rtol=1e-5, atol=1e-5)
