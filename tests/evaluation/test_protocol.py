"""The evaluation protocol as a library (no subprocess): the official values on motmetrics' TUD
files, an empty run recorded in V-ICR JSON, and the files it writes."""
import json
from pathlib import Path

import pytest

from common.errors import InputError
from evaluation.protocol import run_evaluation

motmetrics = pytest.importorskip("motmetrics")
TUD = Path(motmetrics.__file__).parent / "data"


def test_tud_results_give_the_devkit_values(tmp_path):
    report = run_evaluation(gt_root=TUD, results=[str(TUD / "TUD-Campus" / "test.txt"), str(TUD / "TUD-Stadtmitte" / "test.txt")],
                            out_dir=tmp_path, plots=False)
    table = report["table"]
    assert table["TUD-Campus"]["mota"] == pytest.approx(52.6462, abs=1e-4)
    assert table["TUD-Stadtmitte"]["idf1"] == pytest.approx(64.4619, abs=1e-4)
    assert table["TUD-Campus"]["HOTA"] == pytest.approx(39.14, abs=0.01)
    assert json.loads((tmp_path / "metrics.json").read_text())["sequences"] == ["TUD-Campus", "TUD-Stadtmitte"]
    assert not list(tmp_path.glob(".*partial*"))  # atomic writes leave no temporary files


def _sequence(root: Path, frames: int = 4) -> Path:
    seq = root / "seq-a"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq-a\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
                                     "imWidth=100\nimHeight=100\nimExt=.jpg\n")
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},1,10,10,20,40,1,1,1.0\n" for f in range(1, frames + 1)))
    return root


def test_an_empty_run_with_its_json_scores_as_nobody_found(tmp_path):
    gt = _sequence(tmp_path / "gt")
    res = tmp_path / "res"
    res.mkdir()
    (res / "seq-a.txt").write_text("")
    with pytest.raises(InputError, match="empty result"):  # a MOT file alone: more likely a failed run
        run_evaluation(gt_root=gt, results=[str(res)], out_dir=tmp_path / "o1", plots=False)
    (res / "seq-a.json").write_text(json.dumps({"video": {"name": "seq-a", "fps": 10, "width": 100, "height": 100,
                                                          "total_frames": 4}, "labelmap": {}, "persons": {}}))
    report = run_evaluation(gt_root=gt, results=[str(res)], out_dir=tmp_path / "o2", plots=False)
    assert report["table"]["seq-a"]["num_misses"] == 4 and report["table"]["seq-a"]["mota"] == 0


def test_duplicate_ids_in_a_frame_are_refused(tmp_path):
    """TUD-Campus with one ground-truth row repeated: IDF1 went *up* (55.77 -> 56.01) before."""
    import shutil
    from common.errors import FormatError

    gt = tmp_path / "gt"
    shutil.copytree(TUD / "TUD-Campus", gt / "TUD-Campus")
    gt_file = gt / "TUD-Campus" / "gt.txt"
    first = gt_file.read_text().splitlines()[0]
    gt_file.write_text(gt_file.read_text() + first + "\n")
    with pytest.raises(FormatError, match=r"gt.txt: ground truth: id \d+ appears 2 times in frame 1"):
        run_evaluation(gt_root=gt, results=[str(TUD / "TUD-Campus" / "test.txt")], out_dir=tmp_path / "o", plots=False)
    results = tmp_path / "TUD-Campus.txt"
    rows = (TUD / "TUD-Campus" / "test.txt").read_text().splitlines()
    results.write_text("\n".join(rows + rows[:1]) + "\n")
    with pytest.raises(FormatError, match="tracker result: id"):
        run_evaluation(gt_root=TUD, results=[str(results)], sequences=["TUD-Campus"], out_dir=tmp_path / "o",
                       plots=False)


def _with_actions(root: Path, label_map: str, action: int, seqinfo: bool = True) -> Path:
    gt = _sequence(root)
    (gt / "label_map.txt").write_text(label_map)
    (gt / "seq-a" / "gt" / "actions.txt").write_text("".join(f"{f},1,{action}\n" for f in range(1, 5)))
    if not seqinfo:
        (gt / "seq-a" / "seqinfo.ini").unlink()
    return gt


