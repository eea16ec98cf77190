"""The whole job against the specialists' pipeline (issue 20): the joint network trained on an
experiment's data, and against it YOLO11n (ultralytics, from its yaml), ByteTrack / BoT-SORT /
this project's tracker on its detections, and clip classifiers (R3D-18, CNN+LSTM) on each track's
person tubes, each specialist trained from scratch on exactly the joint network's training
sequences. Both sides are scored by this project's evaluator on the same test frames.
``scripts/benchmark_specialists.py`` is the command line.

Equal footing, as the write-up states it:

* the same training sequences (the experiment's ``build_datasets``), the same input size, the same
  test frames, each side's own default hyperparameters, nothing tuned on the test data;
* budget: each specialist trains until its own process has used as many **CPU** seconds as the
  joint network's training did (a CPU clock, so other load on the machine takes nothing from it;
  the pipeline as a whole gets two to three times ours); every side's CPU seconds are reported;
* checkpoints chosen the same way, never by the frames that score them: by validation where the
  setting has validation data of its own (synthetic: the joint run's ``best.pt``, ultralytics'
  ``best.pt`` by its fitness on the val split, the classifiers' best validation accuracy), else
  the weights at the end of the fixed schedule (PETS09, whose only validation frames are the
  scored 431-530: both sides' ``last.pt``, each the EMA of its weights);
* detection AP from each side's raw detections; end-to-end fps on the same frames with the same
  threads, each pipeline's best of ``rounds``.

The clip classifiers label each confirmed track once per second (V-ICR's per-second labels), on
the tube cut as pseudo-labelling cuts it; the joint network's action head runs on every frame, so
on speed the specialists are given the cheaper rate.
"""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from common.errors import InputError

TRACKERS = ("bytetrack", "botsort", "mot-action")
# AP: COCO AP over IoU 0.5-0.95, where AP50 alone cannot tell a detector that finds people from one
# that also boxes them tightly.
METRICS = (("MOTA", "mota"), ("IDF1", "idf1"), ("HOTA", "HOTA"), ("AP50", "det_AP50"), ("AP", "det_AP"),
           ("act fmAP", "action_frame_mAP"), ("id-act acc", "id_action_acc"), ("vmAP@0.5", "video_mAP@0.5"),
           ("HOTA-act", "HOTA_act"))


@dataclass(frozen=True)
class Setting:
    """What is trained (an experiment and its overrides) and what scores it."""

    name: str
    experiment: str
    overrides: tuple[str, ...] = ()
    actions: bool = True  # the test data has action labels
    # Which checkpoint each side keeps: "best" by its validation, or "last" (the EMA weights at the
    # end of the schedule) where the validation frames are the scored ones.
    weights: str = "best"
    # Frames past the ground truth both sides also run on, written for whoever holds their ground
    # truth (PETS09-S2L1 531-795: twice as crowded, most of its people never seen in training).
    held_out: tuple[int, int] | None = None
    # Still images of other scenes with YOLO labels, (images folder, labels folder), that neither
    # side trains on: both detectors' person AP on them says whether what they learnt transfers.
    stills: tuple[str, str] | None = None

    def __post_init__(self):
        if self.weights not in ("best", "last"):
            raise ValueError(f"weights must be 'best' or 'last', got {self.weights!r}")

    def test_data(self, cfg) -> tuple[Path, tuple[int, int] | None]:
        """``(ground-truth folder, MOT frames or None)``: the synthetic test split, or the frames of
        the sequence the experiment validates on (PETS09-S2L1 431-530)."""
        if cfg.data.sources:
            validated = cfg.data.val_sources[0]
            frames = tuple(validated.frames) if validated.get("frames") else None
            return Path(validated.root), frames
        return Path(cfg.data.root) / "test", None

    def calibration_data(self, cfg) -> Path | None:
        """The ground-truth sequences every pipeline's tracker settings are chosen on (the
        synthetic val split), or None where the experiment has none apart from the scored frames
        (PETS09: its val frames are the scored ones), and the trackers keep their defaults."""
        if cfg.data.sources:
            return None
        return Path(cfg.data.root) / "val"


SETTINGS = {"synthetic": Setting("synthetic", "synthetic_30min"),
            "pets09": Setting("pets09", "pets09_tiny", actions=False, weights="last", held_out=(531, 795),
                              stills=("../shared/data/real/coco128/images/val2017",
                                      "../shared/data/real/coco128/object_detection/labels/val2017"))}


@dataclass
class Budget:
    """Seconds of one side's training."""

    cpu_seconds: float
    wall_seconds: float


