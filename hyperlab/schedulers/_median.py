"""The median stopping rule."""

from __future__ import annotations

import math
import statistics

from hyperlab.errors import check_int
from hyperlab.schedulers._base import CONTINUE, Decision, Scheduler, SchedulerContext, Verdict
from hyperlab.trial import TrialState

__all__ = ["MedianScheduler"]


class MedianScheduler(Scheduler):
    """Stop a trial whose best value up to step t is worse than the median of the
    values that the completed trials reported at step t (Golovin et al., 2017).

    Args:
        n_startup_trials: completed trials needed (at step t) before anything is stopped.
        n_warmup_steps: steps of every trial that are never judged.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        check_int("MedianScheduler", "n_startup_trials", n_startup_trials, 1)
        check_int("MedianScheduler", "n_warmup_steps", n_warmup_steps, 0)
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def __repr__(self) -> str:
        return f"MedianScheduler(n_startup_trials={self.n_startup_trials}, n_warmup_steps={self.n_warmup_steps})"

    def decide(self, ctx: SchedulerContext) -> Verdict:
        if ctx.step < self.n_warmup_steps or not math.isfinite(ctx.value):
            return CONTINUE
        metric = ctx.metric
        others = [
            t.curve[ctx.step][metric]
            for t in ctx.finished()
            if t.state is TrialState.COMPLETE and ctx.step in t.curve and metric in t.curve[ctx.step]
        ]
        others = [v for v in others if math.isfinite(v)]
        if len(others) < self.n_startup_trials:
            return CONTINUE
        median = statistics.median(others)
        mine = [v for s, v in ctx.trial.metric(metric) if s <= ctx.step and math.isfinite(v)]
        best = max(mine) if ctx.maximize else min(mine)
        worse = best < median if ctx.maximize else best > median
        if not worse:
            return CONTINUE
        return Verdict(
            Decision.STOP,
            f"median rule: at step {ctx.step} its best value {best:.4g} is worse than the median {median:.4g} "
            f"of {len(others)} completed trials",
            {"median": {"stopped_at_step": ctx.step}},
        )
