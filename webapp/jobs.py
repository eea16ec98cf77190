"""Runs the app's uploads one at a time, each in a folder of its own.

Two users at once are queued, not mixed: one worker thread takes the jobs in order (the network
holds all the CPU or GPU one run can use anyway), and a job's files live in its own folder under
the app's temporary folder, named by a random id, never by anything the user sent. A job's folder
goes when the page that made it says it is done with it, when it has sat finished for ``ttl_s``,
and, with everything else, when the app stops.
"""
from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Job:
    """One upload and what became of it. ``settings`` is what the run needs (checkpoint name,
    thresholds); ``result`` what the page shows once it is done."""

    id: str
    folder: Path
    upload_name: str  # the user's file name: shown and used for download names, never as a path
    settings: dict
    state: str = QUEUED
    frames_done: int = 0
    total_frames: int | None = None
    error: str | None = None
    result: dict = field(default_factory=dict)
    finished_at: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, frames_done: int, total_frames: int | None) -> None:
        self.frames_done, self.total_frames = frames_done, total_frames


class JobQueue:
    """FIFO of :class:`Job` s run by one worker thread through ``run_job(job)``, which fills
    ``job.result`` or raises (its message becomes ``job.error``, shown in the page)."""

    def __init__(self, run_job: Callable[[Job], None], root: Path | None = None, ttl_s: float = 3600.0):
        self.root = Path(tempfile.mkdtemp(prefix="mot-action-app-", dir=root))
        self.run_job, self.ttl_s = run_job, ttl_s
        self.jobs: dict[str, Job] = {}
        self.pending: queue.Queue[Job | None] = queue.Queue()
        self.lock = threading.Lock()
        self.worker = threading.Thread(target=self._work, name="mot-action-jobs", daemon=True)
        self.worker.start()

    def new_job(self, upload_name: str, settings: dict) -> Job:
        """A job with an empty folder, not yet queued (the upload is written into it first)."""
        self.expire()
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        job = Job(job_id, folder, upload_name, settings)
        with self.lock:
            self.jobs[job_id] = job
        return job

    def submit(self, job: Job) -> None:
        self.pending.put(job)

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many jobs run or wait before ``job`` (0: it is running or finished)."""
        if job.state != QUEUED:
            return 0
        with self.pending.mutex:
            waiting = [j for j in self.pending.queue if j is not None]
        with self.lock:
            running = any(j.state == RUNNING for j in self.jobs.values())
        return (waiting.index(job) if job in waiting else 0) + running

    def remove(self, job_id: str) -> bool:
        """Forget a job and delete its folder (a running job's folder goes when it ends)."""
        with self.lock:
            job = self.jobs.pop(job_id, None)
        if job is None:
            return False
        if job.state != RUNNING:
            shutil.rmtree(job.folder, ignore_errors=True)
        return True

    def expire(self) -> None:
        """Remove the jobs finished more than ``ttl_s`` ago (a page closed without saying so)."""
        now = time.time()
        with self.lock:
            old = [j.id for j in self.jobs.values() if j.finished_at and now - j.finished_at > self.ttl_s]
        for job_id in old:
            self.remove(job_id)

    def close(self) -> None:
        """Stop the worker after the running job and delete every file the app made."""
        self.pending.put(None)
        self.worker.join(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def _work(self) -> None:
        while True:
            job = self.pending.get()
            if job is None:
                return
            if self.get(job.id) is None:  # removed while it waited
                continue
            job.state = RUNNING
            try:
                self.run_job(job)
                job.state = DONE
            except Exception as exc:  # the page shows the message; the app keeps serving
                job.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                job.state = FAILED
            job.finished_at = time.time()
            job.done_event.set()
            if self.get(job.id) is None:  # removed while it ran
                shutil.rmtree(job.folder, ignore_errors=True)
