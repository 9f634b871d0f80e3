"""Coarse to fine: sample a box, keep the best points, zoom in around them, repeat."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperlab.errors import InvalidArgumentError, check_int
from hyperlab.samplers._base import SampleContext, Sampler
from hyperlab.space import Choice, Fixed, Space
from hyperlab.trial import TrialState

if TYPE_CHECKING:
    from hyperlab.study import Study

__all__ = ["CoarseToFineSampler"]

ATTR = "coarse_to_fine"


class CoarseToFineSampler(Sampler):
    """The course's coarse-to-fine search, in rounds of ``n_per_round`` trials.

    Round 0 samples the whole unit cube at random. Before round r starts, the ``top_k``
    best complete trials of the earlier rounds are taken (if they have none, every one
    of them having failed, diverged or been pruned, round r keeps the previous box),
    and the box for round r is centred on them
    with each side ``shrink`` times the previous round's side (so after r rounds the box
    covers shrink^r of every numeric axis). If the top trials lie further apart than that,
    the box keeps the part around the best one. Boxes are clipped to the unit cube;
    Choice and Fixed axes keep every option (their order carries no distance).

    Every round's box is stored in the study's attributes under ``"coarse_to_fine"``,
    so the zoom can be inspected (:meth:`rounds`) and a resumed study carries on in the
    same box.

    Args:
        n_per_round: trials per round.
        top_k: how many of the best trials the next box is built around.
        shrink: factor in (0, 1) applied to each side of the box per round.
        n_rounds: rounds of zooming; after the last one, sampling stays in its box.
    """

    uses_history = True

    def __init__(
        self, n_per_round: int = 20, *, top_k: int = 5, shrink: float = 0.5, n_rounds: int | None = None
    ) -> None:
        for name, v in (("n_per_round", n_per_round), ("top_k", top_k)):
            check_int("CoarseToFineSampler", name, v)
        if n_rounds is not None and (isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 1):
            raise InvalidArgumentError(
                f"The 'n_rounds' parameter of CoarseToFineSampler must be a positive integer or None. "
                f"Got {n_rounds!r} instead."
            )
        if isinstance(shrink, bool) or not isinstance(shrink, int | float) or not 0 < shrink < 1:
            raise InvalidArgumentError(
                f"The 'shrink' parameter of CoarseToFineSampler must be a number in (0, 1). Got {shrink!r} instead."
            )
        self.n_per_round = n_per_round
        self.top_k = top_k
        self.shrink = float(shrink)
        self.n_rounds = n_rounds

    def __repr__(self) -> str:
        return (
            f"CoarseToFineSampler(n_per_round={self.n_per_round}, top_k={self.top_k}, "
            f"shrink={self.shrink}, n_rounds={self.n_rounds})"
        )

    def suggest(self, ctx: SampleContext) -> Sequence[float]:
        d = len(ctx.space)
        r = ctx.number // self.n_per_round
        if self.n_rounds is not None:
            r = min(r, self.n_rounds)
        boxes: list[dict[str, Any]] = list(ctx.attrs.get(ATTR, []))
        if not boxes:
            boxes = [{"round": 0, "low": [0.0] * d, "high": [1.0] * d, "top": []}]
            ctx.attrs[ATTR] = boxes
        while len(boxes) <= r:
            box = self._next_box(ctx, boxes[-1], len(boxes))
            if box is None:  # no complete trial yet (workers ahead of results): stay
                break
            boxes.append(box)
            ctx.attrs[ATTR] = boxes
        box = boxes[min(r, len(boxes) - 1)]
        u = ctx.rng.random(d)
        return [lo + ui * (hi - lo) for ui, lo, hi in zip(u.tolist(), box["low"], box["high"], strict=True)]

    def _next_box(self, ctx: SampleContext, prev: dict[str, Any], r: int) -> dict[str, Any] | None:
        earlier = [t for t in ctx.history if t.id < r * self.n_per_round]
        complete = [t for t in earlier if t.state is TrialState.COMPLETE and t.value is not None]
        if not complete:
            if any(not t.state.is_finished for t in earlier):
                return None  # workers ahead of results: stay in the last box until one completes
            # every earlier trial failed, diverged or was pruned: nothing to zoom on, so
            # round r searches the same box again
            return {"round": r, "low": list(prev["low"]), "high": list(prev["high"]), "top": []}
        sign = 1.0 if ctx.direction == "minimize" else -1.0
        top = sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.id))[: self.top_k]
        points = [ctx.space.to_unit(t.params) for t in top]
        low, high = [], []
        for i, name in enumerate(ctx.space.names):
            param = ctx.space[name]
            width = self.shrink * (prev["high"][i] - prev["low"][i])
            coords = [p[i] for p in points if not math.isnan(p[i])]
            if isinstance(param, Choice | Fixed) or not coords:
                # No distance between options; an axis none of the top trials used keeps its box.
                lo, hi = (0.0, 1.0) if isinstance(param, Choice | Fixed) else (prev["low"][i], prev["high"][i])
            else:
                a, b = min(coords), max(coords)
                if b - a > width:
                    # The top trials are spread wider than the new box: keep the part
                    # around the best one (coords[0]), inside the top trials' span.
                    lo = min(max(coords[0] - width / 2, a), b - width)
                else:
                    lo = (a + b) / 2 - width / 2
                lo = min(max(lo, 0.0), 1.0 - width)
                hi = lo + width
            low.append(lo)
            high.append(hi)
        return {"round": r, "low": low, "high": high, "top": [t.id for t in top]}

    @staticmethod
    def rounds(study: Study) -> list[dict[str, Any]]:
        """The boxes of every round so far, in parameter values.

        Returns a list of ``{"round": r, "top": [trial ids], "box": {name: (low, high)}}``;
        Choice and Fixed parameters are left out of the box (they keep every option).
        """
        return boxes_in_values(study.space, study.attrs.get(ATTR, []))


def boxes_in_values(space: Space, boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for box in boxes:
        ranges = {
            name: (space[name].from_unit(lo), space[name].from_unit(hi))
            for name, lo, hi in zip(space.names, box["low"], box["high"], strict=True)
            if not isinstance(space[name], Choice | Fixed)
        }
        out.append({"round": box["round"], "top": box["top"], "box": ranges})
    return out
