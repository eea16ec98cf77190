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
