"""Kalman filter against hand computation, Hungarian assignment, and tracker scenarios."""
import numpy as np
import pytest

from tracking.kalman_filter import BoxKalmanFilter, xyxy_to_z, z_to_xyxy
from tracking.matching import cosine_distance, linear_assignment
from tracking.tracker import Tracker


def test_kalman_predict_and_update_match_hand_computation():
    kf = BoxKalmanFilter(np.array([90.0, 50.0, 110.0, 150.0]), std_position=0.05, std_velocity=0.2, std_measurement=0.05)
    x0 = np.array([100.0, 100.0, 20.0, 100.0, 30.0, -10.0, 0.0, 0.0])
    kf.kf.x = x0.reshape(8, 1).copy()
    P0 = kf.kf.P.copy()
    dt = 0.25  # a non-unit time step
    kf.predict(dt)
    F = np.eye(8)
    F[:4, 4:] = np.eye(4) * dt
    h = 100.0
    Q = np.diag([(0.05 * h) ** 2 * dt] * 4 + [(0.2 * h) ** 2 * dt] * 4)
    np.testing.assert_allclose(kf.kf.x[:, 0], F @ x0)
    np.testing.assert_allclose(kf.kf.x[:2, 0], [107.5, 97.5])  # moved v * dt
    P1 = F @ P0 @ F.T + Q
    np.testing.assert_allclose(kf.kf.P, P1)
    z = np.array([110.0, 96.0, 22.0, 104.0])
    kf.update(z_to_xyxy(z))
    Hm = np.hstack([np.eye(4), np.zeros((4, 4))])
    R = np.diag([(0.05 * 104.0) ** 2] * 4)
    S = Hm @ P1 @ Hm.T + R
    K = P1 @ Hm.T @ np.linalg.inv(S)
    x2 = F @ x0 + K @ (z - Hm @ F @ x0)
    np.testing.assert_allclose(kf.kf.x[:, 0], x2, rtol=1e-9)
    np.testing.assert_allclose(xyxy_to_z(z_to_xyxy(z)), z)


def test_two_half_steps_equal_one_step_in_mean():
    a = BoxKalmanFilter(np.array([0.0, 0.0, 10.0, 40.0]))
    b = BoxKalmanFilter(np.array([0.0, 0.0, 10.0, 40.0]))
    for kf in (a, b):
        kf.kf.x[4:6, 0] = [20.0, 4.0]
    a.predict(0.2)
    b.predict(0.1)
    b.predict(0.1)
    np.testing.assert_allclose(a.kf.x, b.kf.x)
    with pytest.raises(ValueError):
        a.predict(-1)


def test_hungarian_finds_the_known_optimum():
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    matches, rows, cols = linear_assignment(cost, max_cost=10)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0), (2, 2)]  # total 5, the optimum
    matches, rows, cols = linear_assignment(cost, max_cost=1.5)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1)] and rows.tolist() == [1, 2] and cols.tolist() == [0, 2]
    empty = linear_assignment(np.zeros((0, 3)), 1.0)
    assert empty[0].shape == (0, 2) and empty[2].tolist() == [0, 1, 2]


def test_cosine_distance():
    np.testing.assert_allclose(cosine_distance(np.array([[1.0, 0]]), np.array([[2.0, 0], [0, 1.0], [-1.0, 0]])), [[0, 1, 2]], atol=1e-6)


def _walker(x0, y0, vx, t, w=20, h=60):
    x = x0 + vx * t
    return np.array([x, y0, x + w, y0 + h])


def _emb(k, dim=8):
    e = np.zeros(dim)
    e[k] = 1.0
    return e


def test_identity_kept_through_a_short_occlusion():
    tracker = Tracker(fps=10)
    ids = {}
    for f in range(30):
        t = f / 10
        boxes = [_walker(10, 50, 40, t)]
        if 10 <= f < 14:  # hidden for 4 frames
            boxes = []
        out = tracker.update(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9),
                             np.array([_emb(0)] * len(boxes)).reshape(-1, 8), timestamp=t)
        for trk in out:
            ids.setdefault(trk.track_id, []).append(f)
    assert list(ids) == [1] and ids[1][-1] == 29


def test_refound_by_appearance_after_a_long_occlusion():
    """Hidden for 1.5 s (longer than the motion horizon) and reappearing off the predicted path:
    appearance brings the old id back; a stranger gets a new one."""
    tracker = Tracker(fps=10, lost_buffer_s=3.0)
    seen = []
    for f in range(60):
        t = f / 10
        dets, embs = [], []
        if f < 15:
            dets.append(_walker(20, 50, 30, t)); embs.append(_emb(0))
        elif f >= 30:
            dets.append(_walker(150, 60, -20, t - 3)); embs.append(_emb(0))  # same person, elsewhere
            dets.append(_walker(300, 50, 0, 0)); embs.append(_emb(1))  # someone new
        out = tracker.update(np.array(dets).reshape(-1, 4), np.full(len(dets), 0.9), np.array(embs).reshape(-1, 8), t)
        seen.append({trk.track_id: int(np.argmax(trk.embedding)) for trk in out})
    assert seen[10] == {1: 0}
    assert seen[50] == {1: 0, 3: 1} or seen[50] == {1: 0, 2: 1}
    assert all(1 in s for s in seen[32:])


