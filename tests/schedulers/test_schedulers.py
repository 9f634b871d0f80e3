"""Schedulers on synthetic populations with known curves, and ASHA on the digits MLP."""

from __future__ import annotations

import math
import re

import pytest

from hyperlab import Float, Int, Space, Study, TrialState
from hyperlab.errors import InvalidArgumentError
from hyperlab.schedulers import ASHAScheduler, HyperbandScheduler, MedianScheduler

SPACE = Space(x=Float(0.0, 1.0))


def population(values: list[float], scheduler, *, maximize: bool = False, epochs: int = 9) -> Study:  # type: ignore[no-untyped-def]
    """Trial i reports ``values[i]`` at every epoch; trials run one after another."""
    study = Study(
        "pop",
        SPACE,
        storage="memory",
        metric="loss",
        direction="maximize" if maximize else "minimize",
        scheduler=scheduler,
        seed=0,
    )

    def objective(trial):  # type: ignore[no-untyped-def]
        v = values[trial.id]
        for epoch in range(epochs):
            trial.report(epoch, loss=v)
            if trial.should_stop():
                return None
        return v

    study.optimize(objective, n_trials=len(values))
    return study


def test_asha_promotes_exactly_the_right_trials() -> None:
    # eta 3, rungs after 1 and 3 epochs. At each rung a trial goes on only if it is in the
    # top max(1, n // 3) of the n values recorded there so far (worked out by hand):
    #   rung 0: 5 go, 3 go, 8 stop, 1 go, 9 stop, 2 go (top 2 of 6), 7 stop, 4 stop, 6 stop (top 3 of 9: <= 3)
    #   rung 1 (reached by 5, 3, 1, 2): 5 go, 3 go, 1 go, 2 stop (top 1 of 4 is 1)
    values = [5, 3, 8, 1, 9, 2, 7, 4, 6]
    study = population(values, ASHAScheduler(reduction_factor=3, min_resource=1, max_resource=9))
    states = [t.state for t in study.trials]
    assert [i for i, s in enumerate(states) if s is TrialState.COMPLETE] == [0, 1, 3]
    assert [i for i, s in enumerate(states) if s is TrialState.PRUNED] == [2, 4, 5, 6, 7, 8]
    stopped = {t.id: t.system_attrs["asha"]["stopped_at_rung"] for t in study.trials if t.state is TrialState.PRUNED}
    assert stopped == {2: 0, 4: 0, 6: 0, 7: 0, 8: 0, 5: 1}
    # A pruned trial keeps its curve up to the rung where it stopped, and the reason says why.
    t5 = study.trial(5)
    assert list(t5.curve) == [0, 1, 2]
    assert t5.reason == (
        "ASHA: at rung 1 (epoch 3) its value 2 is not in the top 1 of the 4 trials that reached this rung (cutoff 1)"
    )
    assert study.trial(2).system_attrs["asha"]["rungs"] == {"0": 8}
    assert study.best_trial.id == 3


def test_asha_maximize_mirrors_minimize() -> None:
    values = [5, 3, 8, 1, 9, 2, 7, 4, 6]
    study = population([-v for v in values], ASHAScheduler(3, 1, 9), maximize=True)
    assert [t.id for t in study.trials if t.state is TrialState.COMPLETE] == [0, 1, 3]


def test_asha_rungs() -> None:
    assert ASHAScheduler(3, 1, 30).rungs() == [1, 3, 9, 27]
    assert ASHAScheduler(2, 2, 16).rungs() == [2, 4, 8]
    asha = ASHAScheduler(3, 1, 9)
    assert [asha.rung_of(r) for r in range(1, 11)] == [0, None, 1, None, None, None, None, None, None, None]


def test_hyperband_brackets() -> None:
    hb = HyperbandScheduler(reduction_factor=3, min_resource=1, max_resource=9)
    assert [b.min_resource for b in hb.brackets] == [1, 3, 9]
    # Bracket 2 starts at 9 = the whole trial: its trials are never stopped.
    values = [5, 3, 8, 1, 9, 2, 7, 4, 6, 10, 11, 12]
    study = population(values, hb)
    for t in study.trials:
        bracket = t.id % 3
        if bracket == 2:
            assert t.state is TrialState.COMPLETE
        if t.state is TrialState.PRUNED:
            assert t.system_attrs["asha"]["bracket"] == bracket
    # Trials compete only within their bracket: trial 4 (value 9, bracket 1, first rung after
    # 3 epochs) is compared with trial 1 alone, not with bracket 0's trials.
    assert study.trial(6).state is TrialState.PRUNED
    assert study.trial(4).reason == (
        "ASHA: at rung 0 (epoch 3) its value 9 is not in the top 1 of the 2 trials that reached this rung (cutoff 3)"
    )


