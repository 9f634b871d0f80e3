"""The exceptions hyperlab raises.

Every error is a :class:`HyperlabError` and also the builtin that fits it
(``ValueError``, ``KeyError``, ...), so callers can catch either. Messages name the
parameter, trial or field, the value that was given and what would have been valid.
"""

from __future__ import annotations

__all__ = [
    "check_int",
    "HyperlabError",
    "InvalidSpaceError",
    "InvalidParamsError",
    "InvalidArgumentError",
    "StudyMismatchError",
    "UnknownStudyError",
    "UnknownTrialError",
    "TrialFinishedError",
    "InvalidReportError",
    "NoCompletedTrialError",
    "GridTooLargeError",
    "StorageError",
    "SchemaVersionError",
]


class HyperlabError(Exception):
    """Base class of every error raised by hyperlab for a user mistake or bad state."""


class InvalidSpaceError(HyperlabError, ValueError):
    """A search space or one of its parameters is malformed."""


class InvalidParamsError(HyperlabError, ValueError):
    """A dict of parameter values does not belong to the search space."""


class InvalidArgumentError(HyperlabError, ValueError):
    """An argument of a public function or constructor is out of its valid range."""


class StudyMismatchError(HyperlabError, ValueError):
    """A study was opened with settings that differ from the stored ones."""


class UnknownStudyError(HyperlabError, KeyError):
    """A study name that the storage does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownTrialError(HyperlabError, KeyError):
    """A trial id that the study does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message with quotes
        return str(self.args[0]) if self.args else ""


class TrialFinishedError(HyperlabError, RuntimeError):
    """A report or tell on a trial that is no longer running."""


class InvalidReportError(HyperlabError, ValueError):
    """A report with a step or metric that cannot be stored."""


class NoCompletedTrialError(HyperlabError, ValueError):
    """A question (such as the best trial) that needs at least one complete trial."""


class GridTooLargeError(HyperlabError, ValueError):
    """A grid with more points than the sampler's limit."""


class StorageError(HyperlabError, RuntimeError):
    """The storage backend failed; the operation was rolled back."""


class SchemaVersionError(StorageError):
    """The database was written by a newer hyperlab whose schema this one cannot read."""


def check_int(owner: str, name: str, value: object, low: int = 1) -> None:
    """Raise InvalidArgumentError unless ``value`` (the ``name`` parameter of ``owner``)
    is an int >= ``low`` (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
        raise InvalidArgumentError(f"The '{name}' parameter of {owner} must be {what}. Got {value!r} instead.")


def check_seconds(owner: str, name: str, value: object) -> None:
    """Raise InvalidArgumentError unless ``value`` (the ``name`` parameter of ``owner``)
    is None or a finite number of seconds > 0 that a thread can wait (NaN would never
    end a wait, nor stop a timeout; infinity or a huge value overflows it)."""
    import math
    import threading

    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= threading.TIMEOUT_MAX
    ):
        raise InvalidArgumentError(
            f"The '{name}' parameter of {owner} must be a positive, finite number of seconds"
            f"{'' if name != 'timeout' else ' (None for no limit)'}. Got {value!r} instead."
        )


def as_number(value: object) -> float | None:
    """``value`` as a float (a Python or NumPy number, a one-element tensor), or None
    when it is not a number: a string, a bool, or an int too large for a float."""
    if isinstance(value, str | bytes | bool) or type(value).__name__ == "bool_":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
