"""Pseudo-labelling with a vision-language model (V-ICR style, seed 000) and what distillation reads.

``run(...)`` is ``scripts/pseudo_label.py``: it loads ``config/pseudo_label.yaml`` (with the
command's overrides), finds the videos, wires the source of their tracks (a checkpoint of this
framework, a MOT file, or detections plus the tracker) and runs :func:`pipeline.pseudo_label`.
Training reads the results through :func:`data.sequences.with_pseudo_labels`.

Before any work it checks that the output folders can be written, that the label map is usable and
that the VLM server answers; at the end, a run that labelled nothing is an error.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common.errors import InputError
from config import CONFIG_DIR

CONFIG = CONFIG_DIR / "pseudo_label.yaml"


def load_config(path: Path | None = None, overrides: dict | None = None):
    """``(VLMConfig, LabellingConfig)`` from the yaml file, with ``overrides`` as ``{"vlm.model": ...}``."""
    from omegaconf import OmegaConf

    from common.schema import from_mapping
    from pseudolabel.pipeline import LabellingConfig
    from pseudolabel.vlm import VLMConfig

    path = path or CONFIG
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # OmegaConf names the line
        raise InputError(f"{path}: {str(exc).splitlines()[0]}") from None
    for key, value in (overrides or {}).items():
        group, name = key.split(".")
        if value is not None:
            cfg.setdefault(group, {})[name] = value
    return (from_mapping(VLMConfig, cfg.get("vlm"), f"{path.name}: vlm"),
            from_mapping(LabellingConfig, cfg.get("labelling"), f"{path.name}: labelling"))


def run(*, input_dir: Path, working_dir: Path, output_dir: Path, config: Path | None = None, overrides=None,
        checkpoint: str | None = None, tracks: str | None = None, detections: str | None = None,
        label_map: Path | None = None, oracle_gt: Path | None = None, oracle_noise: tuple[float, float] = (0.7, 0.05),
        skip_recognition: bool = False,
        pipeline_options=None, log=None):
    """The whole run; returns the pipeline's :class:`~pseudolabel.pipeline.Stats` (``skipped``
    names the inputs that could not be read). Raises :class:`InputError` when nothing was labelled."""
    from common.io import check_output_path
    from data.formats.mot import read_mot_file, tracks_from_rows
    from data.formats.vicr import read_label_map
    from pseudolabel.pipeline import pseudo_label
    from pseudolabel.tubes import find_videos, resolve_rows_file, run_tracker
    from pseudolabel.vlm import build_backend
    from tracking.pipeline import Pipeline, PipelineOptions

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if sum(x is not None for x in (checkpoint, tracks, detections)) != 1:
        raise InputError("give exactly one source of tracks: --checkpoint, --tracks or --detections")
    vlm, labelling = load_config(config, overrides)
    check_output_path(working_dir / "metadata.json", "the working folder")
    check_output_path(output_dir / "<video>.json", "the output files")
    predefined = read_label_map(label_map) if label_map is not None else None
    default = input_dir / "label_map.txt"  # seed 000's data/input/label_map.txt, used "if it contains labels"
    if predefined is None and default.is_file():
        predefined = read_label_map(default, allow_empty=True)
        if predefined:
            log(f"using the predefined label map {default}")
        else:
            log(f"{default} holds no labels: ignored, the VLM's own labels are grouped into a label map")
            predefined = None
    videos, skipped = find_videos(input_dir, log)
    options = pipeline_options or PipelineOptions()
    if checkpoint is not None:
        network = Pipeline.from_checkpoint(checkpoint, options)

        def tracks_of(video):
            return run_tracker(video, network, log=log)
    elif tracks is not None:
        def tracks_of(video):
            return tracks_from_rows(read_mot_file(resolve_rows_file(tracks, video, "tracks")))
    else:
        alone = Pipeline.tracker_only(options)

        def tracks_of(video):
            return run_tracker(video, alone, detections=read_mot_file(resolve_rows_file(detections, video, "detections")))
    backend = oracle = None
    if not skip_recognition:
        if vlm.backend == "oracle":
            from pseudolabel.oracle import SyntheticOracle
            if oracle_gt is None:
                raise InputError("--vlm oracle answers from a synthetic benchmark's ground truth: give --oracle-gt DATASET")
            oracle = SyntheticOracle(oracle_gt, top1=oracle_noise[0], invalid=oracle_noise[1])
        backend = build_backend(vlm, oracle)
    stats = pseudo_label(videos, tracks_of, backend=backend, config=labelling, working_dir=working_dir,
                         output_dir=output_dir, label_map=predefined, skip_recognition=skip_recognition,
                         max_tokens=vlm.max_tokens, log=log, skipped=skipped)
    if skip_recognition:
        return stats
    if not stats.tube_seconds:
        raise InputError(f"{input_dir}: nothing to label: no track has {labelling.min_track_frames} frames or more "
                         f"({stats.short_tracks} shorter ones skipped; labelling.min_track_frames sets the length)")
    if not stats.labelled:
        raise InputError(f"{input_dir}: nothing was labelled: none of the {stats.tube_seconds} tube seconds got a "
                         f"readable answer ({stats.invalid} unreadable replies, {stats.failed} requests unanswered): "
                         "check the model and the server")
    if vlm.backend == "oracle":
        fraction, count = oracle.agreement(working_dir)
        log(f"oracle: the final top-1 label is the true action for {100 * fraction:.1f} % of {count} person-seconds"
            if count else "oracle: no labelled person-second has a true action to compare with")
    return stats
