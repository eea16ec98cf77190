"""The web app: a page where a user drops a video (or picks the example), chooses the checkpoint
and the thresholds, watches a progress bar, then sees the annotated video, a timeline of every
identity's actions and the table of tracks, and downloads the MOTChallenge file and the V-ICR JSON
(the files ``scripts/inference.py`` writes); and ``POST /api/track``, a video in and the V-ICR JSON
out, for scripts. ``scripts/app.py`` serves it.

Built on FastAPI (the ``app`` extra, with uvicorn and PyAV): a plain page with no framework of
its own, so the scripted endpoint, the upload limit, the queue and every error message are this
module's to decide, and a test can drive it in a real browser by element ids.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

# FastAPI reads the routes' annotations (strings here) in this module's namespace.
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from common.errors import InputError
from webapp.jobs import DONE, FAILED, Job, JobQueue

DEFAULT_MAX_UPLOAD_MB = 200.0
# The files of a finished job: what the page links to, and their download names' suffixes.
FILES = {"video": ("video.mp4", "video/mp4", ".mp4"), "timeline": ("timeline.png", "image/png", "_timeline.png"),
         "json": ("result.json", "application/json", ".json"), "mot": ("result.txt", "text/plain", ".txt")}


@dataclass(frozen=True)
class AppConfig:
    """What ``scripts/app.py`` was started with."""

    checkpoints: dict[str, Path]  # name shown in the page -> best.pt
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    example: Path | None = None  # a video or image folder offered as "the example"
    device: str = "auto"


def find_checkpoints(path: str | os.PathLike) -> dict[str, Path]:
    """``path`` a checkpoint, or a folder of runs: its own ``best.pt`` and every ``<run>/best.pt``
    under it (``runs/``), each named by its run folder. A file that is not a checkpoint is an
    :class:`InputError`; in a folder, such files are left out (named on stderr)."""
    import sys

    from models.checkpoint import read_inference_spec

    path = Path(path)
    if path.is_file():
        read_inference_spec(path)  # a file that is not a checkpoint: one line, now, not at the first upload
        return {path.parent.name or path.stem: path}
    if not path.is_dir():
        raise InputError(f"{path}: no such checkpoint or folder of runs")
    found = {}
    candidates = [path / "best.pt"] + sorted(path.glob("*/best.pt"))
    for candidate in candidates:
        if not candidate.is_file() or candidate.resolve() in {p.resolve() for p in found.values()}:
            continue  # runs/latest is a link to one of the runs
        try:
            read_inference_spec(candidate)
        except InputError as exc:
            print(f"warning: {exc}: left out", file=sys.stderr)
            continue
        found[candidate.parent.name] = candidate
    if not found:
        raise InputError(f"{path}: no readable best.pt in it or in its run folders (train one: scripts/run_trainer.py)")
    return found


def safe_stem(upload_name: str) -> str:
    """A file name stem from what the user called the upload, holding only ``[A-Za-z0-9_-]``: it
    names the job's files and the downloads, and can never reach outside the job's folder."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(upload_name.replace("\\", "/")).stem).strip("_")
    return stem[:64] or "video"


def upload_path(folder: Path, upload_name: str) -> Path:
    """Where an upload is kept: :func:`safe_stem` of its name and its extension when that is a
    plain one (``.mp4``; OpenCV reads by content, the extension only helps it guess)."""
    suffix = Path(upload_name.replace("\\", "/")).suffix.lower()
    return folder / (safe_stem(upload_name) + (suffix if re.fullmatch(r"\.[a-z0-9]{1,7}", suffix) else ".video"))


def _tracker_thresholds(checkpoint: Path) -> dict:
    """The thresholds ``checkpoint`` runs with when the page leaves them empty, and whose they are."""
    from models.checkpoint import read_inference_spec
    from tracking.pipeline import PipelineOptions
    spec, options = read_inference_spec(checkpoint)[1], PipelineOptions()  # the app runs the default tracker
    tracker = options.with_thresholds(spec).tracker
    return {"track_high": tracker.high_score, "track_new": tracker.new_track_score,
            "source": "the checkpoint's" if options.uses_checkpoint_settings(spec) else "default"}


