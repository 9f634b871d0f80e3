"""Running a study file with the built-in trainer: what ``hyperlab tune`` does, without the screen."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hyperlab.analysis.retest import RETEST_PREFIX
from hyperlab.config import FusedSpec, StudyConfig
from hyperlab.runners import Runner, RunPolicy
from hyperlab.study import Objective, Study
from hyperlab.trial import TRIAL_TEST_ATTR, Trial, TrialState

__all__ = ["TuneJob", "objective_from_config"]

TEST_ATTR = "test_metrics"
SETTINGS_ATTR = "tune_settings"  # the data and fixed hyperparameters the study's trials train with


@dataclass
class TuneJob:
    """A study file bound to its store, its data and its objective."""

    config: StudyConfig

    def __post_init__(self) -> None:
        self._data: Any = None

    @cached_property
    def study(self) -> Study:
        """The study, opened (or created) on first use: after the data has been checked,
        so that a bad data file leaves no empty study behind."""
        c = self.config
        study = Study(
            c.name,
            c.space(),
            metric=c.metric,
            direction=c.direction,
            storage=c.storage,
            sampler=c.sampler_object(),
            scheduler=c.scheduler_object(),
            seed=c.seed,
        )
        self._check_settings(study)
        return study

    def settings(self) -> dict[str, Any]:
        """What every trial of the study trains with besides its params: the data and the
        fixed hyperparameters (the space, metric and seed are checked by Study itself)."""
        return {"data": self.config.data.model_dump(mode="json"), "train": dict(self.config.train)}

    def _check_settings(self, study: Study) -> None:
        """Refuse to resume a study with other data or other fixed hyperparameters: its
        new trials would be ranked against old ones trained otherwise, and its best
        configuration would pair one run's settings with another's params."""
        from hyperlab.errors import StudyMismatchError

        stored = study.attrs.get(SETTINGS_ATTR)
        if stored is None:  # a new study (or one from before this check): record them
            study.attrs[SETTINGS_ATTR] = self.settings()
            return
        changed = self.changes_since(stored)
        if changed:
            raise StudyMismatchError(
                f"Study '{self.config.name}' was run with other settings: {'; '.join(changed)}. Its trials "
                "would be compared with new ones trained otherwise: use a new study name, or restore the "
                "stored settings to resume it (--epochs sets train.epochs)."
            )

    def changes_since(self, stored: dict[str, Any], searched: frozenset[str] = frozenset()) -> list[str]:
        """What differs between ``stored`` settings and the file's now, one line each; a
        ``train:`` key in ``searched`` is marked (each trial's own value overrides it)."""

        def show(d: dict[str, Any], key: str) -> str:
            return repr(d[key]) if key in d else "unset (the default)"

        now = self.settings()
        changed = []
        for part in ("data", "train"):
            was, new = stored.get(part, {}), now[part]
            for key in dict.fromkeys([*was, *new]):
                if was.get(key) != new.get(key):
                    mark = " (searched: each trial's own value is used)" if part == "train" and key in searched else ""
                    changed.append(f"{part}.{key} was {show(was, key)}, now {show(new, key)}{mark}")
        return changed

    @property
    def maximize(self) -> bool:
        return self.config.direction == "maximize"

    @property
    def data(self) -> Any:
        if self._data is None:
            from hyperlab.train.data import load_dataset

            d = self.config.data
            self._data = load_dataset(
                d.source,
                target=d.target,
                split=d.split.as_tuple(),
                seed=self.config.seed,
                task=d.task,
                one_hot=d.one_hot,
                nan=d.nan,
            )
            self._check_batches()
            if self.config.metric == "dev_accuracy" and self._data.task == "regression":
                from hyperlab.errors import InvalidArgumentError

                raise InvalidArgumentError(
                    f"metric: dev_accuracy needs a classification task, but {d.source} is a regression "
                    f"(data.task: {d.task}); use dev_error (the mean squared error) or dev_cost."
                )
        return self._data

    def _check_batches(self) -> None:
        from hyperlab.errors import InvalidArgumentError
        from hyperlab.space import Choice, Fixed, Int

        space = self.config.space()
        sizes: list[int] = []
        if "batch_size" in self.config.train:
            sizes.append(int(self.config.train["batch_size"]))
        if "batch_size" in space:
            p = space["batch_size"]
            if isinstance(p, Int):
                sizes.append(p.low)
            elif isinstance(p, Choice):
                sizes.append(min(int(o) for o in p.options))  # type: ignore[arg-type]
            elif isinstance(p, Fixed):
                sizes.append(int(p.value))  # type: ignore[arg-type]
        rows = len(self._data.x_train)
        if sizes and rows < min(sizes):
            raise InvalidArgumentError(
                f"The training split has {rows} rows, fewer than the smallest mini-batch the study uses "
                f"(batch_size {min(sizes)}). Use more data or smaller batch sizes."
            )

    def objective(self) -> Objective:
        from hyperlab.train.objective import make_objective

        fixed = {"seed": self.config.seed, **self.config.train}
        return make_objective(self.data, fixed, metric=self.config.metric, engine=self.engine)  # type: ignore[no-any-return]

    @property
    def population(self) -> bool:
        """Whether the trials trained as members of a fused population (the fused runner)."""
        return isinstance(self.config.runner, FusedSpec)

    @property
    def engine(self) -> str:
        """How a trial that runs alone trains (the fused runner's trials train fused)."""
        return getattr(self.config.runner, "engine", "fused")

    def policy(self, *, trials: int | None = None, timeout: float | None = None) -> RunPolicy:
        c = self.config
        return RunPolicy(
            max_trials=trials or c.trials,
            retries=c.retries,
            heartbeat=c.heartbeat,
            grace=c.grace,
            timeout=timeout or c.timeout,
        )

    def objective_factory(self, runner: Runner) -> Callable[[], Objective]:
        """What builds the objective where trials run: here, the objective on the data
        already loaded; in other processes, a picklable factory that loads the data there."""
        from hyperlab.runners import FusedRunner, InlineRunner
        from hyperlab.train.objective import LoadedObjective

        if isinstance(runner, FusedRunner):
            return LoadedObjective(self.data, {"seed": self.config.seed, **self.config.train}, self.config.metric)
        if isinstance(runner, InlineRunner):
            objective = self.objective()
            return lambda: objective
        # Python values (JSON mode would write diverge_factor: inf as None); they pickle
        return functools.partial(objective_from_config, self.config.model_dump())

    def run(
        self, *, trials: int | None = None, timeout: float | None = None, on_poll: Callable[[Study], None] | None = None
    ) -> None:
        """Run the study's trials with its runner until its budget is spent (a resumed
        study runs only the rest, and retries the trials a killed run left behind)."""
        runner = self.config.runner_object()
        runner.run(
            self.study, self.objective_factory(runner), self.policy(trials=trials, timeout=timeout), on_poll=on_poll
        )

    def best_trial(self) -> Trial:
        """The best trial, ties on the metric broken by the lower dev cost."""
        from hyperlab.analysis.curves import best_trial

        best = best_trial(self.study.get_trials((TrialState.COMPLETE,)), self.maximize)
        return best if best is not None else self.study.best_trial  # raises NoCompletedTrialError

    def best_config(self) -> dict[str, Any]:
        """The best trial's whole training configuration: the fixed part and its params."""
        return {**self.config.train, **self.best_trial().params}

    def test_metrics(self) -> dict[str, Any]:
        """The test metrics of the best trial, stored in the study: the ones its runner
        measured on the trial's own weights at its best epoch (the fused runner does),
        else measured once on the best configuration retrained the way its trials
        trained (``weights``: ``trial`` or ``retrained``)."""
        best = self.best_trial()
        stored = self.study.attrs.get(TEST_ATTR)
        if stored and stored.get("trial") == best.id:
            return dict(stored)
        result: dict[str, Any] = {"trial": best.id}
        own = best.system_attrs.get(TRIAL_TEST_ATTR)
        if own:
            result.update(weights="trial", **own)
        else:
            from hyperlab.train.hparams import TrainConfig
            from hyperlab.train.trainer import measure_test

            config = TrainConfig.from_params({"seed": self.config.seed, **self.best_config()})
            measured = measure_test(config, self.data, engine=self.engine, population=self.population)
            result.update(weights="retrained", **measured)
        self.study.attrs[TEST_ATTR] = result
        return result

    def stored_study(self) -> Study:
        """The study the file names, as stored; never created (its space, metric and
        direction are the stored ones)."""
        from hyperlab.errors import UnknownStudyError

        try:
            return Study(self.config.name, storage=self.config.storage)
        except UnknownStudyError:
            raise UnknownStudyError(
                f"There is no study named '{self.config.name}' in {self.config.storage}: run hyperlab tune on the "
                "file first (a re-test re-runs a study's best configurations)."
            ) from None

    def plan_retest(self, *, top: int, seeds: int, epochs: int | None = None) -> RetestPlan:
        """Check and plan a re-test (see :meth:`retest`) before anything runs or is stored:
        the data, the study, its complete trials, the metric, ``epochs`` (set into the
        file's ``train:``, refused when the study searched epochs) and what changed."""
        from hyperlab.analysis.curves import ranked_trials
        from hyperlab.errors import InvalidArgumentError, NoCompletedTrialError
        from hyperlab.train.hparams import TrainConfig

        c = self.config
        study = self.stored_study()
        if study.metric is not None and study.metric != c.metric:
            raise InvalidArgumentError(
                f"metric: the file says {c.metric}, but study '{c.name}' was tuned on {study.metric}; set "
                f"metric: {study.metric} in the file to re-test it."
            )
        if epochs is not None:
            if "epochs" in study.space:
                raise InvalidArgumentError(
                    f"--epochs {epochs}: study '{c.name}' searched epochs, so each trial trains with its own; "
                    "drop --epochs."
                )
            c.train["epochs"] = epochs
        data = self.data  # checked (against the file's metric) before anything runs
        ranked = ranked_trials(study.trials, study.direction == "maximize")
        if not ranked:
            raise NoCompletedTrialError(f"Study '{c.name}' has no complete trial to re-test yet.")
        stored = study.attrs.get(SETTINGS_ATTR)
        notes = []
        if stored is None:
            changed = None
            first = int(c.train.get("seed", study.seed))
        else:
            changed = self.changes_since(stored, frozenset(study.space.names))
            first = int(stored.get("train", {}).get("seed", study.seed))
        if c.seed != study.seed:
            changed = [*(changed or []), f"seed was {study.seed}, now {c.seed} (the data split follows it)"]
        if c.space() != study.space:
            notes.append("the file's search space differs from the study's: the trials' own params are used")
        if study.metric is None:
            notes.append(f"the study stores no metric (made from Python): its values are compared with {c.metric}")
        chosen = ranked[:top]
        fixed = {"seed": first, **c.train}
        if self.population and any(TrainConfig.from_params({**fixed, **t.params}).dropout > 0 for t in chosen):
            notes.append(
                "the fused runner's trials drew their dropout masks among other members: at their own seed a "
                "re-run draws other masks, so its value differs from the stored one even with nothing changed"
            )
        return RetestPlan(
            study=study,
            trials=chosen,
            seeds=[first + i for i in range(seeds)],
            metric=c.metric,
            changed=changed,
            notes=notes,
            data=data,
        )

    def retest(self, plan: RetestPlan, *, on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Re-run the planned best configurations of the study at the planned training
        seeds, on the data and ``train:`` settings the file gives now (the course:
        hyperparameters go stale as data, code and hardware change; re-test the best
        few and see whether they still hold).

        The first seed is the one the trials trained with: with nothing changed, a lone
        trial's value comes back exactly, and a fused population member's up to float
        rounding (which a fast-learning run can amplify) when it has no dropout. The
        others are fresh draws, so the mean says how much of a trial's value was its
        configuration and how much its draw. Each
        configuration retrains the way its trials trained. Only the dev split judges:
        the test split keeps its one look, taken at the end of the study.

        Each configuration's result is stored in the study (one attribute per re-test,
        ``retest <time> <pid>``) as soon as it is done, so an interrupted re-test keeps
        what it measured; ``on_result`` sees each one. Returns the whole record."""
        import datetime
        import platform

        import torch

        from hyperlab.train.hparams import TrainConfig
        from hyperlab.train.objective import best_value
        from hyperlab.train.trainer import Diverged, train_as_trials

        now = datetime.datetime.now(datetime.timezone.utc)
        record: dict[str, Any] = {
            "at": now.isoformat(timespec="seconds"),
            "host": platform.node(),
            "torch": torch.__version__,
            "settings": self.settings(),
            "changed": plan.changed,
            "metric": plan.metric,
            "seeds": plan.seeds,
            "planned": [t.id for t in plan.trials],
            "results": [],
        }
        key = f"{RETEST_PREFIX}{now.isoformat(timespec='microseconds')} {os.getpid()}"  # one attribute each
        for trial in plan.trials:
            values: list[float | None] = []  # None (JSON has no nan): diverged, or no finite value
            for seed in plan.seeds:
                config = TrainConfig.from_params({**self.config.train, **trial.params, "seed": seed})
                try:
                    run = train_as_trials(config, plan.data, engine=self.engine, population=self.population)
                except Diverged:
                    values.append(None)
                    continue
                values.append(best_value(run.curve, plan.metric))
            result = {"trial": trial.id, "stored": trial.value, "values": values}
            record["results"].append(result)
            plan.study.attrs[key] = record  # durable as each configuration is done
            if on_result is not None:
                on_result(result)
        return record


@dataclass
class RetestPlan:
    """What a re-test will run (see :meth:`TuneJob.plan_retest`)."""

    study: Study
    trials: list[Trial]  # the configurations, best first
    seeds: list[int]  # the trials' own training seed first
    metric: str
    changed: list[str] | None  # None: the study stored no settings to compare with
    notes: list[str]
    data: Any


def objective_from_config(raw: dict[str, Any]) -> Objective:
    """Build a study file's objective (in a worker process: the data are loaded there)."""
    from hyperlab.config import parse_config

    return TuneJob(parse_config(raw)).objective()
