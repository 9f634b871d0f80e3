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
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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

Scalar = str | int | float | bool | None
FloatScale = Literal["linear", "log", "reverse_log"]
IntScale = Literal["linear", "log"]

# The course: "Adam beta1, beta2, epsilon - almost always left at 0.9, 0.999, 1e-8".
ADAM_DEFAULTS: dict[str, float] = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}


def _clip_unit(u: float) -> float:
    if not 0.0 <= u <= 1.0:
        if math.isnan(u):
            raise InvalidParamsError(f"A unit-interval coordinate must be in [0, 1]. Got {u!r}.")
        return 0.0 if u < 0.0 else 1.0
    return u


def _normalize_when(when: Mapping[str, Any] | None) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping):
        raise InvalidSpaceError(f"'when' must be a mapping such as {{'optimizer': 'adam'}}. Got {when!r}.")
    out = []
    for parent, allowed in when.items():
        values = tuple(allowed) if isinstance(allowed, list | tuple | set | frozenset) else (allowed,)
        out.append((str(parent), values))
    return tuple(out)


@dataclass(frozen=True)
class Param(ABC):
    """A hyperparameter: its domain, its scale, its importance tier and its condition.

    Args (keyword-only, shared by every kind):
        tier: importance tier 1 (tune first) to 4 (rarely tuned), as in the course.
        when: condition on other parameters, e.g. ``{"optimizer": "adam"}`` or
            ``{"optimizer": ["adam", "rmsprop"]}``; the parameter is absent from a
            trial's params when the condition does not hold.
        default: the value used when the parameter is fixed (see :meth:`Space.restrict`).
    """

    kind: ClassVar[str] = "param"

    tier: int | None = field(default=None, kw_only=True)
    when: Any = field(default=None, kw_only=True)
    default: Any = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _normalize_when(self.when))

    # -- the unit-interval mapping -------------------------------------------------
    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Map a value of this parameter to a coordinate in [0, 1]."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """Map a coordinate in [0, 1] to a value; every u gives a valid value."""

    @abstractmethod
    def grid_units(self, n: int) -> list[float]:
        """Unit coordinates of at most ``n`` distinct values spaced on this scale."""

    # -- checks --------------------------------------------------------------------
    @abstractmethod
    def _problems(self) -> list[tuple[str, str]]:
        """What is wrong with this parameter's own settings: (field, message) pairs."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value this parameter can take."""

    def problems(self) -> list[tuple[str, str]]:
        """Every invalid setting as (field, message); empty when the parameter is valid."""
        problems = self._problems()
        if self.tier is not None and (
            isinstance(self.tier, bool) or not isinstance(self.tier, int) or not 1 <= self.tier <= 4
        ):
            problems.append(("tier", f"tier must be an integer from 1 to 4; got {self.tier!r}"))
        if self.default is not None and not self.contains(self.default):
            problems.append(("default", f"default {self.default!r} is not a value of this parameter"))
        return problems

    def check(self, name: str) -> None:
        """Raise :class:`InvalidSpaceError` naming ``name`` if the settings are invalid."""
        problems = self.problems()
        if problems:
            text = "; ".join(message for _, message in problems)
            raise InvalidSpaceError(f"Parameter '{name}' ({self!r}) is invalid: {text}.")

    def describe(self) -> str:
        """A short human-readable domain such as ``[0.0001, 1] log``."""
        return repr(self)

    def __repr__(self) -> str:
        d = self.to_dict()
        d.pop("kind")
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in d.items()) + ")"

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description; :meth:`Space.from_dict` rebuilds the parameter."""
        out: dict[str, Any] = {"kind": self.kind}
        out.update(self._fields())
        if self.tier is not None:
            out["tier"] = self.tier
        if self.when:
            out["when"] = {p: list(v) for p, v in self.when}
        if self.default is not None:
            out["default"] = self.default
        return out

    @abstractmethod
    def _fields(self) -> dict[str, Any]: ...


@dataclass(frozen=True, repr=False)
class Float(Param):
    """A real-valued parameter in [low, high].

    ``scale="log"`` samples the exponent uniformly (learning rate in [1e-4, 1]: each
    decade gets a quarter of the trials). ``scale="reverse_log"`` samples 1 - x on a log
    scale, for averaging coefficients near 1 (beta in [0.9, 0.999]: 1 - beta in
    [1e-3, 1e-1], so [0.9, 0.99] and [0.99, 0.999] get half the trials each).

    Example:
        >>> round(Float(1e-4, 1.0, scale="log").from_unit(0.25), 12)
        0.001
    """

    kind: ClassVar[str] = "float"

    low: float
    high: float
    scale: FloatScale = "linear"

    def _problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for attr in ("low", "high"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                problems.append((attr, f"{attr} must be a finite number; got {v!r}"))
        if problems:
            return problems
        if self.low >= self.high:
            problems.append(("low", f"low must be less than high; got low={self.low!r}, high={self.high!r}"))
        if self.scale == "log" and self.low <= 0:
            problems.append(("low", f"scale='log' needs low > 0; got low={self.low!r}"))
        elif self.scale == "reverse_log" and self.high >= 1:
            problems.append(
                ("high", f"scale='reverse_log' samples 1 - x on a log scale and needs high < 1; got high={self.high!r}")
            )
        elif self.scale not in ("linear", "log", "reverse_log"):
            problems.append(("scale", f"scale must be 'linear', 'log' or 'reverse_log'; got {self.scale!r}"))
        return problems

    def _transformed(self) -> tuple[float, float]:
        if self.scale == "log":
            return math.log(self.low), math.log(self.high)
        if self.scale == "reverse_log":
            return math.log1p(-self.low), math.log1p(-self.high)
        return float(self.low), float(self.high)

    def from_unit(self, u: float) -> float:
        a, b = self._transformed()
        t = a + _clip_unit(u) * (b - a)
        if self.scale == "log":
            # 15 significant digits: exp(log(0.01)) is 0.010000000000000004; a grid
            # should show 0.01. The change is below 1e-15 relative.
            v = float(f"{math.exp(t):.15g}")
        elif self.scale == "reverse_log":
            v = float(f"{-math.expm1(t):.15g}")
        else:
            v = t
        return min(max(v, self.low), self.high)  # rounding must not leave the domain

    def to_unit(self, value: Any) -> float:
        a, b = self._transformed()
        v = float(value)
        if self.scale == "log":
            t = math.log(v)
        elif self.scale == "reverse_log":
            t = math.log1p(-v)
        else:
            t = v
        return _clip_unit((t - a) / (b - a))

    def grid_units(self, n: int) -> list[float]:
        if n <= 1:
            return [0.5]
        return [i / (n - 1) for i in range(n)]

    def contains(self, value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, int | float) and self.low <= value <= self.high

    def describe(self) -> str:
        return f"[{self.low:g}, {self.high:g}] {self.scale}"

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "scale": self.scale}


@dataclass(frozen=True, repr=False)
class Int(Param):
    """An integer parameter in [low, high] with a step.

    Every value gets an equal share of the unit interval on a linear scale. On a log
    scale (step 1 only) the value is the rounding of a log-uniform draw from
    [low - 0.5, high + 0.5], so each value v gets a share proportional to
    log((v + 0.5) / (v - 0.5)), about 1/v: hidden units in [16, 512] get as many trials
    in [16, 64] as in [128, 512].
    """

    kind: ClassVar[str] = "int"

    low: int
    high: int
    scale: IntScale = "linear"
    step: int = 1

    def _problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for attr in ("low", "high", "step"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int):
                problems.append((attr, f"{attr} must be an integer; got {v!r}"))
        if problems:
            return problems
        if self.low >= self.high:
            problems.append(("low", f"low must be less than high; got low={self.low!r}, high={self.high!r}"))
        if self.step < 1:
            problems.append(("step", f"step must be a positive integer; got {self.step!r}"))
        elif (self.high - self.low) % self.step:
            problems.append(
                ("high", f"high - low must be a multiple of step={self.step}; got low={self.low}, high={self.high}")
            )
        if self.scale == "log":
            if self.low < 1:
                problems.append(("low", f"scale='log' needs low >= 1; got low={self.low!r}"))
            if self.step != 1:
                problems.append(("step", f"scale='log' needs step=1; got step={self.step!r}"))
        elif self.scale != "linear":
            problems.append(("scale", f"scale must be 'linear' or 'log'; got {self.scale!r}"))
        return problems

    @property
    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1

    def from_unit(self, u: float) -> int:
        u = _clip_unit(u)
        if self.scale == "log":
            a, b = math.log(self.low - 0.5), math.log(self.high + 0.5)
            v = round(math.exp(a + u * (b - a)))
            return min(max(v, self.low), self.high)
        n = self.n_values
        return self.low + self.step * min(int(u * n), n - 1)

    def to_unit(self, value: Any) -> float:
        v = int(value)
        if self.scale == "log":
            a, b = math.log(self.low - 0.5), math.log(self.high + 0.5)
            # The geometric middle of v's bucket [v - 0.5, v + 0.5] on the log scale.
            t = 0.5 * (math.log(v - 0.5) + math.log(v + 0.5))
            return _clip_unit((t - a) / (b - a))
        return ((v - self.low) // self.step + 0.5) / self.n_values

    def grid_units(self, n: int) -> list[float]:
        if n >= self.n_values:
            values: Sequence[int] = range(self.low, self.high + 1, self.step)
        else:
            ts = Float(0.0, 1.0).grid_units(n)
            if self.scale == "log":  # space the values on the log scale, then round
                a, b = math.log(self.low), math.log(self.high)
                values = sorted({min(max(round(math.exp(a + t * (b - a))), self.low), self.high) for t in ts})
            else:
                values = sorted({self.low + self.step * round(t * (self.n_values - 1)) for t in ts})
        return [self.to_unit(v) for v in values]

    def contains(self, value: Any) -> bool:
        return (
            not isinstance(value, bool)
            and isinstance(value, int)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"[{self.low}, {self.high}] {self.scale}{step} (int)"

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "scale": self.scale, "step": self.step}


@dataclass(frozen=True, repr=False)
class Choice(Param):
    """One of a list of options (strings, numbers, booleans).

    Each option gets an equal share of the unit interval, in the order given.
    """

    kind: ClassVar[str] = "choice"

    options: Sequence[Scalar]

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.options, list | tuple):
            object.__setattr__(self, "options", tuple(self.options))

    def _problems(self) -> list[tuple[str, str]]:
        if not isinstance(self.options, tuple):
            return [("options", f"options must be a list; got {self.options!r}")]
        if not self.options:
            return [("options", "options must hold at least one value; got an empty list")]
        problems: list[tuple[str, str]] = []
        bad = [o for o in self.options if not isinstance(o, str | int | float | bool) and o is not None]
        if bad:
            problems.append(("options", f"options must be strings, numbers, booleans or None; got {bad[0]!r}"))
        seen: list[Any] = []
        for o in self.options:
            if any(o == s and type(o) is type(s) for s in seen):
                problems.append(("options", f"options must be distinct; {o!r} appears twice"))
                break
            seen.append(o)
        return problems

    def _index(self, value: Any) -> int:
        for i, o in enumerate(self.options):
            if o == value and (type(o) is type(value) or (not isinstance(value, bool) and not isinstance(o, bool))):
                return i
        raise InvalidParamsError(f"{value!r} is not one of the options {list(self.options)!r}.")

    def from_unit(self, u: float) -> Scalar:
        n = len(self.options)
        return self.options[min(int(_clip_unit(u) * n), n - 1)]

    def to_unit(self, value: Any) -> float:
        return (self._index(value) + 0.5) / len(self.options)

    def grid_units(self, n: int) -> list[float]:
        return [(i + 0.5) / len(self.options) for i in range(len(self.options))]

    def contains(self, value: Any) -> bool:
        try:
            self._index(value)
        except InvalidParamsError:
            return False
        return True

    def describe(self) -> str:
        return "{" + ", ".join(map(repr, self.options)) + "}"

    def _fields(self) -> dict[str, Any]:
        return {"options": list(self.options)}


@dataclass(frozen=True, repr=False)
class Fixed(Param):
    """A parameter held at one value (a tier the user has not opened yet)."""

    kind: ClassVar[str] = "fixed"

    value: Scalar

    def _problems(self) -> list[tuple[str, str]]:
        if not isinstance(self.value, str | int | float | bool) and self.value is not None:
            return [("value", f"value must be a string, number, boolean or None; got {self.value!r}")]
        return []

    def from_unit(self, u: float) -> Scalar:
        return self.value

    def to_unit(self, value: Any) -> float:
        if not self.contains(value):
            raise InvalidParamsError(f"{value!r} is not the fixed value {self.value!r}.")
        return 0.5

    def grid_units(self, n: int) -> list[float]:
        return [0.5]

    def contains(self, value: Any) -> bool:
        return bool(value == self.value)

    def describe(self) -> str:
        return f"= {self.value!r}"

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value}


_KINDS: dict[str, type[Param]] = {c.kind: c for c in (Float, Int, Choice, Fixed)}


class Space(Mapping[str, Param]):
    """An ordered set of named parameters, some of them conditional.

    Build it from keyword arguments or from a mapping (``Space({"lr": Float(...)})``).
    Samplers see a point as a list of unit coordinates, one per parameter in order;
    :meth:`from_unit` turns it into the params dict of a trial, leaving out the
    parameters whose ``when`` condition does not hold.
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kwargs: Param) -> None:
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
            if kind not in _KINDS:
                raise InvalidSpaceError(f"Parameter '{name}' has kind {kind!r}; valid kinds: {', '.join(_KINDS)}.")
            try:
                params[name] = _KINDS[kind](**d)
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
