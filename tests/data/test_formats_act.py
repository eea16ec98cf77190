"""ACT / MultiSports annotation pickles (read without running what they name) and detection CSVs."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from common.errors import FormatError
from data.formats.act import (ActDetections, read_act_annotations, read_act_detections,
                              write_act_detections)


@pytest.fixture(scope="module")
def sample(real_data):
    """``real/action_detection/multisports_sample``; skipped when absent."""
    folder = real_data / "action_detection" / "multisports_sample"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


def _valid(**changes) -> dict:
    data = {"labels": ["jump", "run"], "test_videos": [["a/v1"]], "train_videos": [["a/v0"]],
            "nframes": {"a/v0": 5, "a/v1": 30}, "resolution": {"a/v0": (480, 640), "a/v1": (720, 1280)},
            "gttubes": {"a/v0": {}, "a/v1": {1: [np.array([[3, 10, 20, 50, 80], [4, 11, 21, 51, 81]], np.float32)]}}}
    data.update(changes)
    return data


def _write(path, data, protocol=2):
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def _one_line_error(path, match):
    with pytest.raises(FormatError, match=match) as info:
        read_act_annotations(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_reads_the_multisports_sample(sample):
    ann = read_act_annotations(sample / "gt.pkl")
    video = "aerobic_gymnastics/v_crsi07chcV8_c004"
    assert len(ann.labels) == 66 and ann.labels[10] == "aerobic bent leg(s) jump"
    assert ann.test_videos == [[video]] and ann.train_videos == []
    assert ann.nframes == {video: 725} and ann.resolution == {video: (720, 1280)}
    assert sorted(ann.gttubes[video]) == [9, 10, 11, 14]
    tube = ann.gttubes[video][10][0]
    assert tube.shape == (21, 5) and tube.dtype == np.float64
    np.testing.assert_array_equal(tube[0], [288, 562, 361, 656, 600])
    np.testing.assert_array_equal(tube[-1], [308, 594, 330, 719, 591])


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    data = _valid(nframes=OrderedDict([("a/v0", np.int64(5)), ("a/v1", 30)]), train_videos=[],
                  labels=("jump", "run"))
    ann = read_act_annotations(_write(tmp_path / "gt.pkl", data, protocol))
    assert ann.nframes == {"a/v0": 5, "a/v1": 30} and ann.labels == ["jump", "run"]
    np.testing.assert_array_equal(ann.gttubes["a/v1"][1][0][:, 0], [3, 4])


class _RunsCode:
    """A pickle payload that calls ``command`` with ``argument`` when loaded."""

    def __init__(self, command, argument):
        self.command, self.argument = command, argument

    def __reduce__(self):
        return self.command, (self.argument,)


@pytest.mark.parametrize("command, protocol, name", [
    (os.system, 2, f"{os.system.__module__}.system"),  # posix.system on Linux
    (eval, 2, "__builtin__.eval"),  # protocols 0-2 write Python 2 module names
    (eval, 4, "builtins.eval"),
])
def test_a_pickle_that_runs_code_is_refused(tmp_path, command, protocol, name):
    marker = tmp_path / "ran"
    argument = f"touch {marker}" if command is os.system else f"open({str(marker)!r}, 'w')"
    path = _write(tmp_path / "gt.pkl", _valid(labels=["jump", _RunsCode(command, argument)]), protocol)
    message = _one_line_error(path, "refused")
    assert message == f"{path}: refused to load {name!r} (only plain containers and numpy arrays are read)"
    assert not marker.exists()


def test_truncated_and_corrupt_files(tmp_path):
    whole = pickle.dumps(_valid(), protocol=2)
    (tmp_path / "cut.pkl").write_bytes(whole[: len(whole) // 2])
    _one_line_error(tmp_path / "cut.pkl", "truncated pickle")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x02}q\x00(X\x06\x00\x00\x00labels\xffgarbage")
    _one_line_error(tmp_path / "junk.pkl", "corrupt pickle")
    _one_line_error(tmp_path / "absent.pkl", "file not found")


@pytest.mark.parametrize("data, match", [
    ([1, 2], "expected a pickled dict, got list"),
    ({k: v for k, v in _valid().items() if k != "nframes"}, "missing key 'nframes'"),
    (_valid(labels="jump"), "'labels' must be a list of names"),
    (_valid(test_videos=[["a/v1", 3]]), "'test_videos' must be a list of video-name lists"),
    (_valid(test_videos=[["a/v9"]]), "test_videos lists 'a/v9' but gttubes or nframes lacks it"),
    (_valid(nframes={"a/v0": 5, "a/v1": 0}), r"nframes\['a/v1'\] must be a positive integer"),
    (_valid(resolution={"a/v1": (720,)}), r"resolution\['a/v1'\] must be \(height, width\)"),
    (_valid(gttubes={"a/v1": {2: []}}), r"gttubes\['a/v1'\] has label 2 outside 0..1"),
    (_valid(gttubes={"a/v1": {1: [np.zeros((3, 4))]}}),
     r"gttubes\['a/v1'\]\[1\]\[0\]: expected a numeric \(n, 5\) array"),
    (_valid(gttubes={"a/v1": {1: [[[1, 2, 3, 4, 5]]]}}), r"expected a numeric \(n, 5\) array .* got list"),
    (_valid(gttubes={"a/v1": {1: [np.array([[1, 0, 0, np.nan, 5.0]])]}}), "non-finite value"),
    (_valid(gttubes={"a/v1": {1: [np.array([[31, 0, 0, 4, 5.0]])]}}),
     r"frames must be integers in 1..30 \(nframes\), got 31..31"),
    (_valid(gttubes={"a/v1": {1: [np.array([[2, 0, 0, 4, 5], [2, 0, 0, 4, 5.0]])]}}), "strictly increasing"),
])
def test_malformed_annotations(tmp_path, data, match):
    _one_line_error(_write(tmp_path / "gt.pkl", data), match)


def test_reads_the_sample_detections(sample):
    ann = read_act_annotations(sample / "gt.pkl")
    dets = read_act_detections(sample / "detections.csv", ann)
    assert len(dets) == 195
    assert dets.video[0] == "aerobic_gymnastics/v_crsi07chcV8_c004" and dets.frame[0] == 288 and dets.label[0] == 10
    assert dets.score[0] == 0.9995032548904419
    np.testing.assert_array_equal(dets.boxes[0], [560.3144073486328, 362.37626552581787,
                                                  652.8450775146484, 599.809398651123])
    assert sorted(set(dets.label.tolist())) == [9, 10, 11, 14]


def test_detections_round_trip(tmp_path):
    dets = ActDetections(np.array(["a/v1", "a/v1"], dtype=object), np.array([3, 30]), np.array([1, 0]),
                         np.array([0.1 + 0.2, 1e-9]), np.array([[10.5, 20, 50, 80], [0, 0, 1280, 720.25]]))
    write_act_detections(tmp_path / "d.csv", dets)
    back = read_act_detections(tmp_path / "d.csv", read_act_annotations(_write(tmp_path / "gt.pkl", _valid())))
    assert list(back.video) == list(dets.video)
    for name in ("frame", "label", "score", "boxes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(dets, name))


@pytest.mark.parametrize("row, match, line", [
    ("video,frame,label,score,x1,y1,x2", "expected the header video,frame,label,score,x1,y1,x2,y2", 1),
    ("a/v1,3,1,0.5,10,20,50", "expected 8 columns", 2),
    ("a/v1,3,1,high,10,20,50,80", "non-numeric field", 2),
    ("a/v1,0,1,0.5,10,20,50,80", "frame must be >= 1 and label >= 0", 2),
    ("a/v1,3,1,nan,10,20,50,80", "non-finite score or box", 2),
    ("a/v1,3,1,0.5,60,20,50,80", r"box has x2 < x1 or y2 < y1", 2),
    ("a/v0,3,1,0.5,10,20,50,80", "video 'a/v0' is not among the annotations' test videos", 2),
    ("a/v1,3,2,0.5,10,20,50,80", "label 2 is not an index into the 2 labels", 2),
    ("a/v1,31,1,0.5,10,20,50,80", "frame 31 is past the video's 30 frames", 2),
])
def test_bad_detection_rows(tmp_path, row, match, line):
    path = tmp_path / "d.csv"
    header = "" if line == 1 else "video,frame,label,score,x1,y1,x2,y2\n"
    path.write_text(header + row + "\na/v1,4,1,0.5,10,20,50,80\n")
    ann = read_act_annotations(_write(tmp_path / "gt.pkl", _valid()))
    with pytest.raises(FormatError, match=match) as info:
        read_act_detections(path, ann)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(info.value)
