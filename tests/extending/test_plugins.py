"""``--plugin``: what a researcher's own file registers is chosen from the standard commands, with
no edit to the project (docs/extending.md)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = """
from tracking.tracker import Tracker
from tracking.trackers import register_tracker

# The project's own tracker under another name: its output must be the default's, row for row.
register_tracker("ours-again", lambda *, config, fps: Tracker(config, fps=fps))
"""


def _inference(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "inference.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_a_plugin_file_registers_a_tracker_for_the_command_line(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{10 + 3 * f},20,30,70,0.9,-1,-1,-1\n{f},-1,200,20,30,70,0.8,-1,-1,-1\n"
                           for f in range(1, 9)))
    plugin = tmp_path / "my_tracker.py"
    plugin.write_text(PLUGIN)
    default = _inference("--detections", det, "--fps", 10, "--save-mot", tmp_path / "default.txt")
    assert default.returncode == 0, default.stderr
    mine = _inference("--plugin", plugin, "--tracker", "ours-again", "--detections", det, "--fps", 10,
                      "--save-mot", tmp_path / "mine.txt")
    assert mine.returncode == 0, mine.stderr
    assert (tmp_path / "mine.txt").read_text() == (tmp_path / "default.txt").read_text() != ""
    unknown = _inference("--tracker", "ours-again", "--detections", det, "--fps", 10, "--save-mot", tmp_path / "x.txt")
    assert unknown.returncode == 2 and "ours-again" in unknown.stderr  # not registered without the plugin


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('half-written plugin')\n")
    for name, said in ((broken, "RuntimeError: half-written plugin"), (tmp_path / "missing.py", "no such file"),
                       ("no_such_module_anywhere", "ModuleNotFoundError")):
        result = _inference("--plugin", name, "--detections", tmp_path / "det.txt", "--save-mot", tmp_path / "x.txt")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"error: --plugin {name}: cannot import it") and said in lines[0]
