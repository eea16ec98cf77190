#!/usr/bin/env python
"""Prepare datasets.

* ``--dataset synthetic``: generate the synthetic MOT + action benchmark (deterministic: the same
  ``--seed`` and knobs give the same bytes) and print its summary.
* ``--dataset mot17 | mot20 | ava | pets09 --root DIR``: check a copy you already have (these
  datasets cannot be downloaded without accepting their licences), write an index JSON and print a
  summary; when the copy is missing or incomplete, say where to get it and which layout is expected.

Examples::

    python scripts/download_data.py --dataset synthetic --out data/generated/synthetic --seed 0
    python scripts/download_data.py --dataset synthetic --out /tmp/hard --seed 3 --max-people 10 --occlusion 0.9
    python scripts/download_data.py --dataset pets09 --root ../shared/data/real/mot/PETS09-S2L1 --extract-frames
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from common.errors import InputError  # noqa: E402
from data.synthetic import ACTIONS, SyntheticConfig, format_summary, prepare_synthetic  # noqa: E402

_DATA_CONFIG = OmegaConf.load(ROOT / "config" / "data" / "synthetic.yaml")
DEFAULT_SYNTHETIC_OUT = ROOT / _DATA_CONFIG.root

WHERE = {
    "mot17": ("https://motchallenge.net/data/MOT17/ (MOT17.zip, after registering)",
              "ROOT/train/MOT17-02-FRCNN/{seqinfo.ini, img1/000001.jpg..., gt/gt.txt, det/det.txt}, ROOT/test/..."),
    "mot20": ("https://motchallenge.net/data/MOT20/ (MOT20.zip, after registering)",
              "ROOT/train/MOT20-01/{seqinfo.ini, img1/000001.jpg..., gt/gt.txt, det/det.txt}, ROOT/test/..."),
    "ava": ("https://research.google.com/ava/download.html (annotations v2.2; videos from the AVA bucket, "
            "frames extracted at 30 fps, e.g. with mmaction2's tools/data/ava scripts)",
            "ROOT/annotations/{ava_train_v2.2.csv, ava_val_v2.2.csv, ava_action_list_v2.2.pbtxt, "
            "ava_*_excluded_timestamps_v2.2.csv}, ROOT/frames/<video_id>/img_00001.jpg..."),
    "pets09": ("https://motchallenge.net/data/2D_MOT_2015/ (PETS09-S2L1 in 2DMOT2015.zip)",
               "ROOT/{seqinfo.ini, gt/gt.txt, det/det.txt, img1/*.jpg or one video file such as vtest.avi}"),
}

# Generator knobs exposed as flags: --name maps to SyntheticConfig.name.
_KNOBS = ("width", "height", "fps", "length", "min_people", "max_people", "occlusion", "min_distractors",
          "max_distractors", "enter_exit", "camera_jitter", "noise", "min_action_s", "max_action_s", "jpeg_quality")


def parse_args(argv=None) -> argparse.Namespace:
    defaults = SyntheticConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("Examples::")[1])
    p.add_argument("--dataset", required=True, choices=["synthetic", "mot17", "mot20", "ava", "pets09"])
    p.add_argument("--out", type=Path, help=f"synthetic: output folder (default {DEFAULT_SYNTHETIC_OUT.relative_to(ROOT)}); "
                                            "others: where to write the index JSON "
                                            "(default data/generated/<dataset>_index.json)")
    p.add_argument("--root", type=Path, help="mot17/mot20/ava/pets09: your copy of the dataset")
    p.add_argument("--seed", type=int, default=_DATA_CONFIG.seed, help=f"synthetic: random seed (default {_DATA_CONFIG.seed})")
    p.add_argument("--force", action="store_true", help="synthetic: regenerate even if --out already holds this dataset")
    p.add_argument("--extract-frames", action="store_true", help="pets09: decode the video into img1/*.jpg")
    p.add_argument("--preview", type=Path, help="synthetic: also write a 2x2 picture of train frames with "
                                                 "their boxes, ids, actions and visibility to this image file")
    g = p.add_argument_group("synthetic generator knobs (defaults in brackets)")
    for f in fields(SyntheticConfig):
        if f.name in _KNOBS:
            g.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                           default=getattr(defaults, f.name), help=f"[{getattr(defaults, f.name)}]")
    g.add_argument("--actions", default=",".join(ACTIONS), help=f"comma-separated subset of {','.join(ACTIONS)}")
    for split, count in defaults.sequences.items():
        g.add_argument(f"--{split}", type=int, default=count, help=f"sequences in the {split} split [{count}]")
    return p.parse_args(argv)


def synthetic(args) -> int:
    config = SyntheticConfig(**{k: getattr(args, k) for k in _KNOBS},
                             actions=tuple(a.strip() for a in args.actions.split(",") if a.strip()),
                             sequences={"train": args.train, "val": args.val, "test": args.test})
    out = args.out or DEFAULT_SYNTHETIC_OUT
    meta, generated = prepare_synthetic(out, seed=args.seed, config=config, force=args.force)
    if not generated:
        print(f"{out}: already holds this benchmark (seed {args.seed}); use --force to regenerate")
        print(format_summary(meta))
        return 0
    print(format_summary(meta))
    print(f"written to {out}")
    if args.preview:
        write_preview(out, args.preview)
        print(f"preview written to {args.preview}")
    return 0


def write_preview(dataset: Path, path: Path) -> None:
    """Four frames of the busiest train sequence with ground truth drawn on them."""
    import numpy as np
    from data.formats.vicr import read_label_map
    from data.sequences import mot_split
    from data.video import write_image
    from evaluation.visualize import draw_tracks
    names = read_label_map(dataset / "label_map.txt").names
    seq = max(mot_split(dataset, "train"), key=lambda s: len(np.unique(s.gt.track_id)))
    tiles = []
    for index in np.linspace(len(seq) * 0.2, len(seq) - 1, 4).astype(int):
        rows = seq.gt.at_frame(index + 1)
        captions = [f"{names[seq.actions[(index + 1, int(t))]]} v{v:.1f}" if c == 1 else "distractor"
                    for t, c, v in zip(rows.track_id, rows.class_id, rows.visibility)]
        tiles.append(draw_tracks(seq.frame(index), rows.boxes, rows.track_id, captions))
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, grid, jpeg_quality=85)


def _missing(dataset: str, root, problem: str) -> InputError:
    where, layout = WHERE[dataset]
    return InputError(f"{dataset}: {problem}. Download it from {where} and pass --root; expected layout: {layout}")


def _index_mot_sequence(path: Path) -> dict:
    from data.sequences import MotSequence
    seq = MotSequence(path)
    entry = {"name": seq.name, "path": str(path), "frames": len(seq), "width": seq.width, "height": seq.height,
             "fps": seq.fps, "frames_from": seq.frames_from}
    if seq.gt is not None:
        entry.update(gt_boxes=int(len(seq.gt)), identities=int(len(set(seq.gt.track_id.tolist()))))
    if seq.det_path is not None:
        entry["det_boxes"] = len(seq.detections())
    return entry


def mot(args) -> dict:
    root = args.root
    if root is None or not root.is_dir():
        raise _missing(args.dataset, root, f"--root {root} is not a folder" if root else "--root is required")
    index = {"dataset": args.dataset, "root": str(root), "splits": {}}
    for split in ("train", "test"):
        if (root / split).is_dir():
            seqs = sorted(p for p in (root / split).iterdir() if p.is_dir())
            index["splits"][split] = [_index_mot_sequence(p) for p in seqs]
    if not index["splits"].get("train"):
        raise _missing(args.dataset, root, f"{root / 'train'} has no sequences")
    return index


def pets09(args) -> dict:
    root = args.root
    if root is None or not (root / "seqinfo.ini").is_file():
        raise _missing("pets09", root, f"no seqinfo.ini in {root}" if root else "--root is required")
    if args.extract_frames:
        from data.sequences import MotSequence
        from data.video import VideoReader, write_image
        seq = MotSequence(root)
        img_dir = root / seq.info.im_dir
        if seq.video_path is None:
            print(f"{img_dir}: frames already extracted")
        else:
            img_dir.mkdir(exist_ok=True)
            with VideoReader(seq.video_path) as reader:
                for index, frame in reader:  # decoded frame k is MOT frame k + 1
                    write_image(img_dir / f"{index + 1:06d}{seq.info.im_ext}", frame, jpeg_quality=95)
            print(f"extracted {len(list(img_dir.iterdir()))} frames to {img_dir}")
    return {"dataset": "pets09", "root": str(root), "splits": {"train": [_index_mot_sequence(root)]}}


def ava(args) -> dict:
    from data.formats.ava import read_ava_csv, read_excluded_timestamps, read_pbtxt_label_map
    root = args.root
    ann = root / "annotations" if root else None
    if root is None or not ann.is_dir():
        raise _missing("ava", root, f"no annotations/ folder in {root}" if root else "--root is required")
    lists = sorted(ann.glob("ava_action_list*.pbtxt"))
    if not lists:
        raise _missing("ava", root, f"no ava_action_list*.pbtxt in {ann}")
    index = {"dataset": "ava", "root": str(root), "label_map": str(lists[-1]),
             "num_actions": len(read_pbtxt_label_map(lists[-1])), "splits": {}}
    for split in ("train", "val"):
        csvs = sorted(ann.glob(f"ava_{split}_v*.csv"))
        if not csvs:
            continue
        rows = read_ava_csv(csvs[-1])
        excluded = sorted(ann.glob(f"ava_{split}_excluded_timestamps*.csv"))
        videos = sorted(set(rows.video_id.tolist()))
        with_frames = [v for v in videos if (root / "frames" / v).is_dir()]
        index["splits"][split] = {"csv": str(csvs[-1]), "rows": len(rows), "videos": len(videos),
                                  "videos_with_frames": len(with_frames),
                                  "excluded_timestamps": len(read_excluded_timestamps(excluded[-1])) if excluded else 0}
    if not index["splits"]:
        raise _missing("ava", root, f"no ava_train_v*.csv or ava_val_v*.csv in {ann}")
    return index


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.dataset == "synthetic":
            return synthetic(args)
        index = {"mot17": mot, "mot20": mot, "pets09": pets09, "ava": ava}[args.dataset](args)
        out = args.out or ROOT / "data" / "generated" / f"{args.dataset}_index.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        for split, entries in index["splits"].items():
            if isinstance(entries, list):
                for e in entries:
                    print(f"{split:5} {e['name']:24} {e['frames']:6} frames {e['width']}x{e['height']} "
                          f"{e.get('gt_boxes', 0):7} gt boxes {e.get('identities', 0):4} ids  frames from {e['frames_from']}")
            else:
                print(f"{split:5} {entries['rows']} rows, {entries['videos']} videos "
                      f"({entries['videos_with_frames']} with frames)")
        print(f"index written to {out}")
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