@dataclass
class Report:
    rows: dict[str, dict] = field(default_factory=dict)  # pipeline -> metrics (percent), fps, training cost
    budget_s: float = 0.0
    tracker_settings: dict = field(default_factory=dict)  # joint network / YOLO11n + tracker -> settings chosen on val
    held_out: dict = field(default_factory=dict)  # pipeline -> folder of its MOT files on the setting's held-out frames
    stills: dict = field(default_factory=dict)  # detector -> person AP50 / AP (percent) on the setting's stills


def _cpu_now() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def train_joint(cfg, run_dir: Path, weights: str = "best") -> tuple[Path, Budget]:
    """The joint network trained as ``scripts/run_trainer.py`` trains it; its ``{weights}.pt`` and cost."""
    from omegaconf import OmegaConf

    from train.run import train
    cfg = OmegaConf.merge(cfg, {"trainer": {"calibrate_tracker": False}})  # the benchmark calibrates every side alike
    wall, cpu = time.perf_counter(), _cpu_now()
    train(cfg, run_dir=run_dir)
    return run_dir / f"{weights}.pt", Budget(_cpu_now() - cpu, time.perf_counter() - wall)


def training_data(cfg):
    """The joint network's training and validation sequences and label map (the same objects
    its data loaders read)."""
    from train.config import check_train_config
    from train.run import build_datasets
    from omegaconf import OmegaConf
    checked = check_train_config(OmegaConf.to_container(cfg, resolve=True))
    train_set, val_set, label_map, _ = build_datasets(checked.data)
    return train_set.sequences, val_set.sequences, label_map


def _vicr_labels(name: str, rows, scores: np.ndarray | None, label_map, fps: float, width: int, height: int,
                 total: int):
    """A tracker's rows and the classifier's per-row action probabilities as a V-ICR record (the
    file the project's inference writes, read back by the evaluator)."""
    from data.formats.vicr import LabelMap, VicrFrame, VicrPerson, VicrVideoInfo, VicrVideoLabels
    from data.tubes import second_of
    label_map = label_map or LabelMap({})  # no actions to score (PETS09)
    names = [label_map.names[i] for i in label_map.ids()] if scores is not None else []
    persons = {}
    for track in sorted(set(rows.track_id.tolist())):
        idx = np.flatnonzero(rows.track_id == track)
        idx = idx[np.argsort(rows.frame[idx], kind="stable")]
        frames, timeline = [], {}
        for i in idx:
            frame = int(rows.frame[i]) - 1
            probs = None if scores is None else scores[i]
            top = None if probs is None else int(np.argmax(probs))
            frames.append(VicrFrame(frame, round(frame / fps, 4), tuple(float(v) for v in rows.boxes[i]),
                                    names[top] if top is not None else None, top,
                                    None if probs is None else tuple(float(p) for p in probs), float(rows.conf[i])))
            if top is not None:
                timeline.setdefault(second_of(frame, fps), (names[top], top))
        persons[f"id_{track}"] = VicrPerson(frames=frames, action_timeline=timeline)
    return VicrVideoLabels(VicrVideoInfo(name, fps, width, height, total, total / fps), label_map, persons)


def _score(found: dict, results: dict, label_map, frames) -> dict:
    """The evaluator's COMBINED row for ``results`` (``{seq: SequenceResult}``), on ``frames``."""
    from evaluation.protocol import evaluate, restrict
    seqs = dict(found)
    if frames is not None:
        for name in list(results):
            seqs[name], results[name] = restrict(found[name], results[name], *frames)
    table = evaluate({n: seqs[n] for n in results}, results, label_map)["table"]
    return {key: float(table["COMBINED"].get(key, float("nan"))) for _, key in METRICS}


def write_detections(folder: Path, detections: dict) -> None:
    """Each sequence's raw detections (``{seq: MotRows}``) as ``folder/<seq>.txt``: the boxes AP
    was computed on, which ``scripts/evaluate.py --detections folder`` scores again."""
    from data.formats.mot import write_mot_file
    for name, rows in detections.items():
        write_mot_file(folder / f"{name}.txt", rows, layout="mot15")


def score_joint(checkpoint: Path, found: dict, label_map, frames, out_dir: Path, options,
                detections_dir: Path | None = None) -> dict:
    from evaluation.protocol import load_results, run_checkpoint
    from tracking.pipeline import Pipeline
    pipeline = Pipeline.from_checkpoint(checkpoint, options)
    raw = run_checkpoint(pipeline, found, out_dir, frames)
    if detections_dir is not None:
        write_detections(detections_dir, {name: files["detections"] for name, files in raw.items()})
    results = {}
    for name, files in raw.items():
        results[name] = load_results(found[name], {"txt": files["txt"], "json": files["json"]}, label_map,
                                     allow_empty=True, frames=frames)
        results[name].detections = files["detections"]
    return _score(found, results, label_map, frames)


