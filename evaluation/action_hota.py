"""Action-gated HOTA: HOTA (TrackEval) whose true positives also need the right action, reported
with its parts — detection (DetA), association (AssA) and action accuracy (ActA).

Definitions (every value in percent, averaged over TrackEval's 19 alpha thresholds 0.05 ... 0.95):

* ``HOTA_act`` — SoccerNet's GS-HOTA gating applied to actions: TrackEval's own ``HOTA`` metric run
  on the similarity ``IoU(g, t) * [action(t) == action(g)]``. As in TrackEval's ``SoccerNetGS``
  dataset, the gate is applied to the similarity itself, so it acts everywhere HOTA uses it: the
  global alignment score, the Hungarian matching and the alpha thresholds. A box with the wrong
  action is then a miss plus a false positive, and a track whose actions are wrong half the time
  only half associates with its person.
* Ground-truth boxes without an action label (a negative label, the project's "unlabelled") do not
  gate: their pairs keep the plain IoU. The annotation says nothing about what that person is
  doing, so no prediction can be wrong there; gating them would turn every such box into a miss
  for every tracker, and dropping them would stop scoring their detection and tracking, which are
  still annotated. With no labels at all, ``HOTA_act == HOTA``.
* ``HOTA``, ``DetA``, ``AssA`` — TrackEval's plain (ungated) values, the same as
  :func:`evaluation.mot_metrics.hota_metrics`: how good detection and association are whatever the
  actions.
* ``ActA`` — over the plain HOTA's matched pairs at alpha (TrackEval's Hungarian pairs with
  ``IoU >= alpha``) whose ground truth has a label, the fraction whose predicted action equals it;
  then the mean over the alphas at which there is at least one such pair. Alphas without one are
  skipped rather than scored 0 (TrackEval's convention for its own sub-metrics) so that ActA says
  how right the actions are, not how tight the boxes are, which DetA already says (like TETA's
  ClsA, which is measured on the pairs localisation and association matched). ``nan`` when no
  labelled ground truth is matched at any alpha (no tracker boxes, no labels).

``"COMBINED"`` is TrackEval's combination over sequences (``HOTA.combine_sequences``) for the
HOTA values, and for ActA the pairs summed over sequences per alpha before the ratio.

Empty sides follow TrackEval: a sequence with no tracker boxes or no ground truth has HOTA, DetA,
AssA and HOTA_act 0 (and ActA ``nan``), without error.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluation.mot_metrics import SequenceFrames, _trackeval_data

FIELDS = ("HOTA_act", "HOTA", "DetA", "AssA", "ActA")


def action_hota(sequences: list[SequenceFrames], gt_actions: list[list[np.ndarray]],
                tracker_actions: list[list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """``{sequence name | "COMBINED": {"HOTA_act", "HOTA", "DetA", "AssA", "ActA"}}`` in percent
    (definitions in the module docstring).

    ``gt_actions[s][k]`` is the action id of each ground-truth box of ``sequences[s]``'s frame ``k``,
    in the order of ``gt_ids[k]`` (negative: unlabelled); ``tracker_actions[s][k]`` the predicted
    action id of each tracker box, in the order of ``tracker_ids[k]`` (e.g. ``scores.argmax(1)``).
    """
    from trackeval.metrics import HOTA

    if not sequences:
        raise ValueError("no sequences to score")
    if len(gt_actions) != len(sequences) or len(tracker_actions) != len(sequences):
        raise ValueError(f"{len(sequences)} sequences but actions for {len(gt_actions)} (ground truth) and "
                         f"{len(tracker_actions)} (tracker)")
    names = [s.name for s in sequences]
    if len(set(names)) != len(names) or "COMBINED" in names:
        raise ValueError(f"sequence names must be unique and not 'COMBINED': {names}")
    metric = HOTA()
    alphas = metric.array_labels
    plain, gated, pairs = {}, {}, {}
    for seq, g_act, t_act in zip(sequences, gt_actions, tracker_actions):
        g_act, t_act = _checked_actions(seq, g_act, t_act)
        data = _trackeval_data(seq)
        plain[seq.name] = metric.eval_sequence(data)
        gated_seq = replace(seq, similarity=[sim * _gate(g, t) for sim, g, t in zip(seq.similarity, g_act, t_act)])
        gated[seq.name] = metric.eval_sequence(_trackeval_data(gated_seq))
        pairs[seq.name] = _action_pairs(data, g_act, t_act, alphas)
        # The matching is re-done outside TrackEval; a TrackEval that matched otherwise would make
        # ActA count other pairs than DetA/AssA, so refuse rather than mix them.
        if not np.array_equal(pairs[seq.name][0], plain[seq.name]["HOTA_TP"]):
            raise RuntimeError("TrackEval's HOTA matched other pairs than evaluation.action_hota "
                               f"reproduces (sequence {seq.name}): its matching has changed")
    plain["COMBINED"] = metric.combine_sequences(dict(plain))
    gated["COMBINED"] = metric.combine_sequences(dict(gated))
    pairs["COMBINED"] = sum(pairs.values())
    out = {}
    for name in names + ["COMBINED"]:
        _, labelled, right = pairs[name]
        defined = labelled > 0
        act_a = float(np.mean(right[defined] / labelled[defined])) * 100.0 if defined.any() else float("nan")
        out[name] = {"HOTA_act": float(np.mean(gated[name]["HOTA"])) * 100.0,
                     **{f: float(np.mean(plain[name][f])) * 100.0 for f in ("HOTA", "DetA", "AssA")},
                     "ActA": act_a}
    return out


def _checked_actions(seq: SequenceFrames, gt_actions, tracker_actions) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-frame 1-D integer action arrays, one entry per box (``ValueError`` naming the frame otherwise)."""
    if len(gt_actions) != seq.num_frames or len(tracker_actions) != seq.num_frames:
        raise ValueError(f"{seq.name}: {seq.num_frames} frames but actions for {len(gt_actions)} (ground truth) "
                         f"and {len(tracker_actions)} (tracker)")
    g_out, t_out = [], []
    for k in range(seq.num_frames):
        g, t = np.asarray(gt_actions[k]), np.asarray(tracker_actions[k])
        for what, a, n in (("ground-truth", g, len(seq.gt_ids[k])), ("tracker", t, len(seq.tracker_ids[k]))):
            if a.ndim != 1 or len(a) != n:
                raise ValueError(f"{seq.name} frame {k + 1}: {what} actions of shape {a.shape}, expected ({n},) "
                                 "action ids (argmax the scores)")
        g_out.append(g.astype(np.int64))
        t_out.append(t.astype(np.int64))
    return g_out, t_out


