"""A non-editable install (``pip install .``) carries everything the commands read: the hydra
configs and every package, found from the installed copy and not from a checkout."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from pathlib import Path
import config, train.run, pseudolabel, webapp
from importlib import resources
from models.config import model_preset
from pseudolabel import load_config
cfg = train.run.compose_config(["experiment=smoke"])
print(json.dumps({"config": config.__file__, "train": train.run.__file__, "pseudolabel": pseudolabel.__file__,
                  "epochs": cfg.trainer.epochs, "widths": list(model_preset("tiny", 6, 1).widths),
                  "vlm": load_config()[0].backend, "webapp": webapp.__file__,
                  "page": resources.files("webapp").joinpath("page.html").read_text()[:15]}))
"""


def test_an_installed_copy_finds_its_configs_without_the_checkout(tmp_path):
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:  # a copy, so that building leaves no build/ folder in the checkout
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                            "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                                *map(str, (tmp_path / "wheel").glob("*.whl"))], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    # Run from an unrelated folder, the installed copy first on the path: nothing may come from the checkout.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                           env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0, probe.stderr[-2000:]
    import json
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    for module in ("config", "train", "pseudolabel", "webapp"):
        assert found[module].startswith(str(target)), found
    assert found["epochs"] >= 1 and len(found["widths"]) == 5 and found["vlm"] == "openai"
    assert found["page"] == "<!doctype html>"  # the web app's page travels with the package
