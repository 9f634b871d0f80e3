"""The TPE sampler: split the history into good and bad trials, propose where good ones are dense."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlab.errors import InvalidArgumentError, check_int
from hyperlab.samplers._base import SampleContext, Sampler
from hyperlab.space import Choice, Float, Int, Space
from hyperlab.trial import Trial, TrialState

if TYPE_CHECKING:
    from hyperlab.samplers._tpe._parzen import Axes

__all__ = ["TPESampler"]


class TPESampler(Sampler):
    """Bayesian optimization with a tree-structured Parzen estimator (Bergstra et al., 2011).

    After ``n_startup`` finished trials drawn at random, each ask ranks the trials,
    calls the best ``gamma`` share of them *good* (at least one, at most ``max_good``)
    and the rest *bad*, fits a kernel density l(x) on the good points and g(x) on the
    bad ones, draws ``n_candidates`` points from l and returns the one with the
    largest l(x) / g(x). By default the densities are joint over all parameters
    (multivariate), so interactions such as learning rate x optimizer are modelled;
    ``multivariate=False`` models each parameter on its own, as the original TPE (and
    Optuna's default) does. They work in the unit cube: a log-scaled learning rate gets
    kernels of equal width per decade.

    What counts as what:

    - complete trials rank first, by value;
    - trials pruned by a scheduler rank next, the further they got the better, then by
      the study's ``metric`` at their last step (as ASHA compares them at a rung);
    - diverged trials rank last (a learning rate that blows up is worth avoiding);
    - running trials that have reported a finite value of the study's ``metric`` rank
      as if pruned at their last step (with the diverged ones if their latest value
      is NaN or inf): under ASHA the trials that run longest are the ones that passed
      its rungs, and counting them as bad while they run pushed the search away from
      the best region for most of a time-boxed run;
    - running trials that have not reported it yet (other workers' pending points) are
      counted as bad, so parallel workers are pushed away from points already being
      tried (the "constant liar");
    - failed trials (exceptions, lost workers) are left out.

    Conditional parameters need nothing special: a parameter absent from a trial adds
    no information on that axis (its kernel is uniform there).

    Args:
        n_startup: finished random trials before the model is used.
        n_candidates: points drawn from l(x) per ask, the best of which is returned.
        gamma: share of ranked trials counted as good.
        max_good: cap on the number of good trials (so l stays focused on long studies).
        eps: probability that a categorical kernel moves away from its observed option.
        multivariate: one joint density over all parameters (True) or a product of
            one density per parameter (False).
    """

    uses_history = True

    def __init__(
        self,
        n_startup: int = 10,
        *,
        n_candidates: int = 24,
        gamma: float = 0.15,
        max_good: int = 25,
        eps: float = 0.2,
        multivariate: bool = True,
    ) -> None:
        for name, v in (("n_startup", n_startup), ("n_candidates", n_candidates), ("max_good", max_good)):
            check_int("TPESampler", name, v)
        for name, f in (("gamma", gamma), ("eps", eps)):
            if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
                raise InvalidArgumentError(
                    f"The '{name}' parameter of TPESampler must be a number in (0, 1). Got {f!r} instead."
                )
        self.n_startup = n_startup
        self.n_candidates = n_candidates
        self.gamma = float(gamma)
        self.max_good = max_good
        self.eps = float(eps)
        if not isinstance(multivariate, bool):
            raise InvalidArgumentError(
                f"The 'multivariate' parameter of TPESampler must be true or false. Got {multivariate!r} instead."
            )
        self.multivariate = multivariate

    def __repr__(self) -> str:
        return (
            f"TPESampler(n_startup={self.n_startup}, n_candidates={self.n_candidates}, "
            f"gamma={self.gamma}, max_good={self.max_good}, eps={self.eps}, multivariate={self.multivariate})"
        )

    def suggest(self, ctx: SampleContext) -> Sequence[float]:
        space = ctx.space
        ranked, pending = self._split(ctx)
        if sum(t.state is not TrialState.RUNNING for t in ranked) < self.n_startup:
            return ctx.rng.random(len(space)).tolist()  # type: ignore[no-any-return]
        from hyperlab.samplers._tpe._parzen import Parzen  # SciPy loads on the first model-based ask

        n_good = min(max(1, math.ceil(self.gamma * len(ranked))), self.max_good)
        axes = _axes(space)
        good = np.array([space.to_unit(t.params) for t in ranked[:n_good]])
        bad_trials = ranked[n_good:] + pending
        bad = np.array([space.to_unit(t.params) for t in bad_trials]).reshape(len(bad_trials), len(space))
        univariate = not self.multivariate
        l_x = Parzen(good, axes, eps=self.eps, univariate=univariate)
        g_x = Parzen(bad, axes, eps=self.eps, univariate=univariate)
        candidates = l_x.sample(ctx.rng, self.n_candidates)
        active = _active(space, candidates)
        score = l_x.log_pdf(candidates, active) - g_x.log_pdf(candidates, active)
        return candidates[int(np.argmax(score))].tolist()  # type: ignore[no-any-return]

    def _split(self, ctx: SampleContext) -> tuple[list[Trial], list[Trial]]:
        """The trials from best to worst (running ones that have reported among them),
        and the pending ones (running, with no report of the metric yet)."""
        sign = 1.0 if ctx.direction == "minimize" else -1.0
        keyed: list[tuple[tuple[float, float, float, int], Trial]] = []
        pending: list[Trial] = []
        for t in ctx.history:
            if t.state is TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
                keyed.append(((0, 0, sign * t.value, t.id), t))
            elif t.state is TrialState.DIVERGED:
                keyed.append(((2, 0, 0, t.id), t))
            elif t.state in (TrialState.PRUNED, TrialState.RUNNING):
                running = t.state is TrialState.RUNNING
                last = _last_value(t, ctx.metric)
                if last is None and running:
                    pending.append(t)
                elif last is None or (running and not last[2]):  # a running one that just reported NaN or inf
                    keyed.append(((2, 0, 0, t.id), t))  # is about to be marked diverged
                else:  # as ASHA compares them at a rung
                    keyed.append(((1, -last[0], sign * last[1], t.id), t))
        keyed.sort(key=lambda kt: kt[0])
        return [t for _, t in keyed], pending


def _last_value(trial: Trial, metric: str | None) -> tuple[int, float, bool] | None:
    """The last finite value of ``metric`` in the curve, its step, and whether the
    latest report of it is that one (not NaN or inf); None if there is none."""
    if metric is None:
        return None
    latest = True
    for step in reversed(trial.curve):
        value = trial.curve[step].get(metric)
        if value is None:
            continue
        if math.isfinite(value):
            return step, value, latest
        latest = False
    return None


def _axes(space: Space) -> Axes:
    from hyperlab.samplers._tpe._parzen import Axes

    numeric, categorical, n_options = [], [], []
    for i, name in enumerate(space.names):
        p = space[name]
        if isinstance(p, Float | Int):
            numeric.append(i)
        elif isinstance(p, Choice) and len(p.options) > 1:
            categorical.append(i)
            n_options.append(len(p.options))
    return Axes(np.array(numeric, dtype=int), np.array(categorical, dtype=int), np.array(n_options, dtype=int))


def _active(space: Space, points: np.ndarray) -> np.ndarray:
    """Which axes each point uses (its conditional parameters decide)."""
    active = np.ones(points.shape, dtype=bool)
    if any(space[n].when for n in space.names):
        index = {n: i for i, n in enumerate(space.names)}
        for row, u in enumerate(points):
            params: dict[str, Any] = space.from_unit(u.tolist())
            for name in space.names:
                if name not in params:
                    active[row, index[name]] = False
    return active
