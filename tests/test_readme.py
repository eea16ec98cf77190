"""Every ``python scripts/...`` command in the README and docs/ parses with the script's own
argument parser (run_trainer's overrides also compose with hydra), so a renamed flag, a removed
experiment or a wrong config key in the documentation fails here. The README's Quick start itself
runs end to end in CI (.ci/run)."""
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands():
    found = []
    for doc in DOCUMENTS:
        for block in re.findall(r"^```bash\n(.*?)^```", doc.read_text(encoding="utf-8"), re.M | re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if "scripts/" not in " ".join(words):
                        continue
                    at = next(i for i, w in enumerate(words) if w.startswith("scripts/") and w.endswith(".py"))
                    found.append(pytest.param(words[at], words[at + 1:], id=f"{doc.name}:{' '.join(words[at:])[:70]}"))
    return found


COMMANDS = _commands()


def _script(name: str):
    spec = importlib.util.spec_from_file_location(Path(name).stem, ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_documents_hold_commands_of_every_main_script():
    scripts = {script for script, _ in (p.values for p in COMMANDS)}
    assert {"scripts/run_trainer.py", "scripts/evaluate.py", "scripts/inference.py", "scripts/download_data.py"} <= scripts


@pytest.fixture
def registries():
    """What a documented ``--plugin`` registers is removed again after the test."""
    from data import registry as formats
    from tracking import trackers
    from train import run
    kept = [(table, dict(table)) for table in (trackers._REGISTRY, formats._registered(), run.EXTRA_TASKS)]
    yield
    for table, before in kept:
        table.clear()
        table.update(before)


@pytest.mark.parametrize("script, argv", COMMANDS)
def test_documented_command_parses(script, argv, registries):
    module = _script(script)
    parsed = module.parse_args(argv)
    if script.endswith("run_trainer.py"):
        from omegaconf import OmegaConf

        from train.config import check_train_config
        from train.run import compose_overrides
        overrides, extra = parsed
        # An unknown experiment, group option or key, or a value of the wrong type: InputError.
        # (A resume path is only read when the run starts.)
        check_train_config(OmegaConf.to_container(compose_overrides(overrides), resolve=True))
