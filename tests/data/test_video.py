"""Video and image reading: real footage, a written video, and clear errors for bad files."""
import cv2
import numpy as np
import pytest

from common.errors import InputError
from data.video import VideoReader, read_image


def _write_video(path, frames, fps=10):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()


def test_sequential_and_random_access(tmp_path):
    frames = [np.full((48, 64, 3), 20 * k, np.uint8) for k in range(8)]
    _write_video(tmp_path / "v.avi", frames)
    reader = VideoReader(tmp_path / "v.avi")
    assert (reader.width, reader.height, len(reader)) == (64, 48, 8)
    means = [f.mean() for _, f in reader]
    assert len(means) == 8 and means == sorted(means)
    assert abs(reader.read(5).mean() - 100) < 4 and abs(reader.read(2).mean() - 40) < 4
    with pytest.raises(InputError, match="cannot decode frame 8"):
        reader.read(8)


@pytest.mark.parametrize("content", [None, b"", b"\x00garbage" * 100])
def test_missing_or_corrupt_video_is_one_clear_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        VideoReader(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_text_file_is_not_a_video(tmp_path):
    """FFmpeg decodes a .txt as ANSI art (frames of its characters); that is refused by name."""
    path = tmp_path / "notes.txt"
    path.write_text("meeting notes\n" * 50)
    with pytest.raises(InputError, match="notes.txt: a text file, not a video"):
        VideoReader(path)


def test_corrupt_image(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot decode"):
        read_image(tmp_path / "x.jpg")


@pytest.mark.real_data
def test_pets09_video(real_data):
    reader = VideoReader(real_data / "mot" / "PETS09-S2L1" / "vtest.avi")
    assert (reader.width, reader.height, len(reader)) == (768, 576, 795)
    first = reader.read(0)
    again = reader.read(300)
    assert first.shape == (576, 768, 3) and np.abs(first.astype(int) - again).mean() > 1


def test_corrupt_frame_mid_stream_is_skipped_and_counted(tmp_path):
    from data.video import FrameStream
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(5):
        image = np.full((24, 32, 3), 40 * k, np.uint8)
        if k == 2:
            (folder / f"{k:06d}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        else:
            cv2.imwrite(str(folder / f"{k:06d}.jpg"), image)
    stream = FrameStream(folder, fps=5)
    with pytest.warns(UserWarning, match="000002.jpg: .*skipped"):
        frames = list(stream)
    # The stream goes on after the bad frame, and indices/timestamps keep the real frame numbers.
    assert [index for index, _, _ in frames] == [0, 1, 3, 4]
    assert frames[2][1] == pytest.approx(3 / 5)
    assert int(frames[3][2].mean()) == pytest.approx(160, abs=2)
    assert stream.skipped == 1


@pytest.mark.real_data
def test_a_sequence_video_takes_the_sequences_frame_rate(real_data):
    from data.video import FrameStream
    notes = []
    stream = FrameStream(real_data / "mot" / "PETS09-S2L1" / "vtest.avi", log=notes.append)
    assert stream.fps == 7.0 and stream.fps_source == "seqinfo"  # the AVI header says 10
    assert notes == [f"{real_data / 'mot' / 'PETS09-S2L1' / 'vtest.avi'}: the container says 10 fps, the "
                     "sequence's seqinfo.ini 7: using 7"]
    assert FrameStream(real_data / "mot" / "PETS09-S2L1" / "vtest.avi", fps=10).fps == 10.0


def test_frames_without_zero_padding_are_read_in_numeric_order(tmp_path):
    """1.jpg ... 11.jpg were read as 1, 10, 11, 2, ... (name order) by streams and sequences alike."""
    from data.video import FrameStream, list_images
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(1, 12):
        cv2.imwrite(str(folder / f"{k}.png"), np.full((24, 32, 3), 20 * k, np.uint8))
    assert [p.name for p in list_images(folder)] == [f"{k}.png" for k in range(1, 12)]
    means = [int(round(frame.mean())) for _, _, frame in FrameStream(folder, fps=5)]
    assert means == [20 * k for k in range(1, 12)]
    (folder / "frame_2.png").write_bytes(b"")
    (folder / "frame_10.png").write_bytes(b"")
    assert [p.name for p in list_images(folder)][-2:] == ["frame_2.png", "frame_10.png"]


@pytest.mark.parametrize("size", [(1, 1), (8, 64)])
def test_absurdly_small_frames_are_refused_at_the_input(tmp_path, size):
    """A 1x1 frame went through the network and failed in the output video writer, which the
    error then blamed."""
    from data.video import FrameStream
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000001.png"), np.zeros((*size, 3), np.uint8))
    _write_video(tmp_path / "tiny.avi", [np.zeros((*size, 3), np.uint8)] * 3)
    for source, named in ((folder, folder / "000001.png"), (tmp_path / "tiny.avi", tmp_path / "tiny.avi")):
        with pytest.raises(InputError) as info:
            FrameStream(source)
        assert str(info.value) == (f"{named}: frames are {size[1]}x{size[0]} pixels, too small to find people in "
                                   "(at least 16x16 is needed)")
    cv2.imwrite(str(folder / "000001.png"), np.zeros((16, 16, 3), np.uint8))
    assert (FrameStream(folder).width, FrameStream(folder).height) == (16, 16)


def test_write_image_is_atomic_and_refuses_an_unknown_extension(tmp_path, monkeypatch):
    from data.video import write_image
    image = np.full((20, 30, 3), 99, np.uint8)
    with pytest.raises(InputError, match=r"p.xyz: unknown image extension '.xyz' \(expected one of .jpg, "):
        write_image(tmp_path / "p.xyz", image)
    write_image(tmp_path / "p.png", image)
    monkeypatch.setattr(cv2, "imwrite", lambda path, *a: open(path, "wb").write(b"half") and False)
    with pytest.raises(InputError, match="p.png: cannot write image"):
        write_image(tmp_path / "p.png", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # no partial file, the old image intact
    assert read_image(tmp_path / "p.png").mean() == 99
