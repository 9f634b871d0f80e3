"""Trials: one configuration tried, with its state, value and learning curve."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hyperlab.errors import InvalidArgumentError, InvalidReportError, TrialFinishedError, as_number

if TYPE_CHECKING:
    from hyperlab.study import Study

__all__ = ["TrialState", "Trial", "TrialPruned", "TrialDiverged", "TRIAL_TEST_ATTR"]

# A trial's system attribute: its test metrics on its own weights at its best epoch,
# where its runner measured them (the fused runner does, as a member completes). Only
# the study's best trial's are ever shown (hyperlab tune's report, best): the test
# split is looked at once, never to choose between trials.
TRIAL_TEST_ATTR = "test_metrics"


class TrialState(str, enum.Enum):
    """Where a trial stands. Every state but RUNNING is final."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"  # stopped early by a scheduler; its curve is kept
    DIVERGED = "diverged"  # the loss or the value became NaN/inf
    FAILED = "failed"  # the objective raised, or its worker died

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING

    @classmethod
    def parse(cls, value: TrialState | str) -> TrialState:
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise InvalidArgumentError(f"Trial state must be one of {valid}. Got {value!r} instead.") from None


class TrialPruned(Exception):  # noqa: N818 - named after what happened, like optuna.TrialPruned
    """Raise from an objective to end the trial as PRUNED (its curve is kept)."""


class TrialDiverged(Exception):  # noqa: N818 - named after what happened
    """Raise from an objective to end the trial as DIVERGED; the message is the reason."""


def _timestamp(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc)


@dataclass(eq=False)
class Trial:
    """A configuration being tried or already tried.

    A trial handed out by :meth:`Study.ask` is live: :meth:`report` appends to its
    learning curve and every report is stored before it returns. Trials listed by
    :attr:`Study.trials` are snapshots taken when they were read.

    Attributes:
        id: the trial's number within its study, from 0.
        params: the hyperparameter values (inactive conditional ones are absent).
        state: a :class:`TrialState`.
        value: the objective value of a complete trial, else None.
        curve: step -> {metric: value}, in step order.
        started: start time as seconds since the epoch (UTC).
        ended: end time, or None while running.
        user_attrs: free-form JSON-able annotations.
        parent_id: the trial this one was branched from, if any.
        reason: why a trial was pruned, diverged or failed.
        retry_of: the failed trial whose params this one runs again (worker lost).
        system_attrs: hyperlab's own notes on the trial (the rungs a scheduler recorded, the
            worker that ran it, its test metrics where its runner measured them: see
            TRIAL_TEST_ATTR; left out of the repr).
        heartbeat: when its worker last showed it was alive (seconds since the epoch).
    """

    id: int
    params: dict[str, Any]
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    curve: dict[int, dict[str, float]] = field(default_factory=dict)
    started: float = 0.0
    ended: float | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    parent_id: int | None = None
    reason: str | None = None
    retry_of: int | None = None
    system_attrs: dict[str, Any] = field(default_factory=dict, repr=False)  # not shown: may hold test metrics
    heartbeat: float | None = None
    _study: Study | None = field(default=None, repr=False, compare=False)
    # The scheduler's verdict after the last report: None (go on), or the final state
    # and reason the trial should end with (PRUNED by a scheduler, DIVERGED on NaN/inf).
    _stop: tuple[TrialState, str] | None = field(default=None, repr=False, compare=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trial):
            return NotImplemented
        return self._data() == other._data()

    def _data(self) -> tuple[Any, ...]:
        value = None if self.value is None or math.isnan(self.value) else self.value
        return (
            self.id,
            self.params,
            self.state,
            value,
            self.curve,
            self.started,
            self.ended,
            self.user_attrs,
            self.parent_id,
            self.reason,
            self.retry_of,
            self.system_attrs,
        )

    # -- derived views ---------------------------------------------------------------
    @property
    def started_at(self) -> datetime | None:
        return _timestamp(self.started)

    @property
    def ended_at(self) -> datetime | None:
        return _timestamp(self.ended)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while running."""
        return None if self.ended is None else self.ended - self.started

    @property
    def last_step(self) -> int | None:
        return next(reversed(self.curve), None) if self.curve else None

    def metric(self, name: str) -> list[tuple[int, float]]:
        """The learning curve of one metric as (step, value) pairs."""
        return [(s, m[name]) for s, m in self.curve.items() if name in m]

    # -- live-trial actions ----------------------------------------------------------
    def report(self, step: int, **metrics: float) -> None:
        """Store the metrics measured at ``step`` (an epoch, or an iteration).

        Steps must increase strictly. Metric values are stored as floats; NaN and inf
        are kept as they are, so a divergence can be seen on the curve.

        Example:
            >>> def objective(trial):  # doctest: +SKIP
            ...     for epoch in range(10):
            ...         trial.report(epoch, train_cost=..., dev_error=...)
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidReportError(
                f"The step of a report on trial {self.id} must be a non-negative integer. Got {step!r} instead."
            )
        if step >= 2**63:
            raise InvalidReportError(
                f"The step of a report on trial {self.id} must be below 2**63 (a 64-bit integer). Got {step!r}."
            )
        last = self.last_step
        if last is not None and step <= last:
            raise InvalidReportError(
                f"Trial {self.id} was already reported at step {last}; a new report needs a step greater "
                f"than {last}. Got {step}."
            )
        if not metrics:
            raise InvalidReportError(f"A report on trial {self.id} needs at least one metric, e.g. dev_error=0.1.")
        clean: dict[str, float] = {}
        for key, value in metrics.items():
            number = as_number(value)
            if number is None:
                raise InvalidReportError(
                    f"Metric '{key}' reported on trial {self.id} at step {step} must be a number. "
                    f"Got {value!r} instead."
                )
            clean[key] = number
        study = self._live()
        study.storage.report(study._study_id, self.id, step, clean)
        self.curve[step] = clean
        self._stop = study._judge(self, step, clean)

    def should_stop(self) -> bool:
        """Whether the study's scheduler says to stop this trial now (ask it after each report).

        True when the optimized metric became NaN/inf (the trial will end as diverged) or
        when the scheduler (ASHA, Hyperband, median) stops it (it will end as pruned, its
        curve kept). Return (or raise :class:`TrialPruned`) from the objective when it is.

        Example:
            >>> def objective(trial):  # doctest: +SKIP
            ...     for epoch in range(30):
            ...         trial.report(epoch, dev_error=train_one_epoch())
            ...         if trial.should_stop():
            ...             break
        """
        return self._stop is not None

    @property
    def stop_reason(self) -> str | None:
        """Why :meth:`should_stop` is True, or None."""
        return None if self._stop is None else self._stop[1]

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-able annotation to this trial (stored at once)."""
        if not isinstance(key, str):
            raise InvalidArgumentError(f"A user attribute's key must be a string. Got {key!r} on trial {self.id}.")
        try:
            json.dumps(value)  # what every store can keep, memory included
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(
                f"User attribute '{key}' of trial {self.id} must be JSON-able (numbers, strings, lists, dicts): {e}."
            ) from None
        attrs = {**self.user_attrs, key: value}
        self._live().storage.set_user_attrs(self._live()._study_id, self.id, attrs)
        self.user_attrs = attrs

    def _live(self) -> Study:
        if self._study is None:
            raise TrialFinishedError(
                f"Trial {self.id} is a detached snapshot; report on the trial that ask() returned."
            )
        if self.state.is_finished:
            raise TrialFinishedError(
                f"Trial {self.id} is already {self.state.value}; only a running trial takes reports."
            )
        return self._study
