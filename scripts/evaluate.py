#!/usr/bin/env python
"""Score tracking, detection and action results with the official protocols.

    # a checkpoint on a dataset split: runs network + tracker over every sequence, writes
    # <seq>.txt (MOTChallenge) and <seq>.json (V-ICR) to --out-dir, then scores them
    python scripts/evaluate.py --checkpoint runs/<run>/best.pt --dataset synthetic
    # existing result files against ground truth
    python scripts/evaluate.py --results results/ --gt-root data/MOT17/train
    python scripts/evaluate.py --results TUD-Campus/test.txt TUD-Stadtmitte/test.txt --gt-root motmetrics/data

Metrics: MOTA, MOTP (mean IoU of matches, MOTChallenge's convention), FP, FN, IDsw, Frag, MT/PT/ML,
IDF1/IDP/IDR (py-motmetrics, equal to the MOTChallenge devkit); HOTA, DetA, AssA (TrackEval);
COCO AP50 and AP50:95 of the boxes (the raw detector output with --checkpoint, the tracked boxes
and their scores otherwise); action frame-mAP at IoU 0.5 (AVA / VOC protocol) and the
identity-aware action score (accuracy and mAP over identity-seconds, credited only to the track
IDF1 matched to that person). MOTChallenge preprocessing: ground truth with conf 0 is dropped, and
for 9-column (MOT16/17/20) ground truth, tracker boxes on distractor classes (2, 7, 8, 12) are
removed and only class-1 people are scored (see evaluation/mot_metrics.py).

Result files: ``<seq>.txt`` (MOTChallenge rows) and/or ``<seq>.json`` (V-ICR, with per-frame
actions; ``action_scores`` when the project's inference wrote it, else the top action one-hot), in a
folder or given one by one (a file named otherwise, such as ``TUD-Campus/test.txt``, takes its
sequence from its folder). Ground-truth sequences: ``<gt-root>/<seq>/gt/gt.txt`` or
``<gt-root>/<seq>/gt.txt``, with ``seqinfo.ini`` (frame count, fps) and ``gt/actions.txt`` when present.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.cli import run_cli  # noqa: E402
from common.errors import FormatError, InputError  # noqa: E402

DEFAULT_DATASETS = {"synthetic": ROOT / "data" / "generated" / "synthetic"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="run this model + the tracker over the sequences, then score its output")
    p.add_argument("--dataset", help="'synthetic' (data/generated/synthetic) or a dataset root with split folders")
    p.add_argument("--split", default="test", help="split folder of --dataset (default: test)")
    p.add_argument("--gt-root", help="folder of ground-truth sequences (overrides --dataset/--split)")
    p.add_argument("--results", nargs="+", help="result files (<seq>.txt / <seq>.json) or folders holding them")
    p.add_argument("--sequences", nargs="+", help="only these sequences")
    p.add_argument("--out-dir", help="where --checkpoint results, plots and the metrics files go "
                                     "(default: runs/eval-<time>)")
    p.add_argument("--json", help="metrics JSON to write (a CSV with the same stem is written beside it; "
                                  "default: <out-dir>/metrics.json)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--batch-size", type=int, default=1,
                   help="seed 001's flag; evaluation streams each sequence frame by frame as inference does, "
                        "so only 1 is meaningful (other values are refused)")
    p.add_argument("--conf-threshold", type=float, default=0.1, help="lowest detection score kept (with --checkpoint)")
    p.add_argument("--track-high", type=float, default=0.5, help="tracker's first-stage score threshold (--checkpoint)")
    p.add_argument("--track-new", type=float, default=0.6, help="score a detection needs to start a track (--checkpoint)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the network under bfloat16 autocast, 1.2-1.5x faster on CPUs with AVX512-BF16 "
                        "or AMX, same accuracy (README: inference speed)")
    args = p.parse_args(argv)
    if bool(args.checkpoint) == bool(args.results):
        p.error("give --checkpoint (run a model) or --results (score existing files)")
    if not args.gt_root and not args.dataset:
        p.error("give --gt-root or --dataset")
    if args.batch_size != 1:
        p.error("--batch-size: evaluation streams frames one at a time (the tracker needs them in order); use 1")
    return args


# ---------------------------------------------------------------------------------- inputs
@dataclass
class GtSequence:
    name: str
    root: Path
    gt: object  # MotRows
    gt_path: Path
    num_frames: int
    fps: float
    class_aware: bool  # 9-column ground truth: MOT16/17/20 class preprocessing applies
    actions: dict = field(default_factory=dict)  # (frame, id) -> action id


@dataclass
class SequenceResult:
    rows: object  # MotRows of the tracker
    action_scores: np.ndarray | None  # (N, K) per row, or None when the results carry no actions
    source: Path
    detections: object = None  # MotRows of raw detections (with --checkpoint), for detection AP


def _gt_file(seq_dir: Path) -> Path | None:
    for candidate in (seq_dir / "gt" / "gt.txt", seq_dir / "gt.txt"):
        if candidate.is_file():
            return candidate
    return None


def find_gt_sequences(gt_root: Path, only: list[str] | None) -> dict[str, GtSequence]:
    from data.formats.mot import read_action_sidecar, read_mot_file, read_seqinfo

    if not gt_root.is_dir():
        raise InputError(f"{gt_root}: ground-truth folder not found")
    dirs = [gt_root] if _gt_file(gt_root) else sorted(p for p in gt_root.iterdir() if p.is_dir() and _gt_file(p))
    if not dirs:
        raise InputError(f"{gt_root}: no sequences with gt/gt.txt or gt.txt")
    sequences = {}
    for d in dirs:
        path = _gt_file(d)
        gt = read_mot_file(path)
        info = read_seqinfo(d / "seqinfo.ini") if (d / "seqinfo.ini").is_file() else None
        name = info.name if info else d.name
        if len(gt) and info and gt.frame.max() > info.seq_length:
            raise FormatError(path, f"frame {gt.frame.max()} beyond seqLength={info.seq_length} of {d / 'seqinfo.ini'}")
        actions_path = path.parent / "actions.txt"
        sequences[name] = GtSequence(
            name=name, root=d, gt=gt, gt_path=path,
            num_frames=info.seq_length if info else int(gt.frame.max()) if len(gt) else 0,
            fps=info.frame_rate if info else 0.0, class_aware=gt.layout == "mot16",
            actions=read_action_sidecar(actions_path) if actions_path.is_file() else {})
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


def load_results(seq: GtSequence, files: dict[str, Path], label_map, allow_empty: bool = False) -> SequenceResult:
    """Tracker rows from ``<seq>.txt`` (or, without one, from the JSON's per-frame boxes) and per-row
    action scores from ``<seq>.json``; errors name the file. An empty result file is an error
    (usually a wrong path or a failed run) unless ``allow_empty`` (a model that found nobody)."""
    from data.formats.mot import MotRows, read_mot_file
    from data.formats.vicr import read_vicr_video

    rows, source = None, files.get("txt") or files.get("json")
    if "txt" in files:
        rows = read_mot_file(files["txt"])
        if rows.layout == "mot16" and (rows.class_id != 1).any():
            bad = int(rows.class_id[rows.class_id != 1][0])
            raise FormatError(files["txt"], f"class id {bad} in a tracker result: only pedestrians (class 1) are scored")
    video = read_vicr_video(files["json"]) if "json" in files else None
    per_row_frames = None
    if video is not None:
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
                by_key[(f.frame_idx + 1, tid)] = f
        if rows is None:
            keys = sorted(by_key)
            n = len(keys)
            rows = MotRows(np.array([k[0] for k in keys], int), np.array([k[1] for k in keys], int),
                           np.array([by_key[k].bbox for k in keys], float).reshape(-1, 4),
                           np.array([by_key[k].score if by_key[k].score is not None else 1.0 for k in keys], float),
                           np.ones(n, int), np.ones(n))
        per_row_frames = [by_key.get((int(f), int(t))) for f, t in zip(rows.frame, rows.track_id)]
    if rows is None or (len(rows) == 0 and not allow_empty):
        raise InputError(f"{source}: empty result (no tracked boxes) for sequence {seq.name}")
    if len(rows) and (rows.frame.min() < 1 or rows.frame.max() > seq.num_frames):
        bad = int(rows.frame[(rows.frame < 1) | (rows.frame > seq.num_frames)][0])
        raise FormatError(source, f"frame {bad} is outside sequence {seq.name}'s frames 1-{seq.num_frames}")
    action_scores = None
    if per_row_frames is not None and label_map is not None and any(f is not None and f.action_id is not None for f in per_row_frames):
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
    return SequenceResult(rows, action_scores, source)


# ----------------------------------------------------------------------------- checkpoint run
def run_checkpoint(args, sequences: dict[str, GtSequence], out_dir: Path) -> dict[str, SequenceResult]:
    from data.formats.mot import MotRows, write_mot_file
    from data.formats.vicr import write_vicr_video
    from data.sequences import MotSequence
    from tracking.recorder import TrackRecorder
    from tracking.streaming import StreamingEngine
    from tracking.tracker import Tracker
    from train.checkpoint import load_model_from_checkpoint
    from common.progress import ProgressBar
    from common.device import resolve_device

    device = resolve_device(args.device)
    model, state = load_model_from_checkpoint(args.checkpoint, device)
    action_names = list(state.get("action_names", []))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, gt_seq in sequences.items():
        seq = MotSequence(gt_seq.root)
        fps = seq.fps
        tracker = Tracker(fps=fps, high_score=args.track_high, new_track_score=args.track_new,
                          low_score=min(args.conf_threshold, args.track_high))
        engine = StreamingEngine(model=model, tracker=tracker, input_size=tuple(state["input_size"]),
                                 clip_len=state.get("clip_len", 8), stride=state.get("stride", 2),
                                 conf_threshold=args.conf_threshold, device=device, precision=args.precision)
        recorder = TrackRecorder(action_names)
        det_parts = []
        bar = ProgressBar(gt_seq.num_frames, unit=f"{name} frames")
        for index in range(gt_seq.num_frames):
            frame = seq.frame(index)
            result = engine.process(frame, index, index / fps)
            recorder.add(index, index / fps, result.tracks)
            n = len(result.detection_boxes)
            det_parts.append(MotRows(np.full(n, index + 1), np.full(n, -1), result.detection_boxes,
                                     result.detection_scores.astype(float), np.ones(n, int), np.ones(n)))
            bar.update(index + 1, f"tracks {len(result.tracks)}")
        bar.close()
        txt, js = out_dir / f"{name}.txt", out_dir / f"{name}.json"
        write_mot_file(txt, recorder.mot_rows(), layout="mot15")
        write_vicr_video(js, recorder.vicr_labels(name, fps, seq.width, seq.height, gt_seq.num_frames, tracker))
        results[name] = {"txt": txt, "json": js, "detections": MotRows.concat(det_parts)}
    return results


# ---------------------------------------------------------------------------------- scoring
def evaluate(sequences: dict[str, GtSequence], results: dict[str, SequenceResult], label_map) -> dict:
    from evaluation.action_metrics import frame_map, identity_action_score
    from evaluation.detection_metrics import coco_ap
    from evaluation.mot_metrics import (DISTRACTOR_CLASSES, clear_identity_metrics, hota_metrics, identity_assignment,
                                        preprocess_sequence)

    names = sorted(results)
    frames = {}
    for name in names:
        seq, res = sequences[name], results[name]
        try:
            frames[name] = preprocess_sequence(name, seq.gt, res.rows, seq.num_frames, seq.class_aware)
        except ValueError as exc:
            raise FormatError(res.source, str(exc)) from None
    clear = clear_identity_metrics([frames[n] for n in names])
    hota = hota_metrics([frames[n] for n in names])
    table = {n: {**clear[n], **hota[n]} for n in names + ["COMBINED"]}

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
        id_scores = []
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
            ident = identity_action_score(fr, gt_labels, pred_scores, identity_assignment(fr), seq.fps or 1.0, K)
            table[name].update({"action_frame_mAP": fm["mAP"] * 100, "id_action_acc": ident["accuracy"] * 100,
                                "id_action_mAP": ident["mAP"] * 100})
            all_gt_boxes += gt_boxes
            all_gt_labels += gt_labels
            all_pred_boxes += pred_boxes
            all_pred_scores += pred_scores
            id_correct += ident["accuracy"] * ident["num_items"]
            id_items += ident["num_items"]
            id_scores.append(ident)
        fm = frame_map(all_gt_boxes, all_gt_labels, all_pred_boxes, all_pred_scores, K)
        curves = {label_map.names.get(c, str(c)): curve for c, curve in fm["curves"].items()}
        table["COMBINED"].update({
            "action_frame_mAP": fm["mAP"] * 100,
            "id_action_acc": 100 * id_correct / id_items if id_items else float("nan"),
            # mAP over all identity-seconds pooled would need the items; the per-sequence mean is reported.
            "id_action_mAP": float(np.mean([s["mAP"] for s in id_scores])) * 100,
        })
        table["COMBINED"]["action_frame_AP_per_class"] = {label_map.names.get(c, str(c)): ap * 100
                                                           for c, ap in fm["per_class"].items()}
    return {"table": table, "sequences": names, "pr_curves": curves}


# ----------------------------------------------------------------------------------- output
SHOWN = [("MOTA", "mota"), ("IDF1", "idf1"), ("HOTA", "HOTA"), ("DetA", "DetA"), ("AssA", "AssA"), ("MOTP", "motp"),
         ("FP", "num_false_positives"), ("FN", "num_misses"), ("IDsw", "num_switches"), ("Frag", "num_fragmentations"),
         ("MT", "mostly_tracked"), ("ML", "mostly_lost"), ("IDP", "idp"), ("IDR", "idr"), ("AP50", "det_AP50"),
         ("AP", "det_AP"), ("act fmAP", "action_frame_mAP"), ("id-act acc", "id_action_acc"), ("id-act mAP", "id_action_mAP")]
COUNTS = {"num_false_positives", "num_misses", "num_switches", "num_fragmentations", "mostly_tracked", "mostly_lost"}


def format_table(report: dict) -> str:
    """Percentages to 4 decimals (the devkit's precision), counts as integers."""
    table = report["table"]
    rows = report["sequences"] + ["COMBINED"]
    cols = [(h, k) for h, k in SHOWN if any(k in table[r] for r in rows)]
    width = max(len(r) for r in rows) + 2
    lines = ["".ljust(width) + "".join(h.rjust(max(len(h), 8) + 1) for h, _ in cols)]
    for r in rows:
        cells = []
        for h, k in cols:
            v = table[r].get(k, float("nan"))
            text = f"{int(v)}" if k in COUNTS and np.isfinite(v) else f"{v:.4f}" if np.isfinite(v) else "-"
            cells.append(text.rjust(max(len(h), 8) + 1))
        lines.append(r.ljust(width) + "".join(cells))
    return "\n".join(lines)


def write_outputs(report: dict, json_path: Path, plot_dir: Path | None) -> list[Path]:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"sequences": report["sequences"], "metrics": report["table"]}
    json_path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    csv_path = json_path.with_suffix(".csv")
    keys = [k for _, k in SHOWN] + sorted({k for r in report["table"].values() for k in r} - {k for _, k in SHOWN}
                                          - {"action_frame_AP_per_class"})
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sequence"] + keys)
        for name in report["sequences"] + ["COMBINED"]:
            writer.writerow([name] + [report["table"][name].get(k, "") for k in keys])
    written = [json_path, csv_path]
    if plot_dir is not None:
        written += plot(report, plot_dir)
    return written


def plot(report: dict, plot_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = report["sequences"] + ["COMBINED"]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 3.5))
    x = np.arange(len(names))
    for k, (label, key) in enumerate((("MOTA", "mota"), ("IDF1", "idf1"), ("HOTA", "HOTA"))):
        ax.bar(x + (k - 1) * 0.27, [report["table"][n][key] for n in names], 0.27, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("%")
    ax.legend()
    ax.set_title("tracking per sequence")
    fig.tight_layout()
    path = plot_dir / "tracking_per_sequence.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    if report["pr_curves"]:
        fig, ax = plt.subplots(figsize=(5, 4))
        for name, (recall, precision) in report["pr_curves"].items():
            ax.plot(recall, np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision, label=name)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title("action frame-level precision-recall (IoU 0.5)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = plot_dir / "action_pr_curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def run(args) -> dict:
    if args.gt_root:
        gt_root = Path(args.gt_root)
    else:
        base = DEFAULT_DATASETS.get(args.dataset, Path(args.dataset))
        if args.dataset == "synthetic" and not (base / "meta.json").is_file():
            raise InputError(f"{base}: the synthetic benchmark is not generated yet "
                             f"(python scripts/download_data.py --dataset synthetic --out {base})")
        gt_root = base / args.split if (base / args.split).is_dir() else base
    sequences = find_gt_sequences(gt_root, args.sequences)
    label_map = find_label_map(gt_root)
    out_dir = Path(args.out_dir) if args.out_dir else ROOT / "runs" / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    raw = {}
    if args.checkpoint:
        raw = run_checkpoint(args, sequences, out_dir / "results")
        files = {n: {"txt": v["txt"], "json": v["json"]} for n, v in raw.items()}
    else:
        files = resolve_results(args.results, sequences)
        missing = sorted(set(sequences) - set(files))
        if missing and not args.sequences:
            print(f"note: no results for {', '.join(missing)}; scoring the {len(files)} sequences that have them",
                  file=sys.stderr)
    results = {}
    for name, f in files.items():
        results[name] = load_results(sequences[name], f, label_map, allow_empty=name in raw)
        if len(results[name].rows) == 0:
            print(f"note: the model tracked nobody in {name}", file=sys.stderr)
        if name in raw:
            results[name].detections = raw[name]["detections"]
    if not results:
        raise InputError("no results to score")
    report = evaluate(sequences, results, label_map)
    print(format_table(report))
    json_path = Path(args.json) if args.json else out_dir / "metrics.json"
    written = write_outputs(report, json_path, None if args.no_plots else json_path.parent / "plots")
    print("wrote " + ", ".join(str(p) for p in written))
    return report


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
