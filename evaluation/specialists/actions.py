"""The specialists' action stage (issue 20): a clip classifier run on each person's tube.

A user without the joint network would track people with one model and then label each person's
seconds with a clip action classifier. This module is that classifier, trained from scratch on the
same data as the joint network:

* **Examples** are person tubes cut as the project's pseudo-labelling cuts them
  (:func:`data.tubes.plan_tubes`): per track and per second, ``frames_per_second`` frames
  spread over the track's frames of that second, one crop around the union of their boxes widened
  by the pseudo-labelling margin, here resized to a fixed clip size (the classifiers need one) and
  held in memory as uint8 RGB ``(T, H, W, 3)``. A tube's label is the person's majority action over
  that second (ties: the smallest action id); seconds with no label are skipped.
* **Classifiers**: torchvision's R3D-18 (``r3d_18(weights=None)``) and a small CNN+LSTM
  (:class:`CnnLstm`, seed 004's design), both from scratch. Inputs are normalised with the Kinetics
  mean and std, as torchvision's video models expect.
* **Inference** (:func:`label_tracks`): one label per track and second, as the joint network's
  action head labels each confirmed track at its rate: every row of a track in a second gets that
  second's probabilities.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from common.device import torch_threads
from common.io import atomic_path
from data.formats.mot import MotRows, Tracks, tracks_from_rows
from data.tubes import TubeSecond, crop_tube_frame, plan_tubes, second_of

KINDS = ("r3d_18", "cnn_lstm")
#: torchvision's video models (R3D-18, R(2+1)D, MC3) are trained on Kinetics-400 with these.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
#: The pseudo-labelling margin (plan_tubes' default): context around the person.
MARGIN = 0.25


# ------------------------------------------------------------------------------------- tubes
@dataclass
class Tube:
    """One person during one second: the clip the classifier sees and its label."""

    sequence: str
    plan: TubeSecond  # track, second, frame indices, crop and size, as plan_tubes gives them
    clip: np.ndarray  # (T, H, W, 3) uint8 RGB
    label: int  # the majority action of the person over the second, -1 at inference
    margin: float = MARGIN

    @property
    def track(self) -> int:
        return self.plan.track

    @property
    def second(self) -> int:
        return self.plan.second


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a clip from an int (square) or a pair."""
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _resample(indices: list[int], count: int) -> list[int]:
    """Exactly ``count`` indices in order: plan_tubes gives at most ``count`` (fewer when the track
    has fewer frames in the second), and a batch needs one length, so short tubes repeat frames."""
    return [indices[k * len(indices) // count] for k in range(count)]


def _plan(tracks: Tracks, period: float, width: int, height: int, frames: int, size: tuple[int, int],
          margin: float) -> list[TubeSecond]:
    """plan_tubes' tubes, resized to the classifier's clip size instead of a VLM's pixel budget."""
    plans = plan_tubes(tracks, period, width, height, frames_per_second=frames, margin=margin)
    return [replace(p, size=(size[1], size[0])) for p in plans]


def _cut(sequence, plans: list[TubeSecond], frames: int):
    """Yields ``(plan, clip)`` as each tube's last frame is read: every frame is read once, in
    order, and only the tubes still open are held, so a long sequence does not fill the memory."""
    slots: dict[int, list[tuple[int, int]]] = {}  # frame -> [(tube, slot)]
    ending: dict[int, list[int]] = {}  # frame -> tubes complete once it is read
    for k, plan in enumerate(plans):
        chosen = _resample(plan.frame_indices, frames)
        for slot, index in enumerate(chosen):
            slots.setdefault(index, []).append((k, slot))
        ending.setdefault(chosen[-1], []).append(k)
    open_clips: dict[int, np.ndarray] = {}
    for index in sorted(slots):
        image = sequence.frame(index)  # BGR
        for k, slot in slots[index]:
            plan = plans[k]
            width, height = plan.size
            if k not in open_clips:
                open_clips[k] = np.empty((frames, height, width, 3), np.uint8)  # (T, H, W, 3)
            open_clips[k][slot] = cv2.cvtColor(crop_tube_frame(image, plan), cv2.COLOR_BGR2RGB)
        for k in ending.get(index, []):
            yield plans[k], open_clips.pop(k)


def _ground_truth(sequence, period: float) -> tuple[Tracks, dict[tuple[int, int], int]]:
    """A sequence's ground-truth tracks, and the majority action of each labelled track-second."""
    tracks: Tracks = {}
    votes: dict[tuple[int, int], list[int]] = {}
    for index in range(len(sequence)):
        ann = sequence.annotations(index)
        for box, track, action in zip(ann.boxes, ann.track_ids, ann.actions):
            tracks.setdefault(int(track), []).append((index, np.asarray(box, dtype=np.float64)))
            if action >= 0:
                votes.setdefault((int(track), second_of(index, period)), []).append(int(action))
    majority = {key: int(np.bincount(v).argmax()) for key, v in votes.items()}  # argmax: smallest id on ties
    return dict(sorted(tracks.items())), majority


def cut_tubes(sequences, *, frames_per_second: int, size: int | tuple[int, int] = 112,
              margin: float = MARGIN) -> list[Tube]:
    """Labelled person tubes of ``sequences`` (:class:`data.sequences.Sequence`) from their ground
    truth: per track and per second a ``(frames_per_second, H, W, 3)`` uint8 RGB clip, ``size`` an
    int (square) or ``(height, width)``; 112 is what torchvision's video models are trained at."""
    height, width = _size(size)
    tubes = []
    for seq in sequences:
        tracks, majority = _ground_truth(seq, seq.fps)
        plans = [p for p in _plan(tracks, seq.fps, seq.width, seq.height, frames_per_second, (height, width), margin)
                 if (p.track, p.second) in majority]
        tubes += [Tube(seq.name, plan, clip, majority[(plan.track, plan.second)], margin)
                  for plan, clip in _cut(seq, plans, frames_per_second)]
    return tubes


class TubeDataset(torch.utils.data.Dataset):
    """Tubes as ``(clip, label)``: clip a ``(T, H, W, 3)`` uint8 tensor (normalised per batch by
    :func:`clip_input`, which is cheaper than per item)."""

    def __init__(self, tubes: list[Tube]):
        self.tubes = tubes

    def __len__(self) -> int:
        return len(self.tubes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        tube = self.tubes[index]
        return torch.from_numpy(tube.clip), tube.label


def clip_input(clips: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``(B, T, H, W, 3)`` -> float ``(B, T, 3, H, W)`` in [0, 1] normalised with the
    Kinetics mean and std (torchvision's video models' convention)."""
    x = clips.float().div_(255).permute(0, 1, 4, 2, 3)  # (B, T, H, W, 3) -> (B, T, 3, H, W)
    mean = torch.tensor(KINETICS_MEAN, device=x.device).view(1, 1, 3, 1, 1)  # (1, 1, 3, 1, 1)
    std = torch.tensor(KINETICS_STD, device=x.device).view(1, 1, 3, 1, 1)  # (1, 1, 3, 1, 1)
    return (x - mean) / std


# ------------------------------------------------------------------------------- classifiers
class R3d18(nn.Module):
    """torchvision's R3D-18 from scratch, fed ``(B, T, 3, H, W)`` like :class:`CnnLstm`."""

    def __init__(self, num_classes: int):
        super().__init__()
        from torchvision.models.video import r3d_18
        self.net = r3d_18(weights=None, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 2, 1, 3, 4))  # (B, T, C, H, W) -> (B, C, T, H, W), torchvision's layout


class CnnLstm(nn.Module):
    """A small per-frame CNN (stride-2 conv-BN-ReLU blocks, global average pool), an LSTM over the
    frames' features and a linear classifier on its last state (seed 004's CNN+LSTM, smaller)."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256), hidden: int = 256,
                 dropout: float = 0.3):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.lstm = nn.LSTM(cin, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        feats = self.cnn(x.flatten(0, 1))  # (B, T, C, H, W) -> (B*T, C, H, W) -> (B*T, F, 1, 1)
        feats = feats.view(b, t, -1)  # (B*T, F, 1, 1) -> (B, T, F)
        _, (h, _) = self.lstm(feats)  # h: (1, B, hidden)
        return self.head(h[-1])  # (B, hidden) -> (B, K)


def build_classifier(kind: str, num_classes: int) -> nn.Module:
    """An untrained classifier of ``kind`` taking ``(B, T, 3, H, W)`` normalised clips."""
    if kind == "r3d_18":
        return R3d18(num_classes)
    if kind == "cnn_lstm":
        return CnnLstm(num_classes)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


@dataclass
class TrainedClassifier:
    """A trained clip classifier and how its tubes are cut, so inference cuts them the same way."""

    kind: str
    model: nn.Module  # in eval mode
    num_classes: int
    frames: int  # T: frames per tube
    size: tuple[int, int]  # (height, width) of the clips
    margin: float
    steps: int
    epochs: float  # passes over the tubes, the last one possibly partial
    wall_seconds: float
    cpu_seconds: float  # time.process_time over the training: every thread of the process
    losses: list[float] = field(default_factory=list)  # per step, in train mode with augmentation
    val_accuracy: float | None = None  # of the kept weights, when val_tubes were given
    history: list[dict] = field(default_factory=list)  # per validation: epoch, steps, loss, val_accuracy

    def save(self, path: str | Path) -> None:
        meta = {k: getattr(self, k) for k in ("kind", "num_classes", "frames", "size", "margin", "steps", "epochs",
                                              "wall_seconds", "cpu_seconds", "losses", "val_accuracy", "history")}
        with atomic_path(path, "the classifier") as tmp:
            torch.save({"meta": meta, "state_dict": self.model.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TrainedClassifier":
        saved = torch.load(path, map_location=device, weights_only=True)
        meta = saved["meta"]
        model = build_classifier(meta["kind"], meta["num_classes"]).to(device)
        model.load_state_dict(saved["state_dict"])
        return cls(model=model.eval(), **{**meta, "size": tuple(meta["size"])})


def predict(classifier: TrainedClassifier, clips: np.ndarray | torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Action probabilities ``(B, K)`` of uint8 RGB clips ``(B, T, H, W, 3)``, in batches."""
    model = classifier.model
    device = next(model.parameters()).device
    clips = torch.as_tensor(clips)
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(clips), batch_size):
            logits = model(clip_input(clips[start:start + batch_size].to(device)))
            out.append(logits.float().softmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, classifier.num_classes), np.float32)


def accuracy(classifier: TrainedClassifier, tubes: list[Tube], batch_size: int = 16) -> float:
    """Top-1 accuracy of ``classifier`` on labelled tubes."""
    if not tubes:
        return float("nan")
    probs = predict(classifier, np.stack([t.clip for t in tubes]), batch_size)
    return float((probs.argmax(1) == np.array([t.label for t in tubes])).mean())


def train_classifier(kind: str, tubes: list[Tube], num_classes: int, *, budget_s: float, seed: int = 0,
                     batch_size: int = 8, lr: float = 1e-3, threads: int | None = None,
                     val_tubes: list[Tube] | None = None, min_steps: int = 1, device: str = "cpu",
                     log=None) -> TrainedClassifier:
    """Trains a ``kind`` classifier from scratch on ``tubes`` for at least ``budget_s`` CPU seconds
    (``time.process_time``: every thread of this process, so other load on the machine does not eat
    into it) and ``min_steps`` steps: epochs over the shuffled tubes until the budget is spent, AdamW
    (torch's defaults but ``lr``), cross-entropy, random horizontal flips of whole tubes. With
    ``val_tubes`` it keeps the weights of the best validation accuracy (checked after each epoch
    and at the end, inside the budget), else the last."""
    if not tubes:
        raise ValueError("no tubes to train on")
    frames, height, width = tubes[0].clip.shape[:3]
    margin = tubes[0].margin
    loader_rng = torch.Generator().manual_seed(seed)
    flip_rng = torch.Generator().manual_seed(seed + 1)
    loader = torch.utils.data.DataLoader(TubeDataset(tubes), batch_size=min(batch_size, len(tubes)), shuffle=True,
                                         generator=loader_rng, drop_last=len(tubes) > batch_size)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    # fork_rng: the seed decides the initial weights and dropout without touching the caller's RNG.
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(kind, num_classes).to(device)
        result = TrainedClassifier(kind, model, num_classes, frames, (height, width), margin, 0, 0.0, 0.0, 0.0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        best_state, best_acc, epoch, done = None, -1.0, 0, False

        def validate(epoch_loss: list[float]) -> None:
            nonlocal best_state, best_acc
            acc = accuracy(result, val_tubes, batch_size) if val_tubes else None
            result.history.append({"epoch": result.epochs, "steps": result.steps, "val_accuracy": acc,
                                   "loss": float(np.mean(epoch_loss)) if epoch_loss else None})
            if acc is not None and acc > best_acc:
                best_acc, best_state = acc, copy.deepcopy(model.state_dict())
            if log:
                log(f"{kind}: epoch {result.epochs:.2f}, {result.steps} steps, loss "
                    f"{result.history[-1]['loss']}, val accuracy {acc}")

        while not done:
            model.train()
            epoch_loss = []
            for clips, labels in loader:
                flip = torch.rand(len(clips), generator=flip_rng) < 0.5
                clips = torch.where(flip.view(-1, 1, 1, 1, 1), clips.flip(3), clips)  # (B, T, H, W, 3): W flipped
                loss = nn.functional.cross_entropy(model(clip_input(clips.to(device))), labels.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                result.steps += 1
                epoch_loss.append(loss.item())
                result.losses.append(epoch_loss[-1])
                if time.process_time() - cpu0 >= budget_s and result.steps >= min_steps:
                    done = True
                    break
            epoch += 1
            result.epochs = epoch - 1 + len(epoch_loss) / len(loader)
            validate(epoch_loss)
    if best_state is not None:
        model.load_state_dict(best_state)
        result.val_accuracy = best_acc
    model.eval()
    result.wall_seconds = time.perf_counter() - wall0
    result.cpu_seconds = time.process_time() - cpu0
    return result


# --------------------------------------------------------------------------------- inference
@dataclass
class LabelTiming:
    """Where :func:`label_tracks` spent its time: reading and cutting frames plus classifying."""

    wall_seconds: float  # the whole call
    cpu_seconds: float  # time.process_time over the call
    classify_seconds: float  # the classifier's forward passes alone (wall)
    frames_read: int
    tubes: int


def label_tracks_timed(classifier: TrainedClassifier, sequence, tracks: MotRows, *, fps: float, rate_s: float = 1.0,
                       batch_size: int = 16, threads: int | None = None) -> tuple[np.ndarray, LabelTiming]:
    """:func:`label_tracks` and its timing."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    k = classifier.num_classes
    period = fps * rate_s  # frames per label
    probs = np.full((len(tracks), k), 1.0 / k)
    by_track = tracks_from_rows(tracks)
    plans = _plan(by_track, period, sequence.width, sequence.height, classifier.frames, classifier.size,
                  classifier.margin)
    found: dict[tuple[int, int], np.ndarray] = {}
    classify_s = 0.0

    def classify(batch):
        nonlocal classify_s
        start = time.perf_counter()
        out = predict(classifier, np.stack([clip for _, clip in batch]), batch_size)
        classify_s += time.perf_counter() - start
        found.update({(plan.track, plan.second): p for (plan, _), p in zip(batch, out)})

    with torch_threads(threads):
        batch = []
        for item in _cut(sequence, plans, classifier.frames):
            batch.append(item)
            if len(batch) == batch_size:
                classify(batch)
                batch = []
        if batch:
            classify(batch)
    # Seconds with no tube of their own (a track with a single frame, a crop outside the image)
    # take the nearest second of the same track that has one; a track with none stays uniform.
    listed: dict[int, list[int]] = {}
    for track, second in found:
        listed.setdefault(track, []).append(second)
    seconds_of = {t: np.array(sorted(s)) for t, s in listed.items()}
    for row in range(len(tracks)):
        track = int(tracks.track_id[row])
        if track not in by_track or track not in seconds_of:
            continue  # rows tracks_from_rows leaves out (detections, ignored ground truth) stay uniform
        second = second_of(int(tracks.frame[row]) - 1, period)
        near = seconds_of[track][np.abs(seconds_of[track] - second).argmin()]
        probs[row] = found[(track, int(near))]
    timing = LabelTiming(time.perf_counter() - wall0, time.process_time() - cpu0, classify_s,
                         len({i for p in plans for i in _resample(p.frame_indices, classifier.frames)}), len(plans))
    return probs, timing


def label_tracks(classifier: TrainedClassifier, sequence, tracks: MotRows, *, fps: float, rate_s: float = 1.0,
                 batch_size: int = 16, threads: int | None = None) -> np.ndarray:
    """Per-row action probabilities ``(N_rows, K)`` of a tracker's MOT rows on ``sequence``: per
    track and per ``rate_s`` seconds, one tube cut exactly as for training (from the track's boxes)
    and classified, and every row of that track in that period gets its probabilities (one label
    per track-second, as the joint network's action head labels each track at its rate). A period
    of ``rate_s`` seconds other than 1 spans the same number of frames over a different time than
    the training tubes did. Rows of tracks with no tube stay uniform."""
    return label_tracks_timed(classifier, sequence, tracks, fps=fps, rate_s=rate_s, batch_size=batch_size,
                              threads=threads)[0]
