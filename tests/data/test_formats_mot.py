"""MOTChallenge readers/writers: round trips, the real shared files, and bad-line errors."""
import numpy as np
import pytest

from common.errors import FormatError
from data.formats.mot import (MotRows, SeqInfo, read_action_sidecar, read_mot_file, read_seqinfo,
                              write_action_sidecar, write_mot_file, write_seqinfo)


def _rows():
    return MotRows(frame=np.array([1, 1, 2]), track_id=np.array([3, 1, 1]),
                   boxes=np.array([[10.5, 20.25, 40.5, 100.0], [0, 0, 5, 5], [1.125, 2.0, 7.0, 9.5]]),
                   conf=np.array([1.0, 0.0, 1.0]), class_id=np.array([1, 8, 1]),
                   visibility=np.array([0.75, 1.0, 0.3333]))


@pytest.mark.parametrize("layout", ["mot15", "mot16"])
def test_round_trip(tmp_path, layout):
    rows = _rows()
    write_mot_file(tmp_path / "gt.txt", rows, layout=layout)
    back = read_mot_file(tmp_path / "gt.txt", layout=layout)
    order = np.lexsort((rows.track_id, rows.frame))
    np.testing.assert_array_equal(back.frame, rows.frame[order])
    np.testing.assert_array_equal(back.track_id, rows.track_id[order])
    np.testing.assert_allclose(back.boxes, rows.boxes[order], atol=1e-4)
    np.testing.assert_allclose(back.conf, rows.conf[order])
    if layout == "mot16":
        np.testing.assert_array_equal(back.class_id, rows.class_id[order])
        np.testing.assert_allclose(back.visibility, rows.visibility[order], atol=1e-4)
    # Writing what was read gives the same bytes.
    write_mot_file(tmp_path / "again.txt", back, layout=layout)
    assert (tmp_path / "again.txt").read_bytes() == (tmp_path / "gt.txt").read_bytes()


def test_tlwh_columns_become_xyxy(tmp_path):
    (tmp_path / "gt.txt").write_text("5,2,10,20,30,40,1,1,0.5\n")
    rows = read_mot_file(tmp_path / "gt.txt")
    np.testing.assert_allclose(rows.boxes, [[10, 20, 40, 60]])
    assert rows.class_id[0] == 1 and rows.visibility[0] == 0.5


@pytest.mark.parametrize("line, message", [
    ("1,2,3,4,5", "expected at least 6"),
    ("1,2,a,4,5,6,1,1,1", "column 'left' is not a number"),
    ("1.5,2,3,4,5,6,1,1,1", "'frame' must be an integer"),
    ("0,2,3,4,5,6,1,1,1", "frame number must be >= 1"),
    ("1,2,3,4,-5,6,1,1,1", "negative box size"),
    ("1,2,3,4,5,6,1,1,1.7", "visibility must be in [0, 1]"),
    ("1,2,3,4,5,nan,1,1,1", "not finite"),
])
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,1,1,1,1,1,1,1\n" + line + "\n")
    with pytest.raises(FormatError) as info:
        read_mot_file(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: ")
    assert message in str(info.value)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="file not found"):
        read_mot_file(tmp_path / "nope.txt")


def test_seqinfo_round_trip_and_errors(tmp_path):
    info = SeqInfo(name="SEQ", frame_rate=7, seq_length=12, width=640, height=480)
    write_seqinfo(tmp_path / "seqinfo.ini", info)
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info
    (tmp_path / "bad.ini").write_text("[Sequence]\nname=x\nframeRate=7\nseqLength=ten\nimWidth=1\nimHeight=1\n")
    with pytest.raises(FormatError, match="'seqLength' must be an integer"):
        read_seqinfo(tmp_path / "bad.ini")
    (tmp_path / "missing.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(FormatError, match="missing the key 'frameRate'"):
        read_seqinfo(tmp_path / "missing.ini")
    (tmp_path / "nosection.ini").write_text("name=x\n")
    with pytest.raises(FormatError):
        read_seqinfo(tmp_path / "nosection.ini")
    for rate in ("nan", "inf", "0"):  # NaN once passed the '<= 0' check and reached the V-ICR JSON
        (tmp_path / "rate.ini").write_text(f"[Sequence]\nname=x\nframeRate={rate}\nseqLength=3\nimWidth=8\nimHeight=8\n")
        with pytest.raises(FormatError, match=f"'frameRate' must be a positive finite number, got '{rate}'"):
            read_seqinfo(tmp_path / "rate.ini")


def test_action_sidecar_round_trip_and_errors(tmp_path):
    actions = {(1, 2): 0, (1, 3): 5, (2, 2): 1}
    write_action_sidecar(tmp_path / "actions.txt", actions)
    assert read_action_sidecar(tmp_path / "actions.txt") == actions
    (tmp_path / "dup.txt").write_text("1,2,0\n1,2,1\n")
    with pytest.raises(FormatError, match="duplicate entry") as info:
        read_action_sidecar(tmp_path / "dup.txt")
    assert info.value.line == 2
    (tmp_path / "cols.txt").write_text("1,2\n")
    with pytest.raises(FormatError, match="expected 3 columns"):
        read_action_sidecar(tmp_path / "cols.txt")


# ------------------------------------------------------------------------------- real files
@pytest.mark.real_data
def test_real_pets09_gt_and_det(real_data, tmp_path):
    seq = real_data / "mot" / "PETS09-S2L1"
    info = read_seqinfo(seq / "seqinfo.ini")
    assert (info.name, info.seq_length, info.width, info.height) == ("PETS09-S2L1", 795, 768, 576)
    gt = read_mot_file(seq / "gt" / "gt.txt")
    assert len(gt) == 2873 and gt.frame.min() == 1 and gt.frame.max() == 530
    assert set(np.unique(gt.conf)) <= {0.0, 1.0} and (gt.conf == 0).any()  # ignore rows exist
    first = gt.select((gt.frame == 1) & (gt.track_id == 9))
    np.testing.assert_allclose(first.boxes[0], [499, 158, 499 + 31.03, 158 + 75.17])
    det = read_mot_file(seq / "det" / "det.txt")
    assert (det.track_id == -1).all() and 0 < det.conf.max() <= 1.0
    # Re-writing the real gt keeps every value.
    write_mot_file(tmp_path / "gt.txt", gt, layout="mot15")
    back = read_mot_file(tmp_path / "gt.txt")
    np.testing.assert_allclose(back.boxes, gt.sorted().boxes, atol=1e-4)
    np.testing.assert_allclose(back.world, gt.sorted().world, atol=1e-4)


@pytest.mark.real_data
@pytest.mark.parametrize("name, boxes", [("TUD-Campus", 359), ("TUD-Stadtmitte", 1156)])
def test_real_tud_gt(real_data, name, boxes):
    gt = read_mot_file(real_data / "mot" / name / "gt" / "gt.txt")
    info = read_seqinfo(real_data / "mot" / name / "seqinfo.ini")
    assert len(gt) == boxes and gt.frame.max() <= info.seq_length
    results = read_mot_file(real_data / "mot" / "tracker_results" / f"{name}.txt")
    assert len(results) > 0 and (results.track_id > 0).all()
