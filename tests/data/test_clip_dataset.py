"""Sequences from every source, the clip dataset, its augmentation and collate."""
import json

import cv2
import numpy as np
import pytest
import torch

from data.clip_dataset import ClipDataset, ClipTransform, ClipTransformConfig, collate_clips
from common.errors import InputError
from data.formats.ava import read_ava_csv
from data.formats.mot import read_mot_file
from data.formats.vicr import (ActionCandidate, LabelMap, RecognitionResults, VicrFrame, VicrPerson, VicrTube,
                               VicrVideoInfo, VicrVideoLabels)
from data.sequences import AvaSequence, MotSequence, VicrSequence, mot_split


def _no_colour_jitter(size, train=True, flip_p=0.5):
    return ClipTransform(ClipTransformConfig(size=size, train=train, flip_p=flip_p, brightness=0, contrast=0,
                                             saturation=0, hue=0))


def test_mot_sequence_annotations_match_gt(small_dataset):
    seq = mot_split(small_dataset, "train")[0]
    gt = read_mot_file(seq.root / "gt" / "gt.txt")
    ann = seq.annotations(4)
    rows = gt.select((gt.frame == 5) & (gt.class_id == 1))
    assert sorted(ann.track_ids.tolist()) == sorted(rows.track_id.tolist())
    assert (ann.actions >= 0).all() and seq.num_actions == 6
    with pytest.raises(IndexError):
        seq.annotations(len(seq))


def test_clip_layout_without_augmentation(small_dataset):
    seqs = mot_split(small_dataset, "train")
    ds = ClipDataset(seqs, clip_len=5, stride=2, transform=_no_colour_jitter((128, 192), train=False))
    sample = ds[1]
    T, N = sample["mask"].shape
    assert T == 5 and sample["frames"].shape == (5, 3, 128, 192) and sample["frames"].dtype == torch.float32
    assert 0.0 <= sample["frames"].min() and sample["frames"].max() <= 1.0
    assert sample["frame_indices"].tolist() == [ds.index[1][1] + 2 * k for k in range(5)]
    seq = seqs[ds.index[1][0]]
    for t, f in enumerate(sample["frame_indices"].tolist()):
        ann = seq.annotations(f)
        for n, tid in enumerate(sample["track_ids"].tolist()):
            hit = np.flatnonzero(ann.track_ids == tid)
            assert bool(sample["mask"][t, n]) == bool(len(hit))
            if len(hit):  # a slot holds the same identity's box in every frame
                np.testing.assert_allclose(sample["boxes"][t, n].numpy(), ann.boxes[hit[0]], atol=1e-3)
                assert sample["actions"][t, n] == ann.actions[hit[0]]
    assert (sample["identities"] >= 0).all() and ds.num_identities >= len(sample["track_ids"])


def test_augmented_boxes_land_on_their_figures(small_dataset):
    """Draw each box of a flipped, rescaled, cropped batch back on its frame: the box holds its
    identity's shirt colour, and the same box shifted off the person does not."""
    torch.manual_seed(0)
    seqs = [MotSequence(p.root, min_visibility=1.0) for p in mot_split(small_dataset, "train")]
    ds = ClipDataset(seqs, clip_len=4, stride=3, transform=ClipTransform(ClipTransformConfig(
        size=(112, 176), flip_p=0.5, scale_range=(0.7, 1.3), brightness=0, contrast=0, saturation=0, hue=0)))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, collate_fn=collate_clips)
    hits = misses = 0
    for batch, _ in zip(loader, range(3)):
        B, T, N = batch["mask"].shape
        for b in range(B):
            seq = next(s for s in seqs if s.name == batch["sequence"][b])
            shirts = json.loads((seq.root / "gt" / "identities.json").read_text())
            for t in range(T):
                image = (batch["frames"][b, t].permute(1, 2, 0).numpy() * 255).round().astype(int)  # RGB
                for n in torch.nonzero(batch["mask"][b, t]).flatten().tolist():
                    shirt_rgb = np.array(shirts[str(int(batch["track_ids"][b, n]))]["shirt"][::-1])
                    x1, y1, x2, y2 = batch["boxes"][b, t, n].round().int().tolist()
                    if (x2 - x1) * (y2 - y1) < 60:
                        continue

                    def shirt_fraction(dx):
                        crop = image[y1:y2, max(x1 + dx, 0):max(x2 + dx, 0)]
                        return (np.abs(crop - shirt_rgb).max(axis=2) < 45).mean() if crop.size else 0.0

                    inside, away = shirt_fraction(0), shirt_fraction(3 * (x2 - x1) * (1 if x1 < 80 else -1))
                    hits += inside > 0.04
                    misses += inside <= 0.04
                    assert inside > away or inside > 0.04
    assert hits > 10 and misses <= 0.1 * (hits + misses)


