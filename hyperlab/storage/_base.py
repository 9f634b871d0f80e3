"""The contract every trial store fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hyperlab.errors import InvalidReportError, TrialFinishedError, UnknownTrialError
from hyperlab.trial import Trial, TrialState

__all__ = ["Storage", "StudyRecord"]


@dataclass(frozen=True)
class StudyRecord:
    """What a store keeps about a study itself (its trials are kept apart)."""

    id: int
    name: str
    space: dict[str, Any]
    direction: str
    metric: str | None
    seed: int
    created: float
    n_trials: int = 0  # trials created, retries included
    n_budgeted: int = 0  # trials that count toward a budget (retries do not)


class Storage(ABC):
    """A durable store of studies and their trials.

    Contract, checked for every backend by ``hyperlab.testing.StorageContract``:

    * Every write is durable when the method returns: a process killed right after
      loses nothing that a returned call wrote.
    * A rejected call (unknown or finished trial, repeated step) raises a
      :class:`~hyperlab.errors.HyperlabError` and changes nothing.
    * Trial numbers are unique within a study and given out atomically, also when
      several processes share the store.
    * Reads return snapshots: changing a returned object changes nothing stored.

    Called by :class:`~hyperlab.study.Study` (and by the trials it hands out); samplers
    and schedulers never see the store directly.
    """

    # -- studies ---------------------------------------------------------------------
    @abstractmethod
    def get_or_create_study(
        self, name: str, *, space: dict[str, Any], direction: str, metric: str | None, seed: int, created: float
    ) -> tuple[StudyRecord, bool]:
        """The study called ``name``, created with these settings if it does not exist.

        Returns the stored record (whose settings the caller compares with its own)
        and whether it was created by this call.
        """

    @abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; :class:`UnknownStudyError` if there is none."""

    @abstractmethod
    def list_studies(self) -> list[StudyRecord]:
        """Every study in the store, oldest first, with its number of trials."""

    @abstractmethod
    def delete_study(self, name: str) -> None:
        """Remove a study and all its trials."""

    @abstractmethod
    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        """Store a JSON-able value under ``key`` (sampler and scheduler state)."""

    @abstractmethod
    def get_study_attrs(self, study_id: int) -> dict[str, Any]:
        """Every study attribute."""

    # -- trials ----------------------------------------------------------------------
    @abstractmethod
    def create_trial(
        self,
        study_id: int,
        make_params: Callable[[int], dict[str, Any]],
        *,
        started: float,
        parent_id: int | None = None,
        retry_of: int | None = None,
        max_trials: int | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]] | None:
        """Give out the next trial number and store a RUNNING trial with its params
        (and ``system_attrs``, hyperlab's notes on it: the worker that claimed it).

        ``make_params(number)`` is called once the number is reserved, so a sampler can
        seed itself from the number: the same study seed gives trial n the same params
        whichever process asks for it.

        With ``max_trials``, the trial is only created while fewer than that many
        trials count toward the budget (retries do not count); otherwise nothing is
        stored and None is returned. The check and the creation are one atomic step,
        so processes sharing a study never overshoot its budget.

        With ``retry_of``, the trial re-runs failed trial ``retry_of``; only one retry
        of a trial can ever be created: a second attempt returns None.
        """

    @abstractmethod
    def touch(self, study_id: int, numbers: Sequence[int], now: float) -> None:
        """Record a heartbeat for running trials (their worker is alive)."""

    @abstractmethod
    def fail_stale(self, study_id: int, *, deadline: float, now: float, reason: str) -> list[int]:
        """Fail every running trial whose last heartbeat is older than ``deadline``.

        Returns the numbers of the trials it failed (atomically: a trial is failed by
        one caller only).
        """

    @abstractmethod
    def set_system_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        """Replace hyperlab's own notes on a running trial (a scheduler's rungs)."""

    @abstractmethod
    def get_retries(self, study_id: int) -> dict[int, int]:
        """Retried trials: the failed trial's number -> the number of its retry."""

    @abstractmethod
    def get_system_attrs(self, study_id: int) -> dict[int, dict[str, Any]]:
        """Every trial's system attributes, by number (cheap: no curves are read)."""

    @abstractmethod
    def report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None:
        """Append one point to a running trial's learning curve."""

    @abstractmethod
    def finish_trial(
        self, study_id: int, number: int, *, state: TrialState, value: float | None, reason: str | None, ended: float
    ) -> None:
        """Move a running trial to a final state."""

    @abstractmethod
    def set_user_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        """Replace the user attributes of a trial."""

    @abstractmethod
    def get_trial(self, study_id: int, number: int) -> Trial:
        """One trial; :class:`UnknownTrialError` if the study has no such number."""

    @abstractmethod
    def get_trials(
        self, study_id: int, states: tuple[TrialState, ...] | None = None, *, from_number: int = 0
    ) -> list[Trial]:
        """The study's trials in number order, optionally only those in ``states`` and
        numbered ``from_number`` or above."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the store may not be used afterwards."""


# Shared error messages, so that every backend says the same thing.
def unknown_trial(number: int, study_name: str | None = None) -> UnknownTrialError:
    where = f" in study '{study_name}'" if study_name else ""
    return UnknownTrialError(f"There is no trial {number}{where}.")


def trial_finished(number: int, state: TrialState | str, action: str) -> TrialFinishedError:
    state = TrialState(state)
    return TrialFinishedError(
        f"Cannot {action} trial {number}: it is already {state.value}; only a running trial can be changed."
    )


def repeated_step(number: int, step: int) -> InvalidReportError:
    return InvalidReportError(
        f"Trial {number} already has a report at step {step}; each step is reported once, in increasing order."
    )
