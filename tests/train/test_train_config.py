"""The training config is checked once, after composition: wrong types and ranges, unknown
experiments and metric names stop at once with one line; a resumed run keeps its own config."""
import pytest
import torch

from common.errors import InputError
from train.run import _new_run_dir, build_trainer, compose_config, train
from tests.train.test_training import small_overrides


@pytest.mark.parametrize("override, message", [
    ("experiment=does_not_exist", "Could not find 'experiment/does_not_exist'"),
    ("trainer.epochs=abc", "config.trainer.epochs: expected an integer, got 'abc'"),
    ("trainer.epochs=-1", "epochs and max_steps must be at least 1"),
    ("optimizer.lr=fast", "config.optimizer.lr: expected a number, got 'fast'"),
    ("data.batch_size=0", "batch_size must be at least 1"),
    ("data.size=[100,150]", "size must be two multiples of 32"),
    ("trainer.best_metric=mAP", "config.trainer.best_metric: expected one of 'det_ap50', 'reid_rank1', 'action_acc', 'mean'"),
    ("model.det_score=cls_quality", "do not go together"),
])
def test_bad_values_stop_before_any_work(override, message, tmp_path):
    with pytest.raises(InputError) as info:
        build_trainer(compose_config([override, f"runs_root={tmp_path}", f"data.root={tmp_path / 'never'}"]))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "never").exists() and not list(tmp_path.iterdir())  # no data made, no run folder


def test_run_folders_started_in_one_second_differ(tmp_path):
    a, b = _new_run_dir(str(tmp_path), "x"), _new_run_dir(str(tmp_path), "x")
    assert a != b and a.is_dir() and b.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot create the run folder"):
        _new_run_dir(str(tmp_path / "file" / "runs"), "x")


