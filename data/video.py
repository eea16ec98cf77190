"""Reading frames: the one place the project opens videos and image folders.

Frames are ``(H, W, 3)`` uint8 BGR arrays, as OpenCV returns them; frame indices are 0-based here
(MOTChallenge's 1-based frame numbers are converted by :class:`data.sequences.MotSequence`).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from common.errors import InputError
from common.io import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# FFmpeg's decoders that render text files (ANSI art, BinText, XBin, iCEDraw) as frames: a notes.txt
# given as a video would otherwise be "tracked" as a 640x400 picture of its characters.
TEXT_CODECS = ("ansi", "bint", "xbin", "idf")


class VideoReader:
    """Sequential (and, when needed, seeking) reader over a video file.

    Raises :class:`InputError` with the path when the file is missing or OpenCV cannot decode it.
    Sequential reads are the fast path; :meth:`read` seeks only when asked for a frame other than
    the next one, because seeking in compressed video decodes from the previous key frame.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file not found")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise InputError(f"{self.path}: cannot open as a video (corrupt file or unsupported codec)")
        codec = int(self._cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").rstrip(b"\0").decode("latin-1")
        if codec in TEXT_CODECS:
            self._cap.release()
            raise InputError(f"{self.path}: a text file, not a video (FFmpeg would draw its characters as frames)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._next_index = 0
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(f"{self.path}: no decodable frame (corrupt or empty video)")
        self._pending = first  # frame 0, already decoded

    def __len__(self) -> int:
        return self.frame_count

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._cap.release()

    def _read_next(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            ok, frame = self._cap.read()
            if not ok:
                return None
        self._next_index += 1
        return frame

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based). Raises :class:`InputError` past the end of the stream."""
        if index < 0:
            raise IndexError(f"frame index must be >= 0, got {index}")
        if index != self._next_index:
            self._pending = None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next_index = index
        frame = self._read_next()
        if frame is None:
            raise InputError(f"{self.path}: cannot decode frame {index} (video has {self.frame_count} frames)")
        return frame

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` from the current position to the end of the stream."""
        while True:
            index = self._next_index
            frame = self._read_next()
            if frame is None:
                if self.frame_count and index < self.frame_count - 1:
                    warnings.warn(f"{self.path}: stream ended at frame {index} of {self.frame_count} announced")
                return
            yield index, frame


def natural_key(path: Path) -> tuple:
    """Sort key comparing runs of digits as numbers: frames written without zero padding
    (``1.jpg ... 11.jpg``) were read in name order as 1, 10, 11, 2. Zero-padded names
    (MOTChallenge's ``000001.jpg``) keep their order; the name itself breaks ties (``01`` vs ``1``)."""
    parts = re.split(r"(\d+)", path.name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path.name


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` in frame order (:func:`natural_key`)."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=natural_key)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image as BGR uint8. Raises :class:`InputError` naming the file when it is missing,
    cannot be decoded, or is a JPEG cut short (OpenCV would return it with the missing part grey)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: image file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise InputError(f"{path}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise InputError(f"{path}: cannot decode as an image (corrupt or unsupported)")
    return image


def check_image_path(path: str | os.PathLike) -> None:
    """An :class:`InputError` unless ``path`` names an image format :func:`write_image` writes
    (OpenCV picks it from the extension and raises its own multi-line error for an unknown one)."""
    if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"{path}: unknown image extension {Path(path).suffix!r} (expected one of "
                         f"{', '.join(IMAGE_EXTENSIONS)})")


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 90, clean_stale: bool = True) -> None:
    """Written atomically: an interrupted write never leaves a truncated image at ``path``
    (``clean_stale``: see :func:`common.io.atomic_path`)."""
    path = Path(path)
    check_image_path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    with atomic_path(path, "the image", clean_stale) as tmp:  # the temporary name keeps the extension OpenCV goes by
        if not cv2.imwrite(str(tmp), image, params):
            raise InputError(f"{path}: cannot write image")


DEFAULT_FPS = 10.0  # assumed, with a warning, when neither the caller nor the source knows the rate
# Smallest frame side accepted. The network letterboxes a frame into its input (32 px a side at
# least), so a frame under 16 px holds no person it could find, and the video writers fail on
# such frames later with an error that blames the output file instead of the input.
MIN_FRAME_SIDE = 16


def _seqinfo_near(folder: Path):
    """A MOTChallenge ``seqinfo.ini`` in an image folder or beside it (``<seq>/img1``), or None."""
    from data.formats.mot import read_seqinfo
    for candidate in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if candidate.is_file():
            return read_seqinfo(candidate)
    return None


class FrameStream:
    """Frames of a video file, an image folder or a camera, one at a time, as ``(index, timestamp
    seconds, BGR frame)``. Undecodable frames (and truncated JPEGs) are skipped, named through
    ``log`` (default: a warning) and counted in ``skipped``; an image of another size than the
    folder's first is resized to it, named; a video that ends before the frames its header
    announces sets ``truncated_at``, named.

    The frame rate is ``fps`` when given, else the source's own (the container's, or the
    ``seqinfo.ini`` of an image folder such as ``<seq>/img1``); when none is known it is
    ``DEFAULT_FPS`` and ``fps_source`` is ``"assumed"`` (callers say so: the tracker's buffers are
    in seconds). ``fps_source`` is one of ``given``, ``container``, ``seqinfo``, ``assumed``.
    """

    def __init__(self, source: str | int | os.PathLike, fps: float | None = None, max_consecutive_failures: int = 25,
                 log=None):
        self.source, self.skipped, self.max_failures = source, 0, max_consecutive_failures
        self.log = log or (lambda message: warnings.warn(message, stacklevel=3))
        self.truncated_at: int | None = None  # set when a video ends before the frames it announced
        self._images: list[Path] | None = None
        self._cap = self._pending = None
        spec = str(source)
        known = None
        if isinstance(source, int) or spec.isdigit():
            self._cap = cv2.VideoCapture(int(spec))
            if not self._cap.isOpened():
                raise InputError(f"camera {spec}: cannot be opened")
            known = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
            self.frame_count, self.name, origin = 0, f"camera{spec}", "container"
        elif Path(spec).is_dir():
            folder = Path(spec)
            self._images = list_images(folder)
            if not self._images:
                raise InputError(f"{spec}: folder holds no images")
            info = _seqinfo_near(folder)
            known = info.frame_rate if info else None
            self.frame_count = len(self._images)
            self.name = info.name if info else folder.parent.name if folder.name == "img1" else folder.name
            origin = "seqinfo"
        else:
            reader = VideoReader(spec)  # raises the clear errors for missing or corrupt files
            self._cap, self._pending = reader._cap, reader._pending
            known = reader.fps if reader.fps and np.isfinite(reader.fps) else None  # some containers say 0 or NaN
            self.frame_count, self.name, origin = reader.frame_count, Path(spec).stem, "container"
            # A video inside a MOTChallenge sequence folder (PETS09-S2L1/vtest.avi): the sequence's
            # frame rate is the one its annotations use (the AVI header says 10, MOTChallenge 7).
            info = _seqinfo_near(Path(spec).parent) if fps is None else None
            if info is not None and info.frame_rate and info.frame_rate != known:
                if known:
                    self.log(f"{spec}: the container says {known:g} fps, the sequence's seqinfo.ini "
                             f"{info.frame_rate:g}: using {info.frame_rate:g}")
                known, origin = info.frame_rate, "seqinfo"
        if fps is not None:
            self.fps, self.fps_source = float(fps), "given"
        elif known:
            self.fps, self.fps_source = float(known), origin
        else:
            self.fps, self.fps_source = DEFAULT_FPS, "assumed"
        first = self._images[0] if self._images else None
        if first is not None:
            h, w = read_image(first).shape[:2]
        elif self._pending is not None:  # a video file: its first decoded frame, not the header's claim
            h, w = self._pending.shape[:2]
        else:
            w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (first is not None or self._pending is not None) and min(w, h) < MIN_FRAME_SIDE:
            if self._cap is not None:
                self._cap.release()
            raise InputError(f"{first or spec}: frames are {w}x{h} pixels, too small to find people in (at least "
                             f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} is needed)")
        self.width, self.height = w, h

    def close(self) -> None:
        """Release the video or camera now (iterating to the end releases it too)."""
        if self._cap is not None:
            self._cap.release()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        if self._images is not None:
            yield from self._iter_images()
            return
        index, failures = 0, 0
        pending = self._pending
        while True:
            if pending is not None:
                ok, frame, pending = True, pending, None
            else:
                ok, frame = self._cap.read()
            if ok and frame is not None:
                if failures:  # damaged frames mid-stream, now known not to be the end of the file
                    self.skipped += failures
                    self.log(f"{self.source}: frames {index - failures}-{index - 1} could not be decoded and were skipped"
                             if failures > 1 else f"{self.source}: frame {index - 1} could not be decoded and was skipped")
                failures = 0
                yield index, index / self.fps, frame
                index += 1
                continue
            if self.frame_count and index < self.frame_count - 1 and failures < self.max_failures:
                failures += 1  # a damaged frame, or the end of a truncated file: the next read tells
                index += 1
                continue
            break
        self._cap.release()
        # Frames read = index - skipped; a stream that stops well before the frames its header
        # announced is a truncated or damaged file, which the caller is told about by name.
        if self.frame_count and index - failures < self.frame_count - 1:  # headers may count one frame more
            self.truncated_at = index - failures
            self.log(f"{self.source}: the video ends after frame {self.truncated_at} of the {self.frame_count} its "
                     "header announces (truncated or damaged file)")

    def _iter_images(self) -> Iterator[tuple[int, float, np.ndarray]]:
        size = None
        for index, path in enumerate(self._images):
            try:
                image = read_image(path)
            except InputError as exc:
                self.skipped += 1
                self.log(f"{exc}: skipped")
                continue
            if size is None:
                size = image.shape[:2]
            elif image.shape[:2] != size:
                # One frame size per stream: the letterbox, the tracker's boxes and the output video
                # are all in the first frame's pixels.
                self.log(f"{path}: {image.shape[1]}x{image.shape[0]}, not the folder's {size[1]}x{size[0]}: resized")
                image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            yield index, index / self.fps, image
