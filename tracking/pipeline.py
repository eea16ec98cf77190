"""The one place that builds checkpoint -> model -> tracker -> engine -> recorder.

Every command that runs the network or the tracker over video (``scripts/inference.py``,
``scripts/evaluate.py``, the benchmarks, pseudo-labelling) goes through :class:`Pipeline`:

    pipeline = Pipeline.from_checkpoint("runs/latest/best.pt", PipelineOptions())
    session = pipeline.start(fps=stream.fps, name=..., width=..., height=...)
    for index, timestamp, frame in stream:
        result = session.step(index, timestamp, frame)      # tracks of this frame, recorded
    session.mot_rows(), session.vicr_labels(total_frames)

``Pipeline.tracker_only(options)`` tracks given detections instead (``session.step(index,
timestamp, detections=(boxes, scores))``, or ``session.step_detections(index, timestamp, rows)``
for a det.txt's rows). The tracker is chosen by name (``PipelineOptions.tracker_name``,
``--tracker``) among those :mod:`tracking.trackers` registers. Command-line flags map onto
:class:`PipelineOptions` through :func:`add_pipeline_arguments` / :func:`options_from_args`; a
threshold not given is the checkpoint's calibrated one where it has one, else
:class:`TrackerConfig`'s default.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from common.device import PRECISIONS
from common.errors import InputError
from tracking.recorder import TrackRecorder
from tracking.tracker import TrackerConfig
from tracking.trackers import (DEFAULT_TRACKER, TRACKERS, FrameResult, MultiObjectTracker, build_tracker,
                               check_tracker_name)

RUNTIMES = ("torch", "onnxruntime")

@dataclass(frozen=True)
class PipelineOptions:
    """How a checkpoint is run: the tracker (``tracker_name``, registered in
    :mod:`tracking.trackers`) and its thresholds, the lowest detection score the network keeps
    (``None``: the tracker's ``low_score``, the lowest it reads), precision and device.

    ``checkpoint_thresholds``: a checkpoint that records tracker settings chosen on its
    validation split for this tracker (``scripts/calibrate_tracker.py``) has its ``high_score``,
    ``new_track_score`` and ``report_observation`` replace ``tracker``'s, except the fields named
    in ``given`` (what ``--track-high`` / ``--track-new`` set); False runs ``tracker`` as it is."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    tracker_name: str = DEFAULT_TRACKER
    conf_threshold: float | None = None
    precision: str = "fp32"
    device: str = "auto"
    runtime: str = "torch"  # torch | onnxruntime (the graphs scripts/export.py wrote)
    onnx: str | None = None  # the exported model.onnx (default: the checkpoint's name with .onnx)
    checkpoint_thresholds: bool = True
    given: tuple[str, ...] = ()  # TrackerConfig fields set on the command line, which the checkpoint's leave alone
    action_interval_s: float = 0.0  # the action head runs on every track at most this often (0: every frame)

    def __post_init__(self):
        check_tracker_name(self.tracker_name)
        if not self.action_interval_s >= 0:
            raise InputError(f"--action-interval must be >= 0 seconds, got {self.action_interval_s}")

    def uses_checkpoint_settings(self, spec) -> bool:
        """Whether the checkpoint (``spec``: its :class:`~models.checkpoint.InferenceSpec`) has
        calibrated tracker settings for this tracker, and they are wanted."""
        chosen_for = spec.tracker_name or DEFAULT_TRACKER
        return self.checkpoint_thresholds and spec.track_high is not None and chosen_for == self.tracker_name

    def with_thresholds(self, spec) -> "PipelineOptions":
        """These options with the checkpoint's calibrated tracker settings, where
        :meth:`uses_checkpoint_settings`."""
        if not self.uses_checkpoint_settings(spec):
            return self
        stored = {"high_score": spec.track_high, "new_track_score": spec.track_new,
                  "report_observation": spec.track_report_observation}
        settings = {k: v for k, v in stored.items() if v is not None and k not in self.given}
        return replace(self, tracker=self.tracker.with_scores(**settings)) if settings else self

    def thresholds_note(self, spec) -> str | None:
        """One line saying which of the checkpoint's tracker settings these options run with."""
        if spec.track_high is None:
            return None
        if not self.uses_checkpoint_settings(spec):
            return (f"tracker settings: not the checkpoint's (chosen for {spec.tracker_name or DEFAULT_TRACKER} on "
                    f"{spec.tracker_chosen_on})")
        t = self.tracker
        kept = f"; {', '.join(self.given)} as given" if self.given else ""
        return (f"tracker settings: high {t.high_score:g}, new track {t.new_track_score:g}, reported box "
                f"{'the detection' if t.report_observation else 'the Kalman estimate'} (the checkpoint's, chosen on "
                f"{spec.tracker_chosen_on}{kept})")

    @property
    def detection_threshold(self) -> float:
        return self.tracker.low_score if self.conf_threshold is None else self.conf_threshold


def add_pipeline_arguments(parser: argparse.ArgumentParser, network: bool = True) -> None:
    """The flags every network/tracker command shares; defaults come from :class:`TrackerConfig`."""
    defaults = TrackerConfig()
    parser.add_argument("--tracker", choices=sorted(TRACKERS), default=DEFAULT_TRACKER,
                        help=f"which tracker links the detections (default {DEFAULT_TRACKER}, this project's); "
                             "bytetrack and botsort are ultralytics' (the bench extra); more: "
                             "tracking.trackers.register_tracker")
    parser.add_argument("--conf-threshold", type=float,
                        help=f"lowest detection score kept and tracked (default: the tracker's low_score, "
                             f"{defaults.low_score}; its second stage uses low scores)")
    calibrated = "the checkpoint's, when scripts/calibrate_tracker.py recorded them, else " if network else ""
    parser.add_argument("--track-high", type=float,
                        help="detections at or above this score drive the first association stage "
                             f"(ByteTrack's high threshold; default: {calibrated}{defaults.high_score})")
    parser.add_argument("--track-new", type=float,
                        help=f"a new track needs a detection at or above this score (default: {calibrated}"
                             f"{defaults.new_track_score})")
    if network:
        parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
        parser.add_argument("--runtime", choices=RUNTIMES, default="torch",
                            help="torch, or onnxruntime on the graphs scripts/export.py wrote (CPU; the deploy extra)")
        parser.add_argument("--onnx", help="with --runtime onnxruntime: the exported model.onnx (default: the "
                                           "checkpoint's path with .onnx)")
        parser.add_argument("--action-interval", type=float, default=PipelineOptions.action_interval_s, metavar="SECONDS",
                            help="run the action head on every track at most this often (default 0: every frame, "
                                 "the most accurate; 0.2 s cost 2.8-3.6 action frame-mAP on the synthetic val/test "
                                 "splits for 8 %% more fps with fast, 0.4 s: 19 %% (docs/tracking.md))")
        parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                            help="bf16: the network under bfloat16 autocast, 1.2-1.5x faster on CPUs with "
                                 "AVX512-BF16 or AMX, same accuracy (README: inference speed)")


