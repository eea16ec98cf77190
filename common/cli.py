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
    except BrokenPipeError:
        # The reader went away (``| head``): nothing left to tell it. Python would report the
        # failed flush of stdout at exit once more, so stdout is pointed at /dev/null first.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


PLUGIN_HELP = ("a Python module (my_pkg.my_tracker) or file (my_tracker.py) to import first, so that what it "
               "registers (a tracker, a dataset format, a training task: docs/extending.md) can be chosen; repeatable")


def add_plugin_argument(parser) -> None:
    """``--plugin`` in ``parser``'s help; :func:`load_plugins` has already acted on it."""
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help=PLUGIN_HELP)


def load_plugins(argv: list[str] | None = None) -> list[str]:
    """Imports what ``--plugin`` names in ``argv`` (default: the command line) before the flags are
    parsed, so the registrations are among their choices. Code named on the command line is the
    user's own, run as ``python -m`` would run it; nothing read from a file (a config, a checkpoint)
    is ever imported. A plugin that cannot be imported is one line and exit 2."""
    import argparse
    import importlib
    import importlib.util
    from pathlib import Path

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    names = pre.parse_known_args(sys.argv[1:] if argv is None else argv)[0].plugin
    for name in names:
        try:
            if name.endswith(".py"):
                path = Path(name)
                if not path.is_file():
                    raise FileNotFoundError(f"no such file {path}")
                spec = importlib.util.spec_from_file_location(f"mot_action_plugin_{path.stem}", path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except Exception as exc:  # whatever the plugin raised: its one line, not our traceback
            print(f"error: --plugin {name}: cannot import it ({type(exc).__name__}: {exc})", file=sys.stderr)
            raise SystemExit(2) from None
    return names
