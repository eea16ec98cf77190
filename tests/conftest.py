"""Shared fixtures: the project root on sys.path, the real-data folder, a small synthetic dataset."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real``; tests that use it skip when it is absent (as on a user's machine)."""
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} is absent")
    return REAL


@pytest.fixture(scope="session")
def small_config():
    from data.synthetic import SyntheticConfig
    return SyntheticConfig(width=192, height=128, length=40, min_people=4, max_people=6, occlusion=0.8,
                           min_distractors=2, max_distractors=2, enter_exit=0.6,
                           sequences={"train": 2, "val": 1, "test": 1})


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, small_config) -> Path:
    """A 4-sequence synthetic dataset generated once per test session."""
    from data.synthetic import generate_dataset
    out = tmp_path_factory.mktemp("synthetic")
    generate_dataset(out, seed=123, config=small_config)
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(small_dataset, tmp_path_factory) -> Path:
    """A tiny model trained for 4 steps on the small synthetic dataset (``last.pt``)."""
    from train.run import build_trainer, compose_config
    runs = tmp_path_factory.mktemp("runs")
    overrides = [f"data.root={small_dataset}", "data.size=[128,192]", "data.batch_size=2", "data.clip_len=4",
                 "data.stride=2", "data.train_clip_step=4", "data.num_workers=0", "trainer.epochs=1",
                 "trainer.max_steps=4", "trainer.image_every=0", f"runs_root={runs}"]
    trainer = build_trainer(compose_config(overrides), run_dir=runs / "run")
    trainer.fit()
    return runs / "run" / "last.pt"


def he_initialised(net):
    """``net`` with weights that make a wrong wiring visible: with the default init, deep features
    hardly depend on the frame and a wrong window would go unnoticed, so convolutions get He init;
    BatchNorm gets non-trivial statistics so folding it is really exercised; and the temporal
    encoder, which starts as the identity (zero output projection), is made to use the past."""
    import torch
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        torch.nn.init.normal_(net.temporal.out_proj.weight, std=0.2)
    return net
