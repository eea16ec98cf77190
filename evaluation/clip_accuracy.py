"""Clip- and video-level action accuracy on a clip-level dataset (UCF101, HMDB51, Kinetics, ...):
each video's label is its main person's action (:mod:`data.action_clips`).

A clip is ``clip_len`` frames ``stride`` apart, as the network was trained; a video gives
non-overlapping clips. The network sees a clip with the main person's tube and its action
probabilities are averaged over the frames where that person is present: the clip's prediction.
A video's prediction is the mean of its clips' (as torchvision's video classification reference
computes video accuracy). Reported: Acc@1 and Acc@5 of both, and the counts.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from common.errors import InputError
from data.action_clips import ActionVideo, main_track, read_tracks
from evaluation.action_metrics import topk_accuracy


def _clip_probs(model, spec, frames: list[np.ndarray], boxes: list[np.ndarray | None], device) -> np.ndarray | None:
    """Mean action probabilities of the main person over the clip's frames where they are present."""
    from models.inputs import Letterbox, network_input

    present = [b is not None for b in boxes]
    if not any(present):
        return None
    letterbox = Letterbox.fit(frames[0].shape[1], frames[0].shape[0], spec.input_size)
    clip = network_input([letterbox.image(f) for f in frames], device)[None]  # (T, 3, H, W) -> (1, T, 3, H, W)
    tube = np.zeros((1, len(frames), 1, 4), np.float32)
    for t, box in enumerate(boxes):
        if box is not None:
            tube[0, t, 0] = letterbox.to_network(box)[0]
    mask = torch.tensor(present, device=device)[None, :, None]  # (1, T, 1)
    tube = torch.from_numpy(tube).to(device)
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            probs = model(clip, tube, mask)["action_logits"].float().softmax(-1)[0, :, 0]  # (1, T, 1, A) -> (T, A)
    else:  # the exported graphs (--runtime onnxruntime)
        probs = model.clip_actions(clip, tube, mask)[:, 0]  # (T, 1, A) -> (T, A)
    return probs[torch.tensor(present)].mean(0).cpu().numpy()


def evaluate_clips(pipeline, videos: list[ActionVideo], tracks_dir: Path | None = None, log=None) -> dict:
    """Acc@1/Acc@5 of clips and videos. Tracks come from ``tracks_dir`` (``<video>.txt`` MOT or
    ``<video>.json`` V-ICR files) when given, else from ``pipeline``'s network and tracker."""
    from common.progress import ProgressBar
    from data.formats.mot import tracks_from_rows
    from data.video import FrameStream
    from tracking.runner import track_video

    log = log or (lambda message: print(message, file=sys.stderr))
    model, spec, device = pipeline.model, pipeline.spec, pipeline.device
    classes = {name: i for i, name in enumerate(spec.action_names)}
    unknown = sorted({v.label for v in videos} - set(classes))
    if unknown:
        raise InputError(f"labels {', '.join(unknown[:5])} are not among the checkpoint's actions "
                         f"({', '.join(spec.action_names[:8])}...): it was not trained on this dataset")
    span = (spec.clip_len - 1) * spec.stride + 1
    clip_probs, clip_labels, video_probs, video_labels = [], [], [], []
    bar = ProgressBar(len(videos), unit="videos")
    for count, video in enumerate(videos, start=1):
        stream = FrameStream(video.path, log=log)
        if tracks_dir is not None:
            path = next((tracks_dir / f"{video.path.stem}{ext}" for ext in (".txt", ".json")
                         if (tracks_dir / f"{video.path.stem}{ext}").is_file()), None)
            if path is None:
                raise InputError(f"{tracks_dir}: no {video.path.stem}.txt or .json with the tracks of {video.path}")
            tracks = read_tracks(path)
        else:
            tracks = tracks_from_rows(track_video(pipeline, name=video.path.stem, fps=stream.fps, width=stream.width,
                                                  height=stream.height, frames=stream,
                                                  total_frames=stream.frame_count))
        main = main_track(tracks)
        boxes = {f: b for f, b in tracks.get(main, [])} if main is not None else {}
        length = stream.frame_count
        starts = range(0, max(length - span + 1, 1), span)
        needed = {start + k * spec.stride for start in starts for k in range(spec.clip_len)}
        frames = {index: frame for index, _, frame in FrameStream(video.path, log=log) if index in needed}
        mine = []
        for start in starts:
            indices = [start + k * spec.stride for k in range(spec.clip_len)]
            if indices[-1] not in frames:
                continue
            probs = _clip_probs(model, spec, [frames[i] for i in indices], [boxes.get(i) for i in indices], device)
            if probs is not None:
                mine.append(probs)
        if mine:
            clip_probs += mine
            clip_labels += [classes[video.label]] * len(mine)
            video_probs.append(np.mean(mine, axis=0))
            video_labels.append(classes[video.label])
        else:
            log(f"note: {video.path}: nobody tracked in any clip, left out")
        bar.update(count, f"clips {len(clip_probs)}")
    bar.close()
    if not video_probs:
        raise InputError("no video had a tracked person: nothing to score")
    cp, cl, vp, vl = np.array(clip_probs), np.array(clip_labels), np.array(video_probs), np.array(video_labels)
    return {"clip_acc1": 100 * topk_accuracy(cp, cl, 1), "clip_acc5": 100 * topk_accuracy(cp, cl, 5),
            "video_acc1": 100 * topk_accuracy(vp, vl, 1), "video_acc5": 100 * topk_accuracy(vp, vl, 5),
            "clips": len(cl), "videos": len(vl), "videos_left_out": len(videos) - len(vl)}
