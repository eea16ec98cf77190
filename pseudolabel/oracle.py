"""A scripted "VLM" for the synthetic benchmark: it answers from the ground truth with realistic
noise, so the whole pseudo-labelling and distillation path can be measured without a GPU or a
model hub.

Noise model (deterministic in the seed):

* per person and second, once: the top-1 action is the true one (the most frequent label of that
  person in that second) with probability ``top1``; otherwise one of its two confusable actions
  (walking/running, standing/waving, ...) with probability 0.75, else any other action. Asked
  again (refinement), it makes the same mistake, as a VLM looking at the same clip tends to;
* per request: the confidences, the form of the reply, and whether it is unusable;
* five candidates with confidences that sum to one, the true action among them (second or third)
  when it is not first;
* without a label map it names actions by everyday synonyms (jogging, strolling, squatting, ...),
  which the grouping step has to bring together, and its grouping reply says which go together;
* a fraction ``invalid`` of replies are unusable (prose, truncated JSON), and the answers vary in
  form (code fences, percentages, bare lists), as real VLM replies do.
"""
from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from common.errors import InputError
from data.formats.mot import read_action_sidecar, read_seqinfo
from data.formats.vicr import read_label_map

CONFUSABLE = {"standing": ("waving", "crouching"), "walking": ("running", "standing"),
              "running": ("walking", "jumping"), "jumping": ("running", "crouching"),
              "waving": ("standing", "jumping"), "crouching": ("standing", "jumping")}
SYNONYMS = {"standing": ("standing", "standing still", "idling"), "walking": ("walking", "strolling"),
            "running": ("running", "jogging", "sprinting"), "jumping": ("jumping", "hopping"),
            "waving": ("waving", "waving a hand"), "crouching": ("crouching", "squatting")}
INVALID = ("I cannot tell what the person is doing in this clip.", '{"actions": [{"action": "walk',
           "The person appears to be walking.", "[]")


class SyntheticOracle:
    def __init__(self, dataset: str | Path, top1: float = 0.7, invalid: float = 0.05, seed: int = 0):
        self.top1, self.invalid, self.seed = top1, invalid, seed
        root = Path(dataset)
        try:
            names = read_label_map(root / "label_map.txt").names
        except InputError as exc:
            raise InputError(f"--oracle-gt {root}: not a synthetic benchmark ({exc})") from None
        self.actions = [names[i] for i in sorted(names)]
        self.truth: dict[tuple[str, int, int], str] = {}  # (sequence, track, second) -> action
        for split in ("train", "val", "test"):
            for seq in sorted((root / split).glob("*/gt/actions.txt")):
                fps = read_seqinfo(seq.parents[1] / "seqinfo.ini").frame_rate
                votes: dict[tuple[str, int, int], Counter] = {}
                for (frame, track), action in read_action_sidecar(seq).items():
                    key = (seq.parents[1].name, track, int(np.floor((frame - 1) / fps + 1e-9)))
                    votes.setdefault(key, Counter())[names[action]] += 1
                self.truth.update({k: v.most_common(1)[0][0] for k, v in votes.items()})
        if not self.truth:
            raise InputError(f"--oracle-gt {root}: no gt/actions.txt in its splits")

    def describe(self) -> str:
        return f"synthetic-oracle-2,top1={self.top1:g},invalid={self.invalid:g},seed={self.seed}"

    def __call__(self, request) -> str:
        kind, video, track, second, iteration = request.tag
        # Per request: whether the reply is unusable, its form and its confidences.
        rng = np.random.default_rng(zlib.crc32(f"{self.seed}|{request.prompt}|{video}|{track}|{second}|{iteration}".encode()))
        if rng.random() < self.invalid:
            return str(rng.choice(INVALID))
        if kind == "group":
            return self._group(request)
        # Per person-second: what it sees, mistakes included. A VLM asked about the same clip again
        # tends to make the same mistake, so asking again (refinement) does not average them away.
        seen = np.random.default_rng(zlib.crc32(f"{self.seed}|{video}|{track}|{second}".encode()))
        return self._label(request, self.truth.get((video, int(track), int(second))), seen, rng)

    def _label(self, request, truth: str | None, seen, rng) -> str:
        schema_action = request.schema["properties"]["actions"]["items"]["properties"]["action"] if request.schema else {}
        allowed = schema_action.get("enum")
        truth = truth or str(seen.choice(self.actions))
        if seen.random() < self.top1:
            first = truth
        elif seen.random() < 0.75:
            first = str(seen.choice(CONFUSABLE.get(truth, self.actions)))
        else:
            first = str(seen.choice([a for a in self.actions if a != truth]))
        order = list(dict.fromkeys([first, truth, *CONFUSABLE.get(truth, ()), *seen.permutation(self.actions)]))[:5]
        confidence = rng.dirichlet([6.0, 3.0, 1.5, 1.0, 0.5][: len(order)])
        confidence = np.sort(confidence)[::-1]
        if not allowed:  # everyday words instead of the benchmark's names
            order = [str(rng.choice(SYNONYMS.get(a, (a,)))) for a in order]
        style = rng.random()
        if style < 0.1:
            items = [{"action": a, "confidence": f"{100 * c:.0f}%"} for a, c in zip(order, confidence)]
        else:
            items = [{"action": a, "confidence": round(float(c), 3)} for a, c in zip(order, confidence)]
        text = json.dumps(items if style > 0.95 else {"actions": items})
        return f"```json\n{text}\n```" if 0.1 <= style < 0.25 else text

    def _group(self, request) -> str:
        asked = [a.strip() for a in request.prompt.split("videos: ", 1)[1].rsplit(". Group", 1)[0].split(";")]
        groups: dict[str, list[str]] = {}
        for action in asked:
            name = next((canonical for canonical, words in SYNONYMS.items() if action in words), action)
            groups.setdefault(name, []).append(action)
        return json.dumps({"groups": [{"name": n, "actions": a} for n, a in groups.items()]})

    def agreement(self, working_dir: str | Path) -> tuple[float, int]:
        """How often the final top-1 pseudo-label of a (sequence, track, second) in ``working_dir``
        is the true action, over the labelled ones: ``(fraction, count)``."""
        from data.formats.vicr import read_recognition_results
        right = total = 0
        for path in sorted(Path(working_dir).glob("*/tubes/recognition_results.json")):
            results = read_recognition_results(path)
            lookup = {n: canonical for canonical, words in SYNONYMS.items() for n in words}
            for key, tube in results.tubes.items():
                for second, action, _ in tube.final_actions:
                    truth = self.truth.get((path.parents[1].name, int(key.rsplit("_", 1)[-1]), int(second)))
                    if truth is not None:
                        total += 1
                        right += lookup.get(action, action) == truth
        return (right / total if total else float("nan")), total