def network_flags_given(args: argparse.Namespace) -> list[str]:
    """The flags of :func:`add_pipeline_arguments` that choose how a network runs and were given
    (away from their defaults): a command without a network refuses them instead of ignoring them."""
    given = (("--onnx", getattr(args, "onnx", None)), ("--runtime", getattr(args, "runtime", "torch") != "torch"),
             ("--precision", getattr(args, "precision", "fp32") != "fp32"),
             ("--action-interval", getattr(args, "action_interval", 0.0) != PipelineOptions.action_interval_s))
    return [flag for flag, value in given if value]


def options_from_args(args: argparse.Namespace) -> PipelineOptions:
    """:class:`PipelineOptions` from the flags of :func:`add_pipeline_arguments`; bad values are one
    :class:`InputError` naming the flag."""
    for flag in ("conf_threshold", "track_high", "track_new"):
        value = getattr(args, flag, None)
        if value is not None and not 0 <= value <= 1:
            raise InputError(f"--{flag.replace('_', '-')} must be in [0, 1], got {value}")
    flags = {"high_score": getattr(args, "track_high", None), "new_track_score": getattr(args, "track_new", None)}
    given = {name: value for name, value in flags.items() if value is not None}
    conf = args.conf_threshold
    tracker = TrackerConfig(**({} if conf is None else {"low_score": conf})).with_scores(**given)
    runtime = getattr(args, "runtime", "torch")
    if getattr(args, "onnx", None) and runtime != "onnxruntime":
        raise InputError("--onnx is read by --runtime onnxruntime")
    if runtime == "onnxruntime" and getattr(args, "precision", "fp32") != "fp32":
        raise InputError("--runtime onnxruntime runs the exported fp32 graphs: drop --precision")
    return PipelineOptions(tracker=tracker, tracker_name=getattr(args, "tracker", DEFAULT_TRACKER), conf_threshold=conf,
                           precision=getattr(args, "precision", "fp32"), device=getattr(args, "device", "auto"),
                           runtime=runtime, onnx=getattr(args, "onnx", None),
                           given=tuple(given),
                           action_interval_s=getattr(args, "action_interval", PipelineOptions.action_interval_s))


