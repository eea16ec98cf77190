"""No output may destroy an input or earlier work: outputs equal to an input are refused before any
work, a failed write (full disk, read-only or pseudo file system) is one line and leaves the
previous file intact, and leftovers of killed writers are cleaned up. docs/bad_inputs.md lists them."""
import errno
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.errors import FormatError, InputError
from tests.scripts.test_bad_inputs import _frames, one_line, script
from tracking.pipeline import Pipeline, PipelineOptions
from tracking.runner import Outputs, run_video

UNWRITABLE = Path("/proc/mot-action-test/out")  # no file can be created under /proc, not even by root


def _det_sequence(tmp_path: Path, frames: int = 8) -> Path:
    """A sequence folder with a det.txt and frames (10 fps, 96x64)."""
    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
                                     "imWidth=96\nimHeight=64\nimExt=.jpg\n")
    _frames(seq / "img1", count=frames, size=(64, 96))
    (seq / "det" / "det.txt").write_text("".join(f"{k},-1,{10 + 2 * k},10,20,40,0.9,-1,-1,-1\n"
                                                 for k in range(1, frames + 1)))
    return seq


def test_inference_never_writes_over_its_inputs(tmp_path, trained_checkpoint):
    seq = _det_sequence(tmp_path)
    det = seq / "det" / "det.txt"
    before = det.read_bytes()
    one_line(script("inference.py", "--detections", det, "--save-mot", det),
             "--save-mot would overwrite the input detections")
    assert det.read_bytes() == before
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for _ in range(4):
        writer.write(np.zeros((64, 96, 3), np.uint8))
    writer.release()
    original = video.read_bytes()
    for flag in ("--output", "--save-json"):
        # Spelled another way, through a link: still the same file.
        os.symlink(video, tmp_path / f"link{flag}.avi")
        one_line(script("inference.py", "--checkpoint", trained_checkpoint, "--video", video, flag,
                        tmp_path / f"link{flag}.avi"), f"{flag} would overwrite the input video")
        assert video.read_bytes() == original
    one_line(script("inference.py", "--checkpoint", trained_checkpoint, "--video", video, "--save-json",
                    tmp_path / "same.txt", "--save-mot", tmp_path / "same.txt"),
             "given as both --save-json and --save-mot")
    one_line(script("inference.py", "--checkpoint", trained_checkpoint, "--video", video, "--save-mot",
                    trained_checkpoint), "would overwrite the checkpoint")
    assert not (tmp_path / "same.txt").exists()


def test_inference_flags_that_would_be_ignored_are_refused(tmp_path, trained_checkpoint):
    det = _det_sequence(tmp_path) / "det" / "det.txt"
    for extra, named in ((["--checkpoint", trained_checkpoint], "--checkpoint"), (["--onnx", "m.onnx"], "--onnx")):
        result = script("inference.py", "--detections", det, "--save-mot", tmp_path / "o.txt", *extra)
        assert result.returncode == 2 and f"{named}: not used with --detections" in result.stderr, result.stderr
    result = script("inference.py", "--detections", det, "--save-mot", tmp_path / "o.txt", "--fps", "inf")
    assert result.returncode == 2 and "--fps must be > 0" in result.stderr
    result = script("evaluate.py", "--results", tmp_path, "--gt-root", tmp_path, "--onnx", "m.onnx")
    assert result.returncode == 2 and "--onnx: these choose how --checkpoint runs" in result.stderr
    assert not (tmp_path / "o.txt").exists()


def test_a_video_that_cannot_be_written_keeps_the_previous_one_and_the_tracking(tmp_path, monkeypatch):
    """OpenCV's writer says nothing when the disk fills up: the file is read back before it
    replaces the previous video, and the MOT and JSON files are still written."""
    seq = _det_sequence(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "v.mp4").write_bytes(b"an earlier, complete video")

    class SilentlyFailingWriter:  # what cv2.VideoWriter does on a full disk: accepts frames, writes nothing
        def __init__(self, *args):
            pass

        def isOpened(self):
            return True

        def write(self, frame):
            pass

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoWriter", SilentlyFailingWriter)
    outputs = Outputs(video=out / "v.mp4", mot=out / "v.txt", json=out / "v.json")
    with pytest.raises(InputError, match=r"v.mp4: the annotated video could not be written \(0 of 8 frames .*"
                                         r"the previous v.mp4 is intact"):
        run_video(Pipeline.tracker_only(PipelineOptions()), outputs, video=seq / "img1",
                  detections=seq / "det" / "det.txt")
    assert (out / "v.mp4").read_bytes() == b"an earlier, complete video"
    assert (out / "v.txt").stat().st_size > 0 and (out / "v.json").is_file()
    assert not list(out.glob(".*partial*"))


def test_a_full_disk_for_the_result_files_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    seq = _det_sequence(tmp_path)
    out = tmp_path / "out.txt"
    out.write_text("earlier results\n")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(InputError, match=r"out.txt: cannot write the file \(No space left on device\); "
                                         r"the previous out.txt is intact"):
        run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(mot=out), detections=seq / "det" / "det.txt")
    monkeypatch.undo()
    assert out.read_text() == "earlier results\n" and not list(tmp_path.glob(".*partial*"))


