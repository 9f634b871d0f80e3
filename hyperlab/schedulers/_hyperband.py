"""Hyperband: several brackets of successive halving, from aggressive to none."""

from __future__ import annotations

import math

from hyperlab.errors import InvalidArgumentError, check_int
from hyperlab.schedulers._asha import ASHAScheduler
from hyperlab.schedulers._base import Scheduler, SchedulerContext, Verdict

__all__ = ["HyperbandScheduler"]


class HyperbandScheduler(Scheduler):
    """Hyperband (Li et al., 2018) on top of asynchronous successive halving.

    Bracket s starts comparing trials after ``min_resource * reduction_factor**s``
    epochs: bracket 0 prunes hardest, the last bracket lets every trial run to the end.
    This hedges against curves that cross late. Trials are spread over the brackets by
    their number (trial n goes to bracket n mod the number of brackets) and compete
    only within their bracket.

    Args:
        reduction_factor: eta > 1.
        min_resource: epochs before the first rung of the most aggressive bracket.
        max_resource: the epochs of a full trial (required: it sets the brackets).
    """

    def __init__(self, reduction_factor: int = 3, min_resource: int = 1, max_resource: int | None = None) -> None:
        check_int("HyperbandScheduler", "reduction_factor", reduction_factor, 2)
        check_int("HyperbandScheduler", "min_resource", min_resource, 1)
        if max_resource is None:
            raise InvalidArgumentError(
                "The 'max_resource' parameter of HyperbandScheduler is required: the epochs of a full trial."
            )
        check_int("HyperbandScheduler", "max_resource", max_resource, min_resource)
        self.reduction_factor = reduction_factor
        self.min_resource = min_resource
        self.max_resource = max_resource
        n = math.floor(math.log(max_resource / min_resource, reduction_factor) + 1e-9) + 1
        self.brackets = [
            ASHAScheduler(reduction_factor, min_resource * reduction_factor**s, max_resource, bracket=s)
            for s in range(n)
        ]

    def __repr__(self) -> str:
        return (
            f"HyperbandScheduler(reduction_factor={self.reduction_factor}, min_resource={self.min_resource}, "
            f"max_resource={self.max_resource}, brackets={len(self.brackets)})"
        )

    def bracket_of(self, trial_id: int) -> int:
        return trial_id % len(self.brackets)

    def decide(self, ctx: SchedulerContext) -> Verdict:
        return self.brackets[self.bracket_of(ctx.trial.id)].decide(ctx)
