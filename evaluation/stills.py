"""Person detection on still images of other scenes: does a detector trained on one camera find
people anywhere else?

A network trained on one fixed camera (PETS09-S2L1 alone, say) can score well on that camera's
later frames and find nobody in another scene. :func:`evaluate_stills` runs the network on each
still as a one-frame video and scores its boxes with the same COCO AP as sequence evaluation
(people are the positives; ignore regions count neither way). ``scripts/evaluate.py --stills``
prints it; COCO128's val2017 images (``../shared/data/real/coco128``) are a small such check.
"""
from __future__ import annotations

import numpy as np

from data.stills import StillImage
from data.video import read_image


def detect_stills(pipeline, images: list[StillImage]) -> list[dict]:
    """The network's detections on each image: ``{"boxes" (D, 4) xyxy pixels, "scores" (D,),
    "size" (width, height)}``."""
    found = []
    for image in images:
        frame = read_image(image.path)
        height, width = frame.shape[:2]
        result = pipeline.start(fps=1.0, name=image.path.stem, width=width, height=height).step(0, 0.0, frame)
        found.append({"boxes": np.asarray(result.detection_boxes, np.float64).reshape(-1, 4),
                      "scores": np.asarray(result.detection_scores, np.float64), "size": (width, height)})
    return found


def stills_ap(detections: list[dict], images: list[StillImage]) -> dict:
    """COCO AP50 and AP (in %) of ``detections`` (per image, as :func:`detect_stills` gives: any
    detector's boxes, scores and the image size) against the ``images``' people."""
    from evaluation.detection_metrics import coco_ap
    if len(detections) != len(images):
        raise ValueError(f"{len(detections)} detections for {len(images)} images")
    preds, gts, people = [], [], 0
    for found, image in zip(detections, images):
        boxes, ignore = image.in_pixels(*found["size"])
        people += len(boxes)
        preds.append({"boxes": found["boxes"], "scores": found["scores"], "labels": np.ones(len(found["boxes"]), int)})
        gts.append({"boxes": np.concatenate([boxes, ignore]).reshape(-1, 4), "labels": np.ones(len(boxes) + len(ignore), int),
                    "crowd": np.r_[np.zeros(len(boxes), bool), np.ones(len(ignore), bool)]})
    ap = coco_ap(preds, gts)
    return {"det_AP50": ap["AP50"] * 100, "det_AP": ap["AP"] * 100, "images": len(images), "people": people}


def evaluate_stills(pipeline, images: list[StillImage]) -> dict:
    """:func:`stills_ap` of ``pipeline``'s network on ``images``."""
    return stills_ap(detect_stills(pipeline, images), images)