def test_partial_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    seq = _det_sequence(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)  # a process id that no longer runs, as a killed writer's
    stale = out / f".v.{dead}-abc123.partial.mp4"
    stale.write_bytes(b"half a video")
    run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(video=out / "v.mp4"), video=seq / "img1",
              detections=seq / "det" / "det.txt")
    assert not stale.exists() and (out / "v.mp4").stat().st_size > 0


def test_outputs_where_nothing_can_be_written_are_one_line_before_any_work(tmp_path, trained_checkpoint):
    seq = _det_sequence(tmp_path)
    one_line(script("inference.py", "--detections", seq / "det" / "det.txt", "--save-mot", UNWRITABLE / "o.txt"),
             "o.txt: cannot write MOT file in /proc")
    one_line(script("evaluate.py", "--results", seq / "det" / "det.txt", "--gt-root", seq, "--json",
                    UNWRITABLE / "m.json"), "m.json: cannot write metrics JSON in /proc")
    one_line(script("export.py", "--checkpoint", trained_checkpoint, "--out", UNWRITABLE / "m.onnx"),
             "m.onnx: cannot write ONNX model in /proc")
    run = trained_checkpoint.parent
    one_line(script("plot_run.py", run, "--out", UNWRITABLE / "c.png"), "c.png: cannot write the curves picture")
    one_line(script("plot_run.py", run, "--out", tmp_path / "c.xyz"), "c.xyz: cannot tell the picture format")
    (tmp_path / "folder.png").mkdir()
    one_line(script("plot_run.py", run, "--out", tmp_path / "folder.png"), "folder.png: the curves picture path is a folder")


def test_evaluate_and_export_never_write_over_their_inputs(tmp_path, trained_checkpoint):
    seq = _det_sequence(tmp_path)
    gt = seq / "gt" / "gt.txt"
    gt.parent.mkdir()
    shutil.copy(seq / "det" / "det.txt", gt)
    results = tmp_path / "results" / "seq.txt"
    results.parent.mkdir()
    results.write_text("".join(f"{k},1,{10 + 2 * k},10,20,40,1,-1,-1,-1\n" for k in range(1, 9)))
    for target, named in ((results, "a result file"), (gt, "the ground truth")):
        before = target.read_bytes()
        one_line(script("evaluate.py", "--results", results, "--gt-root", seq, "--json", target),
                 f"--json would overwrite {named}")
        assert target.read_bytes() == before
    ok = script("evaluate.py", "--results", results, "--gt-root", seq, "--json", tmp_path / "m.json", "--no-plots")
    assert ok.returncode == 0, ok.stderr
    checkpoint = tmp_path / "model.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    one_line(script("export.py", "--checkpoint", checkpoint, "--out", checkpoint), "model.pt: --out names the ONNX model")
    disguised = tmp_path / "weights.onnx"  # a checkpoint under an ONNX name, exported onto itself
    shutil.copy(trained_checkpoint, disguised)
    one_line(script("export.py", "--checkpoint", disguised, "--out", disguised), "would overwrite --checkpoint")
    assert disguised.read_bytes() == trained_checkpoint.read_bytes()


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, trained_checkpoint):
    from models.checkpoint import load_model_from_checkpoint
    state = torch.load(trained_checkpoint, weights_only=True)
    weights = state["ema"]["module"] if isinstance(state.get("ema"), dict) else state["model"]
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)
    weights[name].view(-1)[0] = float("nan")
    bad = tmp_path / "diverged.pt"
    torch.save(state, bad)
    with pytest.raises(InputError, match=f"diverged.pt: weights {name} hold 1 NaN or infinite value"):
        load_model_from_checkpoint(bad)
    seq = _det_sequence(tmp_path)
    for name_, args in (("inference.py", ["--video", seq / "img1", "--save-mot", tmp_path / "o.txt"]),
                        ("export.py", ["--out", tmp_path / "m.onnx"])):
        one_line(script(name_, "--checkpoint", bad, *args), "NaN or infinite value")
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "m.onnx").exists()


def test_a_huge_id_in_a_mot_file_is_a_format_error(tmp_path):
    from data.formats.mot import read_mot_file
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n2,99999999999999999999,10,10,20,40,0.9,-1,-1,-1\n")
    with pytest.raises(FormatError, match=r"det.txt:2: column 'id' is out of range"):
        read_mot_file(path)


def test_a_foreign_onnx_file_is_named_as_such(tmp_path):
    pytest.importorskip("onnxruntime")
    from models.onnx_runtime import OnnxStreamingModel
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="empty.onnx: empty file, not an ONNX model"):
        OnnxStreamingModel(tmp_path / "empty.onnx")
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match=r"random.onnx: (not an ONNX model|not exported by scripts/export.py)"):
        OnnxStreamingModel(tmp_path / "random.onnx")


def test_a_repeated_results_flag_keeps_both_and_two_results_for_a_sequence_are_refused(tmp_path):
    """--results A --results B once kept only B: A's result for the sequence was dropped silently."""
    seq = _det_sequence(tmp_path)
    gt = seq / "gt" / "gt.txt"
    gt.parent.mkdir()
    shutil.copy(seq / "det" / "det.txt", gt)
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        shutil.copy(gt, tmp_path / run / "seq.txt")
    one_line(script("evaluate.py", "--results", tmp_path / "a", "--results", tmp_path / "b", "--gt-root", seq,
                    "--json", tmp_path / "m.json"), "b/seq.txt: a second txt result for sequence seq (first: ")
    assert not (tmp_path / "m.json").exists()