def test_flip_is_applied_to_all_frames_alike(small_dataset):
    seqs = mot_split(small_dataset, "train")
    plain = ClipDataset(seqs, clip_len=4, transform=_no_colour_jitter((128, 192), train=False))
    flipped = ClipDataset(seqs, clip_len=4, transform=ClipTransform(ClipTransformConfig(
        size=(128, 192), flip_p=1.0, scale_range=(1.0, 1.0), brightness=0, contrast=0, saturation=0, hue=0)))
    a, b = plain[2], flipped[2]
    m = a["mask"]
    assert torch.equal(m, b["mask"])
    np.testing.assert_allclose(b["boxes"][..., 0][m], 192 - a["boxes"][..., 2][m], atol=1e-3)
    np.testing.assert_allclose(b["boxes"][..., 1][m], a["boxes"][..., 1][m], atol=1e-3)
    assert torch.allclose(b["frames"], a["frames"].flip(-1), atol=1e-6)


def test_colour_jitter_is_one_draw_per_clip(small_dataset):
    seqs = mot_split(small_dataset, "train")
    jitter = ClipTransform(ClipTransformConfig(size=(128, 192), flip_p=0, scale_range=(1, 1), brightness=0.5,
                                               contrast=0, saturation=0, hue=0))
    torch.manual_seed(1)
    ds = ClipDataset(seqs, clip_len=3, stride=1, transform=jitter)
    plain = ClipDataset(seqs, clip_len=3, stride=1, transform=_no_colour_jitter((128, 192), train=False))
    x, y = ds[0]["frames"], plain[0]["frames"]
    ratios = [(x[t].mean() / y[t].mean()).item() for t in range(3)]
    assert max(ratios) - min(ratios) < 0.02 and abs(ratios[0] - 1) > 0.01


def test_collate_pads_track_slots(small_dataset):
    seqs = mot_split(small_dataset, "train")
    ds = ClipDataset(seqs, clip_len=3, transform=_no_colour_jitter((128, 192), train=False))
    samples = [ds[i] for i in range(len(ds))]
    samples.sort(key=lambda s: s["mask"].shape[1])
    small, large = samples[0], samples[-1]
    batch = collate_clips([small, large])
    N = large["mask"].shape[1]
    n = small["mask"].shape[1]
    assert batch["boxes"].shape == (2, 3, N, 4) and batch["frames"].shape == (2, 3, 3, 128, 192)
    assert not batch["mask"][0, :, n:].any() and (batch["actions"][0, :, n:] == -1).all()
    assert (batch["track_ids"][0, n:] == -1).all() and batch["sequence"] == [small["sequence"], large["sequence"]]


def test_dataset_rejects_short_sequences(small_dataset):
    with pytest.raises(ValueError, match="long enough"):
        ClipDataset(mot_split(small_dataset, "train"), clip_len=30, stride=2)


