"""The built-in trainer as a study objective."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperlab.analysis.curves import best_of
from hyperlab.errors import InvalidArgumentError
from hyperlab.train.data import Dataset
from hyperlab.train.hparams import TrainConfig, check_engine, trains_alone_fused
from hyperlab.train.trainer import Diverged, train
from hyperlab.trial import Trial, TrialDiverged

__all__ = ["make_objective", "best_value", "METRICS", "metric_direction", "ObjectiveFactory", "LoadedObjective"]

# Metrics the trainer reports that a study can optimize, with their direction.
METRICS = {
    "dev_error": "minimize",
    "dev_cost": "minimize",
    "dev_accuracy": "maximize",
}


def metric_direction(metric: str) -> str:
    return METRICS[metric]


def make_objective(
    data: Dataset, fixed: Mapping[str, Any] | None = None, *, metric: str = "dev_error", engine: str = "fused"
) -> Any:
    """An objective that trains the MLP with ``{**fixed, **trial.params}`` on ``data``.

    Every epoch is reported to the trial. The trial's value is the best ``metric`` over
    the epochs (the model early stopping would keep). A diverging run raises
    :class:`~hyperlab.TrialDiverged`, so the study marks it and goes on.

    ``engine``: ``"fused"`` (default) trains with
    :func:`~hyperlab.train.fused.train_alone`, the same curve as the ordinary trainer
    up to float rounding and 1.5x faster over the course space, except with batch
    normalization, where it is slower and :func:`hyperlab.train.train` runs instead;
    ``"ordinary"`` always trains with :func:`hyperlab.train.train`.
    """
    check_recipe(fixed, metric, engine)
    fixed = dict(fixed or {})

    def objective(trial: Trial) -> float | None:
        config = TrainConfig.from_params({**fixed, **trial.params})
        should_stop = getattr(trial, "should_stop", None)
        if trains_alone_fused(config, engine):
            from hyperlab.train.fused import train_alone as run
        else:
            run = train
        try:
            result = run(
                config, data, report=lambda epoch, metrics: trial.report(epoch, **metrics), should_stop=should_stop
            )
        except Diverged as e:
            raise TrialDiverged(str(e)) from None
        return best_value(result.curve, metric)

    return objective


def check_recipe(fixed: Mapping[str, Any] | None, metric: str, engine: str) -> None:
    """Refuse a bad engine, metric or fixed hyperparameter when the objective is made
    (in the tuner), not in every trial or worker after it loaded the data."""
    check_engine(engine)
    if metric not in METRICS:
        raise InvalidArgumentError(
            f"The 'metric' parameter must be one of {', '.join(METRICS)} (what the trainer reports that a study "
            f"can optimize). Got {metric!r} instead."
        )
    if fixed is not None and not isinstance(fixed, Mapping):
        raise InvalidArgumentError(
            f"The fixed hyperparameters must be a mapping of name to value. Got {fixed!r} instead."
        )
    TrainConfig.from_params(fixed or {})  # an unknown name or a bad value, with the trainer's defaults for the rest


def best_value(curve: list[dict[str, float]], metric: str) -> float | None:
    """A trained run's value: its best finite ``metric`` over the epochs (the model early
    stopping would keep); None when there is none."""
    return best_of([m[metric] for m in curve if metric in m], METRICS[metric] == "maximize")


@dataclass(frozen=True)
class ObjectiveFactory:
    """A picklable recipe for the built-in trainer's objective, for runners whose
    workers live in other processes: each worker loads the data itself.

    Example:
        >>> from hyperlab.runners import ProcessRunner, RunPolicy  # doctest: +SKIP
        >>> factory = ObjectiveFactory("mnist1d", {"epochs": 30}, metric="dev_accuracy")
        >>> ProcessRunner(2).run(study, factory, RunPolicy(max_trials=64))
    """

    source: str
    fixed: dict[str, Any] = field(default_factory=dict)
    metric: str = "dev_error"
    seed: int = 0
    engine: str = "fused"  # see make_objective

    def __post_init__(self) -> None:
        check_recipe(self.fixed, self.metric, self.engine)  # here, not in every worker after it loaded the data

    def __call__(self) -> Any:
        data, fixed, metric = self.population_recipe()
        return make_objective(data, fixed, metric=metric, engine=self.engine)

    def population_recipe(self) -> tuple[Dataset, dict[str, Any], str]:
        """(data, fixed hyperparameters, metric): what the fused runner trains."""
        from hyperlab.train.data import load_dataset

        return load_dataset(self.source, seed=self.seed), dict(self.fixed), self.metric


@dataclass(frozen=True)
class LoadedObjective:
    """The built-in trainer's objective on data already loaded, for runners in this
    process (inline, fused)."""

    data: Dataset
    fixed: dict[str, Any]
    metric: str = "dev_error"
    engine: str = "fused"  # see make_objective

    def __post_init__(self) -> None:
        check_recipe(self.fixed, self.metric, self.engine)

    def __call__(self) -> Any:
        return make_objective(self.data, self.fixed, metric=self.metric, engine=self.engine)

    def population_recipe(self) -> tuple[Dataset, dict[str, Any], str]:
        return self.data, dict(self.fixed), self.metric
