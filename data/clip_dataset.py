"""Clips of T frames with per-track targets, their augmentation, and batching.

A sample is T frames ``start, start + stride, ...`` of one :class:`data.sequences.Sequence`. Its
targets are laid out in **track slots**: slot ``n`` is the same identity in every frame of the
clip (present where ``mask[t, n]``), so the action head can read a person's box sequence directly:

=================  ================  ===========================================================
key                shape             meaning
=================  ================  ===========================================================
``frames``         (T, 3, H, W)      float32 RGB in [0, 1]
``boxes``          (T, N, 4)         float32 xyxy pixels of the transformed frames (0 where absent)
``mask``           (T, N)            bool, slot n has a box in frame t
``labels``         (T, N)            int64 class (0 = person), -1 where absent
``track_ids``      (N,)              int64 track id within the sequence
``identities``     (N,)              int64 dataset-wide identity (ReID class), -1 if unknown
``actions``        (T, N)            int64 action id, -1 where unknown or absent
``soft_actions``   (T, N, A)         float32 distribution (all zero where unknown)
``visibility``     (T, N)            float visible fraction of each box (1 where the source has none)
``annotated``      (T,)              bool, frame t carries labels (AVA labels keyframes only)
``frame_indices``  (T,)              int64 0-based frame indices in the sequence
``ignore_boxes``   (T, K, 4)         float32 regions that are neither people nor background (0 where absent)
``ignore_mask``    (T, K)            bool, ignore box k exists in frame t
=================  ================  ===========================================================

:func:`collate_clips` pads ``N`` to the largest clip of the batch and stacks everything with a
leading batch axis ``B``; ``sequence`` names stay a list.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from data.sequences import Sequence

MIN_BOX_SIDE = 2.0  # pixels: boxes cropped or squeezed below this are dropped from the clip


@dataclass
class ClipTransformConfig:
    size: tuple[int, int] = (192, 320)  # output (H, W)
    train: bool = True
    flip_p: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.25)  # scale jitter around ``size``
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03
    zoom_out_p: float = 0.0  # probability of shrinking the scene onto a larger grey canvas first
    zoom_out_max: float = 2.0  # the canvas is up to this many times the frame's side
    crop_p: float = 0.0  # probability of a random crop of the frame first (zooming in)
    crop_min: float = 0.5  # the crop keeps at least this fraction of each side
    blur_p: float = 0.0  # probability of a Gaussian blur (sigma 0.1-1.5 pixels)
    noise_std: float = 0.0  # Gaussian pixel noise, in 0-255 units (0: none)


class _AddNoise(v2.Transform):
    """Gaussian pixel noise on a uint8 clip, one draw of its strength per clip."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def make_params(self, flat_inputs):
        return {"std": float(torch.rand(()) * self.std)}

    def transform(self, inpt, params):
        if not isinstance(inpt, tv_tensors.Video):
            return inpt
        noisy = inpt.float() + torch.randn(inpt.shape) * params["std"]
        return tv_tensors.wrap(noisy.round_().clamp_(0, 255).to(torch.uint8), like=inpt)


