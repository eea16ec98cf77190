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
    python scripts/download_data.py --check /data/UCF101 --quarantine /data/UCF101_bad --jobs 4
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from common.cli import run_cli
from data.prepare import KNOBS, WHERE, default_synthetic
from data.synthetic import ACTIONS, SyntheticConfig


def parse_args(argv=None) -> argparse.Namespace:
    defaults = SyntheticConfig()
    default_out, default_seed = default_synthetic()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("Examples::")[1])
    p.add_argument("--dataset", choices=["synthetic", *WHERE])
    p.add_argument("--check", type=Path, metavar="DIR", help="check every video under DIR: list each one that does "
                                                             "not open, decodes nothing or is truncated, with the reason")
    p.add_argument("--quarantine", type=Path, help="with --check: move the bad videos here (same relative paths)")
    p.add_argument("--jobs", type=int, default=1, help="with --check: processes decoding in parallel")
    p.add_argument("--out", type=Path, help=f"synthetic: output folder (default {default_out}); "
                                            "others: where to write the index JSON "
                                            "(default data/generated/<dataset>_index.json)")
    p.add_argument("--root", type=Path, help="mot17/mot20/ava/pets09: your copy of the dataset")
    p.add_argument("--seed", type=int, default=default_seed, help=f"synthetic: random seed (default {default_seed})")
    p.add_argument("--force", action="store_true", help="synthetic: regenerate even if --out already holds a "
                                                        "benchmark (only the generator's own files are deleted)")
    p.add_argument("--extract-frames", action="store_true", help="pets09: decode the video into img1/*.jpg")
    p.add_argument("--preview", type=Path, help="synthetic: also write a 2x2 picture of train frames with "
                                                 "their boxes, ids, actions and visibility to this image file")
    g = p.add_argument_group("synthetic generator knobs (defaults in brackets)")
    for f in fields(SyntheticConfig):
        if f.name in KNOBS:
            g.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                           default=getattr(defaults, f.name), help=f"[{getattr(defaults, f.name)}]")
    g.add_argument("--actions", default=",".join(ACTIONS), help=f"comma-separated subset of {','.join(ACTIONS)}")
    for split, count in defaults.sequences.items():
        g.add_argument(f"--{split}", type=int, default=count, help=f"sequences in the {split} split [{count}]")
    args = p.parse_args(argv)
    if (args.dataset is None) == (args.check is None):
        p.error("give --dataset (prepare a dataset) or --check DIR (check its videos)")
    return args


def run(args) -> int | None:
    from data.prepare import check_videos, format_index, index_dataset, write_preview
    from data.synthetic import format_summary, prepare_synthetic

    if args.check is not None:
        return 1 if check_videos(args.check, args.quarantine, max(args.jobs, 1)) else None
    if args.dataset != "synthetic":
        out = args.out or Path("data") / "generated" / f"{args.dataset}_index.json"
        print(format_index(index_dataset(args.dataset, args.root, out, args.extract_frames)))
        print(f"index written to {out}")
        return
    if args.preview:  # before generating: a bad preview path would otherwise fail after all the work
        from common.io import check_output_path
        from data.video import check_image_path
        check_image_path(args.preview)
        check_output_path(args.preview, "the preview")
    config = SyntheticConfig(**{k: getattr(args, k) for k in KNOBS},
                             actions=tuple(a.strip() for a in args.actions.split(",") if a.strip()),
                             sequences={"train": args.train, "val": args.val, "test": args.test})
    out = args.out or default_synthetic()[0]
    meta, generated = prepare_synthetic(out, seed=args.seed, config=config, force=args.force)
    if not generated:
        print(f"{out}: already holds this benchmark (seed {args.seed}); use --force to regenerate")
    print(format_summary(meta))
    if generated:
        print(f"written to {out}")
    if args.preview:
        write_preview(out, args.preview)
        print(f"preview written to {args.preview}")


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
