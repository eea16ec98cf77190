"""Network modules: shapes and finiteness for every variant, input checks, causal modes."""
import copy

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


@pytest.mark.parametrize("causal,num_layers", [(False, 1), (False, 3), (True, 2)])
def test_temporal_forward_last_is_the_newest_frame_of_forward(causal, num_layers):
    enc = TemporalEncoder(channels=32, d_model=16, num_layers=num_layers, num_heads=2, causal=causal).eval()
    torch.nn.init.normal_(enc.out_proj.weight)  # zero-initialised: make the update visible
    x = torch.randn(2, 5, 32, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_last(x), enc(x)[:, -1], rtol=1e-5, atol=1e-5)


def test_separable_detection_head_has_a_tower_per_level_and_fuses():
    from models.heads.detection import DetectionHead
    from models.layers import fuse_conv_bn
    head = DetectionHead(16, num_classes=2, tower_depth=2, tower="separable")
    assert len(head.cls_towers) == len(head.reg_towers) == 3
    assert head.cls_towers[0][0][0][0].groups == 16  # depthwise first
    features = [torch.randn(2, 16, 8 // 2 ** i * 2, 12 // 2 ** i * 2) for i in range(3)]
    head.train()
    head(features)  # BatchNorm statistics differ per level...
    means = [tower[0][0][1].running_mean for tower in head.cls_towers]
    assert not torch.allclose(means[0], means[1])  # ...and are kept per level
    head.eval()
    with torch.no_grad():
        out = head(features)
        fused = fuse_conv_bn(copy.deepcopy(head))(features)
    L = sum(f.shape[-2] * f.shape[-1] for f in features)
    assert out["cls_logits"].shape == (2, L, 2) and out["box_ltrb"].shape == (2, L, 4)
    for key in ("cls_logits", "box_ltrb", "centerness"):
        torch.testing.assert_close(fused[key], out[key], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="tower must be one of"):
        DetectionHead(16, tower="dense")


def test_soft_nms_equals_a_direct_torch_implementation():
    from torchvision.ops import box_iou

    from models.heads.detection import soft_nms

    def reference(boxes, scores, labels, sigma, threshold, max_detections):
        scores, alive, kept, kept_scores = scores.clone(), scores > threshold, [], []
        while len(kept) < max_detections and bool(alive.any()):
            best = int(torch.where(alive, scores, torch.tensor(-1.0, dtype=scores.dtype)).argmax())
            kept.append(best)
            kept_scores.append(float(scores[best]))
            alive[best] = False
            iou = box_iou(boxes[best:best + 1], boxes)[0] * (labels == labels[best])
            scores = torch.where(alive, scores * torch.exp(-iou.square() / sigma), scores)
            alive &= scores > threshold
        return kept, kept_scores

    gen = torch.Generator().manual_seed(3)
    for trial in range(5):
        xy = torch.rand(60, 2, generator=gen, dtype=torch.float64) * 200
        boxes = torch.cat([xy, xy + 20 + torch.rand(60, 2, generator=gen, dtype=torch.float64) * 60], 1)
        scores = torch.rand(60, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 2, (60,), generator=gen)
        kept, decayed = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.1, max_detections=30)
        expected, expected_scores = reference(boxes, scores, labels, 0.5, 0.1, 30)
        assert kept.tolist() == expected
        assert decayed.tolist() == pytest.approx(expected_scores, rel=1e-9)
