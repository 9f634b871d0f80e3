"""PNG plots of a study (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import os
from pathlib import Path

from hyperlab.analysis.curves import best_so_far
from hyperlab.trial import Trial, TrialState

__all__ = ["plot_curves"]


def plot_curves(trials: list[Trial], metric: str, maximize: bool, path: str | Path, title: str = "") -> Path:
    """Every trial's ``metric`` per epoch (best trial in bold) and the best-so-far value over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        best = (max if maximize else min)(complete, key=lambda t: float(t.value))  # type: ignore[arg-type]
    styles = {
        TrialState.COMPLETE: ("tab:blue", "-"),
        TrialState.PRUNED: ("tab:gray", "-"),
        TrialState.DIVERGED: ("tab:red", ":"),
        TrialState.FAILED: ("tab:orange", ":"),
        TrialState.RUNNING: ("tab:green", "--"),
    }
    for t in trials:
        points = t.metric(metric)
        if not points or t is best:
            continue
        color, style = styles[t.state]
        left.plot([s for s, _ in points], [v for _, v in points], style, color=color, alpha=0.35, linewidth=0.8)
    if best is not None:
        points = best.metric(metric)
        left.plot(
            [s for s, _ in points], [v for _, v in points], color="black", linewidth=2.2, label=f"best: trial {best.id}"
        )
        left.legend(loc="best")
    left.set_xlabel("epoch")
    left.set_ylabel(metric)
    left.set_title(f"{metric} of every trial (red dotted: diverged)")
    left.grid(alpha=0.3)
    if metric.endswith(("error", "cost")):
        finite = [v for t in trials for _, v in t.metric(metric) if v == v and abs(v) != float("inf")]
        if finite and min(finite) > 0:
            left.set_yscale("log")
    curve = best_so_far(trials, maximize)
    if curve:
        right.step([x for x, _ in curve], [y for _, y in curve], where="post", color="black")
        right.plot([x for x, _ in curve], [y for _, y in curve], "o", color="tab:blue", markersize=3)
    right.set_xlabel("seconds since the study started")
    right.set_ylabel(f"best {metric} so far")
    right.set_title("best so far")
    right.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
