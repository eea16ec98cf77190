"""AVA CSV, excluded timestamps and pbtxt label maps."""
import numpy as np
import pytest

from common.errors import FormatError
from data.formats.ava import (AvaRows, read_ava_csv, read_ava_results, read_excluded_timestamps, read_pbtxt_label_map,
                              write_ava_csv, write_excluded_timestamps, write_pbtxt_label_map)
from data.formats.vicr import read_label_map


def test_csv_round_trip(tmp_path):
    rows = AvaRows(np.array(["vid_a", "vid_a", "vid_b"], dtype=object), np.array([902, 902, 1000]),
                   np.array([[0.1, 0.2, 0.5, 0.9], [0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0]]),
                   np.array([12, 17, 80]), np.array([0, 0, 3]), np.array([1.0, 0.5, 0.25]))
    for with_score in (False, True):
        write_ava_csv(tmp_path / "a.csv", rows, with_score=with_score)
        back = read_ava_csv(tmp_path / "a.csv")
        assert list(back.video_id) == list(rows.video_id)
        np.testing.assert_array_equal(back.timestamp, rows.timestamp)
        np.testing.assert_allclose(back.boxes, rows.boxes, atol=5e-4)
        np.testing.assert_array_equal(back.action_id, rows.action_id)
        np.testing.assert_array_equal(back.person_id, rows.person_id)
        np.testing.assert_allclose(back.score, rows.score if with_score else 1.0, atol=1e-6)


@pytest.mark.parametrize("line, message", [
    ("vid,0902,0.1,0.2", "expected 7-9 columns"),
    ("vid,0902,0.1,0.2,1.5,0.9,12,0", "normalised to [0, 1]"),
    ("vid,09x2,0.1,0.2,0.5,0.9,12,0", "non-numeric"),
    ("vid,0902,0.6,0.2,0.5,0.9,12,0", "x2 < x1"),
])
def test_bad_csv_lines(tmp_path, line, message):
    path = tmp_path / "bad.csv"
    path.write_text("vid,0902,0.1,0.2,0.5,0.9,12,0\n" + line + "\n")
    with pytest.raises(FormatError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        read_ava_csv(path)
    assert info.value.line == 2 and str(path) in str(info.value)


def test_excluded_round_trip_and_error(tmp_path):
    excluded = {("a", 902), ("b", 1200)}
    write_excluded_timestamps(tmp_path / "ex.csv", excluded)
    assert read_excluded_timestamps(tmp_path / "ex.csv") == excluded
    (tmp_path / "bad.csv").write_text("a,0902\nb,x\n")
    with pytest.raises(FormatError, match="not an integer") as info:
        read_excluded_timestamps(tmp_path / "bad.csv")
    assert info.value.line == 2


def test_pbtxt_round_trip_and_errors(tmp_path):
    names = {1: "bend/bow (at the waist)", 12: "stand", 80: "watch (a person)"}
    write_pbtxt_label_map(tmp_path / "map.pbtxt", names)
    assert read_pbtxt_label_map(tmp_path / "map.pbtxt") == names
    # AVA's official list uses label { name label_id label_type }.
    (tmp_path / "ava.pbtxt").write_text('label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n')
    assert read_pbtxt_label_map(tmp_path / "ava.pbtxt") == {1: "bend/bow (at the waist)"}
    (tmp_path / "noid.pbtxt").write_text('item {\n  name: "a"\n}\n')
    with pytest.raises(FormatError, match="without both 'name' and 'id'"):
        read_pbtxt_label_map(tmp_path / "noid.pbtxt")
    (tmp_path / "dup.pbtxt").write_text('item { name: "a" id: 1 }\nitem { name: "b" id: 1 }\n')
    with pytest.raises(FormatError, match="duplicate item id 1") as info:
        read_pbtxt_label_map(tmp_path / "dup.pbtxt")
    assert info.value.line == 2


@pytest.mark.real_data
def test_real_ava_samples(real_data):
    ava = real_data / "ava"
    rows = read_ava_csv(ava / "mmaction2_tests" / "ava_sample.csv")
    assert len(rows) == 8 and set(rows.video_id) <= {"0f39OWEqJ24", "_-Z6wFjXtGQ"}
    assert ((rows.boxes >= 0) & (rows.boxes <= 1)).all()
    np.testing.assert_allclose(rows.boxes[0], [0.031, 0.162, 0.670, 0.995])
    assert list(rows.action_id[:3]) == [12, 17, 79]
    assert read_excluded_timestamps(ava / "mmaction2_tests" / "ava_excluded_timestamps_sample.csv") == {
        ("0f39OWEqJ24", 903), ("_-Z6wFjXtGQ", 902)}
    labels = read_pbtxt_label_map(ava / "mmaction2_tests" / "action_list.txt")
    assert labels == {12: "action1", 17: "action2", 79: "action3", 80: "action3"}
    sixty = read_label_map(ava / "label_maps" / "ava_label_map_60_mmaction2.txt")
    assert len(sixty) == 60 and sixty.names[1] == "bend/bow (at the waist)" and 2 not in sixty.names
    names = read_label_map(ava / "label_maps" / "ava.names")
    assert len(names) == 80 and names.names[0] == "bend/bow (at the waist)"


def test_ava_results_reader(tmp_path):
    path = tmp_path / "pred.csv"
    path.write_text("vid,0902,0.1,0.2,0.5,0.9,12,0.75\n\nvid,0903,0.0,0.0,1.0,1.0,3,1e-3\n")
    rows = read_ava_results(path)
    assert list(rows.video_id) == ["vid", "vid"] and rows.timestamp.tolist() == [902, 903]
    assert rows.action_id.tolist() == [12, 3] and rows.score.tolist() == [0.75, 0.001]
    np.testing.assert_array_equal(rows.boxes, [[0.1, 0.2, 0.5, 0.9], [0, 0, 1, 1]])
    path.write_text("vid,0902,0.1,0.2,0.5,0.9,12,0.75\nvid,0902,0.1,0.2,0.5,0.9,12\n")
    with pytest.raises(FormatError, match="expected 8 columns") as info:
        read_ava_results(path)
    assert info.value.line == 2
