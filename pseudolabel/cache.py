"""Every finished VLM answer, on disk the moment it arrives, so a run that crashes or is killed
asks only what is missing when started again.

One SQLite file (the standard library's: each answer is its own committed transaction, which
survives a kill at any point, and concurrent writers are serialised by SQLite itself). An answer
is keyed by what determines it: video, track, second, iteration, attempt, the prompt's hash
(text, frames and schema) and the model.

A file SQLite cannot read (not a database, or damaged: truncated, overwritten) is one
:class:`InputError` naming it, checked when it is opened: moved aside, its answers are asked again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from common.errors import InputError


def prompt_hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class AnswerCache:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot open the answer cache ({exc})") from None
        try:
            self._sql("PRAGMA journal_mode=WAL")
            self._sql("PRAGMA synchronous=NORMAL")
            self._sql("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, video TEXT, track TEXT, "
                      "second INTEGER, iteration INTEGER, attempt INTEGER, model TEXT, reply TEXT)")
            # A damaged file can open and fail only at the page a later read reaches: mid-run.
            problems = self._sql("PRAGMA quick_check").fetchall()
            if problems != [("ok",)]:
                raise self._damaged(problems[0][0])
        except InputError:
            self._db.close()
            raise

    def _damaged(self, why) -> InputError:
        # quick_check reports "*** in database main ***" and then one line per problem.
        first = next((line for line in str(why).splitlines() if line.strip() and not line.startswith("***")), str(why))
        return InputError(f"{self.path}: the answer cache is damaged ({first}): move it aside (its answers are "
                          "then asked again) and rerun")

    def _sql(self, statement: str, parameters=()):
        try:
            return self._db.execute(statement, parameters)
        except sqlite3.OperationalError as exc:  # locked, read-only, disk full: the file itself is fine
            raise InputError(f"{self.path}: cannot use the answer cache ({exc})") from None
        except sqlite3.DatabaseError as exc:  # not a database, malformed
            raise self._damaged(exc) from None

    @staticmethod
    def key(video: str, track: str, second: int, iteration: int, attempt: int, prompt: str, model: str) -> str:
        return prompt_hash(video, track, second, iteration, attempt, prompt, model)

    def get(self, key: str) -> str | None:
        row = self._sql("SELECT reply FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, reply: str, *, video: str = "", track: str = "", second: int = -1, iteration: int = 0,
            attempt: int = 0, model: str = "") -> None:
        self._sql("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (key, video, track, second, iteration, attempt, model, reply))

    def __len__(self) -> int:
        return self._sql("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()