def test_crossing_of_look_alikes_resolved_by_motion():
    tracker = Tracker(fps=10, appearance_weight=0.5)
    same = _emb(0)
    history = {}
    for f in range(40):
        t = f / 10
        a, b = _walker(0, 50, 60, t), _walker(234, 54, -60, t)  # cross around f = 19
        out = tracker.update(np.stack([a, b]), np.array([0.9, 0.9]), np.stack([same, same]), t)
        for trk in out:
            history.setdefault(trk.track_id, []).append((f, trk.last_observation[0]))
    assert sorted(history) == [1, 2]
    xs1 = [x for f, x in history[1]]
    xs2 = [x for f, x in history[2]]
    assert xs1[-1] > xs1[0] and xs2[-1] < xs2[0], "ids swapped at the crossing"


def test_low_score_detections_extend_but_do_not_start_tracks():
    tracker = Tracker(fps=10)
    for f in range(5):
        tracker.update(np.array([_walker(0, 0, 10, f / 10)]), np.array([0.9]), timestamp=f / 10)
    out = tracker.update(np.array([_walker(0, 0, 10, 0.5), [200, 0, 220, 60]]), np.array([0.3, 0.3]), timestamp=0.5)
    assert [t.track_id for t in out] == [1] and len(tracker.tracks) == 1


def test_dropped_frames_use_the_real_time_step():
    tracker = Tracker(fps=10, appearance_weight=0.0)
    for f in range(6):
        tracker.update(np.array([_walker(0, 0, 50, f / 10)]), np.array([0.9]), timestamp=f / 10)
    track = tracker.tracks[0]
    tracker.update(np.zeros((0, 4)), np.zeros(0), timestamp=1.0)  # 0.5 s later, nobody seen
    # Predicted 0.5 s ahead at 50 px/s: 25 px further than the last observation at t = 0.5.
    assert track.box[0] == pytest.approx(50.0, abs=3.0)


def test_reset_restarts_ids_and_state_is_per_instance():
    a, b = Tracker(), Tracker()
    a.update(np.array([[0, 0, 10, 30.0]]), np.array([0.9]))
    a.update(np.array([[0, 0, 10, 30.0], [50, 0, 60, 30]]), np.array([0.9, 0.9]))
    assert a._next_id == 3 and b._next_id == 1  # no id counter shared between trackers
    a.reset()
    out = a.update(np.array([[5, 5, 15, 35.0]]), np.array([0.9]))
    assert [t.track_id for t in out] == [1] and a.frame_index == 0


def test_action_timeline_per_second():
    tracker = Tracker(fps=10, action_smoothing=0.0)
    for f in range(20):
        out = tracker.update(np.array([[0, 0, 10, 30.0]]), np.array([0.9]), timestamp=f / 10)
        for trk in out:
            trk.add_action(np.array([0.9, 0.1]) if f < 10 else np.array([0.2, 0.8]), f / 10, tracker.action_smoothing)
    timeline = tracker.tracks[0].timeline()
    assert timeline[0][0] == 0 and timeline[1][0] == 1 and timeline[1][1] == pytest.approx(0.8)


def test_a_rejected_frame_changes_nothing_and_boxes_are_copied():
    tracker = Tracker(fps=10.0)
    buffer = np.array([[0, 0, 10, 30.0]])
    tracker.update(buffer, np.array([0.9]), timestamp=1.0)
    buffer[:] = 500.0  # the caller reuses its array
    assert tracker.tracks[0].last_observation.tolist() == [0, 0, 10, 30.0]
    with pytest.raises(ValueError, match="must not go back"):
        tracker.update(buffer, np.array([0.9]), timestamp=0.5)
    assert tracker.frame_index == 0
    tracker.update(buffer, np.array([0.9]), np.ones((1, 8)), timestamp=1.1)
    with pytest.raises(ValueError, match="embeddings have 4 dimensions, earlier frames had 8"):
        tracker.update(buffer, np.array([0.9]), np.ones((1, 4)), timestamp=1.2)


def test_bad_inputs():
    tracker = Tracker()
    with pytest.raises(ValueError, match="boxes"):
        tracker.update(np.zeros((2, 4)), np.zeros(3))
    tracker.update(np.zeros((0, 4)), np.zeros(0), timestamp=1.0)
    with pytest.raises(ValueError, match="go back"):
        tracker.update(np.zeros((0, 4)), np.zeros(0), timestamp=0.5)
    with pytest.raises(ValueError):
        Tracker(low_score=0.7, high_score=0.5)


