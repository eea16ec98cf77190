"""The pseudo-labelling pipeline with a scripted VLM on hand-checked cases: restriction to a
predefined label map, re-asking, refinement with neighbours, grouping and its fallback, short
tracks, outputs in seed 000's formats, and resuming without asking twice."""
import json

import cv2
import numpy as np
import pytest

from data.formats.mot import read_mot_file
from data.formats.vicr import LabelMap, read_label_map, read_recognition_results, read_vicr_video
from pseudolabel.pipeline import LabellingConfig, pseudo_label
from pseudolabel.tubes import VideoSource
from pseudolabel.vlm import ScriptedBackend

CONFIG = LabellingConfig(frames_per_second=4, context_margin=0.25, min_pixels=32 * 32, max_pixels=64 * 64,
                         min_track_frames=10, top_k=3, refinement_iterations=1, jpeg_quality=80)


@pytest.fixture
def video(tmp_path):
    """A 3-second, 10 fps image folder with two people: one tracked 30 frames, one only 5."""
    folder = tmp_path / "clip"
    folder.mkdir()
    for k in range(30):
        frame = np.full((96, 128, 3), 50, np.uint8)
        frame[20 + k: 60 + k, 10 + 2 * k: 30 + 2 * k] = (0, 0, 255)  # the person, moving
        cv2.imwrite(str(folder / f"{k + 1:06d}.jpg"), frame)
    return VideoSource("clip", folder, 10.0, 128, 96, 30)


def _tracks(_video):
    walker = [(k, np.array([10.4 + 2 * k, 20 + k, 30.6 + 2 * k, 60 + k])) for k in range(30)]
    blip = [(k, np.array([100.0, 10, 110, 40])) for k in range(5)]
    return {1: walker, 2: blip}


def _answer(actions):
    return json.dumps({"actions": [{"action": a, "confidence": c} for a, c in actions]})


def test_predefined_map_reask_refinement_and_outputs(video, tmp_path):
    asked = []

    def vlm(request):
        asked.append(request)
        kind, name, track, second, iteration = request.tag
        if iteration == 0 and second == 1 and "could not be read" not in request.prompt:
            return "I think they walk."  # unreadable: asked once more
        if iteration == 0:
            return _answer([("jogging", 0.5), ("walking", 0.3), ("flying", 0.2)])
        return _answer([("walking", 0.6), ("running", 0.4)]) if second == 1 else None  # None: a failed request

    label_map = LabelMap({0: "walking", 1: "running"}, {1: ["jogging"]})
    stats = pseudo_label([video], _tracks, backend=ScriptedBackend(vlm), config=CONFIG, working_dir=tmp_path / "w",
                         output_dir=tmp_path / "o", label_map=label_map)
    assert (stats.tracks, stats.short_tracks, stats.tube_seconds) == (1, 1, 3)
    first = [r for r in asked if r.tag[4] == 0]
    assert "Choose the actions only from this list: walking, running." in first[0].prompt
    assert first[0].schema["properties"]["actions"]["items"]["properties"]["action"]["enum"] == ["walking", "running"]
    assert len(first[0].frame_indices) == 4 and first[0].fps == 10.0 and first[0].total_frames == 30
    assert stats.invalid == 0 and stats.failed == 2 and stats.unmapped == 3  # "flying" in the three seconds
    refine = {r.tag[3]: r.prompt for r in asked if r.tag[4] == 1}
    # The model's own confidences (jogging -> running 0.5, walking 0.3; flying dropped), not renormalised.
    assert "Your earlier answer for this second: running 0.50, walking 0.30" in refine[1]
    assert "second 0: running; second 2: running" in refine[1]
    results = read_recognition_results(tmp_path / "w" / "clip" / "tubes" / "recognition_results.json")
    assert results.labelmap == ["walking", "running"]
    # Second 1 took the refinement's answer; 0 and 2 kept the first (their refinement failed).
    assert [(s, a, c) for s, a, c in results.tubes["id_1"].final_actions] == [
        (0, "running", 0.5), (1, "walking", 0.6), (2, "running", 0.5)]
    assert [(c.action, c.confidence) for c in results.tubes["id_1"].temporal_labels[0]] == [("running", 0.5),
                                                                                             ("walking", 0.3)]
    labels = read_vicr_video(tmp_path / "o" / "clip.json")
    boxes = [f["bbox"] for f in json.loads((tmp_path / "o" / "clip.json").read_text())["persons"]["id_1"]["frames"]]
    # Whole pixels, as V-ICR writes them: 10.4 -> 10, 30.6 -> 31.
    assert boxes[0] == {"x1": 10, "y1": 20, "x2": 31, "y2": 60}
    assert all(type(v) is int for b in boxes for v in b.values())
    assert list(labels.persons) == ["id_1"] and len(labels.persons["id_1"].frames) == 30
    assert labels.persons["id_1"].frames[12].action == "walking" and labels.persons["id_1"].frames[12].action_id == 0
    assert read_label_map(tmp_path / "w" / "clip" / "label_map.txt").names == {0: "walking", 1: "running"}


