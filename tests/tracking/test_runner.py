"""A video with its outputs: paths checked first, the annotated video written under a temporary
name, a crash loses no earlier file, Ctrl-C keeps the frames processed so far."""
import numpy as np
import pytest

from common.errors import InputError
from data.formats.mot import read_mot_file
from data.formats.vicr import read_vicr_video
from data.video import VideoReader
from tracking.pipeline import Pipeline, PipelineOptions
from tracking.runner import Outputs, run_video


def _sequence(tmp_path, frames: int = 10):
    import cv2
    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
                                     "imWidth=96\nimHeight=64\nimExt=.jpg\n")
    rows = []
    for k in range(frames):
        cv2.imwrite(str(seq / "img1" / f"{k + 1:06d}.jpg"), np.full((64, 96, 3), 20 * k % 255, np.uint8))
        rows.append(f"{k + 1},-1,{10 + 2 * k},10,20,40,0.9,-1,-1,-1\n")
    (seq / "det" / "det.txt").write_text("".join(rows))
    return seq


def _outputs(tmp_path):
    return Outputs(video=tmp_path / "out" / "v.avi", json=tmp_path / "out" / "v.json", mot=tmp_path / "out" / "v.txt")


def test_a_crash_mid_video_leaves_no_broken_file(tmp_path, monkeypatch):
    seq = _sequence(tmp_path)
    pipeline = Pipeline.tracker_only(PipelineOptions())
    outputs = _outputs(tmp_path)
    outputs.video.parent.mkdir()
    outputs.video.write_bytes(b"an earlier, complete video")
    from tracking import pipeline as pipeline_module
    step = pipeline_module.Session.step
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk gone")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(pipeline_module.Session, "step", failing)
    with pytest.raises(RuntimeError):
        run_video(pipeline, outputs, video=seq / "img1", detections=seq / "det" / "det.txt")
    assert outputs.video.read_bytes() == b"an earlier, complete video"  # not half overwritten
    assert sorted(p.name for p in outputs.video.parent.iterdir()) == ["v.avi"]  # no partial file left


def test_ctrl_c_keeps_the_frames_processed(tmp_path, monkeypatch):
    seq = _sequence(tmp_path)
    from tracking import pipeline as pipeline_module
    step = pipeline_module.Session.step

    def interrupted(self, index, *args, **kwargs):
        if index == 6:
            raise KeyboardInterrupt
        return step(self, index, *args, **kwargs)

    monkeypatch.setattr(pipeline_module.Session, "step", interrupted)
    notes = []
    summary = run_video(Pipeline.tracker_only(PipelineOptions()), _outputs(tmp_path), video=seq / "img1",
                        detections=seq / "det" / "det.txt", log=notes.append)
    assert summary["interrupted"] and summary["frames"] == 6
    assert any("the outputs hold the 6 frames processed so far" in n for n in notes)
    assert len(VideoReader(tmp_path / "out" / "v.avi")) == 6
    labels = read_vicr_video(tmp_path / "out" / "v.json")
    assert labels.partial and labels.video.total_frames == 6
    assert read_mot_file(tmp_path / "out" / "v.txt").frame.max() == 6


def test_nothing_runs_when_an_output_cannot_be_written(tmp_path):
    seq = _sequence(tmp_path)
    (tmp_path / "blocker").write_text("")
    outputs = Outputs(json=tmp_path / "ok.json", mot=tmp_path / "blocker" / "sub" / "v.txt")
    with pytest.raises(InputError, match="blocker is a file, not a folder"):
        run_video(Pipeline.tracker_only(PipelineOptions()), outputs, detections=seq / "det" / "det.txt")
    with pytest.raises(InputError, match="must be .mp4 or .avi"):
        run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(video=tmp_path / "v.mkv"),
                  detections=seq / "det" / "det.txt")
    assert not (tmp_path / "ok.json").exists()