def _options(settings: dict, device: str):
    """The pipeline options of a job's thresholds, checked as the command line checks its flags."""
    from tracking.pipeline import options_from_args
    from tracking.trackers import DEFAULT_TRACKER

    return options_from_args(SimpleNamespace(conf_threshold=settings["conf_threshold"], track_high=settings["track_high"],
                                             track_new=settings["track_new"], tracker=DEFAULT_TRACKER, device=device))


def run_job(job: Job, config: AppConfig) -> None:
    """Network + tracker over the job's video, as ``scripts/inference.py`` runs them, then the
    browser video, the timeline and the tracks table."""
    from data.formats.vicr import read_vicr_video
    from tracking.pipeline import Pipeline
    from tracking.runner import Outputs, run_video
    from webapp.results import encode_h264, timeline_image, tracks_table

    folder = job.folder
    pipeline = Pipeline.from_checkpoint(config.checkpoints[job.settings["checkpoint"]],
                                        _options(job.settings, config.device))
    drawn = folder / "annotated.avi"  # MJPG: lossless enough to re-encode once, and OpenCV always writes it
    outputs = Outputs(video=drawn, json=folder / FILES["json"][0], mot=folder / FILES["mot"][0])
    summary = run_video(pipeline, outputs, video=job.settings["video"], progress=job.progress, log=lambda m: None)
    labels = read_vicr_video(outputs.json)
    encode_h264(drawn, folder / FILES["video"][0], labels.video.fps)
    drawn.unlink()
    timeline_image(labels, folder / FILES["timeline"][0])
    job.result = {"frames": summary["frames"], "fps": round(summary["fps"], 1), "identities": len(labels.persons),
                  "duration_s": round(labels.video.duration, 2), "tracks": tracks_table(labels),
                  "actions": [labels.labelmap.names[i] for i in sorted(labels.labelmap.names)]}


def check_video(path: Path, shown_as: str) -> None:
    """Refuse, at upload, a file that is not a readable video with frames; the message names the
    user's file, never the server's path."""
    from data.video import FrameStream

    try:
        stream = FrameStream(path, log=lambda m: None)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), shown_as)) from None
    stream.close()
    if not stream.frame_count and path.is_file():
        raise InputError(f"{shown_as}: the video has no frames")


