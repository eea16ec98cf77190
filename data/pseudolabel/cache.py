"""Every finished VLM answer, on disk the moment it arrives, so a run that crashes or is killed
asks only what is missing when started again.

One SQLite file (the standard library's: each answer is its own committed transaction, which
survives a kill at any point, and concurrent writers are serialised by SQLite itself). An answer
is keyed by what determines it: video, track, second, iteration, attempt, the prompt's hash
(text, frames and schema) and the model.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path


def prompt_hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class AnswerCache:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, video TEXT, track TEXT, "
                         "second INTEGER, iteration INTEGER, attempt INTEGER, model TEXT, reply TEXT)")

    @staticmethod
    def key(video: str, track: str, second: int, iteration: int, attempt: int, prompt: str, model: str) -> str:
        return prompt_hash(video, track, second, iteration, attempt, prompt, model)

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, reply: str, *, video: str = "", track: str = "", second: int = -1, iteration: int = 0,
            attempt: int = 0, model: str = "") -> None:
        self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (key, video, track, second, iteration, attempt, model, reply))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()