class ClipTransform:
    """Resize (eval) or flip + scale jitter + crop/pad + colour jitter (train), with one set of
    random parameters per clip so all T frames and their boxes move together."""

    def __init__(self, config: ClipTransformConfig | None = None):
        self.config = config or ClipTransformConfig()
        c = self.config
        if c.train:
            steps = [v2.RandomHorizontalFlip(p=c.flip_p)]
            if c.crop_p > 0:  # zoom in: people larger and cut at the edges
                steps.append(v2.RandomApply([v2.RandomResizedCrop(size=c.size, scale=(c.crop_min ** 2, 1.0),
                                                                  ratio=(c.size[1] / c.size[0] * 0.75,
                                                                         c.size[1] / c.size[0] / 0.75),
                                                                  antialias=True)], p=c.crop_p))
            if c.zoom_out_p > 0:  # zoom out: people smaller, as in a wider shot
                steps.append(v2.RandomApply([v2.RandomZoomOut(fill=114, side_range=(1.0, c.zoom_out_max))],
                                            p=c.zoom_out_p))
            steps += [
                # ScaleJitter reads target_size as (width, height), unlike the rest of v2.
                v2.ScaleJitter(target_size=(c.size[1], c.size[0]), scale_range=c.scale_range, antialias=True),
                v2.RandomCrop(size=c.size, pad_if_needed=True, fill=114),
                v2.ColorJitter(c.brightness, c.contrast, c.saturation, c.hue),
            ]
            if c.blur_p > 0:
                steps.append(v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=c.blur_p))
            if c.noise_std > 0:
                steps.append(_AddNoise(c.noise_std))
            self.transform = v2.Compose(steps + [v2.ClampBoundingBoxes()])
        else:
            self.transform = v2.Compose([v2.Resize(size=c.size, antialias=True), v2.ClampBoundingBoxes()])

    def __call__(self, video: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``video`` (T, 3, H, W) uint8, ``boxes`` (M, 4) xyxy -> transformed video and boxes (same M)."""
        T, C, H, W = video.shape
        video = tv_tensors.Video(video)
        boxes = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(H, W))
        out_video, out_boxes = self.transform(video, boxes)
        return out_video.as_subclass(torch.Tensor), out_boxes.as_subclass(torch.Tensor)


class ClipDataset(Dataset):
    """Clips of ``clip_len`` frames every ``clip_step`` frames over several sequences.

    ``identity_index`` maps ``(sequence name, track id)`` to the ReID class; by default every
    identity of the given sequences gets one, in sorted order.
    """

    def __init__(self, sequences: list[Sequence], clip_len: int = 8, stride: int = 1, clip_step: int | None = None,
                 transform: ClipTransform | None = None, num_actions: int | None = None,
                 identity_index: dict[tuple[str, int], int] | None = None, seed: int = 0):
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
        if not sequences:
            raise ValueError("ClipDataset needs at least one sequence")
        self.sequences = sequences
        self.seed, self.epoch = seed, 0
        self.clip_len, self.stride = clip_len, stride
        self.clip_step = clip_step or clip_len * stride
        self.transform = transform or ClipTransform(ClipTransformConfig(size=(sequences[0].height, sequences[0].width), train=False))
        self.num_actions = num_actions if num_actions is not None else max(s.num_actions for s in sequences)
        span = (clip_len - 1) * stride + 1
        self.index = [(si, start) for si, seq in enumerate(sequences)
                      for start in range(0, len(seq) - span + 1, self.clip_step)]
        if not self.index:
            raise ValueError(f"no sequence is long enough for clips of {clip_len} frames at stride {stride}")
        if identity_index is None:
            keys = {(seq.name, t) for seq in sequences for t in seq.track_ids()}
            identity_index = {k: i for i, k in enumerate(sorted(keys))}
        self.identity_index = identity_index

    def set_epoch(self, epoch: int) -> None:
        """Augmentations differ between epochs and repeat exactly for the same epoch."""
        self.epoch = epoch

    @property
    def num_identities(self) -> int:
        return len(self.identity_index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        si, start = self.index[i]
        seq = self.sequences[si]
        frame_ids = [start + k * self.stride for k in range(self.clip_len)]
        frames = [cv2.cvtColor(seq.frame(f), cv2.COLOR_BGR2RGB) for f in frame_ids]
        anns = [seq.annotations(f) for f in frame_ids]
        tracks = sorted({int(t) for a in anns for t in a.track_ids})
        slot = {t: n for n, t in enumerate(tracks)}
        T, N, A = self.clip_len, len(tracks), self.num_actions
        flat_boxes, flat_pos = [], []  # all boxes of the clip in one list, transformed together
        ignore_pos = []  # (t, k) of the ignore regions, appended to the same list
        actions = torch.full((T, N), -1, dtype=torch.int64)
        soft = torch.zeros((T, N, A), dtype=torch.float32)
        visibility = torch.zeros((T, N), dtype=torch.float32)
        for t, a in enumerate(anns):
            for k, tid in enumerate(a.track_ids):
                n = slot[int(tid)]
                flat_boxes.append(a.boxes[k])
                flat_pos.append((t, n))
                actions[t, n] = int(a.actions[k])
                visibility[t, n] = 1.0 if a.visibility is None else float(a.visibility[k])
                if a.soft_actions is not None and A:
                    soft[t, n, : a.soft_actions.shape[1]] = torch.from_numpy(a.soft_actions[k, :A].astype(np.float32))
        for t, a in enumerate(anns):
            for k, box in enumerate(a.ignore_boxes if a.ignore_boxes is not None else ()):
                flat_boxes.append(box)
                ignore_pos.append((t, k))
        video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # (T, H, W, 3) -> (T, 3, H, W)
        box_tensor = torch.tensor(np.array(flat_boxes, dtype=np.float32).reshape(-1, 4))
        # Augmentation draws from a generator seeded by (seed, epoch, index): the same sample gets
        # the same augmentation in any worker and after a resume.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFFFFFF)
            video, box_tensor = self.transform(video, box_tensor)
        boxes = torch.zeros((T, N, 4), dtype=torch.float32)
        mask = torch.zeros((T, N), dtype=torch.bool)
        for (t, n), box in zip(flat_pos, box_tensor):
            if box[2] - box[0] >= MIN_BOX_SIDE and box[3] - box[1] >= MIN_BOX_SIDE:
                boxes[t, n], mask[t, n] = box, True
        K = max((k + 1 for _, k in ignore_pos), default=0)
        ignore_boxes = torch.zeros((T, K, 4), dtype=torch.float32)
        ignore_mask = torch.zeros((T, K), dtype=torch.bool)
        for (t, k), box in zip(ignore_pos, box_tensor[len(flat_pos):]):
            if box[2] - box[0] >= MIN_BOX_SIDE and box[3] - box[1] >= MIN_BOX_SIDE:
                ignore_boxes[t, k], ignore_mask[t, k] = box, True
        actions[~mask] = -1
        soft[~mask] = 0.0
        visibility[~mask] = 0.0
        labels = torch.where(mask, 0, -1)
        identities = torch.tensor([self.identity_index.get((seq.name, t), -1) for t in tracks], dtype=torch.int64)
        return {
            "frames": video.float().div_(255.0),
            "boxes": boxes, "mask": mask, "labels": labels,
            "track_ids": torch.tensor(tracks, dtype=torch.int64), "identities": identities,
            "actions": actions, "soft_actions": soft, "visibility": visibility,
            "annotated": torch.tensor([a.annotated for a in anns]),
            "frame_indices": torch.tensor(frame_ids, dtype=torch.int64),
            "ignore_boxes": ignore_boxes, "ignore_mask": ignore_mask,
            "sequence": seq.name,
        }


def collate_clips(samples: list[dict]) -> dict:
    """Stack clips into a batch, padding the track-slot axis N to the batch's largest clip."""
    if not samples:
        raise ValueError("collate_clips needs at least one sample")
    B = len(samples)
    T = samples[0]["frames"].shape[0]
    N = max(s["mask"].shape[1] for s in samples)
    A = samples[0]["soft_actions"].shape[2]
    out = {
        "frames": torch.stack([s["frames"] for s in samples]),  # (B, T, 3, H, W)
        "boxes": torch.zeros((B, T, N, 4)),
        "mask": torch.zeros((B, T, N), dtype=torch.bool),
        "labels": torch.full((B, T, N), -1, dtype=torch.int64),
        "track_ids": torch.full((B, N), -1, dtype=torch.int64),
        "identities": torch.full((B, N), -1, dtype=torch.int64),
        "actions": torch.full((B, T, N), -1, dtype=torch.int64),
        "soft_actions": torch.zeros((B, T, N, A)),
        "visibility": torch.zeros((B, T, N)),
        "annotated": torch.stack([s["annotated"] for s in samples]),
        "frame_indices": torch.stack([s["frame_indices"] for s in samples]),
        "sequence": [s["sequence"] for s in samples],
    }
    K = max(s["ignore_mask"].shape[1] for s in samples)
    out["ignore_boxes"] = torch.zeros((B, T, K, 4))
    out["ignore_mask"] = torch.zeros((B, T, K), dtype=torch.bool)
    for b, s in enumerate(samples):
        k = s["ignore_mask"].shape[1]
        out["ignore_boxes"][b, :, :k], out["ignore_mask"][b, :, :k] = s["ignore_boxes"], s["ignore_mask"]
    for b, s in enumerate(samples):
        n = s["mask"].shape[1]
        for key in ("boxes", "mask", "labels", "actions", "soft_actions", "visibility"):
            out[key][b, :, :n] = s[key]
        out["track_ids"][b, :n] = s["track_ids"]
        out["identities"][b, :n] = s["identities"]
    return out
