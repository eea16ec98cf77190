"""Tubes: frames per second spread over the track, the crop around the person with its context,
the pixel budget in the vision encoder's multiples, the crops cut from the right pixels, and the
inputs that cannot be read skipped by name."""
import cv2
import numpy as np

from data.formats.mot import MotRows
from data.formats.mot import tracks_from_rows
from data.tubes import plan_tubes
from pseudolabel.tubes import VideoSource, extract_frames, find_videos, keep_long_tracks
from pseudolabel.vlm import decode_frames


def test_plan_spreads_frames_and_borrows_for_a_thin_second():
    # 10 fps; the track covers frames 0-20: seconds 0 and 1 fully, second 2 with one frame only.
    track = {5: [(k, np.array([40.0, 20, 60, 80])) for k in range(21)]}
    tubes = plan_tubes(track, 10.0, 200, 100, frames_per_second=4, margin=0.5, min_pixels=32 * 32, max_pixels=96 * 96)
    assert [(t.second, t.frame_indices) for t in tubes] == [(0, [0, 3, 6, 9]), (1, [10, 13, 16, 19]), (2, [19, 20])]
    crop = tubes[0].crop  # 20x60 box widened by half on every side, clipped to the frame
    assert crop == (30, 0, 70, 100)
    w, h = tubes[0].size
    assert w % 32 == 0 and h % 32 == 0 and w * h <= 96 * 96 and h > w


def test_tracks_from_ground_truth_skip_ignored_rows_and_count_short_ones():
    rows = MotRows(np.array([1, 1, 2, 2, 3]), np.array([1, 2, 1, 2, 1]), np.tile([[0.0, 0, 10, 20]], (5, 1)),
                   np.array([1.0, 0.0, 1.0, 0.0, 1.0]), np.array([1, 1, 1, 1, 1]), np.ones(5), layout="mot16")
    tracks = tracks_from_rows(rows)
    assert list(tracks) == [1] and [f for f, _ in tracks[1]] == [0, 1, 2]  # id 2 has conf 0: ignore rows
    assert keep_long_tracks({1: [0] * 30, 2: [0] * 29}, 30) == ({1: [0] * 30}, 1)


def test_extracted_crops_show_the_person(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for k in range(10):
        frame = np.zeros((64, 96, 3), np.uint8)
        frame[10:50, 40:60] = (0, 0, 255)  # a red person (BGR)
        cv2.imwrite(str(folder / f"{k + 1:06d}.png"), frame)
    tubes = plan_tubes({1: [(k, np.array([40.0, 10, 60, 50])) for k in range(10)]}, 10.0, 96, 64, margin=0.0,
                       min_pixels=32 * 32, max_pixels=64 * 64)
    extract_frames(VideoSource("clip", folder, 10.0, 96, 64, 10), tubes)
    frames = decode_frames(tubes[0].frames)  # RGB
    assert frames.shape[0] == 4 and frames.shape[1:3] == (tubes[0].size[1], tubes[0].size[0])
    assert frames[:, 8:-8, 4:-4, 0].mean() > 200 and frames[:, 8:-8, 4:-4, 2].mean() < 40  # red, in RGB order


def test_inputs_that_cannot_be_read_are_skipped_and_named(tmp_path):
    for name, rate in (("good", "10"), ("nan_rate", "nan")):
        (tmp_path / name / "img1").mkdir(parents=True)
        (tmp_path / name / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate={rate}\n"
                                                     "seqLength=2\nimWidth=32\nimHeight=24\nimExt=.png\n")
        for k in (1, 2):
            cv2.imwrite(str(tmp_path / name / "img1" / f"{k:06d}.png"), np.zeros((24, 32, 3), np.uint8))
    (tmp_path / "broken.avi").write_bytes(b"RIFF" + bytes(1000))
    logged = []
    videos, skipped = find_videos(tmp_path, logged.append)
    assert [(v.name, v.fps, v.frames) for v in videos] == [("good", 10.0, tmp_path / "good" / "img1")]
    assert [(path.name, error.split(": ", 1)[1]) for path, error in skipped] == [
        ("broken.avi", "cannot open as a video (corrupt file or unsupported codec)"),
        ("nan_rate", "'frameRate' must be a positive finite number, got 'nan'")]
    assert logged == [f"warning: skipped: {error}" for _, error in skipped]