def test_batched_gating_equals_per_track_mahalanobis():
    from tracking.kalman_filter import mahalanobis_matrix
    filters = [BoxKalmanFilter(np.array([10, 10, 30, 60.0])), BoxKalmanFilter(np.array([100, 20, 140, 120.0]))]
    for f in filters:
        f.predict(0.1)
    boxes = np.array([[12, 11, 31, 62.0], [98, 25, 139, 118.0], [50, 50, 60, 70.0]])
    batched = mahalanobis_matrix(np.stack([f.z for f in filters]), np.stack([np.diag(f.kf.P)[:4] for f in filters]),
                                 np.array([f.std_measurement for f in filters]), xyxy_to_z(boxes))
    for t, f in enumerate(filters):
        z = xyxy_to_z(boxes)
        S = f.kf.H @ f.kf.P @ f.kf.H.T + f.measurement_noise(f.z)
        d = z - f.z
        np.testing.assert_allclose(batched[t], np.einsum("ni,ij,nj->n", d, np.linalg.inv(S), d))


def _stack(filters):
    """filterpy's states and covariances, the latter in the stacked functions' decoupled layout;
    checks on the way that filterpy's full matrices really are zero outside it."""
    from tracking.kalman_filter import full_covariance
    full = np.stack([f.kf.P for f in filters])  # (T, 8, 8)
    i = np.arange(4)
    P = np.stack([full[:, i, i], full[:, i, i + 4], full[:, i + 4, i + 4]], axis=1)  # (T, 3, 4)
    np.testing.assert_array_equal(full_covariance(P) == 0, full == 0)
    np.testing.assert_allclose(full_covariance(P), full, rtol=1e-12, atol=1e-9)  # (i, i+4) and (i+4, i) agree
    return np.stack([f.kf.x[:, 0] for f in filters]), P


def test_stacked_predict_equals_filterpy_predict():
    from tracking.kalman_filter import predict_states
    boxes = [np.array([10, 10, 30, 60.0]), np.array([100, 20, 140, 120.0]), np.array([5, 5, 6, 6.0])]
    single = [BoxKalmanFilter(b) for b in boxes]
    for f, v in zip(single, ([3, -2, 1, 0.5], [-10, 4, 0, 2], [0, 0, -50, -50])):
        f.kf.x[4:, 0] = v  # velocities, and a shrinking box to hit the 1-pixel floor
    x, P = _stack(single)
    for dt in (0.1, 0.25):
        for f in single:
            f.predict(dt)  # filterpy's KalmanFilter.predict underneath
        x, P = predict_states(x, P, dt, 0.05, 0.2)
        fx, fP = _stack(single)
        np.testing.assert_allclose(x, fx, rtol=1e-12)
        np.testing.assert_allclose(P, fP, rtol=1e-12)
    with pytest.raises(ValueError, match="time step"):
        predict_states(x, P, -0.1, 0.05, 0.2)


def test_stacked_update_equals_filterpy_update():
    from tracking.kalman_filter import initial_states, update_states
    start = np.array([[10, 10, 30, 60.0], [100, 20, 140, 120.0]])
    measured = np.array([[12, 9, 33, 63.0], [97, 25, 139, 118.0]])
    single = [BoxKalmanFilter(b) for b in start]
    x, P = initial_states(start, 0.05)
    fx, fP = _stack(single)
    np.testing.assert_allclose(x, fx)  # same initial state as the single filter's
    np.testing.assert_allclose(P, fP)
    for f in single:
        f.predict(0.2)
    x, P = _stack(single)
    for f, b in zip(single, measured):
        f.update(b)  # filterpy's KalmanFilter.update (Joseph form) underneath
    x, P = update_states(x, P, xyxy_to_z(measured), 0.05)
    with pytest.raises(ValueError, match="measurements"):
        update_states(x, P, xyxy_to_z(measured[:1]), 0.05)
    fx, fP = _stack(single)
    np.testing.assert_allclose(x, fx, rtol=1e-10)
    np.testing.assert_allclose(P, fP, rtol=1e-10, atol=1e-10)


