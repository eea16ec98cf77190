"""Box helpers: the numpy IoU shared by the tracker, Soft-NMS and the evaluators."""
import numpy as np

from common.boxes import iou_matrix, iou_one_to_many


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


def test_iou_one_to_many_is_a_row_of_the_matrix():
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 100, (12, 2)); b = np.concatenate([b, b + rng.uniform(0, 40, (12, 2))], 1)
    b[3] = [5, 5, 5, 5]  # an empty box: IoU 0, no division by zero
    full = iou_matrix(b, b, dtype=np.float64)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    for k in (0, 3, 7):
        np.testing.assert_array_equal(iou_one_to_many(b[k], b), full[k])
        np.testing.assert_array_equal(iou_one_to_many(b[k], b, areas), full[k])