def test_ava_sequence_labels_keyframes_only(tmp_path, real_data):
    rows = read_ava_csv(real_data / "ava" / "mmaction2_tests" / "ava_sample.csv")
    rows = rows.select(rows.video_id == "0f39OWEqJ24")
    frames = tmp_path / "0f39OWEqJ24"
    frames.mkdir()
    for k in range(1, 121):  # seconds 900-903 at 30 fps
        cv2.imwrite(str(frames / f"img_{k:05d}.jpg"), np.full((60, 80, 3), k, np.uint8))
    with pytest.warns(UserWarning, match=r"1 AVA labels with action ids outside the model's 2 actions \(79\) are left out"):
        AvaSequence(frames, rows, action_ids=[12, 17], fps=30)  # they were dropped without a word
    seq = AvaSequence(frames, rows, action_ids=[12, 17, 79, 80], fps=30)
    ann = seq.annotations(60)  # second 902
    assert ann.annotated and len(ann.boxes) == 1
    np.testing.assert_allclose(ann.boxes[0], [0.031 * 80, 0.162 * 60, 0.670 * 80, 0.995 * 60])
    np.testing.assert_allclose(ann.soft_actions[0], [1 / 3, 1 / 3, 1 / 3, 0])  # multi-label: 12, 17, 79
    assert not seq.annotations(61).annotated
    ds = ClipDataset([seq], clip_len=4, stride=15, clip_step=30)
    sample = ds[1]  # frames 30, 45, 60, 75: only 60 is a keyframe with a box
    assert sample["annotated"].tolist() == [False, False, True, False]  # only second 902 has rows
    assert sample["mask"].any(dim=1).tolist() == [False, False, True, False]


def test_vicr_sequence_with_soft_labels(tmp_path):
    h, w = 64, 96
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (w, h))
    for k in range(12):
        writer.write(np.full((h, w, 3), 10 * k, np.uint8))
    writer.release()
    labels = VicrVideoLabels(
        VicrVideoInfo("v", 5.0, w, h, 12, 2.4), LabelMap({0: "standing", 1: "walking"}),
        {"id_4": VicrPerson([VicrFrame(k, k / 5, (10, 5, 30 + k, 50), "walking", 1) for k in range(0, 12)], {0: ("walking", 1)})})
    recognition = RecognitionResults("v.avi", ["standing", "walking"], {"walking": ["strolling"]},
                                     {"id_4": VicrTube({0: [ActionCandidate("strolling", 0.6), ActionCandidate("standing", 0.2)]}, [])})
    seq = VicrSequence(tmp_path / "v.avi", labels, recognition)
    ann = seq.annotations(3)
    assert ann.track_ids.tolist() == [4] and ann.actions.tolist() == [1]
    np.testing.assert_allclose(ann.boxes[0], [10, 5, 33, 50])
    np.testing.assert_allclose(ann.soft_actions[0], [0.25, 0.75])
    sample = ClipDataset([seq], clip_len=4, stride=2)[0]
    assert sample["soft_actions"].shape == (4, 1, 2)
    np.testing.assert_allclose(sample["soft_actions"][0, 0].numpy(), [0.25, 0.75])
    assert sample["soft_actions"][3, 0].sum() == 0  # second 1 has no VLM candidates


def test_vicr_sequence_size_mismatch_is_clear(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 96, 3), np.uint8))
    writer.release()
    labels = VicrVideoLabels(VicrVideoInfo("v", 5.0, 1920, 1080, 3, 0.6), LabelMap({0: "a"}), {})
    with pytest.raises(InputError, match="frames are 96x64 but the labels say 1920x1080"):
        VicrSequence(tmp_path / "v.avi", labels)


@pytest.mark.real_data
def test_pets09_sequence_reads_frames_from_the_video(real_data):
    seq = MotSequence(real_data / "mot" / "PETS09-S2L1")
    assert len(seq) == 795 and seq.frame(0).shape == (576, 768, 3)
    ann = seq.annotations(0)
    gt = read_mot_file(real_data / "mot" / "PETS09-S2L1" / "gt" / "gt.txt")
    assert len(ann.boxes) == int(((gt.frame == 1) & (gt.conf > 0)).sum())
    assert not seq.annotations(600).boxes.size  # frames after 530 are held out: no gt
    assert len(seq.detections()) > 0
