"""What the page shows of a finished run: the annotated video re-encoded for browsers (H.264),
a timeline picture (one row per identity, its action second by second in colour) and the table
of tracks, all from the files ``scripts/inference.py`` writes."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from common.errors import InputError
from data.formats.vicr import VicrVideoLabels


def encode_h264(source: str | os.PathLike, target: str | os.PathLike, fps: float) -> int:
    """``source`` (any video OpenCV reads: the runner's MJPG AVI) as an H.264 MP4 that browsers
    play: yuv420p, the index at the front (``+faststart``) so playback starts before
    the whole file is loaded. PyAV ships its own FFmpeg with libx264, so nothing on the system is
    needed; OpenCV's ``mp4v`` is MPEG-4 Part 2, which browsers do not play. Returns the frames."""
    import av
    import cv2

    from common.io import atomic_path

    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise InputError(f"{source}: cannot be read back for encoding")
    frames = 0
    try:
        with atomic_path(target, "the browser video") as tmp:
            with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
                stream = None
                while True:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    if stream is None:  # OpenCV's writers keep frame sides even, as yuv420p needs
                        stream = container.add_stream("libx264", rate=max(1, round(fps)))
                        stream.height, stream.width = frame.shape[:2]
                        stream.pix_fmt = "yuv420p"
                        stream.options = {"crf": "23", "preset": "veryfast"}
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                        container.mux(packet)
                    frames += 1
                if stream is None:
                    raise InputError(f"{source}: no frames to encode")
                for packet in stream.encode():  # flush the encoder's delayed frames
                    container.mux(packet)
    finally:
        capture.release()
    return frames


def tracks_table(labels: VicrVideoLabels) -> list[dict]:
    """One row per identity: its id, first and last second, frames, and the action it does most
    seconds (``None`` for a model without actions); ordered by first appearance."""
    rows = []
    for name, person in labels.persons.items():
        if not person.frames:
            continue
        seconds = [f.timestamp for f in person.frames]
        actions = Counter(action for action, _ in person.action_timeline.values())
        rows.append({"id": name.removeprefix("id_"), "first_s": round(min(seconds), 2), "last_s": round(max(seconds), 2),
                     "frames": len(person.frames), "main_action": actions.most_common(1)[0][0] if actions else None})
    return sorted(rows, key=lambda r: (r["first_s"], r["id"]))


def action_colours(names: list[str]) -> dict[str, tuple[float, float, float]]:
    """A distinct colour per action name (matplotlib's tab20), stable for a label map."""
    import matplotlib
    palette = matplotlib.colormaps["tab20"]
    return {name: palette(i % 20)[:3] for i, name in enumerate(names)}


def timeline_image(labels: VicrVideoLabels, path: str | os.PathLike, max_rows: int = 60) -> Path:
    """A PNG read at a glance: one row per identity (the ``max_rows`` seen longest), seconds along
    the bottom, each second coloured by its action (grey: tracked, no action known), a legend."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed: this runs in a server thread
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from common.io import atomic_path

    names = [labels.labelmap.names[i] for i in sorted(labels.labelmap.names)]
    colours = action_colours(names)
    people = sorted(labels.persons.items(), key=lambda kv: -len(kv[1].frames))[:max_rows]
    people.sort(key=lambda kv: min((f.timestamp for f in kv[1].frames), default=0.0))
    duration = max(labels.video.duration, 1.0)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.28 * max(len(people), 1)), dpi=100)
    for row, (name, person) in enumerate(people):
        seconds = sorted({int(f.timestamp) for f in person.frames})
        for second in seconds:
            action = person.action_timeline.get(second, (None, None))[0]
            ax.broken_barh([(second, 1)], (row - 0.4, 0.8), color=colours.get(action, (0.75, 0.75, 0.75)))
    ax.set_yticks(range(len(people)), [name.removeprefix("id_") for name, _ in people])
    ax.set_ylim(len(people) - 0.5, -0.5)
    ax.set_xlim(0, duration)
    ax.set_xlabel("second")
    ax.set_ylabel("identity")
    used = sorted({a for _, p in people for a, _ in p.action_timeline.values()}, key=names.index)
    if used:
        ax.legend(handles=[Patch(color=colours[a], label=a) for a in used], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    ax.set_title(f"{labels.video.name}: {len(labels.persons)} identities" +
                 (f" (the {max_rows} seen longest shown)" if len(labels.persons) > max_rows else ""))
    fig.tight_layout()
    with atomic_path(path, "the timeline image") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)

