"""Validation during training: detection AP50, ReID rank-1 over held-out identities, action
frame accuracy — all on ground truth of the val split."""
from __future__ import annotations

import numpy as np
import torch

from evaluation.detection_metrics import detection_ap

IGNORE_VISIBILITY = 0.25  # boxes less visible than this neither count as misses nor as false positives
REID_MIN_VISIBILITY = 0.5  # queries and gallery are boxes at least this visible
REID_MIN_GAP_S = 1.0  # the gallery holds views of a person at least this far in time from the query


def reid_rank1(embeddings: np.ndarray, identities: np.ndarray, sequences: np.ndarray, times: np.ndarray,
               min_gap: float = REID_MIN_GAP_S) -> float:
    """Rank-1: the nearest gallery embedding has the query's identity. The gallery of a query is
    every embedding except those of the same sequence closer than ``min_gap`` seconds, so a
    neighbouring frame of the same person cannot answer for it."""
    if len(embeddings) < 2:
        return float("nan")
    emb = torch.as_tensor(embeddings, dtype=torch.float32)
    sim = emb @ emb.t()
    same_seq = torch.as_tensor(sequences[:, None] == sequences[None, :])
    close = torch.as_tensor(np.abs(times[:, None] - times[None, :]) < min_gap)
    sim[same_seq & close] = -2.0
    ids = torch.as_tensor(identities)
    has_true_match = ((ids[:, None] == ids[None, :]) & (sim > -2)).any(1)
    best = sim.argmax(1)
    correct = (ids[best] == ids) & has_true_match
    return float(correct[has_true_match].float().mean()) if has_true_match.any() else float("nan")


@torch.no_grad()
def validate(model, loader, device, fps: float = 10.0, score_threshold: float = 0.05) -> dict[str, float]:
    model.eval()
    preds, gts = [], []
    emb, emb_ids, emb_seq, emb_time = [], [], [], []
    correct = total = 0
    for batch in loader:
        frames = batch["frames"].to(device)
        boxes, mask = batch["boxes"].to(device), batch["mask"].to(device)
        out = model(frames, boxes, mask)
        B, T = out["clip"]
        dets = model.detection_head.postprocess(out["detections"], out["image_size"], score_threshold=score_threshold)
        vis = batch["visibility"]
        for i, d in enumerate(dets):
            b, t = divmod(i, T)
            if not batch["annotated"][b, t]:
                continue
            m = batch["mask"][b, t]
            preds.append({"boxes": d["boxes"].cpu(), "scores": d["scores"].cpu()})
            gts.append({"boxes": batch["boxes"][b, t][m], "ignore": vis[b, t][m] < IGNORE_VISIBILITY})
        logits = out["action_logits"].cpu()
        labelled = batch["mask"] & (batch["actions"] >= 0)
        correct += int((logits.argmax(-1) == batch["actions"])[labelled].sum())
        total += int(labelled.sum())
        keep = batch["mask"] & (vis >= REID_MIN_VISIBILITY) & (batch["identities"][:, None, :] >= 0)
        index = torch.nonzero(keep)
        emb.append(out["embeddings"].cpu()[keep])
        emb_ids.append(batch["identities"][index[:, 0], index[:, 2]])
        emb_seq += [batch["sequence"][b] for b in index[:, 0].tolist()]
        emb_time.append(batch["frame_indices"][index[:, 0], index[:, 1]].float() / fps)
    return {
        "det_ap50": detection_ap(preds, gts, 0.5),
        "reid_rank1": reid_rank1(torch.cat(emb).numpy(), torch.cat(emb_ids).numpy(), np.array(emb_seq),
                                 torch.cat(emb_time).numpy()) if emb else float("nan"),
        "action_acc": correct / total if total else float("nan"),
    }