def _json_result(res: Path, fps: float) -> None:
    res.mkdir(exist_ok=True)
    video = {"name": "seq-a", "fps": fps, "width": 100, "height": 100, "total_frames": 4}
    frames = [{"frame_idx": k, "bbox": {"x1": 10, "y1": 10, "x2": 30, "y2": 50}, "action": "walk", "action_id": 0}
              for k in range(4)]
    (res / "seq-a.json").write_text(json.dumps({"video": video, "labelmap": {"0": {"name": "walk"}, "1": {"name": "run"}},
                                                "persons": {"id_1": {"frames": frames}}}))


def test_ground_truth_actions_outside_the_label_map_are_refused(tmp_path):
    from common.errors import FormatError

    gt = _with_actions(tmp_path / "gt", "0: walk\n1: run\n", action=7)
    _json_result(tmp_path / "res", fps=10)
    with pytest.raises(FormatError, match=r"actions.txt: action id 7 \(frame 1, id 1\) is not in the label map's ids 0-1"):
        run_evaluation(gt_root=gt, results=[str(tmp_path / "res")], out_dir=tmp_path / "o", plots=False)


def test_the_identity_action_score_uses_the_results_frame_rate(tmp_path):
    """Without seqinfo.ini it silently used 1 fps (93.33 became 99.24); the V-ICR JSON that carries
    the action scores records the rate, and that is used. At 4 fps, 4 frames are one second."""
    gt = _with_actions(tmp_path / "gt", "0: walk\n1: run\n", action=0, seqinfo=False)
    gt_actions = gt / "seq-a" / "gt" / "actions.txt"
    gt_actions.write_text("1,1,0\n2,1,0\n3,1,1\n4,1,1\n")  # the second's label is a tie: walk (first seen)
    _json_result(tmp_path / "res", fps=4)
    report = run_evaluation(gt_root=gt, results=[str(tmp_path / "res")], out_dir=tmp_path / "o", plots=False)
    assert report["table"]["seq-a"]["id_action_acc"] == pytest.approx(100.0)
    _json_result(tmp_path / "res1", fps=1)  # four seconds of one frame each: two of them "run"
    report = run_evaluation(gt_root=gt, results=[str(tmp_path / "res1")], out_dir=tmp_path / "o1", plots=False)
    assert report["table"]["seq-a"]["id_action_acc"] == pytest.approx(50.0)


def test_the_action_gated_hota_is_in_the_table(tmp_path):
    """Perfect boxes and identity, the action right in 2 of 4 frames: HOTA 100, ActA 50, and the
    gated HOTA counts the 2 wrong frames as a miss plus a false positive each: DetA = AssA = 1/3."""
    gt = _with_actions(tmp_path / "gt", "0: walk\n1: run\n", action=0)
    (gt / "seq-a" / "gt" / "actions.txt").write_text("1,1,0\n2,1,0\n3,1,1\n4,1,1\n")
    _json_result(tmp_path / "res", fps=10)
    row = run_evaluation(gt_root=gt, results=[str(tmp_path / "res")], out_dir=tmp_path / "o", plots=False)["table"]
    for name in ("seq-a", "COMBINED"):
        assert row[name]["HOTA"] == pytest.approx(100.0)
        assert row[name]["ActA"] == pytest.approx(50.0)
        assert row[name]["HOTA_act"] == pytest.approx(100 / 3)
        # Tracked tubes: one "walk" tube over frames 1-4 (one second at 10 fps) against the ground
        # truth's walk (1-2) and run (3-4): spatio-temporal IoU 1/3, so walk is found at 0.2 and
        # missed at 0.5; run is never predicted.
        assert row[name]["video_mAP@0.2"] == pytest.approx(50.0)
        assert row[name]["video_mAP@0.5"] == pytest.approx(0.0)


def _vicr(persons: dict, width: int = 100, height: int = 100, total: int = 4, partial: bool = False) -> str:
    payload = {"video": {"name": "seq-a", "fps": 10, "width": width, "height": height, "total_frames": total},
               "labelmap": {}, "persons": persons}
    if partial:
        payload["partial"] = True
    return json.dumps(payload)


def _person(frames):
    return {"frames": [{"frame_idx": k, "timestamp": k / 10, "bbox": {"x1": 10, "y1": 10, "x2": 30, "y2": 50},
                        "action": None, "action_id": None} for k in frames]}


