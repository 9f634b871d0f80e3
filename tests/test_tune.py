"""TuneJob: a study file run with the built-in trainer, and its re-test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperlab import Float, Space, Study
from hyperlab.analysis.curves import ranked_trials
from hyperlab.analysis.retest import is_retest
from hyperlab.config import parse_config
from hyperlab.errors import InvalidArgumentError, NoCompletedTrialError, UnknownStudyError
from hyperlab.tune import TuneJob

# High rates for 6 epochs: several trials peak before their last epoch, so a value that
# is not the best epoch's (the last one's, say) would show.
SPACE = {
    "learning_rate": {"type": "float", "low": 0.03, "high": 1.0, "scale": "log"},
    "n_layers": {"type": "int", "low": 1, "high": 2},
}


def job(
    folder: Path,
    *,
    runner: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    **top: Any,
) -> TuneJob:
    raw = {
        "name": "r",
        "storage": f"sqlite:///{folder / 'r.db'}",
        "data": {"source": "sklearn:digits"},
        "trials": 6,
        "runner": runner or {"type": "inline"},
        "train": {"epochs": 6} if train is None else train,
        "search": search or SPACE,
        **top,
    }
    return TuneJob(parse_config(raw))


def retested(j: TuneJob, *, top: int = 3, seeds: int = 2, **kw: Any) -> dict[str, Any]:
    return j.retest(j.plan_retest(top=top, seeds=seeds), **kw)


def records(j: TuneJob) -> list[dict[str, Any]]:
    return [v for k, v in j.stored_study().attrs.items() if is_retest(k, v)]


@pytest.mark.parametrize("engine", ["fused", "ordinary"])
def test_a_retest_with_nothing_changed_gives_each_trial_its_value_back_at_its_seed(tmp_path: Path, engine: str) -> None:
    runner = {"type": "inline", "engine": engine}
    tuned = job(tmp_path, runner=runner)
    tuned.run()
    trials = tuned.study.trials
    assert any(min(t.metric("dev_error"), key=lambda sv: sv[1])[0] < 5 for t in trials)  # a best epoch not last
    again = job(tmp_path, runner=runner)
    record = retested(again, top=6)
    ranked = ranked_trials(trials, maximize=False)  # ties on the metric: the lower dev cost first
    assert ranked[0].id == tuned.best_trial().id
    assert record["changed"] == [] and record["seeds"] == [0, 1] and record["metric"] == "dev_error"
    assert [r["trial"] for r in record["results"]] == [t.id for t in ranked]
    for r, t in zip(record["results"], ranked, strict=True):
        assert r["stored"] == t.value and r["values"][0] == t.value  # the trials' seed: the same run
    # the second seed is a fresh draw: it moves at least one configuration's value
    assert any(r["values"][1] != r["values"][0] for r in record["results"])
    assert records(again) == [record]


@pytest.mark.usefixtures("one_thread")  # bit for bit: see conftest.one_thread
def test_a_fused_runners_trials_are_retrained_fused(tmp_path: Path) -> None:
    """Members of one population (batch norm; the dev cost, which shows float rounding) come back at their
    seed: retrained the way they trained (``measure_test(population=True)``)."""
    runner = {"type": "fused", "device": "cpu", "population": 4}
    search = {"learning_rate": {"type": "float", "low": 0.003, "high": 0.03, "scale": "log"}}
    kw: dict[str, Any] = {"runner": runner, "search": search, "metric": "dev_cost", "trials": 4}
    tuned = job(tmp_path, train={"epochs": 3, "batch_norm": True}, **kw)
    tuned.run()
    record = retested(job(tmp_path, train={"epochs": 3, "batch_norm": True}, **kw), top=4, seeds=1)
    stored = {t.id: t.value for t in tuned.study.trials}
    assert [r["values"][0] for r in record["results"]] == [stored[r["trial"]] for r in record["results"]]


def test_a_retest_names_what_changed_and_trains_with_the_file_as_it_is_now(tmp_path: Path) -> None:
    job(tmp_path).run()
    j = job(tmp_path)
    j.config.train.update(batch_size=32, learning_rate=0.5)
    j.config.seed = 7
    plan = j.plan_retest(top=1, seeds=2, epochs=3)
    assert plan.changed == [
        "train.epochs was 6, now 3",
        "train.batch_size was unset (the default), now 32",
        "train.learning_rate was unset (the default), now 0.5 (searched: each trial's own value is used)",
        "seed was 0, now 7 (the data split follows it)",
    ]
    assert plan.seeds == [0, 1]  # the trials' own seed first, whatever the file says now
    record = j.retest(plan)
    assert record["settings"]["train"] == {"epochs": 3, "batch_size": 32, "learning_rate": 0.5}


def test_the_plan_refuses_what_cannot_be_compared(tmp_path: Path) -> None:
    with pytest.raises(UnknownStudyError, match="There is no study named 'r'.*run hyperlab tune on the file first"):
        job(tmp_path).plan_retest(top=1, seeds=1)
    job(tmp_path).study  # created, no trial run  # noqa: B018
    with pytest.raises(NoCompletedTrialError, match="Study 'r' has no complete trial to re-test yet"):
        job(tmp_path).plan_retest(top=1, seeds=1)
    with pytest.raises(InvalidArgumentError, match="metric: the file says dev_accuracy, but study 'r' was tuned on"):
        job(tmp_path, metric="dev_accuracy").plan_retest(top=1, seeds=1)


def test_epochs_is_checked_against_the_space_the_study_searched(tmp_path: Path) -> None:
    searched = {**SPACE, "epochs": {"type": "int", "low": 1, "high": 2}}
    job(tmp_path, train={}, search=searched).run()
    with pytest.raises(InvalidArgumentError, match="--epochs 2: study 'r' searched epochs, so each trial trains"):
        job(tmp_path, train={}, search=searched).plan_retest(top=1, seeds=1, epochs=2)


def test_notes_for_a_study_without_metric_and_for_fused_dropout(tmp_path: Path) -> None:
    from hyperlab.train import load_dataset, make_objective

    study = Study(
        "r", Space(learning_rate=Float(0.01, 0.1, scale="log")), storage=f"sqlite:///{tmp_path / 'r.db'}", seed=0
    )
    study.optimize(make_objective(load_dataset("sklearn:digits"), {"epochs": 1}), n_trials=2)
    j = job(tmp_path, runner={"type": "fused", "device": "cpu"})
    j.config.train["dropout"] = 0.2
    plan = j.plan_retest(top=1, seeds=1)
    assert plan.changed is None
    assert [n.split(":")[0] for n in plan.notes] == [
        "the file's search space differs from the study's",
        "the study stores no metric (made from Python)",
        "the fused runner's trials drew their dropout masks among other members",
    ]


def test_an_interrupted_retest_keeps_the_configurations_it_finished(tmp_path: Path) -> None:
    job(tmp_path).run()
    seen = []

    def stop_after_one(result: dict[str, Any]) -> None:
        seen.append(result)
        raise KeyboardInterrupt

    j = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        retested(j, top=3, on_result=stop_after_one)
    [record] = records(j)
    assert record["results"] == seen and len(seen) == 1 and len(record["planned"]) == 3


def test_the_fused_runners_best_trial_is_tested_on_its_own_weights(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The fused runner measures each completed member on the test split with its weights
    at its best epoch; the study's test metrics are the best trial's, with no retraining.
    A lone trial (the inline runner) is retrained, which gives its run back exactly."""
    from hyperlab.train import trainer
    from hyperlab.trial import TRIAL_TEST_ATTR

    fused = job(tmp_path, runner={"type": "fused", "device": "cpu", "population": 6})
    fused.run()
    trials = fused.study.trials
    assert all(TRIAL_TEST_ATTR in t.system_attrs for t in trials if t.state.value == "complete")

    def no_retraining(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("retrained")

    with monkeypatch.context() as m:
        m.setattr(trainer, "measure_test", no_retraining)
        test = fused.test_metrics()
    best = fused.best_trial()
    errors = dict(best.metric("dev_error"))
    assert test["trial"] == best.id and test["weights"] == "trial"
    assert test["dev_error"] == best.value == errors[int(test["best_epoch"])] == min(errors.values())
    assert test["test_accuracy"] == 1 - test["test_error"] and 0 <= test["test_error"] < 0.5
    assert job(tmp_path, runner={"type": "fused", "device": "cpu"}).test_metrics() == test  # stored once
    assert "test_" not in repr(best)  # a trial's test numbers are not shown with it

    # A store that refuses the numbers: the trials are told all the same, and the best retrained.
    def refused(*args: Any) -> None:
        raise OSError("disk full")

    (tmp_path / "refused").mkdir()
    with monkeypatch.context() as m:
        m.setattr(Study, "_add_system_attrs", refused)
        failing = job(tmp_path / "refused", runner={"type": "fused", "device": "cpu", "population": 6})
        failing.run()
    assert [t.state.value for t in failing.study.trials] == ["complete"] * 6
    assert failing.test_metrics()["weights"] == "retrained"

    (tmp_path / "lone").mkdir()
    lone = job(tmp_path / "lone")
    lone.run()
    test = lone.test_metrics()
    assert test["weights"] == "retrained" and test["dev_error"] == lone.best_trial().value
