"""The optimize loop: ask, run the objective, tell; with budgets, heartbeats and retries.

Split from study.py (as Optuna splits ``_optimize.py`` from its study) so the Study
class stays the vocabulary of ask / tell and the loop's policies live here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hyperlab._workers import worker_attrs
from hyperlab.errors import InvalidArgumentError, TrialFinishedError, check_seconds
from hyperlab.samplers import SearchExhausted
from hyperlab.trial import Trial, TrialDiverged, TrialPruned, TrialState

if TYPE_CHECKING:
    from hyperlab.study import Objective, Study

__all__ = ["run_trials", "run_one", "Heartbeat"]

logger = logging.getLogger("hyperlab")


class Heartbeat:
    """A daemon thread that stamps the running trials' heartbeat every ``interval`` s."""

    def __init__(self, study: Study, interval: float) -> None:
        self.study, self.interval = study, interval
        self.numbers: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hyperlab-heartbeat", daemon=True)
        self._thread.start()

    def watch(self, number: int) -> None:
        with self._lock:
            self.numbers.add(number)

    def unwatch(self, number: int) -> None:
        with self._lock:
            self.numbers.discard(number)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                numbers = sorted(self.numbers)
            try:
                self.study.storage.touch(self.study._study_id, numbers, self.study._clock())
            except Exception as e:
                logger.warning("heartbeat of trials %s failed: %s", numbers, e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_trials(
    study: Study,
    objective: Objective,
    *,
    n_trials: int | None,
    timeout: float | None,
    callbacks: Sequence[Callable[[Study, Trial], None]] = (),
    max_trials: int | None = None,
    retries: int = 0,
    heartbeat: float | None = None,
    grace: float | None = None,
    check_exited: bool = True,
) -> None:
    """The loop of :meth:`Study.optimize`. With ``grace``, lost trials are failed before
    each new trial; before the first, with ``check_exited``, also those whose worker on
    this machine has exited (see :mod:`hyperlab._workers`). A runner's workers leave that
    check to the runner, which made it before starting them."""
    for name, value in (("n_trials", n_trials), ("max_trials", max_trials), ("retries", retries)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidArgumentError(f"The '{name}' parameter must be a non-negative integer. Got {value!r} instead.")
    for name, seconds in (("timeout", timeout), ("heartbeat", heartbeat), ("grace", grace)):
        check_seconds("optimize()", name, seconds)
    if not callable(objective):  # else every trial would fail on it, and count against the budget
        raise InvalidArgumentError(
            f"The 'objective' of optimize() must be a callable taking a Trial. Got {objective!r} instead."
        )
    listed: tuple[Any, ...] | None = () if callbacks is None else None  # None: none, as Optuna takes it
    if listed is None and not callable(callbacks) and not isinstance(callbacks, str):
        with contextlib.suppress(TypeError):  # not iterable
            listed = tuple(callbacks)
    if listed is None or not all(callable(c) for c in listed):
        raise InvalidArgumentError(
            "The 'callbacks' parameter of optimize() must be a list of callables, each called as "
            f"callback(study, trial). Got {callbacks!r} instead."
        )
    callbacks = listed
    if n_trials is None and timeout is None and max_trials is None:
        raise InvalidArgumentError("optimize() needs n_trials, max_trials or timeout; otherwise it would never stop.")
    beat = Heartbeat(study, heartbeat) if heartbeat else None
    start = time.monotonic()
    done = 0
    try:
        while n_trials is None or done < n_trials:
            if timeout is not None and time.monotonic() - start >= timeout:
                break
            if grace is not None:
                study.recover(grace, exited=check_exited and done == 0)
            trial = next_trial(study, max_trials=max_trials, retries=retries)
            if trial is None:
                break
            if beat is not None:
                beat.watch(trial.id)
            try:
                run_one(study, objective, trial)
            finally:
                if beat is not None:
                    beat.unwatch(trial.id)
            done += 1
            for callback in callbacks:
                callback(study, trial)
    finally:
        if beat is not None:
            beat.close()


def next_trial(study: Study, *, max_trials: int | None, retries: int) -> Trial | None:
    """A retry of a lost trial if one is waiting, else a new trial within the budget;
    either names this process as its worker (see :mod:`hyperlab._workers`)."""
    from hyperlab.study import BudgetSpent

    worker = worker_attrs()
    for lost in study.retry_candidates(retries):
        try:
            trial = study._ask(lost.params, retry_of=lost.id, system_attrs=worker)
        except BudgetSpent:
            continue  # another worker claimed it first
        logger.info("Study '%s': trial %d retries lost trial %d", study.name, trial.id, lost.id)
        return trial
    try:
        return study._ask(max_trials=max_trials, system_attrs=worker)
    except SearchExhausted as e:
        logger.info("Study '%s': %s", study.name, e)
        return None


def run_one(study: Study, objective: Objective, trial: Trial) -> None:
    """Run the objective on one trial and tell the study how it ended.

    If another process ended the trial meanwhile (it found the trial lost: a heartbeat
    that stalled past the grace), its reports and this tell are refused: the result
    is dropped with a warning, and the loop goes on (the retry runs it again)."""
    try:
        _run_one(study, objective, trial)
    except TrialFinishedError as e:
        logger.warning("Trial %d was ended by another process; its result is dropped: %s", trial.id, e)


def _run_one(study: Study, objective: Objective, trial: Trial) -> None:
    try:
        value = objective(trial)
    except TrialPruned as e:
        if not trial.state.is_finished:
            stop = trial._stop
            study.tell(
                trial, state=TrialState.PRUNED, reason=(stop[1] if stop else str(e)) or "pruned by the objective"
            )
        return
    except TrialDiverged as e:
        if not trial.state.is_finished:
            study.tell(trial, state=TrialState.DIVERGED, reason=str(e) or "diverged")
        return
    except (KeyboardInterrupt, SystemExit) as e:
        if not trial.state.is_finished:
            from hyperlab.study import interrupted

            with contextlib.suppress(TrialFinishedError):  # the interrupt goes on either way
                study.tell(trial, state=TrialState.FAILED, reason=interrupted(e))
        raise
    except Exception as e:
        if isinstance(e, TrialFinishedError) and study.trial(trial.id).state.is_finished:
            raise  # a report refused: the trial was ended elsewhere (see run_one)
        reason = "".join(traceback.format_exception(e)).rstrip()
        logger.warning("Trial %d failed: %s: %s", trial.id, type(e).__name__, e)
        if not trial.state.is_finished:
            study.tell(trial, state=TrialState.FAILED, reason=reason)
        return
    tell_result(study, trial, value)


def tell_result(study: Study, trial: Trial, value: float | None) -> None:
    """Tell the study how a trial whose training returned ``value`` ended: as the
    scheduler stopped it, with its value, or failed when there is none."""
    if trial.state.is_finished:  # the objective told the study itself
        return
    if trial._stop is not None:  # stopped by the scheduler, or its metric diverged
        state, reason = trial._stop
        study.tell(trial, state=state, reason=reason)
        return
    if value is None and study.metric is not None:
        reported = trial.metric(study.metric)
        value = reported[-1][1] if reported else None
    if value is None:
        study.tell(
            trial,
            state=TrialState.FAILED,
            reason="the objective returned None"
            + (f" and never reported '{study.metric}'" if study.metric else " and the study has no metric"),
        )
        return
    try:
        study.tell(trial, value)
    except InvalidArgumentError as e:
        study.tell(trial, state=TrialState.FAILED, reason=str(e))
