#!/usr/bin/env python
"""Train the network.

Hydra-style overrides, e.g.::

    python scripts/run_trainer.py experiment=synthetic_quick model=lite trainer.epochs=5

The seed project's flags work too and map onto the config: ``--model`` (model=), ``--batch-size``
(data.batch_size=), ``--num-epochs`` (trainer.epochs=), ``--lr`` (optimizer.lr=), ``--device``,
``--resume``, ``--exp-name``, ``--num-classes`` (model.num_classes=), ``--num-actions`` (checked
against the dataset's label map) and ``--config FILE`` (a YAML merged on top).
Multi-GPU / multi-node: ``torchrun --nproc_per_node=N scripts/run_trainer.py ...``.
"""
from __future__ import annotations

import argparse
import sys

from common.cli import add_plugin_argument, load_plugins, run_cli
from models.config import VARIANTS

FLAG_TO_KEY = {"model": "model", "batch_size": "data.batch_size", "num_epochs": "trainer.epochs", "lr": "optimizer.lr",
               "device": "device", "resume": "resume", "exp_name": "exp_name", "num_classes": "model.num_classes",
               "num_actions": "expect_num_actions"}
TEXT_FLAGS = ("device", "resume", "exp_name")  # free text: quoted, so a path with '<', '=' or ',' stays one value


def _quoted(value: str) -> str:
    """A hydra override value in single quotes (its grammar escapes only quotes and the backslashes before them)."""
    body = value.replace("'", "\\'")
    trailing = len(body) - len(body.rstrip("\\"))
    return "'" + body + "\\" * trailing + "'"


def parse_args(argv: list[str] | None = None) -> tuple[list[str], str | None]:
    load_plugins(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=VARIANTS)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--num-epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device")
    p.add_argument("--resume")
    p.add_argument("--exp-name")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--num-actions", type=int)
    p.add_argument("--config", help="a YAML file merged on top of the composed config")
    add_plugin_argument(p)
    p.add_argument("overrides", nargs="*", help="hydra overrides: key=value, group=option")
    args = p.parse_args(argv)
    overrides = list(args.overrides)
    for flag, key in FLAG_TO_KEY.items():
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={_quoted(value) if flag in TEXT_FLAGS else value}")
    return overrides, args.config


def run(parsed) -> int | None:
    from common.errors import from_worker
    from train.run import TrainingInterrupted, compose_config, train
    from train.trainer import TrainingDiverged
    overrides, extra = parsed
    cfg = compose_config(overrides, extra)
    try:
        train(cfg)
    except TrainingInterrupted as exc:  # says whether the run folder has a checkpoint yet
        print(exc, file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"error: training stopped: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # a data loader worker's one-line error arrives wrapped in its traceback
        original = from_worker(exc)
        if original is None:
            raise
        raise original from None
    return None


def main(argv=None) -> int:
    # Ctrl-C before training starts (composing, loading or generating the data): nothing written yet.
    return run_cli(run, parse_args(argv), interrupted="interrupted: no checkpoint was written yet")


if __name__ == "__main__":
    sys.exit(main())