class Session:
    """One video: its own tracker (and engine, whose tracker it must be), recording every frame it
    is given. ``detection_threshold``: given detections below it are dropped, as the network's are."""

    def __init__(self, *, tracker: MultiObjectTracker, engine, recorder: TrackRecorder, detection_threshold: float,
                 name: str, fps: float, width: int, height: int):
        if not isinstance(tracker, MultiObjectTracker):
            raise TypeError(f"tracker: expected a tracking.trackers.MultiObjectTracker, got {type(tracker).__name__}")
        if engine is not None and engine.tracker is not tracker:
            raise ValueError("the engine must run the session's tracker (the recorder reads its tracks)")
        self.tracker, self.engine, self.recorder = tracker, engine, recorder
        self.detection_threshold = detection_threshold
        self.name, self.fps, self.width, self.height = name, fps, width, height

    def step(self, index: int, timestamp: float, frame: np.ndarray | None = None,
             detections: tuple | None = None) -> FrameResult:
        """Frame ``index`` (0-based) at ``timestamp`` seconds: run the network on ``frame``, or the
        tracker on ``detections`` ``(boxes (D, 4) xyxy, scores (D,))``, or ``(boxes, scores,
        embeddings (D, E))``, when the pipeline has no network."""
        if self.engine is not None:
            if frame is None:
                raise ValueError("this pipeline runs a network: give the frame")
            result = self.engine.process(frame, index, timestamp)
        else:
            if detections is None:
                raise ValueError("this pipeline tracks given detections: give them")
            boxes, scores, embeddings = (*detections, None)[:3]
            tracks = self.tracker.update(boxes, scores, embeddings, timestamp)
            result = FrameResult(index, timestamp, tracks, np.asarray(boxes), np.asarray(scores))
        self.recorder.add(index, timestamp, result.tracks)
        return result

    def step_detections(self, index: int, timestamp: float, rows) -> FrameResult:
        """Frame ``index`` (0-based) tracked on the rows of a det.txt (``MotRows``; those of MOT
        frame ``index + 1``, at or above the detection threshold)."""
        rows = rows.at_frame(index + 1)
        keep = rows.conf >= self.detection_threshold
        return self.step(index, timestamp, detections=(rows.boxes[keep], rows.conf[keep]))

    def mot_rows(self):
        return self.recorder.mot_rows()

    def vicr_labels(self, total_frames: int | None = None, partial: bool = False):
        """The V-ICR record of the frames stepped; ``total_frames`` is the video's length when known
        (raised to the frames actually seen)."""
        return self.recorder.vicr_labels(self.name, self.fps, self.width, self.height, total_frames or 0, self.tracker,
                                         partial=partial)


