"""Search spaces: parameters on the right scale, importance tiers, conditions.

Every parameter maps its values to the unit interval and back (``to_unit`` /
``from_unit``), so samplers work in the unit cube [0, 1]^d and never branch on the
kind or scale of a parameter. Uniform sampling in the unit cube is then uniform on
each parameter's own scale: on a log scale every decade gets the same share.

Parameters are checked when they are placed in a :class:`Space`, so that the error
can name them::

    >>> space = Space(
    ...     learning_rate=Float(1e-4, 1.0, scale="log", tier=1),
    ...     momentum=Float(0.9, 0.999, scale="reverse_log", tier=2),
    ...     optimizer=Choice(["momentum", "adam"]),
    ...     beta2=Float(0.99, 0.9999, scale="reverse_log", when={"optimizer": "adam"}),
    ... )
    >>> round(space.from_unit([0.5, 0.5, 0.25, 0.5])["learning_rate"], 12)
    0.01

This module is pure Python (no NumPy) to keep ``import hyperlab`` light.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hyperlab._params import KINDS, Choice, Fixed, Float, Int, Param, Scalar
from hyperlab.errors import InvalidParamsError, InvalidSpaceError

__all__ = [
    "Param",
    "Float",
    "Int",
    "Choice",
    "Fixed",
    "Space",
    "course_space",
    "ADAM_DEFAULTS",
]

# The course: "Adam beta1, beta2, epsilon - almost always left at 0.9, 0.999, 1e-8".
ADAM_DEFAULTS: dict[str, float] = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}


class Space(Mapping[str, Param]):
    """An ordered set of named parameters, some of them conditional.

    Build it from keyword arguments or from a mapping (``Space({"lr": Float(...)})``).
    Samplers see a point as a list of unit coordinates, one per parameter in order;
    :meth:`from_unit` turns it into the params dict of a trial, leaving out the
    parameters whose ``when`` condition does not hold.
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kwargs: Param) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise InvalidSpaceError(
                f"Space takes a mapping of names to parameters, or keywords (Space(lr=Float(...))). Got {params!r}."
            )
        items: dict[str, Param] = {}
        for source in (params or {}, kwargs):
            for name, p in source.items():
                if name in items:
                    raise InvalidSpaceError(f"Parameter '{name}' is defined twice; names must be unique.")
                items[name] = p
        for name, p in items.items():
            if not isinstance(name, str) or not name:
                raise InvalidSpaceError(f"Parameter names must be non-empty strings; got {name!r}.")
            if not isinstance(p, Param):
                raise InvalidSpaceError(f"Parameter '{name}' must be a Float, Int, Choice or Fixed; got {p!r}.")
            p.check(name)
        self._params = items
        self._names = tuple(items)
        self._order = self._check_conditions()

    def _check_conditions(self) -> list[int]:
        """Validate every ``when`` and return an evaluation order (parents first)."""
        for name, p in self._params.items():
            for parent, allowed in p.when:
                if parent == name:
                    raise InvalidSpaceError(f"Parameter '{name}' has a 'when' on itself.")
                if parent not in self._params:
                    raise InvalidSpaceError(
                        f"Parameter '{name}' has when={{'{parent}': ...}}, but there is no parameter "
                        f"'{parent}'; known parameters: {', '.join(self._names)}."
                    )
                pp = self._params[parent]
                if isinstance(pp, Float):
                    raise InvalidSpaceError(
                        f"Parameter '{name}' has a 'when' on '{parent}', a Float; conditions must be "
                        "on a Choice, Int or Fixed parameter."
                    )
                for value in allowed:
                    # A Fixed parent is a tier held still: its children simply stay
                    # inactive until it is opened again.
                    if not isinstance(pp, Fixed) and not pp.contains(value):
                        raise InvalidSpaceError(
                            f"Parameter '{name}' has when={{'{parent}': {value!r}}}, but {value!r} is not "
                            f"a value of '{parent}' ({pp.describe()})."
                        )
        order: list[int] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(n: str, path: list[str]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                cycle = " -> ".join([*path[path.index(n) :], n])
                raise InvalidSpaceError(f"The 'when' conditions form a cycle: {cycle}.")
            state[n] = 1
            for parent, _ in self._params[n].when:
                visit(parent, [*path, n])
            state[n] = 2
            order.append(self._names.index(n))

        for n in self._names:
            visit(n, [])
        return order

    # -- Mapping ---------------------------------------------------------------------
    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={p!r}" for n, p in self._params.items())
        return f"Space({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self._names))

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def evaluation_order(self) -> list[str]:
        """Parameter names with every condition's parents before its children."""
        return [self._names[i] for i in self._order]

    # -- points ----------------------------------------------------------------------
    def from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        """The params of the point ``u`` (one coordinate per parameter, in order).

        Parameters whose condition does not hold are left out; their coordinates are
        ignored.
        """
        if len(u) != len(self._names):
            raise InvalidParamsError(f"A point of this space has {len(self._names)} coordinates; got {len(u)}.")
        values: dict[str, Any] = {}
        for i in self._order:
            name = self._names[i]
            p = self._params[name]
            if all(parent in values and values[parent] in allowed for parent, allowed in p.when):
                values[name] = p.from_unit(float(u[i]))
        return {n: values[n] for n in self._names if n in values}

    def to_unit(self, params: Mapping[str, Any]) -> list[float]:
        """The unit coordinates of ``params``; NaN for parameters that are inactive."""
        return [self._params[n].to_unit(params[n]) if n in params else math.nan for n in self._names]

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` applies, given the values of its parents."""
        return all(parent in params and params[parent] in allowed for parent, allowed in self._params[name].when)

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidParamsError` unless ``params`` is a point of this space."""
        unknown = [k for k in params if k not in self._params]
        if unknown:
            raise InvalidParamsError(f"Unknown parameter '{unknown[0]}'; the space has: {', '.join(self._names)}.")
        for i in self._order:
            name = self._names[i]
            p = self._params[name]
            active = self.is_active(name, params)
            if active and name not in params:
                raise InvalidParamsError(f"Parameter '{name}' is missing; it must be {p.describe()}.")
            if not active and name in params:
                raise InvalidParamsError(
                    f"Parameter '{name}' was given, but its condition {dict((a, list(b)) for a, b in p.when)} "
                    "does not hold."
                )
            if active and not p.contains(params[name]):
                raise InvalidParamsError(f"Parameter '{name}' got {params[name]!r}; valid values are {p.describe()}.")

    # -- tiers ------------------------------------------------------------------------
    def tiers(self) -> dict[int | None, list[str]]:
        """Parameter names grouped by importance tier."""
        out: dict[int | None, list[str]] = {}
        for n, p in self._params.items():
            out.setdefault(p.tier, []).append(n)
        return out

    def fix(self, **values: Any) -> Space:
        """A copy of this space with the named parameters held at the given values."""
        params = dict(self._params)
        for name, value in values.items():
            if name not in params:
                raise InvalidParamsError(
                    f"Cannot fix unknown parameter '{name}'; the space has: {', '.join(self._names)}."
                )
            p = params[name]
            if not isinstance(p, Fixed) and not p.contains(value):
                raise InvalidParamsError(f"Cannot fix '{name}' at {value!r}; valid values are {p.describe()}.")
            params[name] = Fixed(value, tier=p.tier, when=_when_dict(p), default=value)
        return Space(params)

    def restrict(self, max_tier: int) -> Space:
        """A copy with every parameter of a tier above ``max_tier`` fixed at its default.

        This is the course's order of work: tune tier 1 first, then open tier 2, ...
        """
        if isinstance(max_tier, bool) or not isinstance(max_tier, int) or not 1 <= max_tier <= 4:
            raise InvalidSpaceError(f"max_tier must be an integer from 1 to 4. Got {max_tier!r} instead.")
        to_fix = {}
        for name, p in self._params.items():
            if p.tier is not None and p.tier > max_tier and not isinstance(p, Fixed):
                if p.default is None:
                    raise InvalidSpaceError(
                        f"Parameter '{name}' (tier {p.tier}) has no default to be fixed at; "
                        "give it one with default=..."
                    )
                to_fix[name] = p.default
        return self.fix(**to_fix)

    # -- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {n: p.to_dict() for n, p in self._params.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Space:
        params: dict[str, Param] = {}
        for name, d in data.items():
            d = dict(d)
            kind = d.pop("kind", None)
            if kind not in KINDS:
                raise InvalidSpaceError(f"Parameter '{name}' has kind {kind!r}; valid kinds: {', '.join(KINDS)}.")
            try:
                params[name] = KINDS[kind](**d)
            except TypeError as e:
                raise InvalidSpaceError(f"Parameter '{name}' ({kind}) cannot be built from {d!r}: {e}.") from e
        return cls(params)


def _when_dict(p: Param) -> dict[str, list[Scalar]] | None:
    return {parent: list(allowed) for parent, allowed in p.when} or None


def course_space(*, max_tier: int = 3) -> Space:
    """The search space of the course, with its importance tiers.

    Tier 1: learning rate. Tier 2: momentum beta, hidden units, mini-batch size.
    Tier 3: number of layers, learning-rate decay. Tier 4: Adam's beta1, beta2 and
    epsilon, held at 0.9 / 0.999 / 1e-8 unless ``max_tier=4`` opens them.

    Example:
        >>> sorted(course_space().tiers()[1])
        ['learning_rate']
    """
    space = Space(
        learning_rate=Float(1e-4, 1.0, scale="log", tier=1, default=1e-3),
        optimizer=Choice(["momentum", "adam"], tier=2, default="adam"),
        momentum=Float(0.8, 0.999, scale="reverse_log", tier=2, default=0.9, when={"optimizer": "momentum"}),
        hidden_units=Int(16, 512, scale="log", tier=2, default=128),
        batch_size=Choice([32, 64, 128, 256, 512], tier=2, default=64),
        n_layers=Int(1, 4, tier=3, default=2),
        lr_decay=Choice(["none", "inverse", "exponential"], tier=3, default="none"),
        decay_rate=Float(1e-3, 1.0, scale="log", tier=3, default=0.1, when={"lr_decay": "inverse"}),
        decay_base=Float(0.8, 0.999, scale="reverse_log", tier=3, default=0.95, when={"lr_decay": "exponential"}),
        adam_beta1=Float(
            0.8, 0.99, scale="reverse_log", tier=4, default=ADAM_DEFAULTS["adam_beta1"], when={"optimizer": "adam"}
        ),
        adam_beta2=Float(
            0.99, 0.9999, scale="reverse_log", tier=4, default=ADAM_DEFAULTS["adam_beta2"], when={"optimizer": "adam"}
        ),
        adam_epsilon=Float(
            1e-10, 1e-6, scale="log", tier=4, default=ADAM_DEFAULTS["adam_epsilon"], when={"optimizer": "adam"}
        ),
    )
    return space.restrict(max_tier) if max_tier < 4 else space
