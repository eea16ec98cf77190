"""Reading VLM replies: never trusted; repaired where the slip is common, refused where nothing
valid is left; mapped onto the label map; grouping replies checked for coverage."""
from collections import Counter

import pytest

from data.formats.vicr import LabelMap
from pseudolabel.replies import (LabelMatcher, answer_schema, fallback_groups, label_map_from_groups, load_json,
                                      parse_candidates, parse_groups)

MAP = LabelMap({0: "walking", 1: "running", 2: "standing"}, {0: ["strolling", "walk"], 1: ["jogging"]})


def _actions(parsed):
    return [(c.action, c.confidence) for c in parsed.candidates]


@pytest.mark.parametrize("text", [
    '{"actions": [{"action": "walking", "confidence": 0.6}, {"action": "running", "confidence": 0.2}]}',
    'Sure! ```json\n{"actions": [{"action": "walking", "confidence": 0.6}, {"action": "running", "confidence": 0.2}]}\n```',
    "{'actions': [{'action': 'walking', 'confidence': 0.6}, {'action': 'running', 'confidence': 0.2},]}",
    '[{"action": "Walking ", "confidence": "60%"}, {"action": "running", "confidence": 20}]',
])
def test_common_forms_and_slips_read_the_same(text):
    # The model's confidences are kept as given (V-ICR's), not renormalised; the raw words are kept.
    assert [(a.lower(), c) for a, c in _actions(parse_candidates(text, 5))] == [("walking", 0.6), ("running", 0.2)]


@pytest.mark.parametrize("text", ["The person is walking.", "", '{"actions": [{"action": "walk', "[]",
                                  '{"actions": [{"action": "", "confidence": 0.5}, {"action": "x", "confidence": -1}]}',
                                  '{"actions": [{"action": "run", "confidence": NaN}]}',
                                  '{"actions": [{"action": "run", "confidence": 250}]}',
                                  '{"actions": [{"action": "run", "confidence": 0}]}', None])
def test_replies_with_nothing_valid_are_invalid(text):
    assert parse_candidates(text, 5).candidates is None


def test_mapping_onto_the_label_map_merges_drops_and_counts():
    text = ('{"actions": [{"action": "strolling", "confidence": 0.4}, {"action": "walk", "confidence": 0.2}, '
            '{"action": "jogging", "confidence": 0.2}, {"action": "dancing", "confidence": 0.1}, '
            '{"action": "standng", "confidence": 0.1}]}')
    parsed = parse_candidates(text, 5, LabelMatcher(MAP))
    # strolling and walk -> walking (the higher confidence kept), jogging -> running, the typo ->
    # standing; dancing dropped. Confidences stay the model's.
    assert _actions(parsed) == [("walking", 0.4), ("running", 0.2), ("standing", 0.1)]
    assert parsed.unmapped == 1
    assert parse_candidates('[{"action": "dancing", "confidence": 1}]', 5, LabelMatcher(MAP)).candidates is None
    assert len(parse_candidates(text, 2, LabelMatcher(MAP)).candidates) == 2  # top-k


def test_grouping_replies_cover_every_action_once():
    actions = ["walking", "strolling", "jogging", "running", "waving"]
    reply = ('{"groups": [{"name": "Walking", "actions": ["walking", "strolling"]}, '
             '{"name": "running", "actions": ["jogging", "running", "walking"]}]}')
    assert parse_groups(reply, actions) == {"walking": ["walking", "strolling"], "running": ["jogging", "running"],
                                            "waving": ["waving"]}  # walking stays in its first group; waving added
    assert parse_groups('{"groups": []}', actions) is None and parse_groups("no idea", actions) is None
    # Names equal after normalising case and punctuation are one group (the matcher cannot tell them apart).
    reply = ('{"groups": [{"name": "Walking.", "actions": ["walking"]}, {"name": "walking", "actions": ["strolling"]}, '
             '{"name": "running", "actions": ["jogging", "running"]}]}')
    assert parse_groups(reply, actions + ["Waving!"]) == {"walking.": ["walking", "strolling"],
                                                          "running": ["jogging", "running"], "waving": ["waving", "Waving!"]}
    assert fallback_groups(["Walking", "walking!", "running"]) == {"walking": ["Walking", "walking!"],
                                                                    "running": ["running"]}
    label_map = label_map_from_groups({"walking": ["walking", "strolling"], "running": ["jogging"]},
                                      Counter({"jogging": 5, "walking": 2, "strolling": 1}))
    assert label_map.names == {0: "running", 1: "walking"} and label_map.groups[1] == ["strolling", "walking"]


def test_schema_restricts_to_the_label_map_and_load_json_is_first_value():
    schema = answer_schema(5, ["walking", "running"])
    assert schema["properties"]["actions"]["items"]["properties"]["action"]["enum"] == ["walking", "running"]
    assert schema["properties"]["actions"]["maxItems"] == 5
    assert load_json('x {"a": 1} {"b": 2}') == {"a": 1}
