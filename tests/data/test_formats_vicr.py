"""V-ICR files as seed 000 defines them: label_map.txt, output/<video>.json, recognition_results.json."""
import json

import numpy as np
import pytest

from common.errors import FormatError
from data.formats.vicr import (ActionCandidate, LabelMap, RecognitionResults, VicrFrame, VicrPerson, VicrTube,
                               VicrVideoInfo, VicrVideoLabels, read_label_map, read_recognition_results,
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
    ("0: walk\n1: run\n2: walk\n", "'walk' is the same label as line 1 'walk'", 3),
    # The reply matcher compares names after normalising case and punctuation: one could never be produced.
    ("walking\n# comment\nWalking\n", "'Walking' is the same label as line 1 'walking' after normalising case and "
                                      "punctuation", 3),
    ("0: walking\n   -> strolling\n1: running\n5: walking.\n", "'walking.' is the same label as line 1 'walking' after "
                                                              "normalising", 4),
    ("# only a comment\n\n", "no labels in the file", None),
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
    # JSON has no NaN or Infinity, but Python writes and reads them: refused, the field named.
    (lambda d: d["video"].update(fps=float("nan")), r"video\.fps: expected a finite number > 0, got nan"),
    (lambda d: d["video"].update(fps=float("inf")), r"video\.fps: expected a finite number > 0, got inf"),
    (lambda d: d["video"].update(fps=0), r"video\.fps: expected a finite number > 0, got 0.0"),
    (lambda d: d["persons"]["id_1"]["frames"][0]["bbox"].update(y2=float("-inf")),
     r"persons\.id_1\.frames\[0\]\.bbox\.y2: expected a finite number, got -inf"),
    (lambda d: d["persons"]["id_1"]["frames"][0].update(timestamp=float("nan")),
     r"persons\.id_1\.frames\[0\]\.timestamp: expected a finite number, got nan"),
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


def test_recognition_results_confidences_must_be_finite(tmp_path):
    bad = json.loads(json.dumps(SEED_RECOGNITION_JSON))
    bad["tubes"]["id_1"]["final_actions"][0]["confidence"] = float("nan")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(FormatError, match=r"bad\.json: tubes\.id_1\.final_actions\[0\]\.confidence: expected a finite "
                                          r"number, got nan"):
        read_recognition_results(tmp_path / "bad.json")


def test_writers_refuse_non_finite_numbers_naming_the_field(tmp_path):
    person = VicrPerson([VicrFrame(0, 0.0, (1, 2, 30, 60), "walking", 0)], {0: ("walking", 0)})
    labels = VicrVideoLabels(VicrVideoInfo("clip", float("nan"), 320, 192, 30, 3.0), LabelMap({0: "walking"}),
                             {"id_3": person})
    with pytest.raises(FormatError, match=r"clip\.json: video\.fps: cannot write nan: expected a finite number"):
        write_vicr_video(tmp_path / "clip.json", labels)
    labels.video.fps = 10.0
    labels.persons["id_3"].frames[0].bbox = (1, 2, float("inf"), 60)
    with pytest.raises(FormatError, match=r"persons\.id_3\.frames\[0\]\.bbox\.x2: cannot write inf"):
        write_vicr_video(tmp_path / "clip.json", labels)
    tube = VicrTube({0: [ActionCandidate("walking", float("nan"))]}, [(0, "walking", 0.5)])
    results = RecognitionResults("v.mp4", ["walking"], {}, {"id_1": tube})
    with pytest.raises(FormatError, match=r"tubes\.id_1\.temporal_labels\.0\[0\]\.confidence: cannot write nan"):
        write_recognition_results(tmp_path / "rr.json", results)
    assert not list(tmp_path.iterdir())  # nothing written, not even a partial file


def test_label_ids_with_gaps_keep_one_id_space(tmp_path):
    (tmp_path / "ava.txt").write_text("1: bend/bow\n3: crouch/kneel\n")  # AVA's ids, with gaps
    label_map = read_label_map(tmp_path / "ava.txt")
    results = RecognitionResults("v.mp4", RecognitionResults.labelmap_of(label_map), {}, {})
    write_recognition_results(tmp_path / "rr.json", results)
    # The list is indexed by the label's id: position 3 is id 3, null where no label has the id.
    assert json.loads((tmp_path / "rr.json").read_text())["labelmap"] == [None, "bend/bow", None, "crouch/kneel"]
    assert read_recognition_results(tmp_path / "rr.json").to_label_map().names == label_map.names


def test_a_label_map_without_labels_is_empty_only_when_allowed(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n   \n")
    assert read_label_map(tmp_path / "empty.txt", allow_empty=True) == LabelMap({})
    with pytest.raises(FormatError, match="no labels in the file"):
        read_label_map(tmp_path / "empty.txt")


def test_soft_label_maps_raw_actions_through_groups():
    label_map = RecognitionResults("", ["attacking", "boxing practice"],
                                   {"boxing practice": ["boxing", "sparring"], "attacking": ["punching"]}, {}).to_label_map()
    # The files keep the model's confidences (0.9 + 0.8 + 0.3 here); distillation gets a distribution.
    dist = soft_label([ActionCandidate("sparring", 0.9), ActionCandidate("Punching", 0.3),
                       ActionCandidate("boxing", 0.8), ActionCandidate("unknown thing", 0.9)], label_map)
    np.testing.assert_allclose(dist, [0.15, 0.85])
    assert soft_label([ActionCandidate("nothing known", 1.0)], label_map) is None
