"""The synthetic MOT + action benchmark: determinism, identities, actions, occlusion, boxes."""
import hashlib
import json
from dataclasses import astuple, replace

import numpy as np
import pytest

from data.formats.mot import read_action_sidecar, read_mot_file, read_seqinfo
from data.synthetic import (ACTIONS, DISTRACTOR_CLASS, Pose, SyntheticConfig, _PERIOD, action_pose,
                            generate_dataset)
from data.video import read_image


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _sequences(root):
    return sorted(p.parent for p in root.rglob("seqinfo.ini"))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, small_config):
    cfg = replace(small_config, length=12, sequences={"train": 1, "val": 1})
    generate_dataset(tmp_path / "a", seed=5, config=cfg)
    generate_dataset(tmp_path / "b", seed=5, config=cfg)
    generate_dataset(tmp_path / "c", seed=6, config=cfg)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_layout_and_splits(small_dataset, small_config):
    meta = json.loads((small_dataset / "meta.json").read_text())
    assert meta["seed"] == 123 and meta["config"]["actions"] == list(ACTIONS)
    assert (small_dataset / "label_map.txt").read_text().splitlines()[0] == "0: standing"
    for split, count in small_config.sequences.items():
        seqs = sorted((small_dataset / split).iterdir())
        assert len(seqs) == count
        for seq in seqs:
            info = read_seqinfo(seq / "seqinfo.ini")
            assert (info.width, info.height, info.seq_length) == (192, 128, 40)
            assert len(list((seq / "img1").glob("*.jpg"))) == 40
            assert read_image(seq / "img1" / "000001.jpg").shape == (128, 192, 3)


def test_boxes_inside_frame_and_truncation_marked(small_dataset):
    truncated = touching_total = 0
    for seq in _sequences(small_dataset):
        gt = read_mot_file(seq / "gt" / "gt.txt")
        info = read_seqinfo(seq / "seqinfo.ini")
        b = gt.boxes
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= info.width).all() and (b[:, 3] <= info.height).all()
        assert ((b[:, 2] - b[:, 0]) >= 1).all() and ((b[:, 3] - b[:, 1]) >= 1).all()
        # Person boxes touching the left/right edge were (nearly always) clipped: the part of the
        # figure outside the frame counts as invisible. (A figure can also end exactly on the edge.)
        person = gt.class_id == 1
        touching = person & ((b[:, 0] <= 0) | (b[:, 2] >= info.width))
        truncated += int((gt.visibility[touching] < 1.0).sum())
        touching_total += int(touching.sum())
    assert touching_total > 0 and truncated >= 0.8 * touching_total


def test_identity_keeps_id_and_appearance(small_dataset):
    checked = 0
    for seq in _sequences(small_dataset):
        gt = read_mot_file(seq / "gt" / "gt.txt")
        identities = json.loads((seq / "gt" / "identities.json").read_text())
        people = gt.select(gt.class_id == 1)
        for tid in np.unique(people.track_id):
            rows = people.select(people.track_id == tid)
            frames = rows.frame
            assert np.array_equal(frames, np.arange(frames.min(), frames.max() + 1)), "a track has holes"
            centres = (rows.boxes[:, :2] + rows.boxes[:, 2:]) / 2
            heights = rows.boxes[:, 3] - rows.boxes[:, 1]
            # Motion is smooth: an id never jumps to another person's place.
            assert (np.linalg.norm(np.diff(centres, axis=0), axis=1) < 0.5 * heights[1:] + 4).all()
            shirt = np.array(identities[str(tid)]["shirt"])
            for k in np.flatnonzero(rows.visibility >= 0.999)[::7]:
                image = read_image(seq / "img1" / f"{rows.frame[k]:06d}.jpg").astype(int)
                x1, y1, x2, y2 = np.round(rows.boxes[k]).astype(int)
                crop = image[y1:y2, x1:x2]
                near = (np.abs(crop - shirt).max(axis=2) < 45).mean()
                assert near > 0.04, f"{seq.name} id {tid} frame {rows.frame[k]}: shirt colour covers {near:.3f}"
                checked += 1
    assert checked > 20


def test_identities_share_colours_but_differ(small_dataset):
    for seq in _sequences(small_dataset):
        ids = json.loads((seq / "gt" / "identities.json").read_text())
        shirts = [tuple(v["shirt"]) for v in ids.values()]
        assert len(set(shirts)) < len(shirts), "no two identities share a shirt colour"
        full = {(tuple(v["shirt"]), tuple(v["pants"]), round(v["height_scale"], 3)) for v in ids.values()}
        assert len(full) == len(ids)


