"""Study: ask / tell / optimize over a search space, remembered by a store."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hyperlab._attrs import OverlayAttrs, StudyAttrs
from hyperlab._workers import worker_exited
from hyperlab.errors import (
    InvalidArgumentError,
    NoCompletedTrialError,
    StudyMismatchError,
    TrialFinishedError,
    UnknownStudyError,
    UnknownTrialError,
    as_number,
    check_int,
)
from hyperlab.samplers import RandomSampler, SampleContext, Sampler, SearchExhausted
from hyperlab.schedulers import Scheduler, SchedulerContext
from hyperlab.space import Choice, Space
from hyperlab.storage import Storage, get_storage
from hyperlab.trial import Trial, TrialState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Study", "Objective", "BudgetSpent", "WORKER_LOST", "INTERRUPTED", "interrupted"]

# Reasons of failures that are not the trial's fault: such trials are retried with the
# same params (up to the study's ``retries``).
WORKER_LOST = "worker lost"
INTERRUPTED = "interrupted"


def interrupted(stop: BaseException) -> str:
    """The reason of a trial that ``stop`` (Ctrl-C, SIGTERM, an error of the runner) cut short."""
    return f"{INTERRUPTED} ({type(stop).__name__})"


class BudgetSpent(SearchExhausted):
    """The study already has the number of trials it was asked for."""


logger = logging.getLogger("hyperlab")

DIRECTIONS = ("minimize", "maximize")


class Objective(Protocol):
    """A user's training run: reads ``trial.params``, reports each epoch, returns the metric."""

    def __call__(self, trial: Trial) -> float | None: ...


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 2  # fits a signed 64-bit column