def _frame_range(frames, length: int) -> tuple[int, int]:
    return frames or (1, length)


def _first(frames) -> int:
    """The first MOT frame run on."""
    return frames[0] if frames else 1


def _sequence(gt_seq, frames):
    """The frames to run on, as a :class:`data.sequences.Sequence` (0-based inside the range)."""
    from data.sequences import FrameRange, MotSequence
    seq = MotSequence(gt_seq.root)
    first, last = _frame_range(frames, len(seq))
    return FrameRange(seq, first, last) if (first, last) != (1, len(seq)) else seq


def _detect_all(detector, found: dict, frames, imgsz, threads: int, log) -> dict:
    """``{seq: (the frames run on as a Sequence, YOLO11n's raw detections in MOT frame numbers)}``."""
    from evaluation.specialists.detector import detect_sequence
    detections = {}
    for name, gt_seq in found.items():
        log(f"{name}: detecting")
        seq = _sequence(gt_seq, frames)
        rows = detect_sequence(detector.weights, seq, imgsz=imgsz, threads=threads).rows
        rows.frame = rows.frame + (_first(frames) - 1)  # back to the sequence's MOT frame numbers
        detections[name] = (seq, rows)
    return detections


def _track_all(detections: dict, tracker: str, config, found: dict, frames) -> dict:
    """``{seq: MotRows}``: ``tracker`` (with its :class:`TrackerConfig` ``config``) on each
    sequence's detections, frame by frame over ``frames``."""
    from tracking.pipeline import Pipeline, PipelineOptions
    tracked = {}
    for name, (seq, rows) in detections.items():
        session = Pipeline.tracker_only(PipelineOptions(tracker=config, tracker_name=tracker)).start(
            fps=seq.fps, name=name, width=seq.width, height=seq.height)
        first, last = _frame_range(frames, found[name].num_frames)
        for index in range(first - 1, last):
            session.step_detections(index, index / seq.fps, rows)
        tracked[name] = session.mot_rows()
    return tracked


def run_specialists(detector, classifiers: dict, found: dict, label_map, frames, out_dir: Path, imgsz,
                    threads: int, log, trackers: dict, detections_dir: Path | None = None) -> dict[str, dict]:
    """Every tracker x classifier pipeline on the test sequences: ``{pipeline: metrics}``. The
    detector runs once per sequence; its raw detections give every pipeline's AP (and are written
    to ``detections_dir`` when given). ``trackers``: ``{tracker name: its TrackerConfig}``."""
    from data.formats.mot import write_mot_file
    from data.formats.vicr import write_vicr_video
    from evaluation.protocol import load_results
    from evaluation.specialists.actions import label_tracks

    detections = _detect_all(detector, found, frames, imgsz, threads, log)
    if detections_dir is not None:
        write_detections(detections_dir, {name: rows for name, (_, rows) in detections.items()})
    reports = {}
    for tracker in TRACKERS:
        tracked = _track_all(detections, tracker, trackers[tracker], found, frames)
        for label, _, kind in (names for names in _pipeline_names(classifiers) if names[1] == tracker):
            classifier = classifiers.get(kind)
            folder = out_dir / label.replace(" + ", "_").replace(" ", "")
            results = {}
            for name, (seq, det_rows) in detections.items():
                rows = tracked[name]
                scores = None
                if classifier is not None and len(rows):
                    local = replace(rows, frame=rows.frame - (_first(frames) - 1))  # the range's own frames
                    scores = label_tracks(classifier, seq, local, fps=seq.fps)
                txt, js = folder / f"{name}.txt", folder / f"{name}.json"
                write_mot_file(txt, rows, layout="mot15")
                write_vicr_video(js, _vicr_labels(name, rows, scores, label_map, seq.fps, seq.width, seq.height,
                                                  found[name].num_frames))
                results[name] = load_results(found[name], {"txt": txt, "json": js}, label_map, allow_empty=True,
                                             frames=frames)
                results[name].detections = det_rows
            reports[label] = _score(found, results, label_map, frames)
            log(f"{label}: " + ", ".join(f"{h} {reports[label][k]:.2f}" for h, k in METRICS))
    return reports


