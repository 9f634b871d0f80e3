"""The built-in trainer: every knob of the course does what it says, deterministically."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

from hyperlab import Float, Int, Space, Study, TrialState
from hyperlab._optimize import run_one
from hyperlab.errors import InvalidArgumentError
from hyperlab.train import Diverged, TrainConfig, load_dataset, make_objective, train
from hyperlab.train.fused import train_alone
from hyperlab.train.model import build_mlp, initial_weights
from hyperlab.train.trainer import CourseMomentum, learning_rate_at, measure_test


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("sklearn:digits", seed=0)


FAST = {"epochs": 3, "hidden_units": 32, "n_layers": 1, "batch_size": 128}


def curve(result, key: str = "dev_error") -> list[float]:  # type: ignore[no-untyped-def]
    return [m[key] for m in result.curve]


@pytest.mark.parametrize(("optimizer", "lr"), [("gd", 0.5), ("momentum", 0.5), ("rmsprop", 3e-3), ("adam", 3e-3)])
def test_every_optimizer_learns(digits, optimizer: str, lr: float) -> None:  # type: ignore[no-untyped-def]
    r = train(TrainConfig(optimizer=optimizer, learning_rate=lr, **{**FAST, "epochs": 5}), digits)
    costs = curve(r, "train_cost")
    assert costs[-1] < 0.5 * costs[0], costs
    assert r.best_dev_error < 0.2


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_activations_and_batch_norm(digits, activation: str, batch_norm: bool) -> None:  # type: ignore[no-untyped-def]
    lr = 0.05 if activation == "sigmoid" else 0.01
    r = train(TrainConfig(activation=activation, batch_norm=batch_norm, learning_rate=lr, **FAST), digits)
    assert r.best_dev_error < 0.5
    model = build_mlp(64, 10, widths=[32], activation=activation, batch_norm=batch_norm)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model) == batch_norm
    assert (model[0].bias is None) == batch_norm  # BN's beta replaces the bias


def test_batch_norm_uses_running_statistics_at_test_time(digits) -> None:  # type: ignore[no-untyped-def]
    r = train(TrainConfig(batch_norm=True, **FAST), digits, keep_best_state=True)
    assert r.state_dict is not None
    running_mean = r.state_dict["1.running_mean"]
    assert running_mean.abs().sum() > 0 and int(r.state_dict["1.num_batches_tracked"]) > 0


def test_initialization_matches_the_activation() -> None:
    torch.manual_seed(0)
    relu = build_mlp(1000, 10, widths=[500], activation="relu")[0].weight
    tanh = build_mlp(1000, 10, widths=[500], activation="tanh")[0].weight
    assert float(relu.detach().std()) == pytest.approx(math.sqrt(2 / 1000), rel=0.02)  # He
    assert float(tanh.detach().std()) == pytest.approx(math.sqrt(1 / 1000), rel=0.02)  # Xavier
    forced = build_mlp(1000, 10, widths=[500], activation="tanh", init="he")[0].weight
    assert float(forced.detach().std()) == pytest.approx(math.sqrt(2 / 1000), rel=0.02)


@pytest.mark.parametrize(
    ("widths", "activation", "init", "batch_norm"),
    [
        ([32, 16], "relu", "auto", False),
        ([7], "leaky_relu", "he", True),
        ([40, 40, 40], "tanh", "xavier", False),
        ([], "sigmoid", "auto", False),
        ([24, 8], "sigmoid", "he", True),
    ],
)
def test_initial_weights_are_what_building_the_model_draws(widths, activation, init, batch_norm) -> None:  # type: ignore[no-untyped-def]
    """The fused trainer starts its members from these draws instead of building each
    model: they must be the very weights build_mlp gives under the same seed."""
    torch.manual_seed(3)
    model = build_mlp(64, 10, widths=widths, activation=activation, init=init, batch_norm=batch_norm)
    after_model = torch.rand(1)
    torch.manual_seed(3)
    drawn = initial_weights(64, 10, widths=widths, activation=activation, init=init, batch_norm=batch_norm)
    assert drawn is not None
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert len(drawn) == len(linears)
    for (weight, bias), linear in zip(drawn, linears, strict=True):
        assert torch.equal(weight, linear.weight.detach())
        assert torch.equal(bias, linear.bias.detach() if linear.bias is not None else torch.zeros_like(bias))
    assert torch.equal(torch.rand(1), after_model)  # the generator is left where the model leaves it
    assert initial_weights(64, 10, widths=[8], init="torch") is None  # nn.Linear's own values: build it


def test_dropout_and_l2_change_training(digits) -> None:  # type: ignore[no-untyped-def]
    base = train(TrainConfig(**FAST), digits)
    dropped = train(TrainConfig(dropout=0.5, **FAST), digits)
    l2 = train(TrainConfig(l2=5.0, **FAST), digits)
    assert curve(dropped, "train_cost") != curve(base, "train_cost")
    # L2 is part of the cost J: a large lambda makes J larger.
    assert curve(l2, "train_cost")[-1] > curve(base, "train_cost")[-1]
    model = build_mlp(64, 10, widths=[32], dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model)


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        ({"lr_decay": "none"}, [0.1, 0.1, 0.1, 0.1]),
        ({"lr_decay": "inverse", "decay_rate": 1.0}, [0.1, 0.05, 0.1 / 3, 0.025]),
        ({"lr_decay": "exponential", "decay_base": 0.5}, [0.1, 0.05, 0.025, 0.0125]),
        ({"lr_decay": "step", "decay_base": 0.1, "step_size": 2}, [0.1, 0.1, 0.01, 0.01]),
        (
            {"lr_decay": "cosine"},
            [0.1, 0.1 * 0.5 * (1 + math.cos(math.pi / 4)), 0.05, 0.1 * 0.5 * (1 + math.cos(3 * math.pi / 4))],
        ),
    ],
)
def test_learning_rate_decay(digits, decay: dict, expected: list[float]) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(learning_rate=0.1, optimizer="gd", **{**FAST, "epochs": 4}, **decay)
    assert [learning_rate_at(config, e) for e in range(4)] == pytest.approx(expected)
    r = train(config, digits)
    assert curve(r, "lr") == pytest.approx(expected)  # the rate in effect is reported


def test_course_momentum_is_the_course_formula() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = CourseMomentum([w], lr=0.1, beta=0.9)
    v = torch.zeros(2)
    expected = w.detach().clone()
    for g in ([0.5, 1.0], [-1.0, 0.25], [2.0, 2.0]):
        w.grad = torch.tensor(g)
        opt.step()
        v = 0.9 * v + 0.1 * torch.tensor(g)
        expected -= 0.1 * v
    assert torch.allclose(w.detach(), expected)


def test_adam_and_rmsprop_get_their_coefficients(digits) -> None:  # type: ignore[no-untyped-def]
    from hyperlab.train.trainer import _optimizer

    params = [torch.nn.Parameter(torch.zeros(1))]
    adam = _optimizer(TrainConfig(adam_beta1=0.8, adam_beta2=0.99, adam_epsilon=1e-6), params)
    assert adam.defaults["betas"] == (0.8, 0.99) and adam.defaults["eps"] == 1e-6
    rms = _optimizer(TrainConfig(optimizer="rmsprop", rmsprop_beta=0.95, rmsprop_epsilon=1e-7), params)
    assert rms.defaults["alpha"] == 0.95 and rms.defaults["eps"] == 1e-7


def test_tasks_binary_and_regression() -> None:
    binary = load_dataset("sklearn:breast_cancer")
    r = train(TrainConfig(**{**FAST, "epochs": 10}, learning_rate=0.01), binary)
    assert r.best_dev_error < 0.1 and "dev_accuracy" in r.curve[0]
    reg = load_dataset("sklearn:diabetes")
    r = train(TrainConfig(**{**FAST, "epochs": 10}, learning_rate=0.01), reg)
    assert "dev_accuracy" not in r.curve[0]
    assert r.curve[-1]["train_cost"] < r.curve[0]["train_cost"]


def test_same_config_and_seed_same_curve(digits) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(dropout=0.2, batch_norm=True, **FAST)
    a, b = train(config, digits), train(config, digits)
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in a.curve]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in b.curve]
    c = train(TrainConfig(dropout=0.2, batch_norm=True, seed=1, **FAST), digits)
    assert curve(c) != curve(a)


def test_batch_size_at_least_m_is_batch_gradient_descent(digits) -> None:  # type: ignore[no-untyped-def]
    r = train(TrainConfig(optimizer="gd", learning_rate=0.5, epochs=2, batch_size=100_000), digits)
    assert len(r.curve) == 2


def test_early_stopping_on_dev_metric(digits) -> None:  # type: ignore[no-untyped-def]
    r = train(TrainConfig(learning_rate=1e-6, optimizer="gd", epochs=50, patience=2, **{"hidden_units": 8}), digits)
    assert r.stopped_early and r.epochs_run < 50


def test_divergence_is_detected(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Diverged, match="the train cost became nan at epoch 0|grew to"):
        train(TrainConfig(optimizer="gd", learning_rate=1e4, **FAST), digits)


@pytest.mark.parametrize("engine", ["fused", "ordinary"])
def test_absurd_learning_rate_marks_trial_diverged_and_study_completes(digits, engine: str) -> None:  # type: ignore[no-untyped-def]
    study = Study(
        "div", Space(learning_rate=Float(1e-3, 1e5, scale="log")), storage="memory", seed=0, metric="dev_error"
    )
    objective = make_objective(digits, {**FAST, "optimizer": "gd", "epochs": 2}, engine=engine)
    study.optimize(objective, n_trials=3)
    big = study.ask({"learning_rate": 1e5})
    run_one(study, objective, big)  # one known-absurd trial
    states = {t.id: t.state for t in study.trials}
    assert states[big.id] is TrialState.DIVERGED
    assert re.search(r"train cost (became nan|grew to)", study.trial(big.id).reason or "")
    assert study.trial(big.id).curve  # the curve up to the divergence is kept
    assert len(study.trials) == 4


@pytest.mark.parametrize(
    ("params", "stop_after", "epochs"),
    [
        ({"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 64, "n_layers": 2, "hidden_units": 48}, 3, 3),
        ({"optimizer": "momentum", "learning_rate": 0.05, "lr_decay": "inverse", "decay_rate": 0.5}, 2, 2),
        ({"optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 32, "l2": 0.01, "dropout": 0.0}, None, 5),
        ({"optimizer": "adam", "learning_rate": 0.03, "patience": 1}, None, 4),  # early stopping at epoch 3
    ],
)
def test_the_fused_engine_reports_the_ordinary_trainers_curve(  # type: ignore[no-untyped-def]
    digits, monkeypatch: pytest.MonkeyPatch, params: dict, stop_after: int | None, epochs: int
) -> None:
    """The objective's default engine (a population of one) gives a trial the curve the
    ordinary trainer gives it, up to float32 rounding (through a few epochs), and stops
    where it stops: early stopping, a scheduler's verdict, the last epoch."""
    import hyperlab.train.fused
    import hyperlab.train.objective

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the other engine ran")

    curves = {}
    for engine, other in (
        ("fused", (hyperlab.train.objective, "train")),
        ("ordinary", (hyperlab.train.fused, "train_alone")),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(*other, refuse)
            study = Study("e", Space(seed=Int(0, 9)), storage="memory", seed=0, metric="dev_error")
            verdicts = iter([i + 1 == stop_after for i in range(5)])  # a scheduler's, after each epoch
            trial = study.ask({"seed": 3})
            trial.should_stop = verdicts.__next__  # type: ignore[method-assign]
            run_one(study, make_objective(digits, {**FAST, **params, "epochs": 5}, engine=engine), trial)
            curves[engine] = study.trial(trial.id).curve
    assert list(curves["fused"]) == list(curves["ordinary"]) == list(range(epochs))
    for epoch, ordinary in curves["ordinary"].items():
        fused = curves["fused"][epoch]
        assert set(fused) == set(ordinary)
        for name, value in ordinary.items():
            if name != "seconds":
                assert fused[name] == pytest.approx(value, rel=1e-4, abs=1e-5), (epoch, name)


def test_batch_norm_trials_train_with_the_ordinary_trainer(digits, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The fused engine is slower with batch norm: those trials take the ordinary one."""
    import hyperlab.train.fused

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fused engine ran")

    monkeypatch.setattr(hyperlab.train.fused, "train_alone", refuse)
    study = Study("bn", Space(seed=Int(0, 9)), storage="memory", seed=0, metric="dev_error")
    study.optimize(make_objective(digits, {**FAST, "batch_norm": True}), n_trials=1)
    assert study.trials[0].state is TrialState.COMPLETE and len(study.trials[0].curve) == 3


@pytest.mark.parametrize(
    ("fixed", "kwargs", "said"),
    [
        (FAST, {"engine": "jit"}, "The 'engine' parameter must be one of fused, ordinary. Got 'jit' instead."),
        # these made every trial of a study fail, one after another (train_cost: a KeyError)
        (FAST, {"metric": "train_cost"}, "The 'metric' parameter must be one of dev_error, dev_cost, dev_accuracy"),
        ({"lerning_rate": 0.1}, {}, "'lerning_rate' is not a hyperparameter of the built-in trainer."),
        ({"epochs": 0}, {}, "The 'epochs' hyperparameter must be a positive integer. Got 0 instead."),
        ([("epochs", 1)], {}, "The fixed hyperparameters must be a mapping of name to value."),
    ],
)
def test_a_bad_objective_recipe_is_refused_when_made(digits, fixed, kwargs, said) -> None:  # type: ignore[no-untyped-def]
    from hyperlab.train import LoadedObjective, ObjectiveFactory

    with pytest.raises(InvalidArgumentError, match=re.escape(said)):
        make_objective(digits, fixed, **kwargs)
    with pytest.raises(InvalidArgumentError, match=re.escape(said)):  # before it reaches a worker
        ObjectiveFactory("sklearn:digits", fixed, **kwargs)
    with pytest.raises(InvalidArgumentError, match=re.escape(said)):
        LoadedObjective(digits, fixed, **kwargs)


def test_objective_reports_every_epoch_and_returns_best(digits) -> None:  # type: ignore[no-untyped-def]
    study = Study(
        "obj",
        Space(learning_rate=Float(1e-3, 1e-2, scale="log")),
        storage="memory",
        seed=0,
        metric="dev_accuracy",
        direction="maximize",
    )
    study.optimize(make_objective(digits, FAST, metric="dev_accuracy"), n_trials=2)
    for t in study.trials:
        assert list(t.curve) == [0, 1, 2]
        assert set(t.curve[0]) >= {
            "train_cost",
            "train_error",
            "dev_cost",
            "dev_error",
            "dev_accuracy",
            "lr",
            "seconds",
        }
        assert t.value == max(v for _, v in t.metric("dev_accuracy"))


def test_measure_test_uses_best_dev_weights(digits) -> None:  # type: ignore[no-untyped-def]
    out = measure_test(TrainConfig(**FAST), digits)
    assert 0 <= out["test_error"] <= 1 and out["test_accuracy"] == pytest.approx(1 - out["test_error"])


@pytest.mark.parametrize("engine", ["fused", "ordinary"])
def test_measure_test_retrains_the_trials_run_and_measures_its_best_epoch(digits, engine: str) -> None:  # type: ignore[no-untyped-def]
    # The test split is measured on the run the trial made (the same engine, the same
    # curve to the bit), with its weights at its best dev error, not its last.
    config = TrainConfig(**{**FAST, "epochs": 8, "learning_rate": 0.1})
    run = (train_alone if engine == "fused" else train)(config, digits)
    assert run.best_epoch < config.epochs - 1  # the last weights are another model
    out = measure_test(config, digits, engine=engine)
    assert out["best_epoch"] == run.best_epoch
    assert (out["dev_error"], out["dev_cost"]) == (run.best_dev_error, run.best_dev_cost)
    assert out["dev_accuracy"] == run.curve[run.best_epoch]["dev_accuracy"]
    # a run that ends at that epoch has those weights last
    upto = measure_test(dataclasses.replace(config, epochs=run.best_epoch + 1), digits, engine=engine)
    assert (out["test_cost"], out["test_error"]) == (upto["test_cost"], upto["test_error"])


def test_a_fused_populations_batch_norm_trial_is_retrained_fused(digits) -> None:  # type: ignore[no-untyped-def]
    # The fused runner trains batch norm fused too (lone trials with batch norm train
    # with train); the parameters and batch norm's running statistics of the best epoch
    # are those the test split is measured with.
    config = TrainConfig(**{**FAST, "epochs": 8, "learning_rate": 0.1, "batch_norm": True})
    run = train_alone(config, digits)
    assert run.best_epoch < config.epochs - 1
    out = measure_test(config, digits, population=True)
    assert (out["best_epoch"], out["dev_error"], out["dev_cost"]) == (
        run.best_epoch,
        run.best_dev_error,
        run.best_dev_cost,
    )
    upto = measure_test(dataclasses.replace(config, epochs=run.best_epoch + 1), digits, population=True)
    assert (out["test_cost"], out["test_error"]) == (upto["test_cost"], upto["test_error"])
    # and a lone batch-norm trial's retraining is train's
    assert measure_test(config, digits)["dev_error"] == train(config, digits).best_dev_error


def test_measure_test_refuses_an_unknown_engine(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        InvalidArgumentError, match="The 'engine' parameter must be one of fused, ordinary. Got 'fuzed'"
    ):
        measure_test(TrainConfig(**FAST), digits, engine="fuzed")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"optimizer": "sgd"},
            "The 'optimizer' hyperparameter must be one of gd, momentum, rmsprop, adam. Got 'sgd' instead.",
        ),
        (
            {"learning_rate": -1.0},
            "The 'learning_rate' hyperparameter must be a positive, finite number. Got -1.0 instead.",
        ),
        # strings raised a raw TypeError; inf and True passed; 'no' switched batch norm on
        ({"learning_rate": "0.1"}, "The 'learning_rate' hyperparameter must be a positive, finite number. Got '0.1'"),
        ({"learning_rate": math.inf}, "The 'learning_rate' hyperparameter must be a positive, finite number. Got inf"),
        ({"l2": True}, "The 'l2' hyperparameter must be a non-negative, finite number. Got True instead."),
        ({"batch_norm": "no"}, "The 'batch_norm' hyperparameter must be true or false. Got 'no' instead."),
        ({"seed": "x"}, "The 'seed' hyperparameter must be a non-negative integer. Got 'x' instead."),
        ({"dropout": 1.0}, "The 'dropout' hyperparameter must be in [0, 1). Got 1.0 instead."),
        ({"momentum": 1.0}, "The 'momentum' hyperparameter must be in [0, 1). Got 1.0 instead."),
        ({"hidden_units": [64, 0]}, "The 'hidden_units' hyperparameter must be a positive integer or a list of them."),
        (
            {"learning_rte": 0.1},
            "'learning_rte' is not a hyperparameter of the built-in trainer. Did you mean 'learning_rate'?",
        ),
    ],
)
def test_bad_hyperparameters(params: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        TrainConfig.from_params(params)


def test_hidden_units_per_layer(digits) -> None:  # type: ignore[no-untyped-def]
    r = train(TrainConfig(hidden_units=[48, 24], epochs=1, batch_size=256), digits, keep_best_state=True)
    assert r.state_dict is not None
    shapes = [tuple(v.shape) for k, v in r.state_dict.items() if k.endswith("weight")]
    assert shapes == [(48, 64), (24, 48), (10, 24)]
    assert np.isfinite(r.best_dev_error)
