"""The answer cache: answers survive a reopen; a file that is not a cache, or a damaged one, is one
line naming it and what to do, never a traceback from SQLite."""
import os

import pytest

from common.errors import InputError
from pseudolabel.cache import AnswerCache


def _filled(path, count=3000):
    cache = AnswerCache(path)
    for k in range(count):
        cache.put(f"key{k}", f"reply {k} " + "x" * 200, video="v", track="label:1", second=k)
    cache.close()  # checkpoints the write-ahead log into the file


def test_answers_survive_a_reopen(tmp_path):
    _filled(tmp_path / "c.sqlite", 10)
    cache = AnswerCache(tmp_path / "c.sqlite")
    assert len(cache) == 10 and cache.get("key7") == "reply 7 " + "x" * 200 and cache.get("other") is None
    cache.close()


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "header kept, pages overwritten"])
def test_a_damaged_cache_is_one_line_naming_it(tmp_path, damage):
    path = tmp_path / "vlm_cache.sqlite"
    if damage == "random bytes":
        path.write_bytes(os.urandom(20000))
    else:
        _filled(path)
        data = path.read_bytes()
        assert len(data) > 100_000
        if damage == "truncated":
            path.write_bytes(data[: len(data) // 2])
        else:
            path.write_bytes(data[:4096] + os.urandom(len(data) - 4096))
    with pytest.raises(InputError) as info:
        AnswerCache(path)
    message = str(info.value)
    assert message.startswith(f"{path}: the answer cache is damaged (") and "move it aside" in message
    assert "\n" not in message