def _gate(gt_actions: np.ndarray, tracker_actions: np.ndarray) -> np.ndarray:
    """``(G, T)`` 1 where the pair's actions agree or the ground truth is unlabelled, else 0."""
    return ((gt_actions[:, None] < 0) | (gt_actions[:, None] == tracker_actions[None, :])).astype(np.float64)


def _action_pairs(data: dict, gt_actions: list[np.ndarray], tracker_actions: list[np.ndarray],
                  alphas: np.ndarray) -> np.ndarray:
    """``(3, A)`` counts over the plain HOTA's matched pairs at each alpha: all of them (TrackEval's
    HOTA_TP), those whose ground truth is labelled, and those with the right action."""
    eps = np.finfo("float").eps
    counts = np.zeros((3, len(alphas)))  # (3, A)
    for (rows, cols), sim, g, t in zip(_hota_matches(data), data["similarity_scores"], gt_actions, tracker_actions):
        if not len(rows):
            continue
        matched = sim[rows, cols][None, :] >= alphas[:, None] - eps  # (A, P), TrackEval's alpha test
        labelled = g[rows] >= 0  # (P,)
        right = labelled & (g[rows] == t[cols])  # (P,)
        counts += np.stack([matched.sum(1), (matched & labelled).sum(1), (matched & right).sum(1)])  # (3, A)
    return counts


def _hota_matches(data: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame, the (gt, tracker) index pairs TrackEval's ``HOTA.eval_sequence`` assigns before its
    alpha thresholds: the same arithmetic in the same order (trackeval/metrics/hota.py), so the
    Hungarian solver sees bit-identical score matrices and returns the same pairs."""
    empty = (np.zeros(0, int), np.zeros(0, int))
    if data["num_tracker_dets"] == 0 or data["num_gt_dets"] == 0:
        return [empty] * data["num_timesteps"]
    eps = np.finfo("float").eps
    potential = np.zeros((data["num_gt_ids"], data["num_tracker_ids"]))  # (G_ids, T_ids)
    gt_count = np.zeros((data["num_gt_ids"], 1))  # (G_ids, 1)
    tracker_count = np.zeros((1, data["num_tracker_ids"]))  # (1, T_ids)
    for gt_ids, tracker_ids, sim in zip(data["gt_ids"], data["tracker_ids"], data["similarity_scores"]):
        denom = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim  # (G, T)
        sim_iou = np.zeros_like(sim)
        mask = denom > 0 + eps
        sim_iou[mask] = sim[mask] / denom[mask]
        potential[gt_ids[:, np.newaxis], tracker_ids[np.newaxis, :]] += sim_iou
        gt_count[gt_ids] += 1
        tracker_count[0, tracker_ids] += 1
    alignment = potential / (gt_count + tracker_count - potential)  # (G_ids, T_ids)
    matches = []
    for gt_ids, tracker_ids, sim in zip(data["gt_ids"], data["tracker_ids"], data["similarity_scores"]):
        if len(gt_ids) == 0 or len(tracker_ids) == 0:
            matches.append(empty)
            continue
        score = alignment[gt_ids[:, np.newaxis], tracker_ids[np.newaxis, :]] * sim  # (G, T)
        matches.append(linear_sum_assignment(-score))
    return matches