def write_held_out(checkpoint: Path, detector, found: dict, frames: tuple[int, int], out_dir: Path, imgsz,
                   threads: int, joint_options, trackers: dict, log) -> dict[str, Path]:
    """Both sides' tracks on ``frames``, past the ground truth this project has (PETS09-S2L1
    531-795): MOT files ``out_dir/<pipeline>/<seq>.txt`` for whoever holds that ground truth to
    score (``scripts/evaluate.py --results``). Nothing is scored here. Returns ``{pipeline: folder}``."""
    from data.formats.mot import write_mot_file
    from evaluation.protocol import run_checkpoint
    from tracking.pipeline import Pipeline
    for name, seq in found.items():
        length = len(_sequence(seq, None))
        if not 1 <= frames[0] <= frames[1] <= length:
            raise InputError(f"{seq.root}: held-out frames {frames[0]}-{frames[1]} are not in its {length} frames")
    folders = {"joint network (ours)": out_dir / "joint"}
    log(f"held-out frames {frames[0]}-{frames[1]}: the joint network")
    run_checkpoint(Pipeline.from_checkpoint(checkpoint, joint_options), found, folders["joint network (ours)"], frames)
    detections = _detect_all(detector, found, frames, imgsz, threads, log)
    for tracker in TRACKERS:
        label = f"YOLO11n + {tracker}"
        folders[label] = out_dir / label.replace(" + ", "_")
        for name, rows in _track_all(detections, tracker, trackers[tracker], found, frames).items():
            write_mot_file(folders[label] / f"{name}.txt", rows, layout="mot15")
    return folders


def score_stills(checkpoint: Path, detector, stills: tuple[str, str], imgsz, threads: int, joint_options,
                 log) -> dict[str, dict]:
    """Both detectors' person AP50 / AP (:func:`evaluation.stills.stills_ap`) on still images of
    other scenes (``stills``: the images folder and its YOLO labels folder), each image run alone."""
    from data.stills import read_stills
    from data.video import read_image
    from evaluation.specialists.detector import detect_sequence
    from evaluation.stills import evaluate_stills, stills_ap
    from tracking.pipeline import Pipeline
    images = read_stills("yolo", Path(stills[0]), Path(stills[1]))
    log(f"{len(images)} still images of other scenes ({stills[0]}): both detectors")
    scores = {"joint network (ours)": evaluate_stills(Pipeline.from_checkpoint(checkpoint, joint_options), images)}
    frames = [read_image(image.path) for image in images]
    rows = detect_sequence(detector.weights, frames, imgsz=imgsz, threads=threads).rows  # frame k + 1: image k
    found = [{"boxes": rows.at_frame(k + 1).boxes, "scores": rows.at_frame(k + 1).conf, "size": frame.shape[1::-1]}
             for k, frame in enumerate(frames)]
    scores["YOLO11n"] = stills_ap(found, images)
    return scores


class _DecodedFrames:
    """Frames decoded before timing (both sides are timed without video decoding), as the
    :class:`data.sequences.Sequence` the classifiers' tube cutting reads."""

    def __init__(self, frames: list[np.ndarray], fps: float, name: str):
        self.frames, self.fps, self.name = frames, fps, name
        self.height, self.width = frames[0].shape[:2]

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index]


def _pipeline_names(classifiers: dict) -> list[tuple[str, str, str | None]]:
    """``(label, tracker, classifier kind or None)`` of every specialists' pipeline."""
    return [(f"YOLO11n + {tracker}" + (f" + {kind}" if kind else ""), tracker, kind)
            for tracker in TRACKERS for kind in (classifiers or {None: None})]


