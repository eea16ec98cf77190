#!/usr/bin/env python
"""Run the whole test suite: ``python tests/run_all_tests.py [pytest args]``.

Arguments pass through to pytest (``-k``, ``-m``, ``-x``, paths). Tests marked ``slow`` are left
out unless a ``-m`` expression is given (``-m slow`` or ``-m "slow or not slow"`` for all).
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    args = list(argv)
    if not any(a == "-m" or a.startswith("-m") and not a.startswith("--") for a in args):
        args = ["-m", "not slow"] + args
    if not any(not a.startswith("-") and Path(a).exists() for a in args):
        args.append(str(ROOT / "tests"))
    os.chdir(ROOT)
    code = pytest.main(["-ra", "-p", "no:cacheprovider"] + args)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