def test_vicr_results_that_cannot_be_scored_as_given_are_refused(tmp_path):
    from common.errors import FormatError

    gt = _sequence(tmp_path / "gt")
    res = tmp_path / "res"
    res.mkdir()
    path = res / "seq-a.json"

    def score(**kwargs):
        return run_evaluation(gt_root=gt, results=[str(path)], out_dir=tmp_path / "o", plots=False, **kwargs)

    # The same person twice in a frame, also when spelled id_1 and id_01: it once scored 100.
    path.write_text(_vicr({"id_1": _person(range(4)), "id_01": _person([2])}))
    with pytest.raises(FormatError, match=r"seq-a.json: persons.id_01: id 1 appears twice in frame 2"):
        score()
    # Frames of another size than the ground truth's.
    path.write_text(_vicr({"id_1": _person(range(4))}, width=1920, height=1080))
    with pytest.raises(FormatError, match=r"video_info is 1920x1080, but seq-a's frames are 100x100"):
        score()
    # A run stopped after 2 of 4 frames: not scored as if complete, but its frames can be.
    path.write_text(_vicr({"id_1": _person(range(2))}, total=2, partial=True))
    with pytest.raises(FormatError, match=r"a partial result \(the run stopped after 2 of seq-a's 4 frames\): "
                                          r"score only those with --frames 1-2"):
        score()
    assert score(frames=(1, 2))["table"]["seq-a"]["mota"] == 100


def test_ground_truth_for_frames_of_another_size_is_refused(tmp_path):
    from common.errors import FormatError
    from evaluation.protocol import find_gt_sequences

    gt = _sequence(tmp_path / "gt")
    (gt / "seq-a" / "gt" / "gt.txt").write_text("".join(f"{f},1,500,300,20,40,1,1,1.0\n" for f in range(1, 5)))
    with pytest.raises(FormatError, match=r"gt.txt: 4 of 4 boxes start outside seq-a's 100x100 frames"):
        find_gt_sequences(gt, None)
    # One box past the edge (a person leaving) is ground truth as it is.
    (gt / "seq-a" / "gt" / "gt.txt").write_text("".join(f"{f},1,{500 if f == 4 else 10},10,20,40,1,1,1.0\n"
                                                        for f in range(1, 5)))
    assert len(find_gt_sequences(gt, None)["seq-a"].gt) == 4


def test_mot_results_for_frames_of_another_size_are_refused(tmp_path):
    from common.errors import FormatError

    gt = _sequence(tmp_path / "gt")
    res = tmp_path / "seq-a.txt"
    res.write_text("".join(f"{f},1,{10 * 19.2},{10 * 10.8},{20 * 19.2},{40 * 10.8},1,-1,-1,-1\n" for f in range(1, 5)))
    with pytest.raises(FormatError, match=r"seq-a.txt: 4 of 4 boxes start outside seq-a's 100x100 frames"):
        run_evaluation(gt_root=gt, results=[str(res)], out_dir=tmp_path / "o", plots=False)


def test_a_folder_without_ground_truth_says_what_it_looked_for(tmp_path):
    (tmp_path / "seq-a").mkdir()
    (tmp_path / "seq-a" / "gt.csv").write_text("1,1,10,10,20,40\n")
    with pytest.raises(InputError) as info:
        run_evaluation(gt_root=tmp_path, results=[str(tmp_path)], out_dir=tmp_path / "o", plots=False)
    assert str(info.value) == f"{tmp_path}: no sequences with gt/gt.txt or gt.txt"


def test_a_split_the_dataset_lacks_is_refused_not_replaced_by_all_of_it(tmp_path):
    from evaluation.protocol import gt_root_of

    for split in ("train", "val"):
        _sequence(tmp_path / "ds" / split)
    assert gt_root_of(str(tmp_path / "ds"), "val", None) == tmp_path / "ds" / "val"
    with pytest.raises(InputError, match=r"ds: no split 'vall' \(it has train, val\)"):
        gt_root_of(str(tmp_path / "ds"), "vall", None)
    # A folder of sequences without splits (one real video, say) is taken whole.
    flat = _sequence(tmp_path / "flat")
    assert gt_root_of(str(flat), "test", None) == flat
    assert gt_root_of(None, "test", str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