def test_free_labels_are_grouped_and_the_fallback_takes_over(video, tmp_path):
    def vlm(request):
        if request.tag[0] == "group":
            return "Here are the groups you asked for."  # unusable: the deterministic grouping is used
        return _answer([("Walking", 0.7), ("walking.", 0.2), ("running", 0.1)])

    pseudo_label([video], _tracks, backend=ScriptedBackend(vlm), config=CONFIG, working_dir=tmp_path / "w",
                 output_dir=tmp_path / "o")
    label_map = read_label_map(tmp_path / "w" / "label_map.txt")
    assert label_map.names == {0: "walking", 1: "running"} and label_map.groups[0] == ["Walking", "walking."]


def test_a_rerun_after_a_crash_asks_only_what_is_missing(video, tmp_path):
    calls = []

    def vlm(request):
        calls.append(request.tag)
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed mid-run
        return _answer([("walking", 1.0)])

    args = dict(backend=ScriptedBackend(vlm), config=CONFIG, working_dir=tmp_path / "w", output_dir=tmp_path / "o",
                label_map=LabelMap({0: "walking", 1: "running"}))
    with pytest.raises(KeyboardInterrupt):
        pseudo_label([video], _tracks, **args)
    answered = calls[:3]
    calls.clear()
    stats = pseudo_label([video], _tracks, **args)
    assert stats.cache_hits == 3 and not set(answered) & set(calls)  # nothing asked twice
    assert stats.requests == len(calls) == 3  # the three refinement questions


def test_label_ids_with_gaps_are_the_same_in_every_file(video, tmp_path):
    label_map = LabelMap({0: "walking", 4: "running"})  # ids as the user's file numbers them
    vlm = ScriptedBackend(lambda request: _answer([("running", 0.8), ("walking", 0.1)]))
    pseudo_label([video], _tracks, backend=vlm, config=CONFIG, working_dir=tmp_path / "w", output_dir=tmp_path / "o",
                 label_map=label_map)
    results = read_recognition_results(tmp_path / "w" / "clip" / "tubes" / "recognition_results.json")
    assert results.labelmap == ["walking", None, None, None, "running"]  # indexed by id
    labels = read_vicr_video(tmp_path / "o" / "clip.json")
    assert labels.labelmap.names == {0: "walking", 4: "running"} == results.to_label_map().names
    assert {(f.action, f.action_id) for f in labels.persons["id_1"].frames} == {("running", 4)}
    assert read_label_map(tmp_path / "w" / "label_map.txt").names == {0: "walking", 4: "running"}


def test_skip_recognition_writes_tracks_and_tubes_only(video, tmp_path):
    logged = []
    stats = pseudo_label([video], _tracks, backend=None, config=CONFIG, working_dir=tmp_path / "w",
                         output_dir=tmp_path / "o", skip_recognition=True, log=logged.append)
    assert any("--skip-recognition: tracks and tubes only" in line for line in logged)
    written = sorted(str(p.relative_to(tmp_path)) for folder in ("w", "o") for p in (tmp_path / folder).rglob("*")
                     if p.is_file())
    # No answer cache, no label map, no recognition results, no action labels.
    assert written == ["o/clip.txt", "w/clip/tubes/metadata.json", "w/metadata.json"]
    rows = read_mot_file(tmp_path / "o" / "clip.txt")
    assert rows.track_id.tolist() == [1] * 30 and rows.frame.tolist() == list(range(1, 31))  # the short track dropped
    np.testing.assert_allclose(rows.boxes[0], [10.4, 20, 30.6, 60])
    assert stats.tube_seconds == 3 and stats.requests == 0
