"""Preparing datasets: the synthetic benchmark (generated), and checks and indexes of copies a user
already has (MOTChallenge, PETS09-S2L1, AVA), which cannot be downloaded without accepting their
licences: when a copy is missing or incomplete, the error says where to get it and which layout is
expected. ``scripts/download_data.py`` is this module's command line."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from common.errors import InputError
from common.io import atomic_write_json

from config import CONFIG_DIR

DATA_CONFIG = CONFIG_DIR / "data" / "synthetic.yaml"


def default_synthetic() -> tuple[Path, int]:
    """Where the synthetic benchmark lives by default and its seed (``config/data/synthetic.yaml``,
    the one place they are written); a relative root is relative to the working directory, as
    every relative path a user gives."""
    from omegaconf import OmegaConf
    cfg = OmegaConf.load(DATA_CONFIG)
    return Path(cfg.root), int(cfg.seed)


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
KNOBS = ("width", "height", "fps", "length", "min_people", "max_people", "occlusion", "min_distractors",
          "max_distractors", "enter_exit", "camera_jitter", "noise", "min_action_s", "max_action_s", "jpeg_quality")


def write_preview(dataset: Path, path: Path) -> None:
    """Four frames of the busiest train sequence with ground truth drawn on them, written
    atomically (``path``'s extension is checked first by :func:`data.video.check_image_path`)."""
    import numpy as np
    from data.formats.vicr import read_label_map
    from data.sequences import mot_split
    from data.video import write_image
    from common.drawing import draw_tracks
    names = read_label_map(dataset / "label_map.txt").names
    seq = max(mot_split(dataset, "train"), key=lambda s: len(np.unique(s.gt.track_id)))
    tiles = []
    for index in np.linspace(len(seq) * 0.2, len(seq) - 1, 4).astype(int):
        rows = seq.gt.at_frame(index + 1)
        captions = [f"{names[seq.actions[(index + 1, int(t))]]} v{v:.1f}" if c == 1 else "distractor"
                    for t, c, v in zip(rows.track_id, rows.class_id, rows.visibility)]
        tiles.append(draw_tracks(seq.frame(index), rows.boxes, rows.track_id, captions))
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
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


def mot(dataset: str, root: Path | None) -> dict:
    if root is None or not root.is_dir():
        raise _missing(dataset, root, f"--root {root} is not a folder" if root else "--root is required")
    index = {"dataset": dataset, "root": str(root), "splits": {}}
    for split in ("train", "test"):
        if (root / split).is_dir():
            seqs = sorted(p for p in (root / split).iterdir() if p.is_dir())
            index["splits"][split] = [_index_mot_sequence(p) for p in seqs]
    if not index["splits"].get("train"):
        raise _missing(dataset, root, f"{root / 'train'} has no sequences")
    return index


def pets09(root: Path | None, extract_frames: bool = False) -> dict:
    if root is None or not (root / "seqinfo.ini").is_file():
        raise _missing("pets09", root, f"no seqinfo.ini in {root}" if root else "--root is required")
    if extract_frames:
        from common.io import remove_stale_partials
        from data.sequences import MotSequence
        from data.video import VideoReader, write_image
        seq = MotSequence(root)
        img_dir = root / seq.info.im_dir
        if seq.video_path is None:
            print(f"{img_dir}: frames already extracted")
        else:
            try:
                img_dir.mkdir(exist_ok=True)
            except OSError as exc:
                raise InputError(f"{img_dir}: cannot write the frames here ({exc.strerror or exc}); copy the "
                                 "sequence somewhere writable first") from None
            remove_stale_partials(img_dir, whole_folder=True)  # once, not per frame: the folder holds hundreds
            with VideoReader(seq.video_path) as reader:
                for index, frame in reader:  # decoded frame k is MOT frame k + 1
                    write_image(img_dir / f"{index + 1:06d}{seq.info.im_ext}", frame, jpeg_quality=95, clean_stale=False)
            print(f"extracted {len(list(img_dir.iterdir()))} frames to {img_dir}")
    return {"dataset": "pets09", "root": str(root), "splits": {"train": [_index_mot_sequence(root)]}}


def ava(root: Path | None) -> dict:
    from data.formats.ava import read_ava_csv, read_excluded_timestamps, read_pbtxt_label_map
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


def index_dataset(dataset: str, root: Path | None, out: Path, extract_frames: bool = False) -> dict:
    """Check a user's copy of ``dataset`` and write its index JSON to ``out``; returns the index."""
    if dataset == "pets09":
        index = pets09(root, extract_frames)
    elif dataset in ("mot17", "mot20"):
        index = mot(dataset, root)
    elif dataset == "ava":
        index = ava(root)
    else:
        raise InputError(f"--dataset {dataset}: expected one of {', '.join(WHERE)}")
    atomic_write_json(out, index, indent=1)
    return index


def format_index(index: dict) -> str:
    lines = []
    for split, entries in index["splits"].items():
        if isinstance(entries, list):
            for e in entries:
                lines.append(f"{split:5} {e['name']:24} {e['frames']:6} frames {e['width']}x{e['height']} "
                             f"{e.get('gt_boxes', 0):7} gt boxes {e.get('identities', 0):4} ids  frames from {e['frames_from']}")
        else:
            lines.append(f"{split:5} {entries['rows']} rows, {entries['videos']} videos "
                         f"({entries['videos_with_frames']} with frames)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ video checks
@contextlib.contextmanager
def _decoder_quiet():
    """File descriptor 2 sent to /dev/null: FFmpeg and OpenCV write their complaints about a
    corrupt file there themselves (about 380 lines for 8 videos), and the check's one line per
    bad video says it all."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def check_video(path: Path) -> str | None:
    """Why ``path`` is not a usable video (it does not open, decodes nothing, or stops before the
    frames its header announces), or None when it is fine. Decodes every frame, with the
    decoder's own messages silenced."""
    import cv2
    with _decoder_quiet():
        return _check_video(cv2, path)


def _check_video(cv2, path: Path) -> str | None:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return "cannot open as a video (corrupt file or unsupported codec)"
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        decoded = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            decoded += 1
        if decoded == 0:
            return "no decodable frame"
        if announced > 0 and decoded < announced - 1:  # headers may count one frame more
            return f"truncated: decodes {decoded} of the {announced} frames its header announces"
        return None
    finally:
        capture.release()


def _open_quarantine(root: Path, quarantine: Path) -> Path | None:
    """Refuse, before any decoding, a quarantine folder that overlaps the checked one (its videos
    would be skipped or moved onto themselves: "0 of 8 bad") or that cannot be made or written
    (tried for real: permission bits do not stop root, a read-only mount or /proc does). Returns
    the topmost folder this made, to remove again when nothing is moved there."""
    here, there = root.resolve(), quarantine.resolve()
    if there == here or here in there.parents:
        raise InputError(f"--quarantine {quarantine}: inside the checked folder {root}; choose a folder outside it")
    if there in here.parents:
        raise InputError(f"--quarantine {quarantine}: the checked folder {root} is inside it; choose a folder "
                         "outside it")
    made = quarantine
    while not made.parent.exists():
        made = made.parent
    made = None if quarantine.exists() else made
    try:
        quarantine.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=quarantine).close()
    except OSError as exc:
        reason = "a file, not a folder" if quarantine.exists() and not quarantine.is_dir() else exc.strerror or exc
        raise InputError(f"--quarantine {quarantine}: cannot be made or written ({reason})") from None
    return made


def _free_target(target: Path) -> Path:
    """``target``, or ``name-2.ext``, ``name-3.ext``... when a file is already there: the quarantine
    never overwrites a file."""
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def check_videos(root: Path, quarantine: Path | None = None, jobs: int = 1, log=print) -> list[tuple[Path, str]]:
    """Every video under ``root`` checked (:func:`check_video`); the bad ones are listed with their
    reason and, with ``quarantine`` (a folder outside ``root``), moved there under the same
    relative path (another name, said, when a file is already there)."""
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from data.video import VIDEO_EXTENSIONS

    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    made = _open_quarantine(root, quarantine) if quarantine is not None else None
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            reasons = list(pool.map(check_video, videos, chunksize=8))
    else:
        reasons = [check_video(v) for v in videos]
    bad = [(v, r) for v, r in zip(videos, reasons) if r is not None]
    for video, reason in bad:
        line = f"{video}: {reason}"
        if quarantine is not None:
            wanted = quarantine / video.relative_to(root)
            try:
                wanted.parent.mkdir(parents=True, exist_ok=True)
                target = _free_target(wanted)
                shutil.move(str(video), str(target))
            except OSError as exc:
                raise InputError(f"{wanted}: cannot move {video} to the quarantine ({exc.strerror or exc})") from None
            line += f" (moved to {target}" + (f": {wanted.name} was already there)" if target != wanted else ")")
        log(line)
    if made is not None and not bad:
        shutil.rmtree(made)  # only the empty folders made above
    log(f"checked {len(videos)} videos under {root}: {len(bad)} bad")
    return bad
