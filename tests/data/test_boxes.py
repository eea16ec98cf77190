"""Box helpers: the numpy IoU shared by the tracker, Soft-NMS and the evaluators."""
import numpy as np

from data.boxes import iou_matrix


def test_iou_of_hand_made_boxes():
    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]], atol=1e-6)
    assert iou.dtype == np.float32 and iou_matrix(np.zeros((1, 4)), np.zeros((1, 4)), dtype=np.float64).dtype == np.float64
    assert iou_matrix(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0] == 0  # empty boxes: no division by zero


def test_numpy_iou_equals_torchvision():
    import torch
    from torchvision.ops import box_iou
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (7, 2)); a = np.concatenate([a, a + rng.uniform(1, 40, (7, 2))], 1)
    b = rng.uniform(0, 100, (9, 2)); b = np.concatenate([b, b + rng.uniform(1, 40, (9, 2))], 1)
    expected = box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(iou_matrix(a, b, dtype=np.float64), expected, rtol=1e-12, atol=1e-12)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (7, 0)
