"""A dependency-free progress bar with rate and ETA (a plain line now and then when not a terminal)."""
from __future__ import annotations

import math
import sys
import time


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    def __init__(self, total: int | None, unit: str = "it", stream=sys.stderr, every: int = 50, initial: int = 0):
        """``initial``: where counting starts (a resumed run), so the rate covers this run only."""
        self.total, self.unit, self.stream, self.every, self.initial = total, unit, stream, every, initial
        self.tty = stream.isatty()
        self.start = time.time()
        self.count = initial

    def update(self, count: int, suffix: str = "") -> None:
        self.count = count
        rate = (count - self.initial) / max(time.time() - self.start, 1e-9)
        if self.total:
            eta = format_seconds((self.total - count) / rate if rate > 0 else float("inf"))
            head = f"{count}/{self.total} {self.unit}"
        else:
            eta, head = "--:--", f"{count} {self.unit}"
        line = f"{head} {rate:.2f} {self.unit}/s ETA {eta} {suffix}".rstrip()
        if self.tty:
            done = int(30 * count / self.total) if self.total else 0
            self.stream.write(f"\r[{'#' * done}{'.' * (30 - done)}] {line}   ")
            self.stream.flush()
        elif count % self.every == 0 or count == 1 or count == self.total:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