class Pipeline:
    """A loaded network (or none: the tracker alone on given detections) and how to run it;
    :meth:`start` gives a fresh :class:`Session` per video."""

    def __init__(self, *, options: PipelineOptions, model=None, spec=None, device=None, sources: dict | None = None):
        """``sources``: the files the model was read from (path -> what it is), which no output may
        overwrite."""
        if (model is None) != (spec is None):
            raise ValueError("give a model together with its InferenceSpec, or neither")
        self.options, self.model, self.spec, self.device = options, model, spec, device
        self.sources = dict(sources or {})

    @classmethod
    def from_checkpoint(cls, path, options: PipelineOptions | None = None) -> "Pipeline":
        from common.device import resolve_device
        from models.checkpoint import load_model_from_checkpoint, read_inference_spec

        options = options or PipelineOptions()
        if options.precision not in PRECISIONS:
            raise InputError(f"precision {options.precision!r}: expected one of {', '.join(PRECISIONS)}")
        onnx_runtime = options.runtime == "onnxruntime"
        device = resolve_device("cpu" if onnx_runtime and options.device == "auto" else options.device)
        sources = {Path(path): "the checkpoint"}
        if not onnx_runtime:
            model, _, spec = load_model_from_checkpoint(path, device)
            return cls(options=options.with_thresholds(spec), model=model, spec=spec, device=device, sources=sources)
        from models.onnx_export import graph_paths
        from models.onnx_runtime import OnnxStreamingModel
        if device.type != "cpu":
            raise InputError("--runtime onnxruntime runs on the CPU: use --device cpu")
        _, spec = read_inference_spec(path)  # the graphs hold the weights: the checkpoint's are not loaded
        onnx = options.onnx or str(Path(path).with_suffix(".onnx"))
        if not Path(onnx).is_file():
            raise InputError(f"{onnx}: no exported model (scripts/export.py --checkpoint {path} --out {onnx})")
        model = OnnxStreamingModel(onnx, checkpoint=path, input_size=spec.input_size)
        sources.update({p: "the exported ONNX model" for p in graph_paths(onnx).values()})
        return cls(options=options.with_thresholds(spec), model=model, spec=spec, device=device, sources=sources)

    @classmethod
    def tracker_only(cls, options: PipelineOptions | None = None) -> "Pipeline":
        return cls(options=options or PipelineOptions())

    @property
    def thresholds_note(self) -> str | None:
        """One line on the checkpoint's recorded tracker settings and whether they run (None: it has none)."""
        return None if self.spec is None else self.options.thresholds_note(self.spec)

    @property
    def action_names(self) -> list[str]:
        """The actions the model tells apart; none for a model trained without action labels (its
        head has a single class, whose probability is always 1)."""
        names = list(self.spec.action_names) if self.spec is not None else []
        return names if len(names) > 1 else []

    def start(self, *, fps: float, name: str = "video", width: int = 0, height: int = 0,
              tracker: MultiObjectTracker | None = None) -> Session:
        """A session for one video; ``tracker``: a built tracker to run instead of the options' one."""
        if tracker is None:
            tracker = build_tracker(self.options.tracker_name, config=self.options.tracker, fps=fps)
        engine = None
        if self.model is not None:
            from tracking.streaming import StreamingEngine
            engine = StreamingEngine(model=self.model, tracker=tracker, input_size=self.spec.input_size,
                                     clip_len=self.spec.clip_len, stride=self.spec.stride,
                                     conf_threshold=self.options.detection_threshold, device=self.device,
                                     precision=self.options.precision, actions=bool(self.action_names),
                                     action_interval_s=self.options.action_interval_s)
        return Session(tracker=tracker, engine=engine, recorder=TrackRecorder(self.action_names, width, height),
                       detection_threshold=self.options.detection_threshold, name=name, fps=fps, width=width,
                       height=height)
