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
