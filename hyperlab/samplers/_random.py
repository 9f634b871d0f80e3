"""Random search: the course's default."""

from __future__ import annotations

from collections.abc import Sequence

from hyperlab.samplers._base import SampleContext, Sampler

__all__ = ["RandomSampler"]


class RandomSampler(Sampler):
    """Independent uniform draws in the unit cube, so uniform on each parameter's scale.

    Random rather than grid search because you don't know in advance which axis
    matters: 25 random points try 25 values of every parameter, a 5 x 5 grid tries 5.

    Example:
        >>> from hyperlab import Study, Space, Float  # doctest: +SKIP
        >>> study = Study("demo", Space(lr=Float(1e-4, 1, scale="log")), sampler=RandomSampler())
    """

    def suggest(self, ctx: SampleContext) -> Sequence[float]:
        return ctx.rng.random(len(ctx.space)).tolist()  # type: ignore[no-any-return]
