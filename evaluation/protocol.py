"""The evaluation protocol: find ground-truth sequences, load results in every accepted form, run
a checkpoint over a split, and score it all with the official metrics. ``scripts/evaluate.py``
parses flags and calls :func:`run_evaluation`; tests call these functions directly.

Ground-truth sequences: ``<gt-root>/<seq>/gt/gt.txt`` or ``<gt-root>/<seq>/gt.txt``, with
``seqinfo.ini`` (frame count, fps) and ``gt/actions.txt`` when present, or any other layout a
dataset format registers (:mod:`data.registry`). Result files:
``<seq>.txt`` (MOTChallenge rows) and/or ``<seq>.json`` (V-ICR, with per-frame actions;
``action_scores`` when the project's inference wrote it, else the top action one-hot), in a folder
or given one by one (a file named otherwise, such as ``TUD-Campus/test.txt``, takes its sequence
from its folder).

Metrics: MOTA, MOTP (mean IoU of matches, MOTChallenge's convention), FP, FN, IDsw, Frag, MT/PT/ML,
IDF1/IDP/IDR (py-motmetrics, equal to the MOTChallenge devkit); HOTA, DetA, AssA (TrackEval);
COCO AP50 and AP50:95 of the boxes (the raw detector output with a checkpoint, the tracked boxes
and their scores otherwise); action frame-mAP at IoU 0.5 (AVA / VOC protocol) and the
identity-aware action score. MOTChallenge preprocessing: ground truth with conf 0 is dropped, and
for 9-column (MOT16/17/20) ground truth, tracker boxes on distractor classes (2, 7, 8, 12) are
removed and only class-1 people are scored (see evaluation/mot_metrics.py).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import FormatError, InputError
from common.io import check_output_path
from data.registry import GtSequence, gt_formats



# ---------------------------------------------------------------------------------- inputs
@dataclass
class SequenceResult:
    rows: object  # MotRows of the tracker
    action_scores: np.ndarray | None  # (N, K) per row, or None when the results carry no actions
    source: Path
    detections: object = None  # MotRows of raw detections (with --checkpoint), for detection AP
    fps: float = 0.0  # the frame rate the V-ICR JSON recorded (0: none)


def find_gt_sequences(gt_root: Path, only: list[str] | None) -> dict[str, GtSequence]:
    """The ground-truth sequences under ``gt_root`` by name (``only`` those, when given), in the
    first registered layout that finds any (:mod:`data.registry`; MOT first)."""
    if not gt_root.is_dir():
        raise InputError(f"{gt_root}: ground-truth folder not found")
    layouts = gt_formats()
    found = next((seqs for seqs in (fmt.find_gt(gt_root) for fmt in layouts) if seqs), [])
    if not found:
        raise InputError(f"{gt_root}: no sequences with {', or '.join(fmt.gt_layout for fmt in layouts)}")
    sequences = {seq.name: seq for seq in found}
    if only:
        unknown = sorted(set(only) - set(sequences))
        if unknown:
            raise InputError(f"--sequences: {', '.join(unknown)} not in {gt_root} (it has {', '.join(sorted(sequences))})")
        sequences = {k: v for k, v in sequences.items() if k in only}
    return sequences


def find_label_map(gt_root: Path):
    from data.formats.vicr import read_label_map

    for candidate in (gt_root / "label_map.txt", gt_root.parent / "label_map.txt", gt_root.parent.parent / "label_map.txt"):
        if candidate.is_file():
            return read_label_map(candidate)
    return None


def resolve_results(paths: list[str], sequences: dict[str, GtSequence]) -> dict[str, dict[str, Path]]:
    """``{sequence: {"txt": path, "json": path}}`` from files and folders."""
    found: dict[str, dict[str, Path]] = {}

    def add(name: str, path: Path):
        entry = found.setdefault(name, {})
        kind = path.suffix.lower().lstrip(".")
        if kind in entry and entry[kind] != path:
            raise InputError(f"{path}: a second {kind} result for sequence {name} (first: {entry[kind]})")
        entry[kind] = path

    for spec in paths:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", ".json"))
            matched = [p for p in files if p.stem in sequences]
            for p in matched:
                add(p.stem, p)
            for sub in sorted(p for p in path.iterdir() if p.is_dir() and p.name in sequences):
                for p in sorted(q for q in sub.iterdir() if q.suffix.lower() in (".txt", ".json")):
                    add(sub.name, p)
            if not matched and not any(p.is_dir() and p.name in sequences for p in path.iterdir()):
                raise InputError(f"{path}: no result files named after a ground-truth sequence "
                                 f"({', '.join(sorted(sequences))})")
        elif path.is_file():
            if path.suffix.lower() not in (".txt", ".json"):
                raise InputError(f"{path}: result files are MOTChallenge .txt or V-ICR .json")
            name = path.stem if path.stem in sequences else path.parent.name
            if name not in sequences:
                raise InputError(f"{path}: unknown sequence (neither '{path.stem}' nor '{path.parent.name}' is one of "
                                 f"{', '.join(sorted(sequences))})")
            add(name, path)
        else:
            raise InputError(f"{path}: results file or folder not found")
    return found


def _check_vicr_fits(video, path: Path, seq: GtSequence, frames: tuple[int, int] | None) -> None:
    """A V-ICR result of a run cut short, or of frames of another size, cannot be scored as if it
    covered the sequence."""
    info = video.video
    if seq.size is not None and info.width and info.height and (info.width, info.height) != seq.size:
        raise FormatError(path, f"video_info is {info.width}x{info.height}, but {seq.name}'s frames are "
                                f"{seq.size[0]}x{seq.size[1]} (seqinfo.ini): a result for another video size")
    if video.partial:
        done = int(info.total_frames)
        if frames is None or frames[1] > done:
            raise FormatError(path, f"a partial result (the run stopped after {done} of {seq.name}'s {seq.num_frames} "
                                    f"frames): score only those with --frames 1-{done}, or run it again")


def load_results(seq: GtSequence, files: dict[str, Path], label_map, allow_empty: bool = False,
                 frames: tuple[int, int] | None = None) -> SequenceResult:
    """Tracker rows from ``<seq>.txt`` (or, without one, from the JSON's per-frame boxes) and per-row
    action scores from ``<seq>.json``; errors name the file. An empty MOT file alone is an error
    (usually a wrong path or a failed run) unless ``allow_empty`` (a model that found nobody) or a
    V-ICR JSON of the same run comes with it."""
    from data.formats.mot import MotRows, check_boxes_fit, check_unique_ids, read_mot_file
    from data.formats.vicr import read_vicr_video

    rows, source = None, files.get("txt") or files.get("json")
    if "txt" in files:
        rows = read_mot_file(files["txt"])
        check_unique_ids(rows, files["txt"], "tracker result")
        if rows.layout == "mot16" and (rows.class_id != 1).any():
            bad = int(rows.class_id[rows.class_id != 1][0])
            raise FormatError(files["txt"], f"class id {bad} in a tracker result: only pedestrians (class 1) are scored")
    video = read_vicr_video(files["json"]) if "json" in files else None
    per_row_frames = None
    if video is not None:
        _check_vicr_fits(video, files["json"], seq, frames)
        names = [video.labelmap.names[i] for i in video.labelmap.ids()]
        if label_map is not None and names:
            gt_names = [label_map.names[i] for i in label_map.ids()]
            if names != gt_names[:len(names)] or len(names) != len(gt_names):
                raise FormatError(files["json"], f"labelmap {names} does not match the ground truth's {gt_names} "
                                                 "(action ids would not mean the same actions)")
        by_key = {}
        for pid, person in video.persons.items():
            try:
                tid = int(pid.rsplit("_", 1)[-1])
            except ValueError:
                raise FormatError(files["json"], f"persons.{pid}: expected an id like 'id_7'") from None
            for f in person.frames:
                if (f.frame_idx + 1, tid) in by_key:
                    raise FormatError(files["json"], f"persons.{pid}: id {tid} appears twice in frame {f.frame_idx} "
                                                     "(one person, one box per frame)")
                by_key[(f.frame_idx + 1, tid)] = f
        if rows is None:
            keys = sorted(by_key)
            n = len(keys)
            rows = MotRows(np.array([k[0] for k in keys], int), np.array([k[1] for k in keys], int),
                           np.array([by_key[k].bbox for k in keys], float).reshape(-1, 4),
                           np.array([by_key[k].score if by_key[k].score is not None else 1.0 for k in keys], float),
                           np.ones(n, int), np.ones(n))
        per_row_frames = [by_key.get((int(f), int(t))) for f, t in zip(rows.frame, rows.track_id)]
    # A V-ICR JSON records the whole run (the video's frames), so an empty one means the tracker
    # found nobody; an empty MOT file alone is more often a wrong path or a failed run.
    if rows is None or (len(rows) == 0 and not allow_empty and video is None):
        raise InputError(f"{source}: empty result (no tracked boxes) for sequence {seq.name}")
    if len(rows) and (rows.frame.min() < 1 or rows.frame.max() > seq.num_frames):
        bad = int(rows.frame[(rows.frame < 1) | (rows.frame > seq.num_frames)][0])
        raise FormatError(source, f"frame {bad} is outside sequence {seq.name}'s frames 1-{seq.num_frames}")
    check_boxes_fit(rows, seq.size, source, seq.name)
    action_scores = None
    # A run that recorded actions (its JSON has a label map) is scored on them even where it tracked
    # nobody: no prediction then scores 0, not "no action metrics".
    recorded_actions = video is not None and bool(video.labelmap.names)
    if per_row_frames is not None and label_map is not None and (
            recorded_actions or any(f is not None and f.action_id is not None for f in per_row_frames)):
        K = max(label_map.ids()) + 1
        action_scores = np.zeros((len(rows), K))
        for n, f in enumerate(per_row_frames):
            if f is None or f.action_id is None:
                continue
            if f.action_scores is not None:
                if len(f.action_scores) != K:
                    raise FormatError(files["json"], f"frame {f.frame_idx}: {len(f.action_scores)} action scores for {K} actions")
                action_scores[n] = f.action_scores
            elif not 0 <= f.action_id < K:
                raise FormatError(files["json"], f"frame {f.frame_idx}: action_id {f.action_id} outside the label map's 0-{K - 1}")
            else:
                action_scores[n, f.action_id] = 1.0
    return SequenceResult(rows, action_scores, source, fps=video.video.fps if video is not None else 0.0)


def check_gt_actions(sequences: dict[str, GtSequence], label_map) -> None:
    """Every ground-truth action id names a label of ``label_map``, or a :class:`FormatError`
    naming the sidecar: an id outside it would be scored as a class nobody can predict."""
    if label_map is None:
        return
    known = set(label_map.ids())
    for seq in sequences.values():
        bad = sorted((frame, track, a) for (frame, track), a in seq.actions.items() if a not in known)
        if bad:
            frame, track, action = bad[0]
            raise FormatError(seq.gt_path.parent / "actions.txt",
                              f"action id {action} (frame {frame}, id {track}) is not in the label map's ids "
                              f"{min(known)}-{max(known)}")



# ----------------------------------------------------------------------------- checkpoint run
def run_checkpoint(pipeline, sequences: dict[str, GtSequence], out_dir: Path,
                   frames: tuple[int, int] | None = None, detections: str | None = None) -> dict[str, dict]:
    """``pipeline`` streamed over every sequence (MOT frames ``frames`` only, when given): the
    network + tracker, or the tracker alone on ``detections`` (``det`` for each sequence's
    det/det.txt, a file, or a folder of ``<seq>.txt``). Writes ``<seq>.txt`` and ``<seq>.json``
    to ``out_dir`` and returns ``{seq: {"txt", "json", "detections"}}`` (the detections the
    tracker was given, for detection AP)."""
    from common.progress import ProgressBar
    from data.formats.mot import MotRows, write_mot_file
    from data.formats.vicr import write_vicr_video
    from data.sequences import MotSequence

    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, gt_seq in sequences.items():
        seq = MotSequence(gt_seq.root)
        session = pipeline.start(fps=seq.fps, name=name, width=seq.width, height=seq.height)
        det_parts = []
        given = _detections_for(detections, gt_seq) if detections is not None else None
        first, last = frames or (1, gt_seq.num_frames)
        print(f"{name}{' (public detections)' if given is not None else ''}:", file=sys.stderr, flush=True)
        bar = ProgressBar(last - first + 1, unit="frames")
        for index in range(first - 1, last):
            if given is not None:
                result = session.step_detections(index, index / seq.fps, given)
            else:
                result = session.step(index, index / seq.fps, seq.frame(index))
            n = len(result.detection_boxes)
            det_parts.append(MotRows(np.full(n, index + 1), np.full(n, -1), result.detection_boxes,
                                     result.detection_scores.astype(float), np.ones(n, int), np.ones(n)))
            bar.update(index + 2 - first, f"tracks {len(result.tracks)}")
        bar.close()
        txt, js = out_dir / f"{name}.txt", out_dir / f"{name}.json"
        write_mot_file(txt, session.mot_rows(), layout="mot15")
        write_vicr_video(js, session.vicr_labels(gt_seq.num_frames))
        results[name] = {"txt": txt, "json": js, "detections": MotRows.concat(det_parts)}
    return results


def _detections_path(spec: str, seq: GtSequence) -> Path:
    path = Path(spec)
    if spec == "det":
        path = seq.root / "det" / "det.txt"
    elif path.is_dir():
        path = path / f"{seq.name}.txt"
    if not path.is_file():
        raise InputError(f"{path}: detections for sequence {seq.name} not found")
    return path


def _detections_for(spec: str, seq: GtSequence):
    """The detections the tracker alone is given for ``seq``."""
    from data.formats.mot import read_mot_file
    path = _detections_path(spec, seq)
    rows = read_mot_file(path)
    if len(rows) and rows.frame.max() > seq.num_frames:
        raise FormatError(path, f"detections for frame {int(rows.frame.max())}, but {seq.name} has {seq.num_frames} frames")
    return rows


def restrict(seq: GtSequence, result: SequenceResult | None, first: int, last: int):
    """``seq`` and its ``result`` cut to MOT frames ``first``..``last``, renumbered from 1, so every
    metric sees exactly those frames."""
    from dataclasses import replace as copy

    def cut(rows):
        kept = rows.select((rows.frame >= first) & (rows.frame <= last))
        kept.frame = kept.frame - (first - 1)
        return kept

    actions = {(f - first + 1, t): a for (f, t), a in seq.actions.items() if first <= f <= last}
    seq = copy(seq, gt=cut(seq.gt), num_frames=last - first + 1, actions=actions)
    if result is None:
        return seq, None
    keep = (result.rows.frame >= first) & (result.rows.frame <= last)
    result = copy(result, rows=cut(result.rows),
                  action_scores=None if result.action_scores is None else result.action_scores[keep],
                  detections=None if result.detections is None else cut(result.detections))
    return seq, result


# ---------------------------------------------------------------------------------- scoring
def preprocessed(sequences: dict[str, GtSequence], results: dict[str, SequenceResult]) -> dict:
    """``{name: SequenceFrames}``: each result matched frame by frame to its ground truth."""
    from evaluation.mot_metrics import preprocess_sequence
    frames = {}
    for name in sorted(results):
        seq, res = sequences[name], results[name]
        try:
            frames[name] = preprocess_sequence(name, seq.gt, res.rows, seq.num_frames, seq.class_aware)
        except ValueError as exc:
            raise FormatError(res.source, str(exc)) from None
    return frames


def tracking_table(frames: list) -> dict[str, dict[str, float]]:
    """CLEAR MOT, identity and HOTA metrics per sequence and ``"COMBINED"`` of preprocessed
    sequences (:func:`preprocessed`)."""
    from evaluation.mot_metrics import clear_identity_metrics, hota_metrics
    clear, hota = clear_identity_metrics(frames), hota_metrics(frames)
    return {n: {**clear[n], **hota[n]} for n in [f.name for f in frames] + ["COMBINED"]}


def evaluate(sequences: dict[str, GtSequence], results: dict[str, SequenceResult], label_map) -> dict:
    from evaluation.action_detection import gt_tubes_from_identities, tubes_from_tracks
    from evaluation.action_hota import action_hota
    from evaluation.action_metrics import frame_map, identity_action_score
    from evaluation.detection_metrics import coco_ap
    from evaluation.mot_metrics import DISTRACTOR_CLASSES, identity_assignment

    names = sorted(results)
    frames = preprocessed(sequences, results)
    table = tracking_table([frames[n] for n in names])

    # Detection AP: people are the positives; zero-marked and distractor boxes are COCO "crowd" (ignored).
    det_preds, det_gts, per_seq_det = [], [], {}
    for name in names:
        seq, res = sequences[name], results[name]
        rows = res.detections if res.detections is not None else res.rows
        preds, gts = [], []
        for f in range(1, seq.num_frames + 1):
            g = seq.gt.at_frame(f)
            person = (g.class_id == 1) if seq.class_aware else np.ones(len(g), bool)
            ignored = (g.conf == 0) | (np.isin(g.class_id, DISTRACTOR_CLASSES) if seq.class_aware else False)
            keep = person | ignored
            r = rows.at_frame(f)
            preds.append({"boxes": r.boxes, "scores": r.conf, "labels": np.ones(len(r), int)})
            gts.append({"boxes": g.boxes[keep], "labels": np.ones(int(keep.sum()), int), "crowd": ignored[keep]})
        ap = coco_ap(preds, gts)
        per_seq_det[name] = ap
        table[name].update({"det_AP50": ap["AP50"] * 100, "det_AP": ap["AP"] * 100})
        det_preds += preds
        det_gts += gts
    combined_ap = coco_ap(det_preds, det_gts)
    table["COMBINED"].update({"det_AP50": combined_ap["AP50"] * 100, "det_AP": combined_ap["AP"] * 100})

    # Actions, where both sides have them.
    curves = {}
    with_actions = [n for n in names if sequences[n].actions and results[n].action_scores is not None and label_map]
    if with_actions:
        K = max(label_map.ids()) + 1
        all_gt_boxes, all_gt_labels, all_pred_boxes, all_pred_scores = [], [], [], []
        id_correct = id_items = 0
        id_scores, gated_inputs, gt_tubes, tracked_tubes = [], ([], [], []), {}, {}
        for name in with_actions:
            seq, res, fr = sequences[name], results[name], frames[name]
            gt_boxes, gt_labels, pred_boxes, pred_scores = [], [], [], []
            for k in range(seq.num_frames):
                labels = np.array([seq.actions.get((k + 1, int(i)), -1) for i in fr.gt_ids[k]], int)
                gt_boxes.append(fr.gt_boxes[k])
                gt_labels.append(labels)
                sel = np.flatnonzero(res.rows.frame == k + 1)
                order = {int(t): j for j, t in zip(sel, res.rows.track_id[sel])}
                idx = np.array([order[int(t)] for t in fr.tracker_ids[k]], int)
                pred_boxes.append(fr.tracker_boxes[k])
                pred_scores.append(res.action_scores[idx] if len(idx) else np.zeros((0, K)))
            fm = frame_map(gt_boxes, gt_labels, pred_boxes, pred_scores, K)
            # Seconds need the frame rate: seqinfo.ini's, else the one the V-ICR JSON (where the
            # action scores come from) records; it once defaulted to 1 fps without a word.
            ident = identity_action_score(fr, gt_labels, pred_scores, identity_assignment(fr), seq.fps or res.fps, K)
            table[name].update({"action_frame_mAP": fm["mAP"] * 100, "id_action_acc": ident["accuracy"] * 100,
                                "id_action_mAP": ident["mAP"] * 100})
            id_correct += ident["accuracy"] * ident["num_items"]
            id_items += ident["num_items"]
            id_scores.append(ident)
            for inputs, value in zip(gated_inputs, (fr, gt_labels, [s.argmax(1) for s in pred_scores])):
                inputs.append(value)
            gt_tubes[name] = gt_tubes_from_identities(fr.gt_ids, fr.gt_boxes, gt_labels)
            tracked_tubes[name] = tubes_from_tracks(name, fr.tracker_ids, fr.tracker_boxes, pred_scores,
                                                    seq.fps or res.fps)
            table[name].update(_tube_video_map({name: gt_tubes[name]}, {name: tracked_tubes[name]}, label_map, K))
            all_gt_boxes += gt_boxes
            all_gt_labels += gt_labels
            all_pred_boxes += pred_boxes
            all_pred_scores += pred_scores
        fm = frame_map(all_gt_boxes, all_gt_labels, all_pred_boxes, all_pred_scores, K)
        curves = {label_map.names.get(c, str(c)): curve for c, curve in fm["curves"].items()}
        table["COMBINED"].update({
            "action_frame_mAP": fm["mAP"] * 100,
            "id_action_acc": 100 * id_correct / id_items if id_items else float("nan"),
            # mAP over all identity-seconds pooled would need the items; the per-sequence mean is reported.
            "id_action_mAP": float(np.mean([s["mAP"] for s in id_scores])) * 100,
        })
        # HOTA whose matches also need the right action, with its action part; COMBINED pools the
        # sequences that have actions (the same ones as the other action columns).
        gated = action_hota(*gated_inputs)
        table["COMBINED"].update(_tube_video_map(gt_tubes, tracked_tubes, label_map, K))
        for name in with_actions + ["COMBINED"]:
            table[name].update({"HOTA_act": gated[name]["HOTA_act"], "ActA": gated[name]["ActA"]})
        table["COMBINED"]["action_frame_AP_per_class"] = {label_map.names.get(c, str(c)): ap * 100
                                                           for c, ap in fm["per_class"].items()}
    return {"table": table, "sequences": names, "pr_curves": curves}


def _tube_video_map(gt_tubes: dict, tracked: dict, label_map, num_labels: int) -> dict[str, float]:
    """Video-mAP (percent) at 0.2, 0.5 and 0.10:0.90 of the tracked identities' tubes against the
    ground truth's, over the sequences given (``{seq: {label: tubes}}``)."""
    from data.formats.act import ActAnnotations
    from evaluation.action_detection import video_map_summary

    names = sorted(gt_tubes)
    annotations = ActAnnotations(labels=[label_map.names.get(c, str(c)) for c in range(num_labels)], test_videos=[names],
                                 train_videos=[], nframes={}, resolution={}, gttubes=gt_tubes)
    predicted: dict[int, list] = {}
    for name in names:
        for label, tubes in tracked[name].items():
            predicted.setdefault(label, []).extend(tubes)
    summary = video_map_summary(annotations, predicted, skipped=())
    return {key: summary[key] * 100 for key in ("video_mAP@0.2", "video_mAP@0.5", "video_mAP@0.10:0.90")}


SPLITS = ("train", "val", "test")  # the split folders a dataset may hold (the synthetic benchmark's)


def gt_root_of(dataset: str | None, split: str, gt_root: str | None) -> Path:
    """The folder of ground-truth sequences: ``gt_root`` itself, or ``<dataset>/<split>`` where
    ``dataset`` is ``synthetic`` (the generated benchmark, made on first use) or a path; a dataset
    without split folders is taken whole."""
    if gt_root:
        return Path(gt_root)
    if dataset == "synthetic":
        from data.prepare import default_synthetic
        from data.synthetic import SyntheticConfig, prepare_synthetic
        base, seed = default_synthetic()
        prepare_synthetic(base, seed=seed, config=SyntheticConfig(), use_existing=True,
                          log=lambda message: print(message, file=sys.stderr, flush=True))
    else:
        base = Path(dataset)
    if (base / split).is_dir():
        return base / split
    splits = sorted(name for name in SPLITS if (base / name).is_dir())
    if splits:  # a mistyped split must not quietly score (or calibrate on) every split at once
        raise InputError(f"{base}: no split {split!r} (it has {', '.join(splits)})")
    return base  # a folder of sequences, or one sequence (PETS09-S2L1): no splits to choose from


def parse_frames(text: str | None) -> tuple[int, int] | None:
    """``"431-530"`` -> ``(431, 530)`` (MOT frames, 1-based, inclusive)."""
    if text is None:
        return None
    try:
        first, last = (int(v) for v in text.split("-"))
    except ValueError:
        raise InputError(f"--frames {text!r}: expected FIRST-LAST, e.g. 431-530") from None
    if not 1 <= first <= last:
        raise InputError(f"--frames {text}: need 1 <= FIRST <= LAST")
    return first, last


def run_evaluation(*, gt_root: Path, pipeline=None, results: list[str] | None = None, detections: str | None = None,
                   tracker=None, sequences: list[str] | None = None, frames: tuple[int, int] | None = None,
                   out_dir: Path | None = None, json_path: Path | None = None, plots: bool = True, log=None) -> dict:
    """Score, on the ground truth under ``gt_root`` (MOT frames ``frames`` only, when given), a
    checkpoint's run (``pipeline``), existing ``results``, and/or the tracker alone (``tracker``, a
    tracker-only pipeline) on public ``detections``: several systems share one table. Prints it,
    writes the metrics files and plots, and returns the report."""
    from evaluation.report import format_table, write_outputs

    log = log or (lambda message: print(message, file=sys.stderr))
    if pipeline is not None and results is not None:
        raise ValueError("give a pipeline (run a checkpoint) or result files, not both")
    if (detections is None) != (tracker is None):
        raise ValueError("public detections and the tracker that runs on them go together")
    if pipeline is None and results is None and detections is None:
        raise ValueError("nothing to score: give a pipeline, result files or detections")
    out_dir = out_dir or Path("runs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path = json_path or out_dir / "metrics.json"
    # Checked before the work: a bad output path must not cost a whole run.
    outputs = [(json_path, "metrics JSON"), (json_path.with_suffix(".csv"), "metrics CSV")]
    if plots:
        outputs.append((json_path.parent / "plots" / "x.png", "plots"))
    if pipeline is not None or detections is not None:
        outputs.append((out_dir / "results" / "x.txt", "result files"))
    for path, what in outputs:
        check_output_path(path, what)
    found = find_gt_sequences(gt_root, sequences)
    if frames is not None:
        too_short = [n for n, seq in found.items() if frames[1] > seq.num_frames]
        if too_short:
            raise InputError(f"--frames {frames[0]}-{frames[1]}: {too_short[0]} has {found[too_short[0]].num_frames} frames")
    label_map = find_label_map(gt_root)
    check_gt_actions(found, label_map)
    files = resolve_results(results, found) if results is not None else None
    _check_outputs_apart(found, files, detections, json_path, out_dir, pipeline, tracker)
    systems = []  # (label, files, raw)
    if pipeline is not None:
        raw = run_checkpoint(pipeline, found, out_dir / "results", frames)
        systems.append(("", {n: {"txt": v["txt"], "json": v["json"]} for n, v in raw.items()}, raw))
    if files is not None:
        missing = sorted(set(found) - set(files))
        if missing and not sequences:
            log(f"note: no results for {', '.join(missing)}; scoring the {len(files)} sequences that have them")
        systems.append(("", files, {}))
    if detections is not None:
        raw = run_checkpoint(tracker, found, out_dir / "results_public_detections", frames, detections)
        systems.append(("public det" if systems else "", {n: {"txt": v["txt"], "json": v["json"]} for n, v in raw.items()}, raw))
    reports = []
    for label, files, raw in systems:
        scored, seqs = {}, dict(found)
        for name, f in files.items():
            scored[name] = load_results(found[name], f, label_map, allow_empty=name in raw, frames=frames)
            if name in raw:
                scored[name].detections = raw[name]["detections"]
            if frames is not None:
                seqs[name], scored[name] = restrict(found[name], scored[name], *frames)
            if len(scored[name].rows) == 0:
                log(f"note: the tracker found nobody in {name}")
        if not scored:
            raise InputError("no results to score")
        reports.append((label, evaluate(seqs, scored, label_map)))
    report = _merge(reports)
    print(format_table(report))
    written = write_outputs(report, json_path, json_path.parent / "plots" if plots else None)
    print("wrote " + ", ".join(str(p) for p in written))
    return report


def _check_outputs_apart(found: dict[str, GtSequence], files, detections, json_path: Path, out_dir: Path,
                         pipeline, tracker) -> None:
    """No file this evaluation writes may be one it reads (ground truth, results, detections, the
    checkpoint): refused before any work."""
    from common.io import check_outputs_apart

    inputs = {}
    for seq in found.values():
        inputs.update({seq.gt_path: "the ground truth", seq.root / "seqinfo.ini": "the sequence's seqinfo.ini"})
        if detections is not None:
            try:
                inputs[_detections_path(detections, seq)] = "the detections"
            except InputError:
                pass  # a missing file is reported when the tracker needs it
    for entry in (files or {}).values():
        inputs.update({path: "a result file" for path in entry.values()})
    for system in (pipeline, tracker):
        inputs.update(getattr(system, "sources", {}) or {})
    outputs = {json_path: "--json", json_path.with_suffix(".csv"): "the metrics CSV"}
    for name in found:
        for folder, run in (("results", pipeline), ("results_public_detections", tracker)):
            if run is not None:
                outputs.update({out_dir / folder / f"{name}{ext}": f"the {folder} of {name}" for ext in (".txt", ".json")})
    check_outputs_apart(outputs, inputs)


def _merge(reports: list[tuple[str, dict]]) -> dict:
    """One report of several systems: each system's rows named ``<row> [<label>]``."""
    if len(reports) == 1:
        return reports[0][1]
    table, rows, sequences, curves = {}, [], [], {}
    for label, report in reports:
        suffix = f" [{label}]" if label else ""
        for row in report["sequences"] + ["COMBINED"]:
            table[row + suffix] = report["table"][row]
        rows += [r + suffix for r in report["sequences"]] + ["COMBINED" + suffix]
        sequences += [r + suffix for r in report["sequences"]]
        curves = curves or report["pr_curves"]
    return {"table": table, "sequences": sequences, "rows": rows, "pr_curves": curves}
