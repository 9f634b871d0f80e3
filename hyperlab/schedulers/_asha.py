"""ASHA: asynchronous successive halving."""

from __future__ import annotations

import math

from hyperlab.errors import check_int
from hyperlab.schedulers._base import CONTINUE, Decision, Scheduler, SchedulerContext, Verdict

__all__ = ["ASHAScheduler"]


class ASHAScheduler(Scheduler):
    """Asynchronous successive halving (Li et al., 2020).

    Rungs sit at ``min_resource * reduction_factor**k`` epochs (below ``max_resource``).
    When a trial reaches a rung, its value there is recorded on the trial; it goes on
    only if that value is in the top ``1/reduction_factor`` of the values recorded at
    that rung so far (the top one while fewer than ``reduction_factor`` trials have
    reached it). No trial ever waits for others: that is the asynchronous part, and why
    it suits many workers. A stopped trial is PRUNED; its curve and the rung where it
    stopped are kept.

    Args:
        reduction_factor: eta > 1; a rung keeps 1/eta of the trials that reach it.
        min_resource: epochs before the first rung.
        max_resource: the epochs of a full trial (no rung at or beyond it).
        bracket: compare only with trials of this bracket (used by Hyperband).
    """

    key = "asha"

    def __init__(
        self,
        reduction_factor: int = 3,
        min_resource: int = 1,
        max_resource: int | None = None,
        *,
        bracket: int | None = None,
    ) -> None:
        check_int("ASHAScheduler", "reduction_factor", reduction_factor, 2)
        check_int("ASHAScheduler", "min_resource", min_resource, 1)
        if max_resource is not None:  # below min_resource: no rung, so it would never stop a trial
            check_int("ASHAScheduler", "max_resource", max_resource, min_resource)
        if bracket is not None:
            check_int("ASHAScheduler", "bracket", bracket, 0)
        self.reduction_factor = reduction_factor
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.bracket = bracket

    def __repr__(self) -> str:
        return (
            f"ASHAScheduler(reduction_factor={self.reduction_factor}, min_resource={self.min_resource}, "
            f"max_resource={self.max_resource})"
        )

    def rungs(self) -> list[int]:
        """The resources (epochs) at which trials are compared."""
        out, r = [], self.min_resource
        while self.max_resource is None or r < self.max_resource:
            out.append(r)
            r *= self.reduction_factor
            if self.max_resource is None and len(out) > 60:
                break
        return out

    def rung_of(self, resource: int) -> int | None:
        """The rung index at ``resource`` epochs, or None if it is not a rung."""
        if resource < self.min_resource or resource % self.min_resource:
            return None
        k = round(math.log(resource / self.min_resource, self.reduction_factor))
        if self.min_resource * self.reduction_factor**k != resource:
            return None
        if self.max_resource is not None and resource >= self.max_resource:
            return None
        return k

    def decide(self, ctx: SchedulerContext) -> Verdict:
        k = self.rung_of(ctx.step + 1)
        if k is None or not math.isfinite(ctx.value):
            return CONTINUE
        mine = dict(ctx.trial.system_attrs.get(self.key, {}))
        mine.setdefault("rungs", {})[str(k)] = ctx.value
        if self.bracket is not None:
            mine["bracket"] = self.bracket
        notes = {self.key: mine}
        values = [ctx.value]
        for number, attrs in ctx.peers().items():
            theirs = attrs.get(self.key)
            if number == ctx.trial.id or not theirs:
                continue
            if self.bracket is not None and theirs.get("bracket") != self.bracket:
                continue
            v = theirs.get("rungs", {}).get(str(k))
            if v is not None and math.isfinite(v):
                values.append(v)
        top = max(1, len(values) // self.reduction_factor)
        ranked = sorted(values, reverse=ctx.maximize)
        cutoff = ranked[top - 1]
        promoted = ctx.value >= cutoff if ctx.maximize else ctx.value <= cutoff
        if promoted:
            return Verdict(Decision.CONTINUE, notes=notes)
        mine["stopped_at_rung"] = k
        reason = (
            f"ASHA: at rung {k} (epoch {ctx.step + 1}) its value {ctx.value:.4g} is not in the top {top} of the "
            f"{len(values)} trials that reached this rung (cutoff {cutoff:.4g})"
        )
        return Verdict(Decision.STOP, reason, notes)