def test_median_rule() -> None:
    # Five trials complete with value 1..5 at every step; then a 10 is stopped at its first
    # judged step, a 2 runs to the end.
    values = [1, 2, 3, 4, 5, 10, 2]
    study = population(values, MedianScheduler(n_startup_trials=5, n_warmup_steps=2), epochs=6)
    assert [t.state for t in study.trials][5:] == [TrialState.PRUNED, TrialState.COMPLETE]
    pruned = study.trial(5)
    assert list(pruned.curve) == [0, 1, 2]
    assert pruned.reason == "median rule: at step 2 its best value 10 is worse than the median 3 of 5 completed trials"


def test_divergence_is_always_stopped() -> None:
    study = population([1.0, math.nan, 2.0], None)
    t = study.trial(1)
    assert t.state is TrialState.DIVERGED and t.reason == "loss became nan at step 0" and list(t.curve) == [0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ASHAScheduler(reduction_factor=1),
            "The 'reduction_factor' parameter of ASHAScheduler must be an integer >= 2. Got 1 instead.",
        ),
        (
            lambda: ASHAScheduler(min_resource=0),
            "The 'min_resource' parameter of ASHAScheduler must be a positive integer. Got 0 instead.",
        ),
        (lambda: HyperbandScheduler(), "The 'max_resource' parameter of HyperbandScheduler is required"),
        (  # no rung: it was accepted, and never stopped a trial
            lambda: ASHAScheduler(min_resource=10, max_resource=3),
            "The 'max_resource' parameter of ASHAScheduler must be an integer >= 10. Got 3 instead.",
        ),
        (
            lambda: ASHAScheduler(bracket="x"),  # type: ignore[arg-type]
            "The 'bracket' parameter of ASHAScheduler must be a non-negative integer. Got 'x' instead.",
        ),
        (
            lambda: MedianScheduler(n_startup_trials=0),
            "The 'n_startup_trials' parameter of MedianScheduler must be a positive integer",
        ),
        (lambda: Study("s", SPACE, storage="memory", scheduler=ASHAScheduler()), "has a scheduler but no metric"),
        (
            lambda: Study("s", SPACE, storage="memory", scheduler="asha"),
            "The 'scheduler' parameter of Study must be a Scheduler",
        ),  # type: ignore[arg-type]
    ],
)
def test_bad_scheduler_arguments(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        make()


def test_asha_on_digits_keeps_the_best_with_far_fewer_epochs() -> None:
    from hyperlab.train import load_dataset, make_objective

    data = load_dataset("sklearn:digits", seed=0)
    space = Space(learning_rate=Float(1e-4, 1.0, scale="log"), hidden_units=Int(16, 128, scale="log"))
    fixed = {"epochs": 18, "n_layers": 1, "batch_size": 128}
    results = {}
    for name, scheduler in (("none", None), ("asha", ASHAScheduler(3, 2, 18))):
        study = Study(
            name, space, storage="memory", metric="dev_accuracy", direction="maximize", scheduler=scheduler, seed=3
        )
        study.optimize(make_objective(data, fixed, metric="dev_accuracy"), n_trials=24)
        epochs = sum(len(t.curve) for t in study.trials)
        results[name] = (study.best_value, epochs, study.best_trial.params)
    best_none, epochs_none, _ = results["none"]
    best_asha, epochs_asha, _ = results["asha"]
    assert best_asha >= best_none - 0.01, results
    assert epochs_asha < 0.5 * epochs_none, results


def test_a_scheduler_whose_metric_is_never_reported_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    # it could never stop a trial, and nothing said so
    study = Study("w", SPACE, storage="memory", metric="dev_error", scheduler=ASHAScheduler(max_resource=9))

    def objective(trial):  # type: ignore[no-untyped-def]
        for step in range(3):
            trial.report(step, val_error=0.5)
        return 0.5

    with caplog.at_level("WARNING", logger="hyperlab"):
        study.optimize(objective, n_trials=3)
    said = [r.getMessage() for r in caplog.records if "cannot judge" in r.getMessage()]
    assert said == [
        "Study 'w' stops trials on 'dev_error', but trial 0 reported val_error at step 0 without it: the scheduler "
        "cannot judge such reports (is the study's metric the name the objective reports?)"
    ]