def test_resume_uses_the_stored_config_and_refuses_shape_changes(small_dataset, tmp_path):
    first = small_overrides(small_dataset, tmp_path, **{"trainer.epochs": 3, "trainer.max_steps": 2})
    train(compose_config(first), run_dir=tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    # The resume command alone: the run's own config (epochs 3, its data), not train.yaml's defaults.
    cfg = compose_config([f"resume={last}"])
    assert cfg.trainer.epochs == 3 and cfg.data.root == str(small_dataset) and cfg.data.size == [128, 192]
    # Harmless changes are allowed (and listed); changes of shape are refused, naming the key.
    cfg = compose_config([f"resume={last}", "trainer.max_steps=4", "trainer.log_every=5"])
    assert cfg.trainer.max_steps == 4 and cfg.trainer.log_every == 5
    for change in ("data.size=[160,224]", "data.batch_size=3", "data.clip_len=6", "trainer.epochs=9"):
        with pytest.raises(InputError, match=rf"keeps its model, data, loss, optimizer and schedule; this command changes "
                                             rf"{change.split('=')[0]}="):
            compose_config([f"resume={last}", change])
    trainer = build_trainer(compose_config([f"resume={last}", "trainer.max_steps=4"]), run_dir=tmp_path / "more")
    assert trainer.global_step == 2 and trainer.cfg.max_steps == 4


def test_an_empty_checkpoint_to_resume_is_one_line(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(InputError, match="empty file, not a checkpoint"):
        compose_config([f"resume={tmp_path / 'last.pt'}"])


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    import os

    import train.checkpoint as ckpt

    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"step": 1})
    stale = tmp_path / ".last.999999-abcdef.partial.pt"  # left by a writer killed mid-write
    stale.write_bytes(b"half")

    def full(obj, f):
        open(f, "wb").write(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(InputError, match="cannot write the checkpoint \\(No space left on device\\); the previous "
                                         "last.pt is intact"):
        ckpt.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no partial file, the stale one removed


@pytest.mark.parametrize("sources, message", [
    ("[{kind:mot,root:x},{kind:mot,root:x,frames:[430,1]}]",
     "config.data.sources[1]: frames: expected [first, last] with 1 <= first <= last, got [430, 1]"),
    ("[{kind:mot,root:x,frames:[0,0]}]", "config.data.sources[0]: frames: expected [first, last] with 1 <= first"),
    ("[{kind:mott,root:x}]",
     "config.data.sources[0].kind: expected one of 'synthetic', 'mot', 'crowdhuman', 'coco', 'yolo', 'clips', got 'mott'"),
    ("[{kind:mot,root:x,weight:-1}]", "config.data.sources[0]: weight: expected a number >= 0, got -1"),
    ("[{kind:mot,root:x},{kind:mot,root:x},{kind:mot,root:x,weigth:2}]",
     "config.data.sources[2]: unknown key 'weigth' (known: kind, root, split, frames, annotations, person_class, tracks, weight)"),
    ("[{kind:coco,root:x}]", "config.data.sources[0]: annotations: missing"),
])
def test_a_bad_source_entry_is_named_with_its_index_field_and_value(sources, message, tmp_path):
    """They all read "expected a list of mappings or null" (the union hid the entry's own error)."""
    for key in ("sources", "val_sources"):
        with pytest.raises(InputError) as info:
            build_trainer(compose_config([f"data.{key}={sources}", f"runs_root={tmp_path}"]))
        assert str(info.value).startswith(message.replace(".sources", f".{key}")) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def _stored_run(dataset, tmp_path, **extra):
    """A checkpoint holding only a run's config: all :func:`resume_config` reads."""
    from omegaconf import OmegaConf

    import train.checkpoint as ckpt
    stored = OmegaConf.to_container(compose_config(small_overrides(dataset, tmp_path, **extra)), resolve=True)
    ckpt.save_checkpoint(tmp_path / "last.pt", {"config": stored})
    return tmp_path / "last.pt"


def test_a_resume_override_equal_to_the_default_still_counts(tmp_path):
    """``trainer.max_steps=null`` (the default) was dropped, so a run stopped at max_steps=2 could
    not be continued past it; ``data.batch_size=4`` (the default) on a batch-2 run passed unrefused."""
    last = _stored_run(tmp_path / "data", tmp_path, **{"trainer.max_steps": 2, "trainer.log_every": 1})
    assert compose_config([f"resume={last}"]).trainer.max_steps == 2
    cfg = compose_config([f"resume={last}", "trainer.max_steps=null", "trainer.log_every=10"])
    assert cfg.trainer.max_steps is None and cfg.trainer.log_every == 10
    with pytest.raises(InputError, match=r"this command changes data.batch_size=4 \(the run has 2\)"):
        compose_config([f"resume={last}", "data.batch_size=4"])
    extra = tmp_path / "extra.yaml"
    extra.write_text("trainer:\n  log_every: 10\n")
    assert compose_config([f"resume={last}"], str(extra)).trainer.log_every == 10
    assert compose_config([f"resume={last}", "model=tiny"]).model.variant == "tiny"  # the run's own group: no change


def test_ctrl_c_says_whether_a_checkpoint_exists(tmp_path, monkeypatch, capsys):
    import importlib.util

    import train.run
    spec = importlib.util.spec_from_file_location("run_trainer", train.run.SOURCE_DIR / "scripts" / "run_trainer.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    class Interrupted:
        def __init__(self, run_dir, write):
            self.run_dir, self.write, self.rank = run_dir, write, 0

        def fit(self):
            if self.write:
                self.run_dir.mkdir()
                (self.run_dir / "last.pt").write_bytes(b"a checkpoint")
            raise KeyboardInterrupt

    for name, write in (("fresh", False), ("saved", True)):
        run_dir = tmp_path / name
        monkeypatch.setattr(train.run, "build_trainer", lambda cfg, run_dir=None, d=run_dir, w=write: Interrupted(d, w))
        assert script.main([f"runs_root={tmp_path}"]) == 130
        err = capsys.readouterr().err
        if write:
            assert err == (f"interrupted: the last checkpoint, {run_dir / 'last.pt'}, is intact (written atomically); "
                           f"continue with --resume {run_dir / 'last.pt'}\n")
        else:
            assert err == f"interrupted: no checkpoint was written yet in {run_dir}\n"  # it said "is intact"


def test_a_checkpoint_with_nan_optimizer_or_ema_state_is_refused_on_resume(trained_checkpoint, tmp_path):
    state = torch.load(trained_checkpoint, weights_only=True)
    trainer = build_trainer(compose_config([f"resume={trained_checkpoint}"]), run_dir=tmp_path / "run")
    first = next(iter(state["optimizer"]["state"]))
    ema_key = next(k for k, v in state["ema"]["module"].items() if v.is_floating_point())
    for damage, named in ((lambda s: s["optimizer"]["state"][first]["exp_avg"].view(-1)[0].fill_(float("nan")),
                           f"state optimizer.state.{first}.exp_avg hold 1 NaN"),
                          (lambda s: s["ema"]["module"][ema_key].view(-1)[0].fill_(float("inf")),
                           f"ema: weights {ema_key} hold 1 NaN"),
                          (lambda s: s["scaler"].update(scale=float("inf")), "state scaler.scale hold 1 NaN")):
        bad = torch.load(trained_checkpoint, weights_only=True)
        damage(bad)
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(InputError) as info:
            trainer.resume(tmp_path / "bad.pt")
        assert str(info.value).startswith(f"{tmp_path / 'bad.pt'}: {named} or infinite value(s)"), str(info.value)
    trainer.resume(trained_checkpoint)  # the undamaged one loads
    assert trainer.global_step == state["position"]["global_step"]


def test_a_full_disk_in_torch_save_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError from its zip writer, not an OSError."""
    import train.checkpoint as ckpt

    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"step": 1})

    def full(obj, f):
        open(f, "wb").write(b"x" * 100)
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(InputError) as info:
        ckpt.save_checkpoint(path, {"step": 2})
    assert str(info.value) == (f"{path}: cannot write the checkpoint (PytorchStreamWriter failed writing file data/0: "
                               "file write failed); the previous last.pt is intact")
    with pytest.raises(InputError, match=r"\(PytorchStreamWriter failed .*\); no best.pt was written"):
        ckpt.save_checkpoint(tmp_path / "best.pt", {"step": 2})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(path, weights_only=True)["step"] == 1


def test_every_shipped_experiment_composes_and_passes_the_check():
    """An experiment file with a typo'd key or a source entry its kind refuses is found here, not
    an hour into someone's run."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from train.config import check_train_config
    names = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "config" / "experiment").glob("*.yaml"))
    assert {"pets09_tiny", "pets09_coco128", "synthetic_30min"} <= set(names)
    for name in names:
        checked = check_train_config(OmegaConf.to_container(compose_config([f"experiment={name}"]), resolve=True))
        assert checked.trainer.epochs >= 1, name
    coco = check_train_config(OmegaConf.to_container(compose_config(["experiment=pets09_coco128"]), resolve=True))
    assert [s.kind for s in coco.data.sources] == ["mot", "yolo"] and coco.data.val_sources[0].frames == (431, 530)
