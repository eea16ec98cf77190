"""The evaluation report: the metric table as printed, metrics.json / metrics.csv, and the plots."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from common.io import atomic_path, atomic_write_json, atomic_write_text


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)

SHOWN = [("MOTA", "mota"), ("IDF1", "idf1"), ("HOTA", "HOTA"), ("DetA", "DetA"), ("AssA", "AssA"), ("MOTP", "motp"),
         ("FP", "num_false_positives"), ("FN", "num_misses"), ("IDsw", "num_switches"), ("Frag", "num_fragmentations"),
         ("MT", "mostly_tracked"), ("ML", "mostly_lost"), ("IDP", "idp"), ("IDR", "idr"), ("AP50", "det_AP50"),
         ("AP", "det_AP"), ("act fmAP", "action_frame_mAP"), ("id-act acc", "id_action_acc"), ("id-act mAP", "id_action_mAP"),
         ("vmAP@0.5", "video_mAP@0.5"), ("HOTA-act", "HOTA_act"), ("ActA", "ActA")]
COUNTS = {"num_false_positives", "num_misses", "num_switches", "num_fragmentations", "mostly_tracked", "mostly_lost"}


def report_rows(report: dict) -> list[str]:
    """The table's rows in order: per sequence, then COMBINED (per system when several were scored)."""
    return report.get("rows") or report["sequences"] + ["COMBINED"]


def format_table(report: dict) -> str:
    """Percentages to 4 decimals (the devkit's precision), counts as integers."""
    table = report["table"]
    rows = report_rows(report)
    cols = [(h, k) for h, k in SHOWN if any(k in table[r] for r in rows)]
    width = max(len(r) for r in rows) + 2
    lines = ["".ljust(width) + "".join(h.rjust(max(len(h), 8) + 1) for h, _ in cols)]
    for r in rows:
        cells = []
        for h, k in cols:
            v = table[r].get(k, float("nan"))
            text = f"{int(v)}" if k in COUNTS and np.isfinite(v) else f"{v:.4f}" if np.isfinite(v) else "-"
            cells.append(text.rjust(max(len(h), 8) + 1))
        lines.append(r.ljust(width) + "".join(cells))
    return "\n".join(lines)


def write_outputs(report: dict, json_path: Path, plot_dir: Path | None) -> list[Path]:
    payload = {"sequences": report["sequences"], "metrics": report["table"]}
    atomic_write_json(json_path, payload, default=float)
    csv_path = json_path.with_suffix(".csv")
    keys = [k for _, k in SHOWN] + sorted({k for r in report["table"].values() for k in r} - {k for _, k in SHOWN}
                                          - {"action_frame_AP_per_class"})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["sequence"] + keys)
    for name in report_rows(report):
        writer.writerow([name] + [report["table"][name].get(k, "") for k in keys])
    atomic_write_text(csv_path, text.getvalue())
    written = [json_path, csv_path]
    if plot_dir is not None:
        written += plot(report, plot_dir)
    return written


def plot(report: dict, plot_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = report_rows(report)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 3.5))
    x = np.arange(len(names))
    for k, (label, key) in enumerate((("MOTA", "mota"), ("IDF1", "idf1"), ("HOTA", "HOTA"))):
        ax.bar(x + (k - 1) * 0.27, [report["table"][n][key] for n in names], 0.27, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("%")
    ax.legend()
    ax.set_title("tracking per sequence")
    fig.tight_layout()
    path = plot_dir / "tracking_per_sequence.png"
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    if report["pr_curves"]:
        fig, ax = plt.subplots(figsize=(5, 4))
        for name, (recall, precision) in report["pr_curves"].items():
            ax.plot(recall, np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision, label=name)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title("action frame-level precision-recall (IoU 0.5)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = plot_dir / "action_pr_curves.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


