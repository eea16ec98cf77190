"""V-ICR files as seed 000 defines them: label_map.txt, output/<video>.json, recognition_results.json."""
import json

import numpy as np
import pytest

from common.errors import FormatError
from data.formats.vicr import (ActionCandidate, LabelMap, RecognitionResults, VicrFrame, VicrPerson, VicrVideoInfo, VicrVideoLabels, read_label_map, read_recognition_results,
                               read_vicr_video, soft_label, write_label_map, write_recognition_results,
                               write_vicr_video)

# The example of seed 000, verbatim apart from its "..." elisions.
SEED_VIDEO_JSON = {
    "version": "1.0",
    "video": {"name": "demo", "fps": 120.08, "width": 1920, "height": 1080, "total_frames": 1521, "duration": 12.67},
    "labelmap": {"0": {"name": "attacking", "original_actions": ["punching"]},
                 "1": {"name": "boxing practice", "original_actions": []}},
    "num_persons": 1,
    "persons": {"id_1": {
        "action_summary": ["defending", "boxing practice"],
        "action_timeline": {"0": {"action": "standing", "action_id": 15}},
        "frames": [{"frame_idx": 0, "timestamp": 0.0, "bbox": {"x1": 1006, "y1": 157, "x2": 1275, "y2": 599},
                    "action": "standing and moving", "action_id": 15}]}},
    "summary": {"total_action_instances": 36, "action_distribution": {"boxing practice": 16, "defending": 3}},
}

SEED_RECOGNITION_JSON = {
    "video_path": "./data/input/demo.mp4",
    "labelmap": ["attacking", "boxing practice", "defending"],
    "action_groups": {"boxing practice": ["boxing", "sparring", "shadow boxing"]},
    "tubes": {"id_1": {"temporal_labels": {"0": [{"action": "standing", "confidence": 0.90},
                                                 {"action": "looking", "confidence": 0.75}]},
                       "final_actions": [{"time": 0, "action": "standing", "confidence": 0.90}]}},
    "id_time_actions": [{"id": "id_1", "time": 0, "action": "standing", "confidence": 0.90}],
}


def test_label_map_three_forms(tmp_path):
    (tmp_path / "plain.txt").write_text("# comment\nstanding\nwalking\n\nrunning\n")
    assert read_label_map(tmp_path / "plain.txt").names == {0: "standing", 1: "walking", 2: "running"}
    (tmp_path / "numbered.txt").write_text("0: standing\n1: walking\n2: running\n")
    assert read_label_map(tmp_path / "numbered.txt").names == {0: "standing", 1: "walking", 2: "running"}
    (tmp_path / "grouped.txt").write_text(
        "0: attacking\n   -> punching, throwing punch, raising arms\n1: boxing practice\n"
        "   -> boxing, sparring, shadow boxing\n2: defending\n   -> blocking, defending, preparing to block\n")
    grouped = read_label_map(tmp_path / "grouped.txt")
    assert grouped.names[1] == "boxing practice"
    assert grouped.groups[0] == ["punching", "throwing punch", "raising arms"]
    write_label_map(tmp_path / "out.txt", grouped)
    assert (tmp_path / "out.txt").read_text() == (tmp_path / "grouped.txt").read_text()
    assert read_label_map(tmp_path / "out.txt") == grouped


@pytest.mark.parametrize("text, message, line", [
    ("0: a\n0: b\n", "duplicate label id 0", 2),
    ("0: a\nwalking\n", "mixes", 2),
    ("-> a, b\n0: x\n", "'->' line before any label", 1),
    ("0:\n", "empty label name", 1),
    ("0: walk\n1: run\n2: walk\n", "duplicate label name 'walk' \\(ids 0 and 2\\)", 3),
])
def test_label_map_errors(tmp_path, text, message, line):
    (tmp_path / "m.txt").write_text(text)
    with pytest.raises(FormatError, match=message) as info:
        read_label_map(tmp_path / "m.txt")
    assert info.value.line == line


def test_seed_video_json_reads_and_round_trips(tmp_path):
    (tmp_path / "demo.json").write_text(json.dumps(SEED_VIDEO_JSON))
    labels = read_vicr_video(tmp_path / "demo.json")
    assert labels.video.fps == 120.08 and labels.video.total_frames == 1521
    person = labels.persons["id_1"]
    assert person.frames[0].bbox == (1006, 157, 1275, 599)
    assert person.frames[0].action_id == 15 and person.action_timeline[0] == ("standing", 15)
    assert labels.labelmap.groups[0] == ["punching"]
    write_vicr_video(tmp_path / "out.json", labels)
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["persons"]["id_1"]["frames"][0]["bbox"] == {"x1": 1006, "y1": 157, "x2": 1275, "y2": 599}
    assert set(written) == set(SEED_VIDEO_JSON)  # same top-level keys as seed 000
    assert written["summary"] == {"total_action_instances": 1, "action_distribution": {"standing": 1}}
    assert read_vicr_video(tmp_path / "out.json") == labels


