"""Study: ask / tell / optimize over a search space, remembered by a store."""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hyperlab.errors import (
    InvalidArgumentError,
    NoCompletedTrialError,
    StudyMismatchError,
    UnknownStudyError,
    UnknownTrialError,
)
from hyperlab.samplers import RandomSampler, SampleContext, Sampler, SearchExhausted
from hyperlab.space import Space
from hyperlab.storage import Storage, get_storage
from hyperlab.trial import Trial, TrialDiverged, TrialPruned, TrialState

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Study", "Objective"]

logger = logging.getLogger("hyperlab")

DIRECTIONS = ("minimize", "maximize")


class Objective(Protocol):
    """A user's training run: reads ``trial.params``, reports each epoch, returns the metric."""

    def __call__(self, trial: Trial) -> float | None: ...


class _StudyAttrs(MutableMapping[str, Any]):
    """The study's attributes; each assignment is written to the store at once."""

    def __init__(self, storage: Storage, study_id: int) -> None:
        self._storage, self._id = storage, study_id
        self._data = storage.get_study_attrs(study_id)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._storage.set_study_attr(self._id, key, value)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        raise InvalidArgumentError("Study attributes cannot be deleted; overwrite the key instead.")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _OverlayAttrs(MutableMapping[str, Any]):
    """Reads through to the study's attributes; writes land in ``pending``."""

    def __init__(self, base: Mapping[str, Any], pending: dict[str, Any]) -> None:
        self._base, self._pending = base, pending

    def __getitem__(self, key: str) -> Any:
        return self._pending[key] if key in self._pending else self._base[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def __delitem__(self, key: str) -> None:
        raise InvalidArgumentError("Study attributes cannot be deleted; overwrite the key instead.")

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._base), **dict.fromkeys(self._pending)})

    def __len__(self) -> int:
        return len({*self._base, *self._pending})


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
        if space is not None and not isinstance(space, Space):
            raise InvalidArgumentError(f"The 'space' parameter of Study must be a Space. Got {space!r} instead.")
        if sampler is not None and not isinstance(sampler, Sampler):
            raise InvalidArgumentError(f"The 'sampler' parameter of Study must be a Sampler. Got {sampler!r} instead.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**62):
            raise InvalidArgumentError(
                f"The 'seed' parameter of Study must be an integer in [0, 2**62). Got {seed!r} instead."
            )
        self.name = name
        self.storage = get_storage(storage)
        self.sampler = sampler if sampler is not None else RandomSampler()
        self._clock = clock
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
                    f"Leave {label} out to resume it, or use a new study name."
                )
        self._study_id = record.id
        self.space = Space.from_dict(record.space) if space is None else space
        self.direction: str = record.direction
        self.metric: str | None = record.metric
        self.seed: int = record.seed
        self._attrs: _StudyAttrs | None = None

    def _check_matches(self, stored: Mapping[str, Any], space: Space) -> None:
        given = space.to_dict()
        if given == stored:
            return
        for pname in [*stored, *given]:
            if stored.get(pname) != given.get(pname):

                def show(d: Mapping[str, Any] | None, pname: str = pname) -> str:
                    return "absent" if d is None else repr(Space.from_dict({pname: d})[pname])

                raise StudyMismatchError(
                    f"Study '{self.name}' is stored with a different space: parameter '{pname}' is "
                    f"{show(stored.get(pname))} in the store but {show(given.get(pname))} here. Open it without "
                    "a space to resume it as stored, or use a new study name."
                )
        raise StudyMismatchError(f"Study '{self.name}' is stored with a different parameter order.")

    def __repr__(self) -> str:
        return f"Study({self.name!r}, direction={self.direction!r}, metric={self.metric!r}, sampler={self.sampler!r})"

    # -- ask / tell --------------------------------------------------------------------------
    @property
    def attrs(self) -> MutableMapping[str, Any]:
        """The study's stored attributes (sampler and scheduler state, user notes)."""
        if self._attrs is None:
            self._attrs = _StudyAttrs(self.storage, self._study_id)
        return self._attrs

    def ask(self, params: Mapping[str, Any] | None = None) -> Trial:
        """Start a new trial, with params from the sampler or the ``params`` given.

        The trial is stored as running before this returns.

        Raises:
            SearchExhausted: the sampler has no new point (a finished grid).
            InvalidParamsError: ``params`` is not a point of the space.
        """
        if params is not None:
            self.space.validate(params)
            fixed = dict(params)

            def make(number: int) -> dict[str, Any]:
                return fixed

            pending: dict[str, Any] = {}
        else:
            if self.sampler.uses_history:
                self._attrs = None  # other processes may have moved the sampler's state on
            history = self.trials if self.sampler.uses_history else ()
            # make() runs inside the store's transaction, so the sampler's writes are
            # buffered here and stored after it commits (a second writer would wait on
            # the first one's lock).
            pending = {}
            view = _OverlayAttrs(self.attrs, pending)

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
                )
                return self.space.from_unit(self.sampler.suggest(ctx))

        started = self._clock()
        number, chosen = self.storage.create_trial(self._study_id, make, started=started)
        for key, value in pending.items():
            self.attrs[key] = value
        return Trial(number, chosen, started=started, _study=self)

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
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"The value told for trial {number} must be a number. Got {value!r} instead."
                ) from None
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
    ) -> None:
        """Run ``objective`` on new trials until ``n_trials`` ran in this call, ``timeout``
        seconds passed, or the sampler ran out of points.

        Each trial ends as: complete (the objective returned a finite number, or None
        with ``metric`` reported), diverged (a NaN/inf value), pruned (it raised
        :class:`~hyperlab.TrialPruned`), or failed (it raised anything else; the
        traceback is kept as the reason). The study goes on after any of them.
        Ctrl-C marks the running trial failed and re-raises.

        Each of ``callbacks`` is called as ``callback(study, trial)`` after every trial
        has been told (a progress display, a custom stopping rule).
        """
        if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0):
            raise InvalidArgumentError(
                f"The 'n_trials' parameter must be a non-negative integer. Got {n_trials!r} instead."
            )
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise InvalidArgumentError(
                f"The 'timeout' parameter must be a positive number of seconds. Got {timeout!r} instead."
            )
        if n_trials is None and timeout is None:
            raise InvalidArgumentError("optimize() needs n_trials or timeout (or both); otherwise it would never stop.")
        start = time.monotonic()
        done = 0
        while n_trials is None or done < n_trials:
            if timeout is not None and time.monotonic() - start >= timeout:
                break
            try:
                trial = self.ask()
            except SearchExhausted as e:
                logger.info("Study '%s': %s", self.name, e)
                break
            self._run_one(objective, trial)
            done += 1
            for callback in callbacks:
                callback(self, trial)

    def _run_one(self, objective: Objective, trial: Trial) -> None:
        try:
            value = objective(trial)
        except TrialPruned as e:
            if not trial.state.is_finished:
                self.tell(trial, state=TrialState.PRUNED, reason=str(e) or "pruned by the objective")
            return
        except TrialDiverged as e:
            if not trial.state.is_finished:
                self.tell(trial, state=TrialState.DIVERGED, reason=str(e) or "diverged")
            return
        except (KeyboardInterrupt, SystemExit) as e:
            if not trial.state.is_finished:
                self.tell(trial, state=TrialState.FAILED, reason=f"interrupted ({type(e).__name__})")
            raise
        except Exception as e:
            reason = "".join(traceback.format_exception(e)).rstrip()
            logger.warning("Trial %d failed: %s: %s", trial.id, type(e).__name__, e)
            if not trial.state.is_finished:
                self.tell(trial, state=TrialState.FAILED, reason=reason)
            return
        if trial.state.is_finished:  # the objective told the study itself
            return
        if value is None and self.metric is not None:
            reported = trial.metric(self.metric)
            value = reported[-1][1] if reported else None
        if value is None:
            self.tell(
                trial,
                state=TrialState.FAILED,
                reason="the objective returned None"
                + (f" and never reported '{self.metric}'" if self.metric else " and the study has no metric"),
            )
            return
        try:
            self.tell(trial, value)
        except InvalidArgumentError as e:
            self.tell(trial, state=TrialState.FAILED, reason=str(e))

    # -- results ------------------------------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Every trial, in id order (snapshots read from the store)."""
        return self.storage.get_trials(self._study_id)

    def get_trials(self, states: tuple[TrialState | str, ...] | None = None) -> list[Trial]:
        """The trials in the given states."""
        chosen = None if states is None else tuple(TrialState.parse(s) for s in states)
        return self.storage.get_trials(self._study_id, chosen)

    def trial(self, trial_id: int) -> Trial:
        """One trial by id."""
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
