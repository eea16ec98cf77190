"""Detection AP: VOC all-point AP on a hand-built case, COCO AP equal to pycocotools' COCOeval."""
import contextlib
import io

import numpy as np
import pytest

from evaluation.detection_metrics import coco_ap, detection_ap


def test_voc_ap_hand_computed():
    # gt: 2 boxes; detections ranked: TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    gts = [{"boxes": np.array([[0, 0, 10, 10], [20, 0, 30, 10]])}]
    preds = [{"boxes": np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]]), "scores": np.array([0.9, 0.8, 0.7])}]
    assert detection_ap(preds, gts) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def _fixture(seed, images, classes, crowd_rate):
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(images):
        n = rng.integers(0, 7)
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(8, 60, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).round(1)
        labels = rng.integers(1, classes + 1, n)
        crowd = rng.random(n) < crowd_rate
        gts.append({"boxes": boxes, "labels": labels, "crowd": crowd})
        # Detections: jittered copies (some good, some poor), duplicates and pure false positives.
        jitter = boxes + rng.normal(0, rng.choice([1.0, 4.0, 10.0]), boxes.shape)
        keep = rng.random(n) < 0.8
        extra_n = rng.integers(0, 4)
        exy = rng.uniform(0, 200, (extra_n, 2))
        extra = np.concatenate([exy, exy + rng.uniform(8, 60, (extra_n, 2))], 1)
        d_boxes = np.concatenate([jitter[keep], jitter[keep][:2] + 2.0, extra])
        d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 1)
        d_labels = np.concatenate([labels[keep], labels[keep][:2], rng.integers(1, classes + 1, extra_n)])
        scores = rng.random(len(d_boxes)).round(2)  # rounded: ties happen, as in real outputs
        preds.append({"boxes": d_boxes, "scores": scores, "labels": d_labels})
    return preds, gts


def _pycocotools(preds, gts):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    labels = sorted({int(l) for g in gts for l in g["labels"]} | {int(l) for p in preds for l in p["labels"]})
    images, anns, dets = [], [], []
    for i, (p, g) in enumerate(zip(preds, gts)):
        images.append({"id": i + 1, "width": 300, "height": 300})
        for b, l, c in zip(g["boxes"], g["labels"], g["crowd"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(l), "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": int(c)})
        for b, s, l in zip(p["boxes"], p["scores"], p["labels"]):
            dets.append({"image_id": i + 1, "category_id": int(l), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                         "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": l} for l in labels]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0], ev.stats[1], ev.stats[2]


@pytest.mark.parametrize("seed,images,classes,crowd_rate", [(0, 12, 3, 0.0), (1, 20, 2, 0.15), (2, 8, 4, 0.3)])
def test_coco_ap_equals_pycocotools(seed, images, classes, crowd_rate):
    pytest.importorskip("pycocotools")
    preds, gts = _fixture(seed, images, classes, crowd_rate)
    ours = coco_ap(preds, gts)
    ap, ap50, ap75 = _pycocotools(preds, gts)
    assert 0.05 < ap50 < 0.99  # a fixture that exercises both hits and misses
    assert ours["AP"] == pytest.approx(ap, abs=1e-9)
    assert ours["AP50"] == pytest.approx(ap50, abs=1e-9)
    assert ours["AP75"] == pytest.approx(ap75, abs=1e-9)


def test_coco_ap_perfect_and_empty():
    gts = [{"boxes": np.array([[0, 0, 10, 10]]), "labels": np.array([1])}]
    perfect = [{"boxes": np.array([[0, 0, 10, 10]]), "scores": np.array([0.9]), "labels": np.array([1])}]
    assert coco_ap(perfect, gts)["AP"] == pytest.approx(1.0)
    none = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}]
    assert coco_ap(none, gts)["AP"] == 0.0