def test_video_json_built_in_code_round_trips(tmp_path):
    labels = VicrVideoLabels(
        video=VicrVideoInfo("clip", 10.0, 320, 192, 30, 3.0), labelmap=LabelMap({0: "standing", 1: "walking"}),
        persons={"id_3": VicrPerson(frames=[VicrFrame(k, k / 10, (1.5, 2, 30, 60.25), "walking", 1) for k in range(5)],
                                    action_timeline={0: ("walking", 1)}, action_summary=["walking"])})
    write_vicr_video(tmp_path / "clip.json", labels)
    assert read_vicr_video(tmp_path / "clip.json") == labels
    # The project's inference adds per-frame detection and action scores; they round-trip too,
    # and a file without them (V-ICR's own) still reads.
    labels.persons["id_3"].frames[0] = VicrFrame(0, 0.0, (1, 2, 30, 60), "walking", 1, action_scores=(0.25, 0.75), score=0.9)
    write_vicr_video(tmp_path / "scored.json", labels)
    assert read_vicr_video(tmp_path / "scored.json") == labels
    data = json.loads((tmp_path / "scored.json").read_text())
    assert data["persons"]["id_3"]["frames"][0]["action_scores"] == [0.25, 0.75]
    assert "action_scores" not in data["persons"]["id_3"]["frames"][1]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["persons"]["id_1"]["frames"][0].update(action_scores=["high"]), "action_scores: expected a list of numbers"),
    (lambda d: d["persons"]["id_1"]["frames"][0]["bbox"].pop("x2"), r"persons\.id_1\.frames\[0\]\.bbox: missing key 'x2'"),
    (lambda d: d["video"].update(fps="fast"), r"video\.fps: expected float"),
    (lambda d: d["persons"]["id_1"]["frames"][0].update(frame_idx=5000), "outside the video's 1521 frames"),
    (lambda d: d["persons"]["id_1"]["action_timeline"].update({"x": {"action": "a"}}), "not an integer second"),
    (lambda d: d.pop("persons"), "missing key 'persons'"),
    (lambda d: d["persons"]["id_1"]["frames"][0].update(action_scores=[0.5, float("nan")]), r"action_scores: probabilities must be in \[0, 1\], got nan"),
    (lambda d: d["persons"]["id_1"]["frames"][0].update(action_scores=[1.2, -0.2]), r"must be in \[0, 1\], got 1.2"),
])
def test_video_json_errors_name_the_json_path(tmp_path, mutate, message):
    data = json.loads(json.dumps(SEED_VIDEO_JSON))
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match=message) as info:
        read_vicr_video(tmp_path / "bad.json")
    assert str(info.value).startswith(str(tmp_path / "bad.json"))


def test_malformed_json_gives_line(tmp_path):
    (tmp_path / "broken.json").write_text('{\n  "video": {\n    "name": "x",\n  }\n')
    with pytest.raises(FormatError, match="malformed JSON") as info:
        read_vicr_video(tmp_path / "broken.json")
    assert info.value.line == 4


def test_seed_recognition_results_round_trip(tmp_path):
    (tmp_path / "rr.json").write_text(json.dumps(SEED_RECOGNITION_JSON))
    results = read_recognition_results(tmp_path / "rr.json")
    assert results.tubes["id_1"].temporal_labels[0][1] == ActionCandidate("looking", 0.75)
    write_recognition_results(tmp_path / "out.json", results)
    assert json.loads((tmp_path / "out.json").read_text()) == SEED_RECOGNITION_JSON
    bad = json.loads(json.dumps(SEED_RECOGNITION_JSON))
    bad["tubes"]["id_1"]["temporal_labels"]["0"][0]["confidence"] = 1.7
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(FormatError, match=r"temporal_labels\.0\[0\]\.confidence must be in \[0, 1\]"):
        read_recognition_results(tmp_path / "bad.json")


def test_soft_label_maps_raw_actions_through_groups():
    label_map = RecognitionResults("", ["attacking", "boxing practice"],
                                   {"boxing practice": ["boxing", "sparring"], "attacking": ["punching"]}, {}).to_label_map()
    dist = soft_label([ActionCandidate("sparring", 0.6), ActionCandidate("Punching", 0.2),
                       ActionCandidate("boxing", 0.2), ActionCandidate("unknown thing", 0.9)], label_map)
    np.testing.assert_allclose(dist, [0.2, 0.8])
    assert soft_label([ActionCandidate("nothing known", 1.0)], label_map) is None