def measure_fps(checkpoint: Path, detector, classifiers: dict, gt_seq, frames, imgsz, threads: int, rounds: int,
                count: int, joint_options, trackers: dict) -> dict[str, float]:
    """End-to-end frames per second on the same ``count`` decoded frames, each pipeline's best of
    ``rounds``: the joint network + tracker + action head, and YOLO11n (its steady per-frame time:
    loading and the first call left out, as the joint network is loaded before its clock starts)
    + each tracker + each clip classifier once per track-second."""
    from common.device import torch_threads
    from evaluation.specialists.actions import label_tracks
    from evaluation.specialists.detector import detect_sequence
    from tracking.pipeline import Pipeline, PipelineOptions

    seq = _sequence(gt_seq, frames)
    decoded = _DecodedFrames([seq.frame(i) for i in range(min(count, len(seq)))], seq.fps, gt_seq.name)
    n = len(decoded)
    with torch_threads(threads):
        joint = Pipeline.from_checkpoint(checkpoint, joint_options)
        best: dict[str, float] = {}
        for _ in range(rounds):
            session = joint.start(fps=decoded.fps, name=decoded.name, width=decoded.width, height=decoded.height)
            start = time.perf_counter()
            for index in range(n):
                session.step(index, index / decoded.fps, decoded.frame(index))
            best["joint"] = max(best.get("joint", 0.0), n / (time.perf_counter() - start))
            found = detect_sequence(detector.weights, decoded.frames, imgsz=imgsz, threads=threads)
            detect_s = found.seconds_per_frame * n
            for label, tracker, kind in _pipeline_names(classifiers):
                start = time.perf_counter()
                session = Pipeline.tracker_only(PipelineOptions(tracker=trackers[tracker], tracker_name=tracker)).start(
                    fps=decoded.fps, name=decoded.name, width=decoded.width, height=decoded.height)
                for index in range(n):
                    session.step_detections(index, index / decoded.fps, found.rows)
                if kind is not None:
                    label_tracks(classifiers[kind], decoded, session.mot_rows(), fps=decoded.fps, threads=threads)
                best[label] = max(best.get(label, 0.0), n / (detect_s + time.perf_counter() - start))
        return best


def tracker_defaults(fps: float) -> dict:
    """``{tracker: TrackerConfig}``, each tracker at its own defaults: ultralytics' yaml for
    ByteTrack and BoT-SORT (its 0.25 thresholds and 30-frame buffer,
    :func:`tracking.ultralytics_trackers.default_config`), this project's for its own."""
    from tracking.tracker import TrackerConfig
    from tracking.ultralytics_trackers import KINDS, default_config
    return {tracker: default_config(tracker, fps) if tracker in KINDS else TrackerConfig() for tracker in TRACKERS}


def _frame_rate(sequences: dict) -> float:
    """The frame rate the ``sequences`` (``{name: GtSequence}``) share: the trackers count frames."""
    rates = sorted({float(seq.fps) for seq in sequences.values()})
    if len(rates) != 1 or not rates[0] > 0:
        raise InputError(f"the benchmark's sequences need one known frame rate, got {rates}")
    return rates[0]


def calibrate_trackers(checkpoint: Path, detector, gt_root: Path | None, imgsz, threads: int, log,
                       fps: float):
    """Every pipeline's tracker settings chosen the same way, by HOTA on the sequences under
    ``gt_root`` (:mod:`evaluation.calibration`), from each tracker's own defaults at ``fps``
    (:func:`tracker_defaults`; those are always among the settings tried): the joint network's
    :class:`~tracking.pipeline.PipelineOptions`, ``{tracker: TrackerConfig}`` for YOLO11n's
    detections, and ``{pipeline: chosen settings}`` for the report. ``gt_root`` None: every
    tracker's defaults (and the checkpoint's own settings are not read either)."""
    from evaluation.calibration import calibrate, format_settings, record_network, record_rows
    from evaluation.protocol import find_gt_sequences
    from evaluation.specialists.detector import detect_sequence
    from tracking.pipeline import Pipeline, PipelineOptions

    base = PipelineOptions(device="cpu", checkpoint_thresholds=False)
    defaults = tracker_defaults(fps)
    if gt_root is None:
        return base, defaults, {}
    sequences = find_gt_sequences(gt_root, None)
    log(f"calibrating every pipeline's tracker on {gt_root}")
    recorded = record_network(Pipeline.from_checkpoint(checkpoint, base), sequences)
    joint = calibrate(recorded, sequences, tracker_name=base.tracker_name, base=base.tracker)
    chosen = {"joint network (ours)": joint.settings}
    found = {}
    for name, gt_seq in sequences.items():
        found[name] = detect_sequence(detector.weights, _sequence(gt_seq, None), imgsz=imgsz, threads=threads).rows
    yolo = record_rows(found, sequences)
    trackers = {}
    for tracker in TRACKERS:
        calibration = calibrate(yolo, sequences, tracker_name=tracker, base=defaults[tracker])
        trackers[tracker] = calibration.config(defaults[tracker])
        chosen[f"YOLO11n + {tracker}"] = calibration.settings
    for label, settings in chosen.items():
        log(f"{label}: {format_settings(settings)}")
    return replace(base, tracker=joint.config(base.tracker)), trackers, chosen


TRAINED = "trained.json"  # what each trained specialist cost, written as soon as it is trained


