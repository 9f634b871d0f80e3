"""Grid search, when asked for: every combination of a few values per axis."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from hyperlab.errors import GridTooLargeError, InvalidArgumentError, check_int
from hyperlab.samplers._base import SampleContext, Sampler, SearchExhausted
from hyperlab.space import Space

__all__ = ["GridSampler"]


class GridSampler(Sampler):
    """Every combination of ``n_points`` values per numeric axis, spaced on its scale.

    A log-scaled learning rate in [1e-4, 1] with 5 points gets 1e-4, 1e-3, ..., 1;
    a Choice contributes all its options, an Int at most its number of values, a
    Fixed one value. Conditional parameters only branch where they are active, so the
    grid has no duplicate configurations.

    Trial n takes point ``order[n]``, where ``order`` is a permutation of the grid
    seeded by the study seed (``shuffle=True``): workers sharing a study never pick
    the same point, and a grid cut short is a random subset rather than one corner.
    After the last point, asking raises :class:`SearchExhausted` and
    :meth:`Study.optimize` stops.

    The course prefers random search: a 5 x 5 grid tries only 5 values of the axis that
    matters. Use a grid for a final sweep of one or two axes.

    Args:
        n_points: points per numeric axis, or a mapping name -> points (others default to 5).
        max_size: largest grid accepted; raise it to accept larger grids.
        shuffle: visit the grid in a seeded random order (else in lexicographic order).
    """

    def __init__(self, n_points: int | Mapping[str, int] = 5, *, max_size: int = 10_000, shuffle: bool = True) -> None:
        counts = dict(n_points) if isinstance(n_points, Mapping) else {}
        default = 5 if isinstance(n_points, Mapping) else n_points
        for name, n in [("n_points", default), *counts.items()]:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise InvalidArgumentError(
                    f"The 'n_points' parameter of GridSampler must be a positive integer (for '{name}'). "
                    f"Got {n!r} instead."
                )
        check_int("GridSampler", "max_size", max_size)
        self.n_points = default
        self.per_param = counts
        self.max_size = max_size
        if not isinstance(shuffle, bool):
            raise InvalidArgumentError(
                f"The 'shuffle' parameter of GridSampler must be True or False. Got {shuffle!r}."
            )
        self.shuffle = shuffle
        self._cache: tuple[Any, list[list[float]], list[int]] | None = None

    def _axis(self, space: Space, name: str) -> list[float]:
        return space[name].grid_units(self.per_param.get(name, self.n_points))

    def size(self, space: Space) -> int:
        """The number of distinct configurations in the grid of ``space``."""
        return self._walk(space, count=True)  # type: ignore[no-any-return]

    def _walk(self, space: Space, *, count: bool) -> Any:
        """Count the grid's points, or list them (unit coordinates, lexicographic order).

        Only parameters that others depend on are enumerated one by one; the other
        active axes multiply, so a huge grid is counted without being built.
        """
        unknown = [n for n in self.per_param if n not in space]
        if unknown:
            raise InvalidArgumentError(
                f"GridSampler got n_points for '{unknown[0]}', which is not a parameter of the space "
                f"({', '.join(space.names)})."
            )
        names = space.names
        axes = {n: self._axis(space, n) for n in names}
        parents = {p for n in names for p, _ in space[n].when}
        # In the space's evaluation order, so a parent's own parents are set before it.
        head = [n for n in space.evaluation_order if n in parents]
        tail = [n for n in names if n not in parents]
        points: list[list[float]] = []

        def walk(i: int, values: dict[str, Any], units: dict[str, float]) -> int:
            if i == len(head):
                active = [n for n in tail if space.is_active(n, values)]
                if count:
                    return math.prod(len(axes[n]) for n in active)
                base = [units.get(n, 0.5) for n in names]
                slots = [names.index(n) for n in active]
                for combo in itertools.product(*(axes[n] for n in active)):
                    point = base.copy()
                    for slot, u in zip(slots, combo, strict=True):
                        point[slot] = u
                    points.append(point)
                return 0
            name = head[i]
            if not space.is_active(name, values):
                return walk(i + 1, values, units)
            return sum(walk(i + 1, {**values, name: space[name].from_unit(u)}, {**units, name: u}) for u in axes[name])

        total = walk(0, {}, {})
        return total if count else points

    def grid(self, space: Space) -> list[dict[str, Any]]:
        """Every configuration of the grid, in lexicographic order."""
        self._check_size(space)
        return [space.from_unit(u) for u in self._walk(space, count=False)]

    def _check_size(self, space: Space) -> int:
        size = self.size(space)
        if size > self.max_size:
            raise GridTooLargeError(
                f"The grid has {size:,} points, more than max_size={self.max_size:,}. Use fewer n_points, "
                f"fix some parameters, or raise the limit: GridSampler(max_size={size})."
            )
        return size

    def _points(self, ctx: SampleContext) -> tuple[list[list[float]], list[int]]:
        key = (repr(ctx.space.to_dict()), ctx.seed)
        if self._cache is None or self._cache[0] != key:
            self._check_size(ctx.space)
            points = self._walk(ctx.space, count=False)
            order = list(range(len(points)))
            if self.shuffle:
                import numpy as np

                order = np.random.default_rng([ctx.seed, 0x6121D]).permutation(len(points)).tolist()
            self._cache = (key, points, order)
        return self._cache[1], self._cache[2]

    def suggest(self, ctx: SampleContext) -> Sequence[float]:
        points, order = self._points(ctx)
        if ctx.number >= len(points):
            raise SearchExhausted(f"Every one of the {len(points)} grid points has been handed out.")
        return points[order[ctx.number]]
