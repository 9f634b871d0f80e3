"""A store in the memory of one process: fast, and gone when the process ends."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
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
            trials = self._trials[r.id]
            return replace(
                r,
                space=copy.deepcopy(r.space),
                n_trials=len(trials),
                n_budgeted=sum(t.retry_of is None for t in trials),
            )

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
        retry_of: int | None = None,
        max_trials: int | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            trials = self._trials[study_id]
            if retry_of is not None:
                if any(t.retry_of == retry_of for t in trials):
                    return None
            elif max_trials is not None and sum(t.retry_of is None for t in trials) >= max_trials:
                return None
            number = len(trials)
            params = make_params(number)
            trials.append(
                Trial(
                    number,
                    copy.deepcopy(params),
                    started=started,
                    parent_id=parent_id,
                    retry_of=retry_of,
                    heartbeat=started,
                    system_attrs=copy.deepcopy(dict(system_attrs or {})),
                )
            )
            return number, params

    def touch(self, study_id: int, numbers: Sequence[int], now: float) -> None:
        with self._lock:
            for n in numbers:
                t = self._get(study_id, n)
                if not t.state.is_finished:
                    t.heartbeat = now

    def fail_stale(self, study_id: int, *, deadline: float, now: float, reason: str) -> list[int]:
        with self._lock:
            failed = []
            for t in self._trials[study_id]:
                if t.state is TrialState.RUNNING and (t.heartbeat if t.heartbeat is not None else t.started) < deadline:
                    t.state, t.reason, t.ended = TrialState.FAILED, reason, now
                    failed.append(t.id)
            return failed

    def set_system_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        with self._lock:
            t = self._get(study_id, number)
            if t.state.is_finished:
                raise trial_finished(number, t.state, "annotate")
            t.system_attrs = copy.deepcopy(dict(attrs))

    def get_retries(self, study_id: int) -> dict[int, int]:
        with self._lock:
            return {t.retry_of: t.id for t in self._trials[study_id] if t.retry_of is not None}

    def get_system_attrs(self, study_id: int) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {t.id: copy.deepcopy(t.system_attrs) for t in self._trials[study_id]}

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

    def get_trials(
        self, study_id: int, states: tuple[TrialState, ...] | None = None, *, from_number: int = 0
    ) -> list[Trial]:
        with self._lock:
            return [
                copy.deepcopy(t) for t in self._trials[study_id][from_number:] if states is None or t.state in states
            ]
