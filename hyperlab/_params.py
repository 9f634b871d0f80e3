"""The parameters of a search space: Float, Int, Choice and Fixed, each owning its scale.

Public through :mod:`hyperlab.space` (and ``hyperlab``). Pure Python, no NumPy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hyperlab.errors import InvalidParamsError, InvalidSpaceError

__all__ = ["Param", "Float", "Int", "Choice", "Fixed", "Scalar", "KINDS"]

Scalar = str | int | float | bool | None
FloatScale = Literal["linear", "log", "reverse_log"]
IntScale = Literal["linear", "log"]


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
        if not values:  # the parameter could never be active
            raise InvalidSpaceError(f"'when' on '{parent}' lists no value; give the values it applies for.")
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
            if isinstance(v, bool) or not isinstance(v, int | float) or not _finite(v):
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
        bad = [o for o in self.options if not _scalar(o)]
        if bad:
            problems.append(
                ("options", f"options must be strings, numbers (not NaN), booleans or None; got {bad[0]!r}")
            )
        seen: list[Any] = []
        for o in self.options:
            twin = next((s for s in seen if o == s and isinstance(o, bool) == isinstance(s, bool)), None)
            if twin is not None:
                said = "appears twice" if type(o) is type(twin) else f"equals {twin!r}"
                problems.append(("options", f"options must be distinct; {o!r} {said}"))
                break
            seen.append(o)
        return problems

    def _index(self, value: Any) -> int:
        for i, o in enumerate(self.options):
            if o == value and (type(o) is type(value) or (not isinstance(value, bool) and not isinstance(o, bool))):
                return i
        raise InvalidParamsError(f"{value!r} is not one of the options {list(self.options)!r}.")

    def option(self, value: Any) -> Scalar:
        """The option equal to ``value`` (a NumPy scalar for 1 gives the option 1, which
        a store can write)."""
        return self.options[self._index(value)]

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
        if not _scalar(self.value):
            return [("value", f"value must be a string, number (not NaN), boolean or None; got {self.value!r}")]
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
        # a bool is not the number 1 or 0 here, as in Choice; nor is a NumPy scalar, which
        # the store could not write
        return _scalar(value) and isinstance(value, bool) == isinstance(self.value, bool) and value == self.value

    def describe(self) -> str:
        return f"= {self.value!r}"

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value}


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _scalar(v: object) -> bool:
    """A value a Choice or Fixed may hold: a string, a number (not NaN, which equals
    nothing, itself included), a boolean or None."""
    if isinstance(v, float) and math.isnan(v):
        return False
    return v is None or isinstance(v, str | int | float | bool)


KINDS: dict[str, type[Param]] = {c.kind: c for c in (Float, Int, Choice, Fixed)}
