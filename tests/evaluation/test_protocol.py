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
