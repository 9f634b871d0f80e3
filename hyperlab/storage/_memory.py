"""A store in the memory of one process: fast, and gone when the process ends."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from hyperlab.errors import StudyMismatchError, UnknownStudyError
from hyperlab.storage._base import Storage, StudyRecord, repeated_step, trial_finished, unknown_trial
from hyperlab.trial import Trial, TrialState

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """Keeps studies in dicts, guarded by a lock so threads can share it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[int, list[Trial]] = {}
        self._attrs: dict[int, dict[str, Any]] = {}

    # -- studies ---------------------------------------------------------------------
    def get_or_create_study(
        self, name: str, *, space: dict[str, Any], direction: str, metric: str | None, seed: int, created: float
    ) -> tuple[StudyRecord, bool]:
        with self._lock:
            if name in self._studies:
                return self.get_study(name), False
            record = StudyRecord(len(self._studies) + 1, name, copy.deepcopy(space), direction, metric, seed, created)
            self._studies[name] = record
            self._trials[record.id] = []
            self._attrs[record.id] = {}
            return record, True

    def get_study(self, name: str) -> StudyRecord:
        with self._lock:
            if name not in self._studies:
                raise UnknownStudyError(f"There is no study named '{name}' in this store.")
            r = self._studies[name]
            return replace(r, space=copy.deepcopy(r.space), n_trials=len(self._trials[r.id]))

    def list_studies(self) -> list[StudyRecord]:
        with self._lock:
            return [self.get_study(n) for n in self._studies]

    def delete_study(self, name: str) -> None:
        with self._lock:
            record = self.get_study(name)
            del self._studies[name], self._trials[record.id], self._attrs[record.id]

    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        with self._lock:
            self._attrs[study_id][key] = copy.deepcopy(value)

    def get_study_attrs(self, study_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._attrs[study_id])

    # -- trials ----------------------------------------------------------------------
    def _get(self, study_id: int, number: int) -> Trial:
        trials = self._trials.get(study_id)
        if trials is None:
            raise StudyMismatchError(f"Study id {study_id} no longer exists in this store.")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < len(trials):
            raise unknown_trial(number)
        return trials[number]

    def create_trial(
        self,
        study_id: int,
        make_params: Callable[[int], dict[str, Any]],
        *,
        started: float,
        parent_id: int | None = None,
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            trials = self._trials[study_id]
            number = len(trials)
            params = make_params(number)
            trials.append(Trial(number, copy.deepcopy(params), started=started, parent_id=parent_id))
            return number, params

    def report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None:
        with self._lock:
            t = self._get(study_id, number)
            if t.state.is_finished:
                raise trial_finished(number, t.state, "report on")
            if step in t.curve:
                raise repeated_step(number, step)
            t.curve[step] = dict(metrics)

    def finish_trial(
        self, study_id: int, number: int, *, state: TrialState, value: float | None, reason: str | None, ended: float
    ) -> None:
        with self._lock:
            t = self._get(study_id, number)
            if t.state.is_finished:
                raise trial_finished(number, t.state, "finish")
            t.state, t.value, t.reason, t.ended = state, value, reason, ended

    def set_user_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        with self._lock:
            t = self._get(study_id, number)
            if t.state.is_finished:
                raise trial_finished(number, t.state, "annotate")
            t.user_attrs = copy.deepcopy(dict(attrs))

    def get_trial(self, study_id: int, number: int) -> Trial:
        with self._lock:
            return copy.deepcopy(self._get(study_id, number))

    def get_trials(self, study_id: int, states: tuple[TrialState, ...] | None = None) -> list[Trial]:
        with self._lock:
            return [copy.deepcopy(t) for t in self._trials[study_id] if states is None or t.state in states]
