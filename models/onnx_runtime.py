"""The network's streaming step run by ONNX Runtime, from the graphs of
:mod:`models.onnx_export`: :class:`OnnxStreamingModel` has the same ``stream_step`` and
``stream_actions`` as :class:`~models.mot_action_net.MotActionNet`, so the same
:class:`~tracking.streaming.StreamingEngine` (letterbox, tracker, tubes) runs on it.
onnxruntime is the optional ``deploy`` extra.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from common.errors import InputError
from models.heads.detection import level_points, postprocess_detections
from models.mot_action_net import StreamOutput, StreamState
from models.checkpoint import read_checkpoint, weights_sha256
from models.onnx_export import FORMAT, GRAPHS, file_sha256, graph_paths

DEPLOY_EXTRA = 'pip install -c constraints.txt -e ".[deploy]"'


def read_metadata(path: Path) -> dict:
    import onnx
    if not path.is_file():
        raise InputError(f"{path}: no such ONNX model")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, not an ONNX model")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for foreign or damaged files
        raise InputError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    entries = {p.key: p.value for p in proto.metadata_props}
    if "mot_action" not in entries:
        raise InputError(f"{path}: not exported by scripts/export.py (no mot_action metadata)")
    meta = json.loads(entries["mot_action"])
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: export format {meta.get('format')!r}, this version reads {FORMAT}")
    return meta


class OnnxStreamingModel:
    """``path`` is the frame graph (``model.onnx``); its two companions sit beside it. With
    ``checkpoint``, the export must have been made from that file; with ``input_size``, at that
    size."""

    def __init__(self, path: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                 input_size: tuple[int, int] | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise InputError(f"--runtime onnxruntime needs the deploy extra ({DEPLOY_EXTRA}): {exc}") from None
        paths = graph_paths(path)
        metas = {"frame": read_metadata(paths["frame"])}  # first: a foreign file is named as such
        for name in GRAPHS:
            if not paths[name].is_file():
                raise InputError(f"{paths[name]}: the {name} graph of {paths['frame']} is missing "
                                 "(scripts/export.py writes the three files together)")
            metas[name] = metas.get(name) or read_metadata(paths[name])
        self.meta = metas["frame"]
        # Bound to the weights (exports before weights_sha256 existed: to the checkpoint file).
        binding = "weights_sha256" if all("weights_sha256" in m for m in metas.values()) else "checkpoint_sha256"
        if any(m[binding] != self.meta[binding] for m in metas.values()):
            raise InputError(f"{paths['frame']}: its three graphs come from different checkpoints")
        if checkpoint is not None:
            found = weights_sha256(read_checkpoint(checkpoint)) if binding == "weights_sha256" else file_sha256(checkpoint)
            if found != self.meta[binding]:
                raise InputError(f"{paths['frame']}: exported from another checkpoint than {checkpoint} "
                                 "(export it again: scripts/export.py)")
        if input_size is not None and list(input_size) != self.meta["input_size"]:
            raise InputError(f"{paths['frame']}: exported for input size {self.meta['input_size']}, asked "
                             f"{list(input_size)}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sessions = {name: ort.InferenceSession(str(paths[name]), options, providers=["CPUExecutionProvider"])
                         for name in GRAPHS}
        self.strides = tuple(self.meta["strides"])
        self.c5_channels = self.sessions["frame"].get_inputs()[1].shape[2]
        self.num_actions = len(self.meta["action_names"])
        self._points: dict[tuple[int, int], torch.Tensor] = {}  # location centres per input size

    def _scores(self, cls_logits: torch.Tensor, centerness: torch.Tensor) -> torch.Tensor:
        scores = cls_logits.sigmoid()
        if self.meta["score"] == "cls_quality":
            scores = (scores * centerness.sigmoid()[..., None]).sqrt()
        return scores

    def stream_step(self, image: torch.Tensor, state: StreamState, *, key: int, score_threshold: float,
                    nms_threshold: float = 0.6, embed_min_score: float = 0.0) -> StreamOutput:
        """:meth:`MotActionNet.stream_step` on the exported graphs."""
        image_np = image.contiguous().numpy()
        window = state.past_window(state.c5)  # the earlier frames' C5 of the window ending at this one
        H, W = image_np.shape[-2:]
        past = np.stack(window, axis=1) if window else np.zeros((1, 0, self.c5_channels, H // 32, W // 32), np.float32)
        cls_logits, box_ltrb, centerness, reid_map, features, c5 = self.sessions["frame"].run(
            None, {"image": image_np, "c5_past": past})
        state.c5.append(c5)  # (1, C5, h, w)
        if (H, W) not in self._points:  # the same every frame of a stream
            shapes = [(H // s, W // s) for s in self.strides]
            self._points[(H, W)] = torch.cat(level_points(shapes, self.strides, "cpu"), 0)
        cls_t, ctr_t = torch.from_numpy(cls_logits), torch.from_numpy(centerness)
        det = {"cls_logits": cls_t, "box_ltrb": torch.from_numpy(box_ltrb), "centerness": ctr_t,
               "scores": self._scores(cls_t, ctr_t), "points": self._points[(H, W)]}
        found = postprocess_detections(det, (H, W), score_threshold=score_threshold, nms_threshold=nms_threshold,
                                       nms=self.meta["nms"], soft_sigma=self.meta["soft_sigma"])[0]
        boxes, scores = found["boxes"], found["scores"]
        embeddings = None
        confident = torch.nonzero(scores >= embed_min_score).squeeze(1)
        if len(confident):
            rois = torch.cat([boxes.new_zeros(len(confident), 1), boxes[confident]], dim=1).numpy()
            (embedded,) = self.sessions["embed"].run(None, {"reid_map": reid_map, "rois": rois.astype(np.float32)})
            embeddings = torch.zeros((len(boxes), embedded.shape[1]))
            embeddings[confident] = torch.from_numpy(embedded)
        state.frames.append([key, None, features])
        return StreamOutput(boxes, scores, embeddings)

    def stream_actions(self, state: StreamState, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """:meth:`MotActionNet.stream_actions` on the tubes graph."""
        return self._tube_probs(state, boxes, mask)[-1]

    def _tube_probs(self, state: StreamState, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(T, N, A)`` action probabilities of every frame of the action window."""
        window = state.window(state.frames)
        features = np.concatenate([entry[2] for entry in window], axis=0)  # (T, C/2, h, w)
        (logits,) = self.sessions["tubes"].run(None, {"features": features, "boxes": boxes.numpy().astype(np.float32),
                                                      "mask": mask.numpy()})
        return torch.from_numpy(logits).float().softmax(-1)[0]  # (1, T, N, A) -> (T, N, A)

    def clip_actions(self, frames: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(T, N, A)`` action probabilities of ``N`` tubes over a clip ``frames (1, T, 3, H, W)``
        (``boxes (1, T, N, 4)`` network pixels, ``mask (1, T, N)``). The graphs hold the streaming
        step only, so each frame's temporal context is its past in the clip, as in streaming
        inference; the eager network's clip forward also lets a frame see the clip's later frames."""
        state = StreamState(frames.shape[1], 1)
        for t in range(frames.shape[1]):
            self.stream_step(frames[:, t], state, key=t, score_threshold=1.0)  # no detection needed
        return self._tube_probs(state, boxes, mask)
