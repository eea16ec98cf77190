"""What is asked of the VLM and how its replies are read: prompts, the JSON schemas of the answers,
and parsing that never trusts a reply.

A labelling reply is parsed (code fences and prose around the JSON are ignored; single quotes and
trailing commas are repaired), validated (a list of ``{"action", "confidence"}``, confidences in [0, 1] or as percentages), its
actions mapped onto the label map when one is given (a name, one of its grouped raw actions, or a
close spelling of either), duplicates merged (the highest confidence kept), and the top ``k`` kept.
Confidences stay the model's own, as V-ICR keeps them; they need not sum to one (distillation
normalises them: :func:`data.formats.vicr.soft_label`).
A reply from which nothing valid survives is ``None``: the caller re-asks once and then records it
as invalid.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass

from data.formats.vicr import ActionCandidate, LabelMap, normalise

SYSTEM = ("You label what one person is doing in short video clips cut around that person from a larger "
          "scene. You answer with JSON only.")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


# ------------------------------------------------------------------------------------ prompts
def labelling_prompt(second: int, start: float, end: float, top_k: int, allowed: list[str] | None) -> str:
    text = (f"The clip shows one person during second {second} of the video ({start:.1f}-{end:.1f} s). "
            f"What is the person doing? Give the {top_k} most likely actions, most likely first, each a short "
            'verb phrase, with a confidence between 0 and 1. Answer with JSON only: '
            '{"actions": [{"action": "...", "confidence": 0.0}]}')
    if allowed:
        text += " Choose the actions only from this list: " + ", ".join(allowed) + "."
    return text


def refinement_prompt(second: int, start: float, end: float, top_k: int, allowed: list[str],
                      earlier: list[ActionCandidate], neighbours: dict[int, str]) -> str:
    """The same second asked again, with its own earlier answer and the labels of the seconds
    around it as context (seed 000's iterative refinement), restricted to the label map."""
    context = "; ".join(f"second {s}: {a}" for s, a in sorted(neighbours.items())) or "none"
    mine = ", ".join(f"{c.action} {c.confidence:.2f}" for c in earlier) or "no valid answer"
    return (labelling_prompt(second, start, end, top_k, allowed)
            + f" Your earlier answer for this second: {mine}. The same person in the neighbouring seconds: "
              f"{context}. People usually keep an action for a few seconds, but answer what this clip shows.")


def grouping_prompt(actions: list[str]) -> str:
    return ("These action labels were given to people in videos: " + "; ".join(actions) + ". Group the labels "
            "that name the same activity, and give each group a short name. Every label must be in exactly one "
            'group. Answer with JSON only: {"groups": [{"name": "...", "actions": ["...", "..."]}]}')


def answer_schema(top_k: int, allowed: list[str] | None) -> dict:
    """The JSON schema of a labelling answer (for servers that enforce structured output)."""
    action = {"type": "string", "enum": list(allowed)} if allowed else {"type": "string", "minLength": 1}
    return {"type": "object", "additionalProperties": False, "required": ["actions"],
            "properties": {"actions": {"type": "array", "minItems": 1, "maxItems": top_k, "items": {
                "type": "object", "additionalProperties": False, "required": ["action", "confidence"],
                "properties": {"action": action, "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}}}}


GROUPING_SCHEMA = {"type": "object", "required": ["groups"], "properties": {"groups": {"type": "array", "items": {
    "type": "object", "required": ["name", "actions"],
    "properties": {"name": {"type": "string"}, "actions": {"type": "array", "items": {"type": "string"}}}}}}}


# ------------------------------------------------------------------------------------ parsing
def load_json(text: str):
    """The first JSON value in a reply, or None: fences and prose around it are skipped, and two
    common slips (single quotes, trailing commas) are repaired."""
    if not isinstance(text, str) or not text.strip():
        return None
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        return None
    body = body[min(starts):]
    for candidate in (body, _TRAILING_COMMA.sub(r"\1", body), _TRAILING_COMMA.sub(r"\1", body.replace("'", '"'))):
        try:
            value, _ = json.JSONDecoder().raw_decode(candidate)
            return value
        except ValueError:
            continue
    return None


def _confidence(value) -> float | None:
    """A confidence in [0, 1]; one in (1, 100] is read as a percentage; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        percent = value.endswith("%")
        try:
            value = float(value.rstrip("%")) / (100 if percent else 1)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not 0 <= value <= 100:  # NaN fails this too
        return None
    return float(value) / 100 if value > 1 else float(value)


class LabelMatcher:
    """Maps raw action text onto a label map: a name, a grouped raw action, or (for spelling
    slips) a close match of either; anything else maps to None and is dropped by the caller."""

    def __init__(self, label_map: LabelMap):
        self.label_map = label_map
        self._lookup = {normalise(k): i for k, i in label_map.name_to_id().items()}

    def __call__(self, action: str) -> str | None:
        key = normalise(action)
        index = self._lookup.get(key)
        if index is None:
            close = difflib.get_close_matches(key, list(self._lookup), n=1, cutoff=0.85)
            index = self._lookup[close[0]] if close else None
        return None if index is None else self.label_map.names[index]


@dataclass
class Parsed:
    candidates: list[ActionCandidate] | None  # None: the reply was invalid
    unmapped: int = 0  # actions outside the label map that were dropped


def parse_candidates(text: str, top_k: int, matcher: LabelMatcher | None = None) -> Parsed:
    """A labelling reply -> up to ``top_k`` candidates (best first, the model's confidences)."""
    value = load_json(text)
    items = value.get("actions") if isinstance(value, dict) else value
    if not isinstance(items, list):
        return Parsed(None)
    scores: dict[str, float] = {}
    unmapped = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("action"), str) or not item["action"].strip():
            continue
        confidence = _confidence(item.get("confidence"))
        if confidence is None:
            continue
        action = " ".join(item["action"].split())
        if matcher is not None:
            action = matcher(action)
            if action is None:
                unmapped += 1
                continue
        scores[action] = max(scores.get(action, 0.0), confidence)
    if not any(scores.values()):  # no candidate, or all at confidence 0: the reply says nothing
        return Parsed(None, unmapped)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    return Parsed([ActionCandidate(a, round(c, 4)) for a, c in ranked], unmapped)


def parse_groups(text: str, actions: list[str]) -> dict[str, list[str]] | None:
    """A grouping reply -> ``{group name: [raw actions]}`` covering every action exactly once
    (an action the reply left out becomes a group of its own; one it placed twice stays in its
    first group), or None when the reply holds no usable group. Names equal after
    :func:`normalise` are one group (the reply matcher could not tell them apart)."""
    value = load_json(text)
    groups = value.get("groups") if isinstance(value, dict) else value
    if not isinstance(groups, list):
        return None
    by_key = {normalise(a): a for a in actions}
    out: dict[str, list[str]] = {}
    placed: set[str] = set()

    def add(name: str, members: list[str]) -> None:
        existing = next((n for n in out if normalise(n) == normalise(name)), name)
        out.setdefault(existing, []).extend(members)
        placed.update(members)

    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str) or not group["name"].strip():
            continue
        members = [by_key[normalise(m)] for m in group.get("actions", []) if isinstance(m, str) and normalise(m) in by_key]
        members = [m for m in dict.fromkeys(members) if m not in placed]
        if members:
            add(" ".join(group["name"].split()).lower(), members)
    if not out:
        return None
    for action in actions:
        if action not in placed:
            add(normalise(action), [action])
    return out


def fallback_groups(actions: list[str], counts: Counter | None = None) -> dict[str, list[str]]:
    """The deterministic grouping when the VLM's is unusable: actions equal after
    :func:`normalise` form one group, named by that normal form."""
    out: dict[str, list[str]] = {}
    for action in sorted(actions, key=lambda a: (-(counts or Counter())[a], a)):
        out.setdefault(normalise(action) or action, []).append(action)
    return out


def label_map_from_groups(groups: dict[str, list[str]], counts: Counter) -> LabelMap:
    """Groups -> a label map, the most used group first (ids in that order)."""
    order = sorted(groups, key=lambda name: (-sum(counts[a] for a in groups[name]), name))
    return LabelMap({i: name for i, name in enumerate(order)}, {i: sorted(groups[name]) for i, name in enumerate(order)})