class Study:
    """A search for the best hyperparameters of one model on one task.

    Opening a study whose name is already in the store resumes it: its trials are
    kept and new ones are numbered after them. The stored space, direction, metric and
    seed must then match what is given (or be left out, to use the stored ones).

    Args:
        name: the study's name in the store.
        space: the search space; may be left out when the study already exists.
        metric: name of the reported metric the study optimizes (e.g. ``"dev_error"``);
            used as the value of a trial whose objective returns None.
        direction: ``"minimize"`` (the default for a new study) or ``"maximize"``.
        storage: ``None`` for ``sqlite:///hyperlab.db`` in the working directory,
            ``"memory"``, a database URL, or a :class:`~hyperlab.storage.Storage`.
        sampler: where to look next; :class:`~hyperlab.samplers.RandomSampler` by default.
        scheduler: when to stop a trial early (ASHA, Hyperband, median); needs
            ``metric``. Whatever the scheduler, a trial whose metric becomes NaN/inf is
            stopped as diverged.
        seed: makes the study reproducible: trial n gets the same params for the same
            seed. A new study without a seed draws one and stores it.
        clock: time source (seconds since the epoch); tests pass a fake one.

    Example:
        >>> from hyperlab import Study, Space, Float
        >>> study = Study("quad", Space(x=Float(-2.0, 2.0)), storage="memory", seed=0)
        >>> study.optimize(lambda trial: (trial.params["x"] - 1.0) ** 2, n_trials=50)
        >>> abs(study.best_trial.params["x"] - 1.0) < 0.2
        True
    """

    def __init__(
        self,
        name: str,
        space: Space | None = None,
        *,
        metric: str | None = None,
        direction: str | None = None,
        storage: Storage | str | None = None,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(
                f"The 'name' parameter of Study must be a non-empty string. Got {name!r} instead."
            )
        if direction is not None and direction not in DIRECTIONS:
            raise InvalidArgumentError(
                f"The 'direction' parameter of Study must be 'minimize' or 'maximize'. Got {direction!r} instead."
            )
        if metric is not None and (not isinstance(metric, str) or not metric.strip()):
            raise InvalidArgumentError(
                f"The 'metric' parameter of Study must be a reported metric's name (a non-empty string) or None. "
                f"Got {metric!r} instead."
            )
        if space is not None and not isinstance(space, Space):
            raise InvalidArgumentError(f"The 'space' parameter of Study must be a Space. Got {space!r} instead.")
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise InvalidArgumentError(
                f"The 'scheduler' parameter of Study must be a Scheduler. Got {scheduler!r} instead."
            )
        if sampler is not None and not isinstance(sampler, Sampler):
            raise InvalidArgumentError(f"The 'sampler' parameter of Study must be a Sampler. Got {sampler!r} instead.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**62):
            raise InvalidArgumentError(
                f"The 'seed' parameter of Study must be an integer in [0, 2**62). Got {seed!r} instead."
            )
        self.name = name
        self.storage = get_storage(storage)
        self.sampler = sampler if sampler is not None else RandomSampler()
        self.scheduler = scheduler
        self._clock = clock
        self._finished: dict[int, Trial] = {}
        self._warned_metric = False
        if space is None:
            try:
                record = self.storage.get_study(name)
            except UnknownStudyError:
                raise UnknownStudyError(
                    f"There is no study named '{name}' in the store; give a space to create it."
                ) from None
        else:
            record, created = self.storage.get_or_create_study(
                name,
                space=space.to_dict(),
                direction=direction or "minimize",
                metric=metric,
                seed=_fresh_seed() if seed is None else seed,
                created=clock(),
            )
            if not created:
                self._check_matches(record.space, space)
        for label, given, stored in (
            ("direction", direction, record.direction),
            ("metric", metric, record.metric),
            ("seed", seed, record.seed),
        ):
            if given is not None and given != stored:
                raise StudyMismatchError(
                    f"Study '{name}' is stored with {label}={stored!r}, but was opened with {label}={given!r}. "
                    f"Give the stored {label} to resume it (from Python, you may leave it out), or use a new "
                    "study name."
                )
        self._study_id = record.id
        self.space = Space.from_dict(record.space) if space is None else space
        self.direction: str = record.direction
        self.metric: str | None = record.metric
        self.seed: int = record.seed
        self._attrs: StudyAttrs | None = None
        if self.scheduler is not None and self.metric is None:
            raise InvalidArgumentError(
                f"Study '{name}' has a scheduler but no metric: give metric=... (the reported metric it judges)."
            )

    def _check_matches(self, stored: Mapping[str, Any], space: Space) -> None:
        given = space.to_dict()
        if list(given.items()) == list(stored.items()):  # the order too: samplers work by position
            return
        for pname in [*stored, *given]:
            if stored.get(pname) != given.get(pname):

                def show(d: Mapping[str, Any] | None, pname: str = pname) -> str:
                    return "absent" if d is None else repr(Space.from_dict({pname: d})[pname])

                raise StudyMismatchError(
                    f"Study '{self.name}' is stored with a different space: parameter '{pname}' is "
                    f"{show(stored.get(pname))} in the store but {show(given.get(pname))} here. Give the stored "
                    "space to resume it (from Python, you may leave it out), or use a new study name."
                )
        raise StudyMismatchError(
            f"Study '{self.name}' is stored with its parameters in another order: {', '.join(stored)} in the "
            f"store, but {', '.join(given)} here (samplers read a point by position). Give them "
            "in the stored order to resume it (from Python, you may leave the space out), or use a new study name."
        )

    def __repr__(self) -> str:
        return f"Study({self.name!r}, direction={self.direction!r}, metric={self.metric!r}, sampler={self.sampler!r})"

    # -- ask / tell --------------------------------------------------------------------------
    @property
    def attrs(self) -> MutableMapping[str, Any]:
        """The study's stored attributes (sampler and scheduler state, user notes)."""
        if self._attrs is None:
            self._attrs = StudyAttrs(self.storage, self._study_id)
        return self._attrs

    def ask(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        max_trials: int | None = None,
        retry_of: int | None = None,
    ) -> Trial:
        """Start a new trial, with params from the sampler or the ``params`` given.

        The trial is stored as running before this returns.

        Args:
            params: run these params instead of sampling.
            max_trials: only start the trial while the study has fewer trials than this
                (retries do not count); checked atomically with the creation.
            retry_of: re-run failed trial ``retry_of`` with its params (one retry per
                trial, whoever asks first).

        Raises:
            SearchExhausted: the sampler has no new point (a finished grid).
            BudgetSpent: the study has its ``max_trials`` trials, or the retry was
                claimed by another worker.
            InvalidParamsError: ``params`` is not a point of the space.
        """
        if max_trials is not None:
            check_int("ask()", "max_trials", max_trials, 0)
        if retry_of is not None:
            if isinstance(retry_of, bool) or not isinstance(retry_of, int):
                raise InvalidArgumentError(
                    f"The 'retry_of' parameter of ask() must be a trial id (int). Got {retry_of!r} instead."
                )
            try:
                failed = self.storage.get_trial(self._study_id, retry_of)
            except UnknownTrialError:
                raise UnknownTrialError(f"Study '{self.name}' has no trial {retry_of} to retry.") from None
            if failed.state is not TrialState.FAILED:
                raise InvalidArgumentError(
                    f"Only a failed trial can be retried; trial {retry_of} of study '{self.name}' is "
                    f"{failed.state.value}."
                )
            if params is None:
                params = failed.params  # a retry re-runs the same point
        return self._ask(params, max_trials=max_trials, retry_of=retry_of)

    def _ask(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        max_trials: int | None = None,
        retry_of: int | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> Trial:
        """:meth:`ask`, storing ``system_attrs`` with the new trial (the loops that run
        their trials name the worker, see :mod:`hyperlab._workers`)."""
        if params is not None:
            self.space.validate(params)
            fixed = {k: p.option(v) if isinstance(p := self.space[k], Choice) else v for k, v in params.items()}

            def make(number: int) -> dict[str, Any]:
                return fixed

            pending: dict[str, Any] = {}
        else:
            if self.sampler.uses_history:
                self._attrs = None  # other processes may have moved the sampler's state on
            history = self.fresh_trials() if self.sampler.uses_history else ()
            # make() runs inside the store's transaction, so the sampler's writes are
            # buffered here and stored after it commits (a second writer would wait on
            # the first one's lock).
            pending = {}
            view = OverlayAttrs(self.attrs, pending)

            def make(number: int) -> dict[str, Any]:
                pending.clear()
                ctx = SampleContext(
                    space=self.space,
                    number=number,
                    seed=self.seed,
                    rng=np.random.default_rng([self.seed, number]),
                    history=history,
                    direction=self.direction,
                    attrs=view,
                    metric=self.metric,
                )
                return self.space.from_unit(self.sampler.suggest(ctx))

        started = self._clock()
        # system_attrs only when there are some: a store written before it existed still serves ask()
        extra: dict[str, Any] = {"system_attrs": system_attrs} if system_attrs else {}
        created = self.storage.create_trial(
            self._study_id, make, started=started, retry_of=retry_of, max_trials=max_trials, **extra
        )
        if created is None:
            if retry_of is not None:
                raise BudgetSpent(f"Trial {retry_of} of study '{self.name}' is already being retried.")
            raise BudgetSpent(f"Study '{self.name}' already has its {max_trials} trials.")
        number, chosen = created
        for key, value in pending.items():
            self.attrs[key] = value
        return Trial(
            number,
            chosen,
            started=started,
            retry_of=retry_of,
            heartbeat=started,
            system_attrs=dict(system_attrs or {}),
            _study=self,
        )

    def _judge(self, trial: Trial, step: int, metrics: Mapping[str, float]) -> tuple[TrialState, str] | None:
        """After a stored report: the state the trial should end in now, or None to go on."""
        if self.metric is None:
            return None
        if self.metric not in metrics:
            if self.scheduler is not None and not self._warned_metric:
                self._warned_metric = True
                logger.warning(
                    "Study '%s' stops trials on '%s', but trial %d reported %s at step %d without it: the "
                    "scheduler cannot judge such reports (is the study's metric the name the objective reports?)",
                    self.name, self.metric, trial.id, ", ".join(sorted(metrics)), step,
                )  # fmt: skip
            return None
        value = metrics[self.metric]
        if not math.isfinite(value):
            return TrialState.DIVERGED, f"{self.metric} became {value} at step {step}"
        if self.scheduler is None:
            return None
        verdict = self.scheduler.decide(
            SchedulerContext(
                trial=trial,
                step=step,
                metric=self.metric,
                value=value,
                maximize=self.direction == "maximize",
                peers=lambda: self.storage.get_system_attrs(self._study_id),
                finished=self._finished_trials,
            )
        )
        if verdict.notes:
            self._add_system_attrs(trial, verdict.notes)
        return (TrialState.PRUNED, verdict.reason) if verdict.stop else None

    def _add_system_attrs(self, trial: Trial, attrs: Mapping[str, Any]) -> None:
        """Store ``attrs`` among the trial's system attributes (what hyperlab keeps
        about a trial beside its params, curve and user attributes)."""
        merged = {**trial.system_attrs, **attrs}
        self.storage.set_system_attrs(self._study_id, trial.id, merged)
        trial.system_attrs = merged

    def _finished_trials(self) -> list[Trial]:
        """The finished trials (see :meth:`fresh_trials`)."""
        return [t for t in self.fresh_trials() if t.state.is_finished]

    def fresh_trials(self) -> list[Trial]:
        """Every trial, like :attr:`trials`, but cheap to call often (a live view, a
        scheduler): a finished trial never changes, so it is read once and cached; only
        trials from the first unfinished one on are read again."""
        start = 0
        while start in self._finished:
            start += 1
        rest = self.storage.get_trials(self._study_id, from_number=start)
        for t in rest:
            if t.state.is_finished:
                self._finished[t.id] = t
        return [self._finished[n] for n in range(start)] + rest

    def tell(
        self,
        trial: Trial | int,
        value: float | None = None,
        *,
        state: TrialState | str | None = None,
        reason: str | None = None,
    ) -> Trial:
        """Finish a running trial with its value, or with another final state.

        A value that is NaN or infinite finishes the trial as DIVERGED. Telling a trial
        that is already finished, or that the study does not have, raises and changes
        nothing.

        Returns:
            The finished trial (the same object, if a live trial was passed).
        """
        number = trial.id if isinstance(trial, Trial) else trial
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidArgumentError(f"tell() needs a Trial or a trial id (int). Got {trial!r} instead.")
        owner = trial._study if isinstance(trial, Trial) else None
        if owner is not None and owner is not self and (owner.name, owner._study_id) != (self.name, self._study_id):
            raise InvalidArgumentError(
                f"Trial {number} belongs to study '{owner.name}', not to study '{self.name}': tell it to its "
                "own study (telling it here would finish this study's trial of the same number)."
            )
        final = self._final_state(number, value, state, reason)
        ended = self._clock()
        try:
            self.storage.finish_trial(
                self._study_id, number, state=final[0], value=final[1], reason=final[2], ended=ended
            )
        except UnknownTrialError:
            raise UnknownTrialError(f"Study '{self.name}' has no trial {number}.") from None
        if isinstance(trial, Trial) and trial._study is self:
            trial.state, trial.value, trial.reason = final
            trial.ended = ended
            return trial
        return self.storage.get_trial(self._study_id, number)

    def _final_state(
        self, number: int, value: float | None, state: TrialState | str | None, reason: str | None
    ) -> tuple[TrialState, float | None, str | None]:
        if value is not None:
            number_value = as_number(value)
            if number_value is None:
                raise InvalidArgumentError(
                    f"The value told for trial {number} must be a number. Got {value!r} instead."
                )
            value = number_value
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgumentError(f"The reason told for trial {number} must be a string. Got {reason!r} instead.")
        final = TrialState.parse(state) if state is not None else None
        if final is TrialState.RUNNING:
            raise InvalidArgumentError(f"Trial {number} cannot be told state 'running'; tell a final state.")
        if final is None:
            if value is None:
                raise InvalidArgumentError(f"tell() for trial {number} needs a value or a final state.")
            final = TrialState.COMPLETE
        if final is TrialState.COMPLETE:
            if value is None:
                raise InvalidArgumentError(f"A complete trial needs a value; trial {number} was told none.")
            if not math.isfinite(value):
                return TrialState.DIVERGED, None, reason or f"the objective value is {value}"
        return final, value, reason

    # -- the loop -------------------------------------------------------------------------------
    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        callbacks: Sequence[Callable[[Study, Trial], None]] = (),
        max_trials: int | None = None,
        retries: int = 0,
        heartbeat: float | None = None,
        grace: float | None = None,
    ) -> None:
        """Run ``objective`` on new trials until ``n_trials`` ran in this call, the study
        has ``max_trials`` trials, ``timeout`` seconds passed, or the sampler ran out.

        Each trial ends as: complete (the objective returned a finite number, or None
        with ``metric`` reported), diverged (a NaN/inf value or metric), pruned (the
        scheduler stopped it, or it raised :class:`~hyperlab.TrialPruned`), or failed (it
        raised anything else; the traceback is kept as the reason). The study goes on
        after any of them. Ctrl-C marks the running trial failed and re-raises.

        Several processes may run ``optimize`` on one stored study at once.

        Args:
            callbacks: each is called as ``callback(study, trial)`` after every trial.
            max_trials: the study's budget, shared by every process working on it.
            retries: how often a trial whose worker was lost is run again with the
                same params. A trial interrupted by Ctrl-C or SIGTERM is always run
                again, and does not count.
            heartbeat: seconds between heartbeats of the running trial.
            grace: a running trial with no heartbeat for this long is failed as lost
                (and retried); checked before every new trial. Before the first, the
                running trials whose worker ran on this machine and has exited (a
                killed tuner's) are failed at once; each trial names its worker (see
                :mod:`hyperlab._workers`). Without ``grace``, neither is checked.
        """
        from hyperlab._optimize import run_trials

        run_trials(
            self,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            callbacks=callbacks,
            max_trials=max_trials,
            retries=retries,
            heartbeat=heartbeat,
            grace=grace,
        )

    def recover(self, grace: float, *, exited: bool = False) -> list[int]:
        """Fail the running trials whose worker was lost: those that have shown no
        heartbeat for ``grace`` seconds (a killed process, a lost machine), and with
        ``exited``, at once, those whose worker ran on this machine and has exited (a
        killed tuner's, see :mod:`hyperlab._workers`). Returns their ids.

        The runners check ``exited`` when they start, as a resumed study begins: while
        they run, they fail the trials of their own workers that die with the exit
        code, and another tuner's are found by their heartbeats."""
        lost = []
        if exited:
            for t in self.get_trials((TrialState.RUNNING,)):
                if not worker_exited(t.system_attrs):
                    continue
                reason = f"{WORKER_LOST}: its process ({t.system_attrs.get('worker')}) has exited"
                try:
                    self.tell(t.id, state=TrialState.FAILED, reason=reason)
                except TrialFinishedError:  # another tuner failed it first
                    continue
                lost.append(t.id)
        now = self._clock()
        lost += self.storage.fail_stale(
            self._study_id,
            deadline=now - grace,
            now=now,
            reason=f"{WORKER_LOST}: no heartbeat for {grace:g} s (its process died or its machine was lost)",
        )
        for number in lost:
            logger.warning("Study '%s': trial %d lost its worker; marked failed", self.name, number)
        return sorted(lost)

    def retry_candidates(self, retries: int) -> list[Trial]:
        """Failed trials that were not their own fault, not yet retried, oldest first: an
        interrupted one (Ctrl-C, SIGTERM: the user's stop, not the trial's failure)
        always, and one whose worker was lost while its worker was lost at most
        ``retries`` times (a process that keeps dying, say of memory, is given up).

        Interrupts do not count: a fused population of 8 interrupted 4 times would
        otherwise have lost its 8 trials with retries 3, and a resumed study would not
        have run them again."""
        failed = {t.id: t for t in self.get_trials((TrialState.FAILED,))}
        if not failed:
            return []
        retried = self.storage.get_retries(self._study_id)
        out = []
        for t in failed.values():
            if t.id in retried or not (t.reason or "").startswith((WORKER_LOST, INTERRUPTED)):
                continue
            lost, x = 0, t
            while True:
                lost += (x.reason or "").startswith(WORKER_LOST)
                if x.retry_of is None or x.retry_of not in failed:
                    break
                x = failed[x.retry_of]
            if lost <= retries:
                out.append(t)
        return out

    # -- results ----
    @property
    def trials(self) -> list[Trial]:
        """Every trial, in id order (snapshots read from the store)."""
        return self.storage.get_trials(self._study_id)

    def get_trials(self, states: TrialState | str | tuple[TrialState | str, ...] | None = None) -> list[Trial]:
        """The trials in the given states (one state, or several)."""
        if isinstance(states, str | TrialState):
            states = (states,)
        chosen = None if states is None else tuple(TrialState.parse(s) for s in states)
        return self.storage.get_trials(self._study_id, chosen)

    def trial(self, trial_id: int) -> Trial:
        """One trial by id."""
        if isinstance(trial_id, bool) or not isinstance(trial_id, int):  # '0' found a trial on SQLite only
            raise UnknownTrialError(f"Study '{self.name}' has no trial {trial_id!r}: a trial id is an int.")
        try:
            return self.storage.get_trial(self._study_id, trial_id)
        except UnknownTrialError:
            raise UnknownTrialError(f"Study '{self.name}' has no trial {trial_id}.") from None

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best value (the lowest id among ties)."""
        complete = self.get_trials((TrialState.COMPLETE,))
        if not complete:
            raise NoCompletedTrialError(f"Study '{self.name}' has no complete trial yet.")
        sign = 1.0 if self.direction == "minimize" else -1.0
        return min(complete, key=lambda t: (sign * float(t.value), t.id))  # type: ignore[arg-type]

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)  # type: ignore[arg-type]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial: id, state, value, params_*, start/end, duration, reason, user_attrs_*.

        Needs pandas (``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise InvalidArgumentError(
                "Study.to_dataframe() needs pandas, which is not installed: pip install pandas"
            ) from None
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {
                "id": t.id,
                "state": t.state.value,
                "value": t.value,
                "started": t.started_at,
                "ended": t.ended_at,
                "duration_s": t.duration,
                "steps": len(t.curve),
                "reason": t.reason,
                "parent_id": t.parent_id,
            }
            row.update({f"params_{k}": v for k, v in t.params.items()})
            row.update({f"user_attrs_{k}": v for k, v in t.user_attrs.items()})
            rows.append(row)
        return pd.DataFrame(rows)
