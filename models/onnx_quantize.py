"""INT8 graphs by ONNX Runtime's static quantization: QDQ format, weights int8 per output
channel, activations uint8 with ranges calibrated on real frames (MinMax over a few hundred frames).

:func:`quantize_graph` quantizes any ONNX graph from calibration inputs (used for this project's
frame graph and, in the speed benchmark, for YOLO11n's export alike); :func:`quantize_export`
turns an export of :mod:`models.onnx_export` into an INT8 one beside it: the frame graph (backbone,
temporal encoder, FPN, heads: nearly all of the compute) quantized, the small ReID-embedding and
tube graphs copied as they are, all three marked ``precision: int8`` in their metadata and still
bound to the checkpoint they came from, so ``--runtime onnxruntime --onnx model.int8.onnx`` runs
them with no other change.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from common.errors import InputError
from models.onnx_export import GRAPHS, graph_paths

# Convolutions and matrix products hold the compute; element-wise ops stay float, so quantizing
# them would only add QuantizeLinear/DequantizeLinear pairs around cheap work.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an iterator of feeds."""

    def __init__(self, feeds: Iterator[dict[str, np.ndarray]]):
        self.feeds = feeds

    def get_next(self):
        return next(self.feeds, None)


def quantize_graph(source: str | os.PathLike, target: str | os.PathLike, feeds: Iterable[dict[str, np.ndarray]],
                   *, per_channel: bool = True) -> int:
    """Static INT8 quantization of the graph ``source`` into ``target`` (written atomically),
    calibrated on ``feeds`` (each a full input dict of the graph). Returns the number of feeds read."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from common.io import atomic_path

    feeds = iter(feeds)
    first = next(feeds, None)
    if first is None:  # checked here: onnxruntime's own message ("No data is collected") names nothing
        raise InputError(f"{source}: no calibration frames to quantize with")
    counted = 0

    def counting():
        nonlocal counted
        for feed in itertools.chain([first], feeds):
            counted += 1
            yield feed

    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp, atomic_path(target) as out:
        # quantize_static writes its augmented calibration graph next to the working directory's
        # temporaries; a folder of its own keeps those away from the user's files.
        staged, prepared = Path(tmp) / "int8.onnx", Path(tmp) / "prepared.onnx"
        # ONNX Runtime's graph optimizations and shape inference first, as its quantization guide
        # asks (the quantizer then sees fused nodes with known shapes). Its symbolic shape inference
        # cannot follow the exporter's dynamic sizes, and is not needed for Conv/MatMul ranges.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(staged), _Reader(counting()), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        # MinMax keeps only each tensor's min and max per frame, so a few hundred
                        # frames fit in memory. (Its CalibMaxIntermediateOutputs option is no help:
                        # in onnxruntime 1.32 it discards the collected frames instead of folding them.)
                        calibrate_method=CalibrationMethod.MinMax)
        shutil.move(staged, out)
    return counted


def frame_graph_feeds(frame_graph: str | os.PathLike, images: Iterable[np.ndarray], meta: dict,
                      threads: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The frame graph's inputs as streaming inference gives them: each ``image (1, 3, H, W)``
    (network input, float32) with the C5 maps of the earlier frames of its temporal window, which
    the float graph itself computes, frame after frame, as :class:`OnnxStreamingModel` does."""
    import onnxruntime as ort

    from models.mot_action_net import StreamState

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(frame_graph), options, providers=["CPUExecutionProvider"])
    c5_channels = session.get_inputs()[1].shape[2]
    state = StreamState(int(meta["clip_len"]), int(meta["stride"]))
    for image in images:
        H, W = image.shape[-2:]
        window = state.past_window(state.c5)
        past = np.stack(window, axis=1) if window else np.zeros((1, 0, c5_channels, H // 32, W // 32), np.float32)
        feed = {"image": np.ascontiguousarray(image, dtype=np.float32), "c5_past": past}
        state.c5.append(session.run(["c5"], feed)[0])  # (1, C5, h, w)
        yield feed


def int8_path(onnx_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.int8.onnx`` (its companions follow :func:`graph_paths`)."""
    path = Path(onnx_path)
    return path.with_name(path.stem + ".int8" + path.suffix)


def quantize_export(onnx_path: str | os.PathLike, images: Iterable[np.ndarray], out: str | os.PathLike | None = None,
                    *, threads: int | None = None, log=print) -> dict[str, Path]:
    """The export at ``onnx_path`` (its frame graph; the companions beside it) as INT8 graphs at
    ``out`` (default :func:`int8_path`), calibrated on ``images``: network inputs ``(1, 3, H, W)``
    at the export's input size, in video order (the temporal window is built from them)."""
    import onnx

    from common.io import atomic_path
    from models.onnx_runtime import read_metadata

    sources = graph_paths(onnx_path)
    metas = {name: read_metadata(path) for name, path in sources.items()}
    if metas["frame"].get("precision", "fp32") != "fp32":
        raise InputError(f"{onnx_path}: already quantized ({metas['frame']['precision']}); quantize the fp32 export")
    targets = graph_paths(out or int8_path(onnx_path))
    H, W = metas["frame"]["input_size"]

    def checked(stream):
        for n, image in enumerate(stream):
            if tuple(image.shape) != (1, 3, H, W):
                raise InputError(f"calibration frame {n}: shape {tuple(image.shape)}, the export takes (1, 3, {H}, {W})")
            yield image

    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        staged = Path(tmp) / "frame.int8.onnx"
        log(f"calibrating and quantizing the frame graph of {onnx_path} ...")
        count = quantize_graph(sources["frame"], staged,
                               frame_graph_feeds(sources["frame"], checked(images), metas["frame"], threads))
        for name in GRAPHS:
            proto = onnx.load(str(staged if name == "frame" else sources[name]))
            props = {p.key: p for p in proto.metadata_props}
            if "mot_action" not in props:  # quantize_static does not carry the metadata over
                props["mot_action"] = proto.metadata_props.add()
                props["mot_action"].key = "mot_action"
            props["mot_action"].value = json.dumps({**metas[name], "precision": "int8" if name == "frame" else "fp32",
                                                    "calibration_frames": count})
            with atomic_path(targets[name]) as path:
                onnx.save(proto, str(path))
    log(f"wrote {', '.join(str(p) for p in targets.values())} (calibrated on {count} frames)")
    return targets


def calibration_images(source: str | os.PathLike, size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
    """The first ``count`` frames of ``source`` (a video or an image folder, read by
    :class:`~data.video.FrameStream`) as network inputs ``(1, 3, H, W)`` letterboxed to ``size``,
    consecutive, since the frame graph's temporal window is built from the frames before."""
    from data.video import FrameStream
    from models.inputs import Letterbox, network_input

    if count < 1:
        raise InputError(f"calibration frames: need at least 1, got {count}")
    stream = FrameStream(source)
    letterbox = None
    for n, (_, _, frame) in enumerate(stream):
        if n == count:
            break
        letterbox = letterbox or Letterbox.fit(frame.shape[1], frame.shape[0], tuple(size))
        yield network_input([letterbox.image(frame)]).numpy()  # (1, 3, H, W)
