"""What every script's ``main`` shares: user errors and Ctrl-C as one line instead of a traceback."""
from __future__ import annotations

import sys

from common.errors import InputError


def run_cli(run, args, interrupted: str = "interrupted") -> int:
    """``run(args)``, with :class:`InputError` printed as its one line (exit 2) and Ctrl-C as one
    line, ``interrupted`` (exit 130). An ``int`` that ``run`` returns is the exit code; anything
    else it returns (a report) means success, 0."""
    try:
        code = run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return code if isinstance(code, int) and not isinstance(code, bool) else 0
