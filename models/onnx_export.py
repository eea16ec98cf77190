"""Export the network's streaming step to ONNX, for deployment through ONNX Runtime.

Three graphs, written side by side (``model.onnx``, ``model.embed.onnx``, ``model.tubes.onnx``),
all with dynamic input size:

* **frame**: ``image (1, 3, H, W)`` and ``c5_past (1, P, C5, H/32, W/32)`` (the C5 maps of the
  earlier frames of the temporal window, ``P`` from 0 to ``clip_len - 1``) -> the detection
  head's ``cls_logits``, ``box_ltrb``, ``centerness``, the ReID map, the action head's per-frame
  features, and this frame's ``c5`` (to keep for the next frames). The backbone runs on the newest
  frame only, as in :meth:`MotActionNet.stream_step`.
* **embed**: ``reid_map (1, C, H/8, W/8)`` and ``rois (K, 5)`` -> ``(K, D)`` unit embeddings.
* **tubes**: the action head's features of the window ``(T, C/2, H/8, W/8)``, tubes
  ``boxes (1, T, N, 4)`` and ``mask (1, T, N)`` -> ``logits (1, T, N, A)``; ``N`` dynamic.

Decoding, Soft-NMS and tracking stay in the engine (numpy). Each file records, in its metadata,
the checkpoint it came from (SHA-256), the inference spec (input size, clip length and stride,
action names) and the detection head's decoding settings, so the runtime needs nothing else and
refuses a file that does not belong to the checkpoint it is given.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from common.errors import InputError
from models.checkpoint import read_checkpoint, weights_sha256
from models.layers import fuse_conv_bn

FORMAT = "mot-action-onnx/1"
GRAPHS = ("frame", "embed", "tubes")


def graph_paths(path: str | os.PathLike) -> dict[str, Path]:
    """``model.onnx`` -> the three files of an export."""
    path = Path(path)
    stem = path.with_suffix("")
    return {"frame": path, "embed": stem.with_name(stem.name + ".embed.onnx"),
            "tubes": stem.with_name(stem.name + ".tubes.onnx")}


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Frame(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, c5_past: torch.Tensor):
        net = self.net
        c3, c4, c5 = net.backbone(image)
        window = torch.cat([c5_past, c5[:, None]], dim=1)  # (1, P + 1, C5, h, w), oldest first
        p3, p4, p5 = net.fpn([c3, c4, net.temporal.forward_last(window)])
        det = net.detection_head([p3, p4, p5])
        return (det["cls_logits"], det["box_ltrb"], det["centerness"], net.reid_head.feature_map(p3),
                net.action_head.features(p3), c5)


class _Embed(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.reid = net.reid_head

    def forward(self, reid_map: torch.Tensor, rois: torch.Tensor):
        return self.reid.embed_rois(reid_map, rois)


class _Tubes(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.action = net.action_head

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor):
        return self.action.from_features(features, boxes, mask)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's own deprecation notices and onnxscript's constant-folding log lines say
    nothing about the user's model; a screen of them reads like a failure."""
    folding = logging.getLogger("onnxscript")
    level = folding.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="The tensor attributes .* were assigned during export")
        warnings.filterwarnings("ignore", message="# The axis name: .* will not be used")
        folding.setLevel(logging.ERROR)
        try:
            yield
        finally:
            folding.setLevel(level)


def export_onnx(model, config, spec, checkpoint: str | os.PathLike, out: str | os.PathLike,
                input_size: tuple[int, int] | None = None, log=print) -> dict[str, Path]:
    """Writes the three graphs of ``model`` (a :class:`MotActionNet` in eval mode) next to ``out``."""
    import onnx

    from common.io import atomic_path

    size = tuple(input_size or spec.input_size)
    if any(v < 32 or v % 32 for v in size):
        raise InputError(f"input size {size}: two multiples of 32 (H, W)")
    net = fuse_conv_bn(copy.deepcopy(model).eval())
    head = net.detection_head
    meta = {"format": FORMAT, "checkpoint_sha256": file_sha256(checkpoint),
            "weights_sha256": weights_sha256(read_checkpoint(checkpoint)), "input_size": list(size),
            "clip_len": spec.clip_len, "stride": spec.stride, "action_names": list(spec.action_names),
            "score": head.score, "nms": head.nms, "soft_sigma": head.soft_sigma, "strides": list(head.strides),
            "num_classes": head.num_classes, "variant": config.variant}
    H, W = size
    c5 = net.backbone.out_channels[-1]
    dim_h, dim_w = torch.export.Dim("h32", min=1, max=256), torch.export.Dim("w32", min=1, max=256)
    past, tubes_t, tubes_n, rois = (torch.export.Dim(n, min=lo, max=hi) for n, lo, hi in
                                    (("past", 0, 63), ("window", 1, 64), ("tubes", 1, 4096), ("rois", 1, 4096)))
    with torch.no_grad():
        _, _, _, reid_map, features, _ = _Frame(net)(torch.rand(1, 3, H, W), torch.rand(1, 2, c5, H // 32, W // 32))
    examples = {
        "frame": (_Frame(net), (torch.rand(1, 3, H, W), torch.rand(1, 2, c5, H // 32, W // 32)),
                  ["image", "c5_past"], ["cls_logits", "box_ltrb", "centerness", "reid_map", "action_features", "c5"],
                  {"image": {2: 32 * dim_h, 3: 32 * dim_w}, "c5_past": {1: past, 3: dim_h, 4: dim_w}}),
        "embed": (_Embed(net), (reid_map, torch.tensor([[0.0, 10, 10, 40, 90], [0.0, 50, 20, 80, 100]])),
                  ["reid_map", "rois"], ["embeddings"],
                  {"reid_map": {2: 4 * dim_h, 3: 4 * dim_w}, "rois": {0: rois}}),
        "tubes": (_Tubes(net), (features.expand(3, -1, -1, -1).contiguous(),
                                torch.tensor([20.0, 10, 60, 110]).expand(1, 3, 2, 4).contiguous(),
                                torch.ones(1, 3, 2, dtype=torch.bool)),
                  ["features", "boxes", "mask"], ["logits"],
                  {"features": {0: tubes_t, 2: 4 * dim_h, 3: 4 * dim_w}, "boxes": {1: tubes_t, 2: tubes_n},
                   "mask": {1: tubes_t, 2: tubes_n}}),
    }
    paths = graph_paths(out)
    for name, (module, args, inputs, outputs, dynamic) in examples.items():
        log(f"exporting the {name} graph ...")
        with _quiet_exporter():
            program = torch.onnx.export(module.eval(), args, input_names=inputs, output_names=outputs,
                                        dynamic_shapes=dynamic, dynamo=True, verbose=False)
        proto = program.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = "mot_action", json.dumps({**meta, "graph": name})
        with atomic_path(paths[name]) as tmp:
            onnx.save(proto, str(tmp))
    return paths
