"""A new tracker, end to end: docs/examples/iou_tracker.py, the worked example of docs/extending.md
("Adding a tracker"), a tracker and its registration in one file, imported as ``--plugin`` imports
it; then ``--tracker iou`` runs it on a det.txt into the same MOT output.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

from common.cli import load_plugins
from data.formats.mot import read_mot_file
from tracking.pipeline import Pipeline, add_pipeline_arguments, options_from_args
from tracking.runner import Outputs, run_video
from tracking.trackers import MultiObjectTracker, unregister_tracker

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "iou_tracker.py"


@pytest.fixture
def iou_tracker():
    """docs/examples/iou_tracker.py imported as --plugin imports it (its import registers 'iou'), and
    the registration removed after the test."""
    load_plugins(["--plugin", str(EXAMPLE)])
    yield sys.modules["mot_action_plugin_iou_tracker"].IouTracker
    unregister_tracker("iou")


# ------------------------------------------------------------------------------- a tiny input
def _det_txt(tmp_path):
    """Six frames at 10 fps: A walks right throughout; B stands in frames 1-3 and leaves; C appears
    far off in frames 5-6; a 0.05 detection in frame 4 is below the detection threshold."""
    seq = tmp_path / "walk"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=walk\nimDir=img1\nframeRate=10\nseqLength=6\n"
                                     "imWidth=320\nimHeight=120\nimExt=.jpg\n")
    rows = []
    for frame in range(1, 7):
        rows.append((frame, 10 + 4 * frame, 20, 30, 70, 0.9))  # A (x, y, w, h)
        if frame <= 3:
            rows.append((frame, 100, 20, 30, 70, 0.8))  # B
        if frame >= 5:
            rows.append((frame, 250, 30, 30, 70, 0.7))  # C
    rows.append((4, 180, 10, 30, 70, 0.05))  # clutter
    (seq / "det" / "det.txt").write_text("".join(f"{f},-1,{x},{y},{w},{h},{s},-1,-1,-1\n" for f, x, y, w, h, s in rows))
    return seq / "det" / "det.txt"


def test_a_registered_tracker_runs_end_to_end(tmp_path, iou_tracker):
    parser = argparse.ArgumentParser()
    add_pipeline_arguments(parser, network=False)
    options = options_from_args(parser.parse_args(["--tracker", "iou"]))
    pipeline = Pipeline.tracker_only(options)
    session = pipeline.start(fps=10.0)
    assert isinstance(session.tracker, iou_tracker) and isinstance(session.tracker, MultiObjectTracker)

    out = tmp_path / "walk.txt"
    summary = run_video(pipeline, Outputs(mot=out), detections=_det_txt(tmp_path))
    rows = read_mot_file(out)
    ids = {f: sorted(rows.track_id[rows.frame == f].tolist()) for f in range(1, 7)}
    assert ids == {1: [1, 2], 2: [1, 2], 3: [1, 2], 4: [1], 5: [1, 3], 6: [1, 3]}
    walker = rows.select(rows.track_id == 1)
    np.testing.assert_allclose(walker.boxes[:, 0], 10 + 4 * walker.frame)  # A kept id 1 all along
    assert summary["frames"] == 6 and summary["tracks"] == 3
