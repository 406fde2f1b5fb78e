"""A PNG chart of per-stage latency (p50 / p95 / p99) for one or more backends."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from core.atomic import atomic_file
from runtime.latency import LatencySummary

END_TO_END = "end-to-end"


def plot_latency(summaries: Mapping[str, LatencySummary], path: str | os.PathLike,
                 title: str = "splatcam latency") -> Path:
    """Grouped bars, one group per stage (and end-to-end), one bar per backend.

    The bar is p50; a whisker runs up to p99 with a tick at p95. The file appears only when
    complete (written beside it, then renamed).
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg by file type

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: latency plot must end in .png")
    if not summaries:
        raise ValueError("no latency results to plot")
    stages: list[str] = []
    for summary in summaries.values():
        stages += [s for s in summary.stages_ms if s not in stages]
    labels = stages + [END_TO_END]

    figure = Figure(figsize=(max(6.0, 1.3 * len(labels) + 2.0), 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(summaries)
    x = np.arange(len(labels))
    for i, (backend, summary) in enumerate(summaries.items()):
        rows = [summary.stages_ms.get(s) for s in stages] + [summary.end_to_end_ms]
        p50, p95, p99 = (np.array([getattr(r, q) if r is not None else np.nan for r in rows])
                         for q in ("p50", "p95", "p99"))
        offset = x - 0.4 + width * (i + 0.5)
        bars = axes.bar(offset, p50, width * 0.9, label=f"{backend} ({summary.fps:.1f} fps)")
        color = bars.patches[0].get_facecolor()
        axes.vlines(offset, p50, p99, colors="black", linewidth=1)
        axes.plot(offset, p95, linestyle="none", marker="_", markersize=8, color="black")
        axes.plot(offset, p99, linestyle="none", marker="v", markersize=4, color=color,
                  markeredgecolor="black", markeredgewidth=0.5)
    axes.set_xticks(x, labels)
    axes.set_ylabel("milliseconds (bar p50, tick p95, ▼ p99)")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")

    with atomic_file(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    return path