def _record_trained(out_dir: Path, setting: Setting, budget: float, detector, classifiers: dict) -> None:
    """``trained.json``: the specialists trained so far, their files and costs, so that a crash
    while scoring loses no training and a later run can take them (``reuse``)."""
    from common.io import atomic_write_json
    record = {"setting": setting.name, "experiment": setting.experiment, "budget_s": budget,
              "yolo11n": {"weights": str(detector.weights.resolve()), "cpu_s": detector.cpu_seconds,
                          "wall_s": detector.wall_seconds, "epochs": detector.epochs, "imgsz": detector.imgsz,
                          "log": str(detector.log.resolve())},
              "classifiers": {kind: str((out_dir / "classifiers" / f"{kind}.pt").resolve()) for kind in classifiers}}
    atomic_write_json(out_dir / TRAINED, record)


def load_trained(folder: Path, setting: Setting, budget: float):
    """``(detector, {kind: classifier}, budget)`` trained by an earlier run of this benchmark in ``folder``
    (its ``--out``), for the same setting and at least ``budget`` CPU seconds each, with the
    budget they had; an :class:`InputError` naming the file and the mismatch otherwise. A run
    before ``trained.json`` existed is read from its ``report.json`` and ``yolo/`` folder (the
    detector only)."""
    import json

    from evaluation.specialists.actions import TrainedClassifier
    from evaluation.specialists.detector import TrainedDetector
    path = folder / TRAINED
    if not path.is_file():
        path = folder / "report.json"
    if not path.is_file():
        raise InputError(f"{folder}: no {TRAINED} or report.json: not the --out of a benchmark run")
    try:
        record = json.loads(path.read_text())
        if "training" in record:  # report.json of a run before trained.json
            weights = folder / "yolo" / "yolo11n" / "weights" / f"{setting.weights}.pt"
            cost = record["training"]["yolo11n"]
            record = {**record, "classifiers": {},
                      "yolo11n": {"weights": str(weights), "imgsz": None, "log": str(folder / "yolo" / "train.log"),
                                  **cost}}
        for key in ("setting", "budget_s", "yolo11n", "classifiers"):
            if key not in record:
                raise KeyError(key)
        if record["setting"] != setting.name or record["experiment"] != setting.experiment:
            raise InputError(f"{path}: trained for setting {record['setting']} (experiment={record['experiment']}), "
                             f"not {setting.name} (experiment={setting.experiment})")
        if float(record["budget_s"]) < budget * (1 - 1e-6):
            raise InputError(f"{path}: trained with a budget of {record['budget_s']} CPU s, under this joint run's "
                             f"{budget:g}: each specialist must have at least the joint network's budget")
        yolo = record["yolo11n"]
        weights = Path(yolo["weights"])
        if weights.stem != setting.weights:  # ultralytics names them best.pt / last.pt
            raise InputError(f"{path}: the detector kept is {weights.name}, but the {setting.name} setting keeps "
                             f"{setting.weights}.pt")
        if not weights.is_file():
            raise InputError(f"{path}: the detector's weights {weights} are missing")
        detector = TrainedDetector(weights, float(yolo["cpu_s"]), float(yolo["wall_s"]), int(yolo["epochs"]),
                                   int(yolo["imgsz"] or 0), Path(yolo["log"]))
        classifiers = {}
        for kind, file in record["classifiers"].items():
            if not Path(file).is_file():
                raise InputError(f"{path}: the {kind} classifier's file {file} is missing")
            classifiers[kind] = TrainedClassifier.load(file)
        recorded_budget = float(record["budget_s"])
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise InputError(f"{path}: not a readable record of trained specialists ({type(error).__name__}: {error})") from None
    return detector, classifiers, recorded_budget


