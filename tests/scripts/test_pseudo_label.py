"""scripts/pseudo_label.py end to end with the synthetic oracle, its exit codes and its one-line
errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import InputError
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


def test_an_unreadable_video_is_skipped_and_an_empty_label_map_ignored(small_dataset, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = sorted(p.name for p in (small_dataset / "train").iterdir())
    for name in names:
        (inputs / name).symlink_to(small_dataset / "train" / name)
    (inputs / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)  # not a video
    (inputs / "label_map.txt").write_text("# to be filled in\n\n")  # seed 000: used only if it holds labels
    result = run("--input-dir", inputs, "--tracks", "gt", "--vlm", "oracle", "--oracle-gt", small_dataset,
                 "--working-dir", tmp_path / "w", "--output-dir", tmp_path / "o", "--refinement-iterations", 0)
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"{inputs / 'label_map.txt'} holds no labels: ignored" in result.stderr
    done = next(line for line in result.stderr.splitlines() if line.startswith("done: "))
    assert done.startswith(f"done: {len(names)} videos (1 skipped: {inputs / 'broken.mp4'}),")
    run_info = json.loads((tmp_path / "w" / "metadata.json").read_text())
    assert [s["path"] for s in run_info["skipped"]] == [str(inputs / "broken.mp4")]
    assert "cannot open as a video" in run_info["skipped"][0]["error"] and sorted(run_info["videos"]) == names
    for name in names:  # the others are labelled, with the VLM's own labels grouped
        assert read_recognition_results(tmp_path / "w" / name / "tubes" / "recognition_results.json").tubes
    assert any(read_label_map(tmp_path / "w" / "label_map.txt").groups.values())


def _run_in_process(small_dataset, tmp_path, **changes):
    from pseudolabel import run as pseudo_label
    args = dict(input_dir=small_dataset / "train", working_dir=tmp_path / "w", output_dir=tmp_path / "o",
                overrides={"vlm.backend": "oracle", "labelling.refinement_iterations": 0}, tracks="gt",
                oracle_gt=small_dataset)
    return pseudo_label(**{**args, **changes})


def test_nothing_labelled_is_an_error_without_nan(small_dataset, tmp_path):
    config = tmp_path / "pl.yaml"
    config.write_text((ROOT / "config" / "pseudo_label.yaml").read_text().replace("min_track_frames: 30",
                                                                                  "min_track_frames: 100000"))
    logged = []
    with pytest.raises(InputError, match=r"train: nothing to label: no track has 100000 frames or more \(\d+ shorter "
                                         r"ones skipped"):
        _run_in_process(small_dataset, tmp_path, config=config, log=logged.append)
    # A "VLM" whose replies are all unreadable (the oracle's share of unusable replies near 1).
    with pytest.raises(InputError, match=r"train: nothing was labelled: none of the \d+ tube seconds got a readable "
                                         r"answer \(\d+ unreadable replies, 0 requests unanswered\)"):
        _run_in_process(small_dataset, tmp_path, oracle_noise=(0.7, 0.99999), log=logged.append)
    assert not any("nan" in line for line in logged)


def test_unusable_outputs_and_a_damaged_cache_are_refused_before_any_work(small_dataset, tmp_path):
    (tmp_path / "a_file").write_text("x")
    cases = [(dict(working_dir=Path("/proc/pseudo")),
              r"^/proc/pseudo/metadata\.json: cannot write the working folder in /proc"),
             (dict(output_dir=tmp_path / "a_file" / "o"), r"a_file/o/<video>\.json: cannot create the output files: "
                                                           r".*a_file is a file, not a folder"),
             (dict(working_dir=tmp_path / "a_file"), r"a_file/metadata\.json: cannot create the working folder")]
    if os.geteuid() != 0:  # root writes into a read-only folder
        (tmp_path / "read_only").mkdir(mode=0o555)
        cases.append((dict(output_dir=tmp_path / "read_only"), "cannot write the output files in"))
    for changes, message in cases:
        with pytest.raises(InputError, match=message):
            _run_in_process(small_dataset, tmp_path, **changes)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "vlm_cache.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(InputError, match=r"w/vlm_cache\.sqlite: the answer cache is damaged .* move it aside"):
        _run_in_process(small_dataset, tmp_path)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["vlm_cache.sqlite"]  # nothing done
