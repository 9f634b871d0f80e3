"""Learning-curve utilities shared by the CLI, the plots and the reports."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hyperlab.trial import Trial, TrialState

__all__ = ["best_so_far", "curve_summary", "best_of", "best_trial", "ranked_trials"]


def best_of(values: Sequence[float], maximize: bool) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if maximize else min(finite)


def curve_summary(trial: Trial, metric: str, maximize: bool) -> str:
    """``first -> best@epoch`` of one metric, e.g. ``0.912 -> 0.031@14``."""
    points = trial.metric(metric)
    if not points:
        return "-"
    best = best_of([v for _, v in points], maximize)
    if best is None:
        return f"{points[0][1]:.3g} -> nan"
    at = next(s for s, v in points if v == best)
    return f"{points[0][1]:.3g} -> {best:.3g}@{at}"


def best_so_far(trials: Sequence[Trial], maximize: bool) -> list[tuple[float, float]]:
    """(seconds since the first trial started, best value so far) at each completion."""
    done = sorted(
        (t for t in trials if t.state is TrialState.COMPLETE and t.value is not None and t.ended is not None),
        key=lambda t: t.ended or 0.0,
    )
    if not done:
        return []
    start = min(t.started for t in trials)
    out: list[tuple[float, float]] = []
    best: float | None = None
    for t in done:
        v = float(t.value)  # type: ignore[arg-type]
        if best is None or (v > best if maximize else v < best):
            best = v
        out.append(((t.ended or 0.0) - start, best))
    return out


def best_trial(trials: Sequence[Trial], maximize: bool, tie_break: str = "dev_cost") -> Trial | None:
    """The complete trial with the best value; ties broken by the lowest ``tie_break``
    metric (at the trial's last report), then by id.

    Error and accuracy on a dev set of a few hundred rows move in steps of 1/rows, so
    ties are common; the dev cost separates a confident model from a lucky one.
    """
    ranked = ranked_trials(trials, maximize, tie_break)
    return ranked[0] if ranked else None


def ranked_trials(trials: Sequence[Trial], maximize: bool, tie_break: str = "dev_cost") -> list[Trial]:
    """The complete trials, best first, in :func:`best_trial`'s order."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]

    def key(t: Trial) -> tuple[float, float, int]:
        value = float(t.value)  # type: ignore[arg-type]
        points = t.metric(tie_break)
        finite = [v for _, v in points if math.isfinite(v)]
        return (-value if maximize else value, min(finite) if finite else math.inf, t.id)

    return sorted(complete, key=key)