def run_benchmark(setting: Setting, out_dir: Path, *, checkpoint: Path | None = None, joint_cpu_s: float | None = None,
                  budget_s: float | None = None, threads: int = 2, rounds: int = 3, fps_frames: int = 100,
                  reuse: Path | None = None, calibration: bool = True, log=None) -> Report:
    """Trains (or takes) the joint network and the specialists of ``setting`` and scores them;
    writes ``report.json`` and ``report.md`` to ``out_dir`` and returns the report. ``budget_s``
    replaces the specialists' budget (the joint run's CPU seconds) for a quick check only.
    ``reuse``: an earlier run's ``--out`` whose trained specialists (same setting, at least this
    budget) are taken instead of trained again; the missing ones are trained with the earlier
    run's budget, so that all of them had the same. ``calibration``: every pipeline's tracker
    settings chosen on the setting's validation sequences (:func:`calibrate_trackers`); False:
    the trackers' defaults for all."""
    from common.io import check_output_path
    from evaluation.protocol import find_gt_sequences, find_label_map
    from evaluation.specialists.actions import KINDS, cut_tubes, train_classifier
    from evaluation.specialists.detector import check_imgsz, train_yolo, write_yolo_dataset
    from train.run import compose_config

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    # Checked before hours of training, not when the first specialist's folder is written.
    taken = [name for name in ("joint", "yolo_data", "yolo", "classifiers", "results", "detections", "report.json", TRAINED)
             if (out_dir / name).exists()]
    if taken:
        raise InputError(f"{out_dir}: already holds a benchmark run ({', '.join(taken)}): choose a new --out")
    check_output_path(out_dir / "report.json", "the benchmark report")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = compose_config([f"experiment={setting.experiment}", *setting.overrides])
    imgsz = check_imgsz(tuple(cfg.data.size))
    if checkpoint is None:
        log(f"joint network: training experiment={setting.experiment}")
        checkpoint, joint = train_joint(cfg, out_dir / "joint", setting.weights)
    else:
        if joint_cpu_s is None:
            raise InputError("--checkpoint needs --joint-cpu-s: the CPU seconds its training took (the specialists' budget)")
        if checkpoint.stem != setting.weights:
            log(f"note: {checkpoint}: the {setting.name} setting keeps each side's {setting.weights}.pt "
                f"({'by validation' if setting.weights == 'best' else 'not chosen by the scored frames'}); the "
                f"specialists' is chosen that way")
        joint = Budget(joint_cpu_s, float("nan"))
    budget = joint.cpu_seconds if budget_s is None else budget_s
    train_seqs, val_seqs, label_map = training_data(cfg)

    detector, classifiers = None, {}
    if reuse is not None:  # the missing specialists get the same budget as the taken ones
        detector, classifiers, budget = load_trained(reuse, setting, budget)
    report = Report(budget_s=budget)
    if detector is None:
        log(f"YOLO11n: {budget:.0f} s on {len(train_seqs)} training sequences")
        dataset = write_yolo_dataset(train_seqs, val_seqs, out_dir / "yolo_data")
        detector = train_yolo(dataset, out_dir / "yolo", imgsz=imgsz, budget_s=budget, seed=int(cfg.seed),
                              threads=threads, weights=setting.weights)
    else:
        log(f"YOLO11n: taken from {reuse} ({detector.cpu_seconds:.0f} CPU s, {detector.epochs} epochs)")
    if setting.actions and len(label_map) > 1:
        wanted = [kind for kind in KINDS if kind not in classifiers]
        if wanted:
            tubes, val_tubes = cut_tubes(train_seqs, frames_per_second=4), cut_tubes(val_seqs, frames_per_second=4)
        num_classes = max(label_map.ids()) + 1
        for kind in wanted:
            log(f"{kind}: {budget:.0f} s on {len(tubes)} tubes")
            classifiers[kind] = train_classifier(kind, tubes, num_classes, budget_s=budget, seed=int(cfg.seed),
                                                 threads=threads, val_tubes=val_tubes, log=log)
            classifiers[kind].save(out_dir / "classifiers" / f"{kind}.pt")
            _record_trained(out_dir, setting, budget, detector, classifiers)
    else:
        classifiers = {}
    for kind, classifier in classifiers.items():
        if not (out_dir / "classifiers" / f"{kind}.pt").is_file():
            classifier.save(out_dir / "classifiers" / f"{kind}.pt")
    _record_trained(out_dir, setting, budget, detector, classifiers)

    gt_root, frames = setting.test_data(cfg)
    found = find_gt_sequences(gt_root, None)
    joint_options, trackers, report.tracker_settings = calibrate_trackers(
        checkpoint, detector, setting.calibration_data(cfg) if calibration else None, imgsz, threads, log,
        _frame_rate(found))
    gt_labels = find_label_map(gt_root) if setting.actions else None
    report.rows["joint network (ours)"] = {
        **score_joint(checkpoint, found, gt_labels, frames, out_dir / "results" / "joint", joint_options,
                      out_dir / "detections" / "joint"),
        "train_cpu_min": joint.cpu_seconds / 60}
    specialists = run_specialists(detector, classifiers, found, gt_labels, frames, out_dir / "results", imgsz,
                                  threads, log, trackers, out_dir / "detections" / "YOLO11n")
    speeds = measure_fps(checkpoint, detector, classifiers, next(iter(found.values())), frames, imgsz, threads, rounds,
                         fps_frames, joint_options, trackers)
    report.rows["joint network (ours)"]["fps"] = speeds["joint"]
    if setting.held_out is not None:
        report.held_out = {label: str(folder) for label, folder in write_held_out(
            checkpoint, detector, found, setting.held_out, out_dir / "held_out", imgsz, threads, joint_options,
            trackers, log).items()}
    if setting.stills is not None:
        if all(Path(folder).is_dir() for folder in setting.stills):
            report.stills = score_stills(checkpoint, detector, setting.stills, imgsz, threads, joint_options, log)
        else:
            log(f"note: {setting.stills[0]} or its labels not found: no stills of other scenes scored")
    for label, _, kind in _pipeline_names(classifiers):
        cpu = detector.cpu_seconds + (classifiers[kind].cpu_seconds if kind else 0.0)
        report.rows[label] = {**specialists[label], "fps": speeds[label], "train_cpu_min": cpu / 60}
    _write(report, setting, out_dir, detector, classifiers, joint)
    return report


