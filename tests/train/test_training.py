"""Training: overfitting drives every loss down, ReID embeddings of one identity get closer,
resume is exact, checkpoints load safely, the NaN guard stops, DDP keeps ranks equal."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data.clip_dataset import ClipDataset, ClipTransform, ClipTransformConfig, collate_clips
from common.errors import InputError
from data.sequences import mot_split
from models.mot_action_net import build_model
from models.checkpoint import load_model_state, read_checkpoint
from train.run import build_criterion, build_trainer, compose_config, train
from train.trainer import TrainingDiverged

ROOT = Path(__file__).resolve().parents[2]


def small_overrides(dataset: Path, runs: Path, **extra) -> list[str]:
    base = {"data.root": str(dataset), "data.size": "[128,192]", "data.batch_size": 2, "data.clip_len": 4,
            "data.stride": 1, "data.train_clip_step": 8, "data.num_workers": 0, "trainer.epochs": 2,
            "trainer.image_every": 3, "trainer.log_every": 1, "runs_root": str(runs), "optimizer.warmup_steps": 2}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def test_two_clip_overfit_drives_every_loss_down(small_dataset):
    torch.manual_seed(0)
    ds = ClipDataset(mot_split(small_dataset, "train"), clip_len=4, stride=2,
                     transform=ClipTransform(ClipTransformConfig(size=(128, 192), train=False)))
    batch = collate_clips([ds[0], ds[len(ds) - 1]])
    model = build_model("tiny", num_actions=6)
    # The fixed-target classification loss (focal): the default varifocal loss aims at the boxes'
    # IoU, which rises as the boxes improve, so its value need not fall (it has its own tests).
    cfg = compose_config(["loss.quality=iou"])
    crit = build_criterion(cfg.loss, ds.num_identities, 128)
    opt = torch.optim.AdamW(list(model.parameters()) + list(crit.parameters()), lr=2e-3)
    keys = ("det_cls", "det_box", "det_ctr", "reid_id", "reid_triplet", "action_ce")
    history = []
    for _ in range(40):
        terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        history.append({k: terms[k].item() for k in keys})
    first = {k: sum(h[k] for h in history[:3]) / 3 for k in keys}
    last = {k: sum(h[k] for h in history[-3:]) / 3 for k in keys}
    for k in keys:
        assert last[k] < 0.8 * first[k] or last[k] < 1e-3, f"{k}: {first[k]:.4f} -> {last[k]:.4f}"


def test_reid_embeddings_of_one_identity_get_closer(small_dataset):
    torch.manual_seed(1)
    ds = ClipDataset(mot_split(small_dataset, "train"), clip_len=4, stride=3,
                     transform=ClipTransform(ClipTransformConfig(size=(128, 192), train=False)))
    batch = collate_clips([ds[i] for i in range(0, len(ds), max(len(ds) // 3, 1))][:3])
    model = build_model("tiny", num_actions=6)
    crit = build_criterion(compose_config([]).loss, ds.num_identities, 128)
    opt = torch.optim.AdamW(list(model.parameters()) + list(crit.parameters()), lr=2e-3)

    def gap():
        # Batch statistics (train-mode BatchNorm): after 30 steps the running averages still lag.
        with torch.no_grad():
            out = model(batch["frames"], batch["boxes"], batch["mask"])
        ids = batch["identities"][:, None, :].expand_as(batch["mask"])[batch["mask"]]
        emb = out["embeddings"][batch["mask"]]
        sim = emb @ emb.t()
        same = ids[:, None] == ids[None, :]
        eye = torch.eye(len(ids), dtype=torch.bool)
        return sim[same & ~eye].mean().item() - sim[~same].mean().item()

    before = gap()
    for _ in range(30):
        terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
        opt.zero_grad()
        (terms["reid_id"] + terms["reid_triplet"]).backward()
        opt.step()
    after = gap()
    assert after > before + 0.2, f"same-identity similarity margin {before:.3f} -> {after:.3f}"


def _weights(path):
    return read_checkpoint(path)["model"]


def test_resume_is_exact(small_dataset, tmp_path):
    straight = build_trainer(compose_config(small_overrides(small_dataset, tmp_path, **{"trainer.max_steps": 7})),
                             run_dir=tmp_path / "straight")
    straight.fit()
    first = build_trainer(compose_config(small_overrides(small_dataset, tmp_path, **{"trainer.max_steps": 3})),
                          run_dir=tmp_path / "part")
    first.fit()
    assert first.global_step == 3 and first.epoch == 0  # stopped mid-epoch
    second = build_trainer(compose_config(small_overrides(small_dataset, tmp_path, **{
        "trainer.max_steps": 7, "resume": str(tmp_path / "part" / "last.pt")})), run_dir=tmp_path / "resumed")
    assert second.global_step == 3
    second.fit()
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = read_checkpoint(tmp_path / "straight" / "last.pt"), read_checkpoint(tmp_path / "resumed" / "last.pt")
    assert torch.equal(sa["criterion"]["log_vars"], sb["criterion"]["log_vars"])
    assert sa["position"] == sb["position"] == {"epoch": 1, "step_in_epoch": 2, "global_step": 7}


def test_run_folder_checkpoints_and_logs(small_dataset, tmp_path):
    metrics = train(compose_config(small_overrides(small_dataset, tmp_path, **{"trainer.epochs": 1})), run_dir=tmp_path / "run")
    run = tmp_path / "run"
    assert {"det_ap50", "reid_rank1", "action_acc", "mean"} <= set(metrics)
    assert (run / "config.yaml").is_file() and (run / "git_commit.txt").read_text().strip()
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert not list(run.glob("*.tmp"))
    state = torch.load(run / "best.pt", weights_only=True)  # plain torch, safe loading
    assert state["variant"] == "tiny" and "log_vars" in state["criterion"]
    # The tracker's settings for best.pt were chosen on the val split after training (last.pt keeps the defaults).
    settings = state["tracker_settings"]
    assert 0 <= settings["high_score"] <= settings["new_track_score"] <= 1 and "report_observation" in settings
    assert settings["chosen_on"].startswith(str(small_dataset / "val")) and settings["chosen_on"].endswith("by HOTA")
    assert "tracker_settings" not in torch.load(run / "last.pt", weights_only=True)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/det_cls", "loss/reid_triplet", "loss/action_ce", "task_weight/detection", "lr", "val/det_ap50"} <= tags
    assert "train/pred_vs_true" in events.Tags()["images"]


def test_checkpoint_mismatch_errors_are_clear(small_dataset, tmp_path):
    train(compose_config(small_overrides(small_dataset, tmp_path, **{"trainer.max_steps": 1})), run_dir=tmp_path / "run")
    state = read_checkpoint(tmp_path / "run" / "last.pt")
    lite = build_model("lite", num_actions=6)
    with pytest.raises(InputError, match="does not fit this model: .*shape mismatches"):
        load_model_state(lite, state["model"], "last.pt")
    partial = {k: v for k, v in state["model"].items() if not k.startswith("action_head")}
    with pytest.raises(InputError, match="missing keys"):
        load_model_state(build_model("tiny", num_actions=6), partial, "last.pt")
    # Integer values where the model holds floats would be cast without a word: a damaged file.
    cast = {**state["model"], "backbone.stem.0.weight": state["model"]["backbone.stem.0.weight"].long()}
    with pytest.raises(InputError, match=r"1 tensors of another kind of dtype \(e.g. backbone.stem.0.weight: "
                                         r"checkpoint torch.int64 vs model torch.float32\)"):
        load_model_state(build_model("tiny", num_actions=6), cast, "last.pt")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    load_model_state(build_model("tiny", num_actions=6), half, "last.pt")  # a float16 copy is still the weights
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt: not a checkpoint file \\(torch.save writes a zip archive"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a mot-action checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="variant"):
        build_trainer(compose_config(small_overrides(small_dataset, tmp_path, **{
            "model": "lite", "resume": str(tmp_path / "run" / "last.pt")})), run_dir=tmp_path / "other")


def test_nan_guard_skips_then_stops(small_dataset, tmp_path):
    trainer = build_trainer(compose_config(small_overrides(small_dataset, tmp_path, **{"trainer.max_bad_steps": 3})),
                            run_dir=tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    real_forward = trainer.criterion.forward

    def poisoned(outputs, batch):
        terms = real_forward(outputs, batch)
        terms["total"] = terms["total"] * float("nan")
        return terms

    trainer.criterion.forward = poisoned
    with pytest.raises(TrainingDiverged, match="not finite for 3 steps in a row"):
        trainer.fit()
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if after[k].dtype.is_floating_point and "running" not in k)


def test_seed_flags_map_onto_the_config():
    sys.path.insert(0, str(ROOT / "scripts"))
    import run_trainer
    overrides, extra = run_trainer.parse_args(["--model", "lite", "--batch-size", "3", "--num-epochs", "7", "--lr", "0.01",
                                          "--device", "cpu", "--exp-name", "x", "trainer.grad_clip=2"])
    cfg = compose_config(overrides)
    assert (cfg.model.variant, cfg.data.batch_size, cfg.trainer.epochs, cfg.optimizer.lr, cfg.device, cfg.exp_name,
            cfg.trainer.grad_clip) == ("lite", 3, 7, 0.01, "cpu", "x", 2.0)
    exp = compose_config(["experiment=synthetic_quick"])
    assert exp.exp_name == "synthetic_quick" and exp.trainer.epochs == 3


def test_bad_override_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_trainer.py"), "model=huge"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: config:") and "Traceback" not in result.stderr


def test_ddp_two_processes_hold_equal_weights(small_dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "train" / "ddp_worker.py"), str(tmp_path),
           *small_overrides(small_dataset, tmp_path, **{"trainer.max_steps": 3, "device": "cpu"})]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(a, b)
    assert "world 2 steps 3" in result.stdout