def test_low_score_embeddings_are_never_read():
    """The streaming engine embeds only confident detections; the tracks must not depend on the
    other rows."""
    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 600, (12, 2))
    vel = rng.uniform(-30, 30, (12, 2))
    looks = rng.normal(size=(12, 16))
    runs = []
    for garbage in (False, True):
        tracker, ids = Tracker(fps=10.0), []
        frame_rng, garbage_rng = np.random.default_rng(5), np.random.default_rng(6)
        for k in range(30):
            p = pos + vel * k / 10
            boxes = np.concatenate([p, p + [30, 80]], 1) + frame_rng.normal(0, 1, (12, 4))
            scores = frame_rng.uniform(0.2, 1.0, 12)
            emb = looks + frame_rng.normal(0, 0.1, looks.shape)
            if garbage:
                emb[scores < tracker.high_score] = garbage_rng.normal(size=(int((scores < tracker.high_score).sum()), 16))
            tracks = tracker.update(boxes, scores, emb, k / 10)
            ids.append(sorted((t.track_id, tuple(np.round(t.box, 6))) for t in tracks))
        runs.append(ids)
    assert runs[0] == runs[1] and sum(map(len, runs[0])) > 100


@pytest.mark.parametrize("tracks,boxes", [(3, 5), (80, 60)])  # the small (dense) and large (sparse) paths
def test_mahalanobis_on_chosen_pairs_equals_the_full_matrix(tracks, boxes):
    from tracking.kalman_filter import initial_states, mahalanobis_matrix, predict_states
    rng = np.random.default_rng(2)
    starts = np.concatenate([rng.uniform(0, 150, (tracks, 2)), rng.uniform(0, 150, (tracks, 2)) + [20, 50]], 1)
    x, P = predict_states(*initial_states(starts, 0.05), 0.2, 0.05, 0.2)
    z, P = x[:, :4], P[:, 0]
    std = np.full(tracks, 0.05)
    measured = np.concatenate([rng.uniform(0, 150, (boxes, 2)), rng.uniform(0, 150, (boxes, 2)) + [20, 50]], 1)
    full = mahalanobis_matrix(z, P, std, xyxy_to_z(measured))
    where = rng.random((tracks, boxes)) < 0.3
    sparse = mahalanobis_matrix(z, P, std, xyxy_to_z(measured), where=where)
    np.testing.assert_allclose(sparse[where], full[where], rtol=1e-12)
    assert np.isinf(sparse[~where]).all()


def test_predict_states_with_a_time_step_per_row_equals_one_call_per_row():
    from tracking.kalman_filter import initial_states, predict_states
    x, P = initial_states(np.array([[10, 10, 30, 60.0], [100, 20, 140, 120.0]]), 0.05)
    x[:, 4:] = [[3, -2, 1, 0.5], [-10, 4, 0, 2]]
    P = P + np.random.default_rng(1).uniform(1, 5, size=P.shape)  # correlated: the cross terms must move too
    xb, Pb = predict_states(x, P, np.array([0.1, 0.35]), 0.05, 0.2)
    for k, dt in enumerate((0.1, 0.35)):
        xs, Ps = predict_states(x[k:k + 1], P[k:k + 1], dt, 0.05, 0.2)
        np.testing.assert_allclose(xb[k], xs[0], rtol=1e-12)
        np.testing.assert_allclose(Pb[k], Ps[0], rtol=1e-12)
    with pytest.raises(ValueError, match="time step"):
        predict_states(x, P, np.array([0.1, -0.1]), 0.05, 0.2)


def test_time_limits_do_not_flip_with_the_frame_number():
    """A track lost at frame k is dropped the same number of frames later whatever k is: k / fps
    timestamps miss exact multiples of the period by a rounding error that depends on k."""
    gaps = set()
    for start in range(1, 120):
        tracker = Tracker(fps=10.0, lost_buffer_s=0.3, min_hits=1)
        box = np.array([[10.0, 10.0, 30.0, 60.0]])
        for k in range(start + 1):
            tracker.update(box, np.array([0.9]), None, k / 10)
        k = start
        while tracker.tracks:
            k += 1
            tracker.update(np.zeros((0, 4)), np.zeros(0), None, k / 10)
        gaps.add(k - start)
    assert gaps == {4}  # lost for 0.3 s is kept; 0.4 s is over


def test_recorder_writes_clipped_boxes_and_consecutive_ids():
    from tracking.recorder import TrackRecorder
    from tracking.tracker import Track

    recorder = TrackRecorder(["walk"], width=100, height=80)
    inside, edge, outside = (Track(7, np.array([10.0, 10, 30, 50]), 0.9, None, 0.0, 0, 16),
                             Track(12, np.array([-5.0, 40, 20, 95]), 0.8, None, 0.0, 0, 16),
                             Track(30, np.array([120.0, 10, 140, 50]), 0.7, None, 0.0, 0, 16))
    recorder.add(0, 0.0, [edge, inside, outside])
    rows = recorder.mot_rows()
    assert rows.track_id.tolist() == [1, 2]  # tracker ids 12 and 7; the one wholly outside is not written
    np.testing.assert_allclose(rows.boxes, [[0, 40, 20, 80], [10, 10, 30, 50]])
    assert recorder.output_id(7) == 2 and recorder.output_id(99) == 3