def format_report(report: Report) -> str:
    heads = [h for h, _ in METRICS] + ["fps", "train CPU min"]
    lines = ["| pipeline | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for name, row in report.rows.items():
        cells = [f"{row[k]:.2f}" if np.isfinite(row.get(k, float("nan"))) else "-" for _, k in METRICS]
        cells += [f"{row['fps']:.1f}", f"{row['train_cpu_min']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write(report: Report, setting: Setting, out_dir: Path, detector, classifiers: dict, joint: Budget) -> None:
    from common.io import atomic_write_json, atomic_write_text
    costs = {"joint": {"cpu_s": joint.cpu_seconds, "wall_s": joint.wall_seconds},
             "yolo11n": {"cpu_s": detector.cpu_seconds, "wall_s": detector.wall_seconds, "epochs": detector.epochs},
             **{k: {"cpu_s": c.cpu_seconds, "wall_s": c.wall_seconds, "steps": c.steps, "val_accuracy": c.val_accuracy}
                for k, c in classifiers.items()}}
    atomic_write_json(out_dir / "report.json", {"setting": setting.name, "experiment": setting.experiment,
                                                "weights": setting.weights, "budget_s": report.budget_s, "training": costs, "rows": report.rows,
                                                "tracker_settings": report.tracker_settings,
                                                "held_out": report.held_out, "stills": report.stills},
                      default=float)
    from evaluation.calibration import format_settings
    settings = "".join(f"\n- {label}: {format_settings(chosen)}" for label, chosen in report.tracker_settings.items())
    calibrated = (f"\n\nTracker settings chosen by HOTA on the validation sequences:{settings}\n" if settings
                  else "\n\nEvery tracker with its default settings (no calibration).\n")
    kept = ("Each side's checkpoint: its best on the validation data." if setting.weights == "best" else
            "Each side's checkpoint: the EMA weights at the end of its schedule (last.pt): the only validation "
            "frames are the scored ones.")
    held_out = "".join(f"\n- {label}: {folder}" for label, folder in report.held_out.items())
    if held_out:
        first, last = setting.held_out
        held_out = (f"\n\nFrames {first}-{last}, past the ground truth here, each pipeline's tracks (not scored; "
                    f"`scripts/evaluate.py --gt-root GT --results FOLDER --frames {first}-{last}` with their "
                    f"ground truth):{held_out}\n")
    boxes = ("\nEach detector's raw boxes, the ones the AP columns score: `detections/joint/` and `detections/YOLO11n/` "
             "(`scripts/evaluate.py --gt-root <the test sequences> --detections FOLDER --conf-threshold 0` scores "
             "them again, with this project's tracker on them).\n")
    stills = "".join(f"\n- {label}: AP50 {row['det_AP50']:.2f}, AP {row['det_AP']:.2f}" for label, row in report.stills.items())
    if stills:
        first = next(iter(report.stills.values()))
        stills = (f"\n\nPerson detection on {first['images']} still images of other scenes ({first['people']} people; "
                  f"{setting.stills[0]}), which neither side trained on:{stills}\n")
    atomic_write_text(out_dir / "report.md", format_report(report) + calibrated + "\n" + kept + "\n" + boxes + held_out
                      + stills)


def quick_setting(folder: Path) -> Setting:
    """A benchmark small enough for a test: a tiny generated dataset and the smoke experiment."""
    from data.synthetic import SyntheticConfig, prepare_synthetic
    config = SyntheticConfig(width=192, height=128, length=30, min_people=3, max_people=4, min_distractors=1,
                             max_distractors=1, sequences={"train": 2, "val": 1, "test": 1})
    prepare_synthetic(folder, seed=0, config=config, use_existing=True, log=lambda message: None)
    return Setting("quick", "smoke", (f"data.root={folder}", "data.size=[128,192]", "data.clip_len=4"))
