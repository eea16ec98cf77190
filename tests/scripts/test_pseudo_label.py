"""scripts/pseudo_label.py end to end with the synthetic oracle, and its one-line errors."""
import subprocess
import sys
from pathlib import Path

from data.formats.vicr import read_label_map, read_recognition_results, read_vicr_video

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pseudo_label.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_oracle_run_writes_seed_000s_files_and_resumes(small_dataset, tmp_path):
    args = ["--input-dir", small_dataset / "train", "--tracks", "gt", "--vlm", "oracle", "--oracle-gt", small_dataset,
            "--working-dir", tmp_path / "w", "--output-dir", tmp_path / "o", "--refinement-iterations", 1]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "oracle: the final top-1 label is the true action for" in first.stderr
    names = sorted(p.name for p in (small_dataset / "train").iterdir())
    label_map = read_label_map(tmp_path / "w" / "label_map.txt")
    assert len(label_map) >= 2 and any(label_map.groups.values())  # synonyms grouped
    for name in names:
        results = read_recognition_results(tmp_path / "w" / name / "tubes" / "recognition_results.json")
        assert results.tubes and all(len(c) <= 5 for t in results.tubes.values() for c in t.temporal_labels.values())
        labels = read_vicr_video(tmp_path / "o" / f"{name}.json")
        assert labels.persons and [labels.labelmap.names[i] for i in labels.labelmap.ids()] == results.labelmap
        assert (tmp_path / "w" / name / "label_map.txt").is_file()
    again = run(*args)
    assert again.returncode == 0 and "requests 0 cache hits" in again.stderr  # nothing asked twice


def test_errors_are_one_line(small_dataset, tmp_path):
    cases = [
        (["--input-dir", small_dataset / "train", "--vlm", "oracle"], "exactly one source of tracks"),
        (["--input-dir", small_dataset / "train", "--tracks", "gt", "--vlm", "oracle"], "give --oracle-gt"),
        (["--input-dir", tmp_path / "absent", "--tracks", "gt"], "input folder not found"),
        (["--input-dir", small_dataset / "train", "--tracks", tmp_path / "none.txt", "--vlm", "oracle", "--oracle-gt",
          small_dataset], "none.txt: tracks file not found"),
        (["--input-dir", small_dataset / "train", "--tracks", "gt", "--vlm", "transformers", "--model", tmp_path],
         "cannot load a Qwen3-VL model"),
    ]
    for args, message in cases:
        result = run(*args, "--working-dir", tmp_path / "w", "--output-dir", tmp_path / "o")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and message in lines[-1] and "Traceback" not in result.stderr, result.stderr