def test_actions_switch_every_one_to_four_seconds(small_dataset, small_config):
    fps = small_config.fps
    runs_checked = 0
    for seq in _sequences(small_dataset):
        actions = read_action_sidecar(seq / "gt" / "actions.txt")
        gt = read_mot_file(seq / "gt" / "gt.txt")
        people = gt.select(gt.class_id == 1)
        assert set(actions) == set(zip(people.frame.tolist(), people.track_id.tolist()))
        for tid in np.unique(people.track_id):
            seq_actions = [actions[(f, tid)] for f in sorted(people.frame[people.track_id == tid])]
            changes = [0] + [k for k in range(1, len(seq_actions)) if seq_actions[k] != seq_actions[k - 1]] + [len(seq_actions)]
            for a, b in zip(changes[1:-2], changes[2:-1]):  # interior runs only: the ends are cut by the clip
                assert fps * 1.0 - 1 <= b - a <= fps * 4.0 + 1
                runs_checked += 1
    assert runs_checked > 0


def test_occlusion_distractors_entering_and_leaving_occur(tmp_path):
    meta = generate_dataset(tmp_path, seed=1, config=SyntheticConfig(length=120, sequences={"train": 3}))
    seqs = meta["summary"]["train"].values()
    assert sum(s["heavily_occluded_boxes"] for s in seqs) > 0
    assert sum(s["distractor_boxes"] for s in seqs) > 0
    assert sum(s["entering"] for s in seqs) > 0 and sum(s["leaving"] for s in seqs) > 0
    assert all(3 <= s["people"] <= 10 for s in seqs)
    assert all(c > 0 for c in np.sum([s["action_counts"] for s in seqs], axis=0))
    gt = read_mot_file(next(iter(_sequences(tmp_path))) / "gt" / "gt.txt")
    distractors = gt.select(gt.class_id == DISTRACTOR_CLASS)
    assert len(distractors) and (distractors.conf == 0).all()  # MOT evaluation ignores them


def test_one_frame_cannot_tell_actions_apart():
    # Every action starts from (and keeps returning to) the neutral standing pose...
    for action in ACTIONS:
        assert action_pose(action, 0.0) == Pose()
        assert astuple(action_pose(action, _PERIOD[action])) == pytest.approx(astuple(Pose()), abs=1e-9)
    # ...and walking and running go through exactly the same poses, at different cadence.
    for t in np.linspace(0, 1, 7):
        walk = action_pose("walking", t * _PERIOD["walking"])
        run = action_pose("running", t * _PERIOD["running"])
        assert astuple(walk) == pytest.approx(astuple(run))


def test_config_knobs_are_validated():
    with pytest.raises(ValueError, match="actions"):
        generate_dataset("/nonexistent-never-written", config=SyntheticConfig(actions=("flying",)))
    with pytest.raises(ValueError, match="min_people"):
        SyntheticConfig(min_people=5, max_people=2).validate()
    with pytest.raises(ValueError, match="sequences keys"):
        SyntheticConfig(sequences={"training": 1}).validate()


TINY = SyntheticConfig(width=96, height=64, length=4, min_people=1, max_people=2, sequences={"train": 1, "val": 1})


def test_prepare_reuses_refuses_and_only_deletes_its_own_files(tmp_path):
    from common.errors import InputError
    from data.synthetic import prepare_synthetic

    out = tmp_path / "syn"
    meta, generated = prepare_synthetic(out, seed=1, config=TINY, log=lambda m: None)
    assert generated and meta["seed"] == 1
    assert prepare_synthetic(out, seed=1, config=TINY)[1] is False  # same seed and knobs: used as it is
    with pytest.raises(InputError, match=r"different synthetic dataset \(seed 1 \(asked 2\)"):
        prepare_synthetic(out, seed=2, config=TINY)
    notes = []
    assert prepare_synthetic(out, seed=2, config=TINY, use_existing=True, log=notes.append)[0]["seed"] == 1
    assert "using it as it is" in notes[0]
    # --force regenerates, deleting only what the generator wrote...
    assert prepare_synthetic(out, seed=2, config=TINY, force=True, log=lambda m: None)[0]["seed"] == 2
    # ...and never a folder holding anything else (a user's folder was once wiped this way).
    (out / "notes.txt").write_text("mine")
    (out / "train" / "my_video.mp4").write_bytes(b"x")
    with pytest.raises(InputError, match=r"holds files the generator did not write \(notes.txt, train/my_video.mp4\)"):
        prepare_synthetic(out, seed=3, config=TINY, force=True)
    assert (out / "notes.txt").read_text() == "mine" and json.loads((out / "meta.json").read_text())["seed"] == 2


