"""Learning curves of a training run, from its TensorBoard logs, as one PNG: the losses, the
validation metrics, the task weights and the learning rate (``scripts/plot_run.py``)."""
from __future__ import annotations

from pathlib import Path

from common.errors import InputError
from common.io import atomic_path, check_output_path, check_outputs_apart

# A tag ending in "*" stands for every tag it starts: the tasks a researcher registers are plotted too.
PANELS = (("training loss", ("loss/total", "loss/task_*")),
          ("validation", ("val/det_ap50", "val/reid_rank1", "val/action_acc", "val/mean")),
          ("task weights", ("task_weight/*",)),
          ("learning rate", ("lr",)))


def _panel_tags(patterns: tuple[str, ...], tags) -> list[str]:
    found = []
    for pattern in patterns:
        matches = sorted(t for t in tags if t.startswith(pattern[:-1])) if pattern.endswith("*") else \
            [pattern] if pattern in tags else []
        found += [t for t in matches if t not in found]
    return found


def read_scalars(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``tag -> (steps, values)`` of every scalar the run logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = run_dir / "tb"
    if not log_dir.is_dir() or not any(log_dir.glob("events.out.tfevents.*")):
        raise InputError(f"{run_dir}: no TensorBoard logs in tb/ (not a run folder of scripts/run_trainer.py?)")
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0}).Reload()
    return {tag: ([e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)])
            for tag in events.Tags()["scalars"]}


def merge_scalars(runs: list[dict[str, tuple[list[int], list[float]]]]) -> dict[str, tuple[list[int], list[float]]]:
    """The scalars of a run and its resumed continuations, in order: a continuation starts at its
    checkpoint's step, so what an earlier run logged from that step on was lost work and is
    replaced."""
    merged: dict[str, tuple[list[int], list[float]]] = {}
    for scalars in runs:
        for tag, (steps, values) in scalars.items():
            if not steps:
                continue
            old_steps, old_values = merged.get(tag, ([], []))
            kept = [(s, v) for s, v in zip(old_steps, old_values) if s < steps[0]]
            merged[tag] = ([s for s, _ in kept] + list(steps), [v for _, v in kept] + list(values))
    return merged


def plot_curves(run_dirs: Path | list[Path], out: Path) -> Path:
    """``run_dirs``: one run folder, or a run and the folders of its resumed continuations."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dirs = [run_dirs] if isinstance(run_dirs, Path) else list(run_dirs)
    out = Path(out)
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lower().lstrip(".") not in formats:
        raise InputError(f"{out}: cannot tell the picture format from its extension "
                         f"(expected one of {', '.join('.' + f for f in sorted(formats))})")
    check_output_path(out, "the curves picture")
    check_outputs_apart({out: "the curves picture"},
                        {path: "a TensorBoard log" for d in run_dirs for path in (d / "tb").glob("events.out.tfevents.*")})
    scalars = merge_scalars([read_scalars(d) for d in run_dirs])
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, tags) in zip(axes.flat, PANELS):
        for tag in _panel_tags(tags, scalars):
            steps, values = scalars[tag]
            ax.plot(steps, values, marker="o" if tag.startswith("val/") else None, markersize=3,
                    label=tag.split("/", 1)[-1])
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(" + ".join(d.name for d in run_dirs))
    fig.tight_layout()
    with atomic_path(out, "the curves picture") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out