def create_app(config: AppConfig, workdir: str | os.PathLike | None = None):
    """The FastAPI application; its jobs' files live in a fresh folder under ``workdir`` (default:
    the system's temporary folder), deleted when the app stops."""
    from contextlib import asynccontextmanager
    from functools import partial

    from tracking.tracker import TrackerConfig

    if not config.checkpoints:
        raise InputError("the app needs at least one checkpoint")
    jobs = JobQueue(partial(run_job, config=config), root=Path(workdir) if workdir else None)
    limit = int(config.max_upload_mb * 2 ** 20)
    defaults = TrackerConfig()
    tracker_defaults = {name: _tracker_thresholds(path) for name, path in config.checkpoints.items()}

    @asynccontextmanager
    async def lifespan(_):
        yield
        jobs.close()

    app = FastAPI(title="mot-action", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.jobs = jobs

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error(400, f"{field}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(Exception)
    async def crashed(_, exc: Exception):  # a message in the page, never a stack trace; the trace goes to the log
        import traceback
        traceback.print_exception(exc)
        return error(500, f"internal error ({type(exc).__name__}); the server's log has the details")

    @app.get("/", response_class=HTMLResponse)
    def page():
        return resources.files("webapp").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/api/config")
    def settings():
        return {"checkpoints": list(config.checkpoints), "example": config.example is not None,
                "max_upload_mb": config.max_upload_mb,
                # A threshold left empty is the checkpoint's calibrated one (scripts/calibrate_tracker.py),
                # else the tracker's default: what each checkpoint runs with, shown in the empty fields.
                "defaults": {"conf_threshold": defaults.low_score, "track_high": None, "track_new": None},
                "tracker_defaults": tracker_defaults}

    async def new_job(request: Request, video: UploadFile | None, example: bool, checkpoint: str | None,
                      conf_threshold: float | None, track_high: float | None,
                      track_new: float | None) -> Job | JSONResponse:
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit + 2 ** 20:  # refused before reading it (the form's own fields need far less than 1 MB)
            return error(413, f"the upload is over the {config.max_upload_mb:g} MB limit")
        name = checkpoint or next(iter(config.checkpoints))
        if name not in config.checkpoints:
            return error(400, f"checkpoint {name!r}: not one of {', '.join(config.checkpoints)}")
        job_settings = {"checkpoint": name, "conf_threshold": conf_threshold, "track_high": track_high,
                        "track_new": track_new}
        try:
            _options(job_settings, config.device)
        except InputError as exc:
            return error(400, str(exc).replace("--conf-threshold", "detection threshold")
                         .replace("--track-high", "track threshold").replace("--track-new", "new-track threshold"))
        if example:
            if config.example is None:
                return error(400, "this app was started without an example video")
            job = jobs.new_job(config.example.name, {**job_settings, "video": config.example})
        elif video is None or not video.filename:
            return error(400, "no video: choose a file, or the example")
        else:
            job = jobs.new_job(video.filename, job_settings)
            target = upload_path(job.folder, video.filename)
            size = 0
            with open(target, "wb") as out:
                while chunk := await video.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        break
                    out.write(chunk)
            if size > limit:
                jobs.remove(job.id)
                return error(413, f"{video.filename}: over the {config.max_upload_mb:g} MB upload limit")
            if size == 0:
                jobs.remove(job.id)
                return error(400, f"{video.filename}: the file is empty")
            job.settings["video"] = target
        try:
            await run_in_threadpool(check_video, Path(job.settings["video"]), job.upload_name)
        except InputError as exc:
            jobs.remove(job.id)
            return error(400, f"not a video this app can read: {exc}")
        jobs.submit(job)
        return job

    form = {"video": File(None), "example": Form(False), "checkpoint": Form(None), "conf_threshold": Form(None),
            "track_high": Form(None), "track_new": Form(None)}

    @app.post("/api/jobs")
    async def submit(request: Request, video: UploadFile | None = form["video"], example: bool = form["example"],
                     checkpoint: str | None = form["checkpoint"], conf_threshold: float | None = form["conf_threshold"],
                     track_high: float | None = form["track_high"], track_new: float | None = form["track_new"]):
        job = await new_job(request, video, example, checkpoint, conf_threshold, track_high, track_new)
        return job if isinstance(job, JSONResponse) else {"id": job.id}

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            return error(404, "no such job (finished jobs are removed after an hour, or when their page closes)")
        body = {"state": job.state, "frames_done": job.frames_done, "total_frames": job.total_frames,
                "ahead": jobs.position(job), "name": job.upload_name}
        if job.state == FAILED:
            body["error"] = job.error
        if job.state == DONE:
            body["result"] = job.result
            body["files"] = {kind: f"/api/jobs/{job.id}/files/{kind}" for kind in FILES}
        return body

    @app.get("/api/jobs/{job_id}/files/{kind}")
    def download(job_id: str, kind: str):
        job = jobs.get(job_id)
        if job is None or job.state != DONE or kind not in FILES:
            return error(404, "no such file")
        name, media, suffix = FILES[kind]
        return FileResponse(job.folder / name, media_type=media, filename=safe_stem(job.upload_name) + suffix)

    @app.delete("/api/jobs/{job_id}")
    @app.post("/api/jobs/{job_id}/delete")  # navigator.sendBeacon, when the page closes, can only POST
    def delete(job_id: str):
        return {"removed": jobs.remove(job_id)}

    @app.post("/api/track")
    async def track(request: Request, video: UploadFile | None = form["video"], checkpoint: str | None = form["checkpoint"],
                    conf_threshold: float | None = form["conf_threshold"], track_high: float | None = form["track_high"],
                    track_new: float | None = form["track_new"]):
        """A video in, its V-ICR JSON out (the file ``scripts/inference.py --save-json`` writes)."""
        job = await new_job(request, video, False, checkpoint, conf_threshold, track_high, track_new)
        if isinstance(job, JSONResponse):
            return job
        await run_in_threadpool(job.done_event.wait)
        try:
            if job.state != DONE:
                return error(422, job.error or "the run failed")
            return JSONResponse(content=json.loads((job.folder / FILES["json"][0]).read_text()))
        finally:
            jobs.remove(job.id)

    return app