def test_the_trainer_generates_with_an_empty_generator_config(tmp_path, monkeypatch):
    """The Quick start's first command failed here on a fresh clone: ``generator: {}`` is an empty,
    falsy DictConfig, and ``cfg or {}`` handed a plain dict to OmegaConf.to_container."""
    from omegaconf import OmegaConf

    import data.synthetic as synthetic
    from train.run import ensure_synthetic

    import data.prepare

    seen = []
    monkeypatch.setattr(synthetic, "generate_dataset", lambda out, seed, config: seen.append(config) or
                        {"seed": seed, "config": {}, "summary": {}})
    monkeypatch.setattr(synthetic, "format_summary", lambda meta: "")
    monkeypatch.setattr(data.prepare, "default_synthetic", lambda: (tmp_path / "syn", 0))  # a fresh clone's default
    cfg = OmegaConf.create({"root": str(tmp_path / "syn"), "seed": 0, "generator": {}})
    assert ensure_synthetic(cfg, rank=0) == tmp_path / "syn"
    assert seen == [SyntheticConfig()]


def test_a_mistyped_root_is_refused_not_generated(tmp_path, monkeypatch):
    """Only the default location is generated on first use: a typo'd data.root once got a fresh
    benchmark generated and trained on without a word."""
    from omegaconf import OmegaConf

    import data.prepare
    import data.synthetic as synthetic
    from common.errors import InputError
    from train.run import ensure_synthetic

    monkeypatch.setattr(synthetic, "generate_dataset", lambda *a, **k: pytest.fail("generated"))
    monkeypatch.setattr(data.prepare, "default_synthetic", lambda: (tmp_path / "default", 0))
    cfg = OmegaConf.create({"root": str(tmp_path / "synthetc"), "seed": 0, "generator": {}})
    with pytest.raises(InputError, match=rf"^config.data.root: {tmp_path / 'synthetc'} not found \(the synthetic "
                                         rf"benchmark is generated on first use only at its default location, "
                                         rf"{tmp_path / 'default'}, or where an experiment's data.generator asks "
                                         rf"for it;"):
        ensure_synthetic(cfg, rank=0)
    with pytest.raises(InputError, match=r"^config.data.sources\[2\].root: .*/elsewhere not found"):
        ensure_synthetic(cfg, rank=0, root=str(tmp_path / "elsewhere"), where="config.data.sources[2].root")
    assert not (tmp_path / "synthetc").exists() and not (tmp_path / "elsewhere").exists()


def test_an_experiment_that_declares_its_benchmark_gets_it_generated(tmp_path, monkeypatch):
    """synthetic_30min names its own root and generator knobs (16 training sequences): generated on
    first use there, as on a fresh clone (the typo check once refused it)."""
    from omegaconf import OmegaConf

    import data.prepare
    import data.synthetic as synthetic
    from train.run import ensure_synthetic

    made = []
    monkeypatch.setattr(synthetic, "prepare_synthetic", lambda root, **kwargs: made.append((root, kwargs)) or ({}, False))
    monkeypatch.setattr(data.prepare, "default_synthetic", lambda: (tmp_path / "default", 0))
    cfg = OmegaConf.create({"root": str(tmp_path / "train16"), "seed": 0,
                            "generator": {"sequences": {"train": 16, "val": 2, "test": 2}}})
    assert ensure_synthetic(cfg, rank=0) == tmp_path / "train16"
    assert [root for root, _ in made] == [tmp_path / "train16"]
    assert made[0][1]["config"].sequences == {"train": 16, "val": 2, "test": 2}


def test_force_never_deletes_a_users_file_inside_a_sequence(tmp_path):
    from common.errors import InputError
    from data.synthetic import prepare_synthetic

    out = tmp_path / "syn"
    prepare_synthetic(out, seed=1, config=TINY, log=lambda m: None)
    seq = out / "train" / "SYN-train-01"
    (seq / "notes.txt").write_text("mine")
    (seq / "img1" / "000001-labelled.jpg").write_bytes(b"mine too")
    (seq / "gt" / "my_gt.txt").write_text("1,1,0,0,1,1,1,1,1\n")
    # Used as it is (training reads it), but never deleted to regenerate it.
    assert prepare_synthetic(out, seed=1, config=TINY)[1] is False
    with pytest.raises(InputError, match=r"holds files the generator did not write \(train/SYN-train-01/gt/my_gt.txt, "
                                         r"train/SYN-train-01/img1/000001-labelled.jpg, train/SYN-train-01/notes.txt\)"):
        prepare_synthetic(out, seed=2, config=TINY, force=True)
    assert (seq / "notes.txt").read_text() == "mine" and (seq / "img1" / "000001.jpg").is_file()
    assert json.loads((out / "meta.json").read_text())["seed"] == 1
    for path in (seq / "notes.txt", seq / "img1" / "000001-labelled.jpg", seq / "gt" / "my_gt.txt"):
        path.unlink()
    (seq / "gt" / ".gt.999999-abcdef.partial.txt").write_text("left by a killed generation")
    assert prepare_synthetic(out, seed=2, config=TINY, force=True, log=lambda m: None)[0]["seed"] == 2
