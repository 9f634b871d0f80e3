"""Fused population training: each member follows the ordinary trainer's curve."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import statistics

import pytest
import torch
from torch import nn

from hyperlab.errors import InvalidArgumentError
from hyperlab.train import TrainConfig, load_dataset, train
from hyperlab.train import fused as fused_module
from hyperlab.train._plan import member_bytes, parse_memory, plan, wasted_share
from hyperlab.train.fused import EVAL_ROWS, _SubPopulation, _Tape, population_plan, train_population
from hyperlab.train.trainer import _FAST_ADAM, build_model

# Float32 tolerance: the fused model sums the same products in another order (batched
# GEMMs, per-member coefficients in float32 tensors instead of Python floats), which
# moves each value by a few ulps (~1e-7 relative); three epochs of training amplify
# that to ~1e-6. 1e-4 leaves room for other BLAS builds while catching any real
# difference (a wrong coefficient, a leaked padded unit), which shows at 1e-2.
RTOL = 1e-4
CURVE_KEYS = ("train_cost", "dev_cost", "train_error", "dev_error")


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("sklearn:digits")


def _close(fused: list[dict[str, float]], solo: list[dict[str, float]], rows: int) -> None:
    assert len(fused) == len(solo)
    for f, s in zip(fused, solo, strict=True):
        for key in ("train_cost", "dev_cost"):
            assert f[key] == pytest.approx(s[key], rel=RTOL), (key, fused, solo)
        for key in ("train_error", "dev_error"):  # counts of rows: at most one row flips
            assert abs(f[key] - s[key]) <= 1.0 / rows + 1e-9, (key, fused, solo)


@pytest.fixture(params=["vectorized", "grouped", "by member"])
def update(request, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """Every form of the optimizer step: vectorized over the members (a GPU), and on a
    CPU through torch's fused Adam kernel, one call per optimizer for all members (small
    ones) or one member at a time (wide ones)."""
    if request.param != "vectorized" and "fused" not in _FAST_ADAM:
        pytest.skip("torch's fused Adam kernel for the CPU needs torch 2.4")
    monkeypatch.setattr(fused_module, "FUSED_KERNEL", request.param != "vectorized")
    monkeypatch.setattr(fused_module, "ROW_UPDATE_MIN", 0 if request.param == "by member" else 2**62)
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("optimizer", "activation", "batch_norm"),
    list(
        itertools.product(
            ["gd", "momentum", "rmsprop", "adam"], ["relu", "leaky_relu", "tanh", "sigmoid"], [False, True]
        )
    ),
)
def test_member_follows_the_ordinary_trainer(
    digits, optimizer: str, activation: str, batch_norm: bool, update: str
) -> None:  # type: ignore[no-untyped-def]
    lr = 0.05 if optimizer in ("gd", "momentum") else 3e-3
    common = {"activation": activation, "batch_norm": batch_norm, "epochs": 3, "batch_size": 64}
    target = TrainConfig(
        optimizer=optimizer,
        learning_rate=lr,
        hidden_units=40,
        n_layers=2,
        l2=0.01,
        lr_decay="inverse",
        seed=1,
        **common,
    )
    # Around it: wider, narrower and shallower members with other optimizers, rates and seeds.
    others = [
        TrainConfig(optimizer="adam", learning_rate=1e-3, hidden_units=64, n_layers=2, seed=1, **common),
        TrainConfig(optimizer="momentum", learning_rate=0.1, hidden_units=20, n_layers=1, seed=2, **common),
        TrainConfig(optimizer="rmsprop", learning_rate=1e-3, hidden_units=[33, 50], seed=3, **common),
    ]
    results = train_population([others[0], target, others[1], others[2]], digits, device="cpu")
    assert all(r.diverged is None for r in results)
    _close(results[1].result.curve, train(target, digits).curve, len(digits.x_dev))
    _close(results[2].result.curve, train(others[1], digits).curve, len(digits.x_dev))


@pytest.mark.parametrize("source", ["sklearn:breast_cancer", "sklearn:diabetes"])
def test_binary_and_regression_members_follow_the_ordinary_trainer(source: str) -> None:
    """The hand-written gradients of the logistic and squared costs, in a population of
    mixed depths, widths, optimizers and initializations, with L2."""
    data = load_dataset(source)
    common = {"epochs": 3, "batch_size": 32, "activation": "tanh"}
    configs = [
        TrainConfig(optimizer="adam", learning_rate=3e-3, hidden_units=32, n_layers=2, l2=0.01, seed=1, **common),
        TrainConfig(optimizer="momentum", learning_rate=0.01, hidden_units=16, n_layers=1, seed=2, **common),
        # PyTorch's own initialization: the member's weights come from building its model
        TrainConfig(optimizer="rmsprop", learning_rate=1e-3, hidden_units=[24, 8, 8], seed=3, init="torch", **common),
    ]
    n_rows = len(data.x_train)
    assert len(plan(configs, data.n_features, data.n_outputs, n_rows, device="cpu")) == 1  # three depths in one
    results = train_population(configs, data, device="cpu")
    for config, fused in zip(configs, results, strict=True):
        solo = train(config, data).curve
        if data.task == "binary":
            _close(fused.result.curve, solo, len(data.x_dev))
        else:  # the error of a regression is its mean squared error
            for f, s in zip(fused.result.curve, solo, strict=True):
                for key in CURVE_KEYS:
                    assert f[key] == pytest.approx(s[key], rel=RTOL), (key, f, s)


@pytest.mark.parametrize(
    ("activation", "batch_norm"), list(itertools.product(["relu", "leaky_relu", "tanh", "sigmoid"], [False, True]))
)
def test_hand_written_gradients_equal_autograd(digits, activation: str, batch_norm: bool) -> None:  # type: ignore[no-untyped-def]
    """One step's gradients, member by member, against autograd on the ordinary model
    with the same dropout masks: three depths and widths where a shallower member's
    output layer reads fewer units than the layer it reads has."""
    common = {"activation": activation, "batch_norm": batch_norm, "dropout": 0.3, "l2": 0.05}
    configs = [
        TrainConfig(hidden_units=[40, 24], seed=1, **common),
        TrainConfig(hidden_units=[12], seed=2, **common),
        TrainConfig(hidden_units=[30, 20, 9], seed=3, **common),
    ]
    (bucket,) = plan(configs, digits.n_features, digits.n_outputs, len(digits.x_train), device="cuda")
    sub = _SubPopulation(bucket, configs, digits, torch.device("cpu"))
    rows = 50
    x, y = torch.from_numpy(digits.x_train[:rows]), torch.from_numpy(digits.y_train[:rows])
    k = len(configs)
    tape = _Tape([], [], [], [])
    with torch.no_grad():
        out = sub._forward(x.expand(k, *x.shape), tape)
        _, grad_out = sub._loss(out, y.expand(k, rows), torch.full((k, 1, rows), -1.0))
        assert grad_out is not None
        sub._backward(grad_out, tape, rows)
    assert sub.partial  # the 12-unit member's output reads 16 (aligned) of the first layer's 40
    for row, member in enumerate(sub.members):
        torch.manual_seed(member.config.seed)
        model = build_model(member.config, digits).train()
        h, hidden = x, -1
        for module in model:
            if isinstance(module, nn.Dropout):  # the population's mask for this member and layer
                h = h * tape.keeps[hidden][row, :, : h.shape[1]]
            else:
                h = module(h)
                hidden += isinstance(module, nn.Linear)
        weights = [m.weight for m in model if isinstance(m, nn.Linear)]
        loss = nn.functional.cross_entropy(h, y) + 0.05 / (2 * rows) * sum((w * w).sum() for w in weights)
        loss.backward()
        linears = [m for m in model if isinstance(m, nn.Linear)]
        norms = [m for m in model if isinstance(m, nn.BatchNorm1d)]
        places = [*range(len(linears) - 1), len(sub.widths)]
        for layer, (place, linear) in enumerate(zip(places, linears, strict=True)):
            g = sub.grads[place]
            out_w, in_w = linear.weight.shape
            torch.testing.assert_close(g["W"][row, :in_w, :out_w], linear.weight.grad.T, rtol=1e-4, atol=1e-6)
            assert torch.count_nonzero(g["W"][row, in_w:]) == 0 and torch.count_nonzero(g["W"][row, :, out_w:]) == 0
            if "b" in g:
                torch.testing.assert_close(g["b"][row, :out_w], linear.bias.grad, rtol=1e-4, atol=1e-6)
            else:
                torch.testing.assert_close(g["gamma"][row, :out_w], norms[layer].weight.grad, rtol=1e-4, atol=1e-6)
                torch.testing.assert_close(g["beta"][row, :out_w], norms[layer].bias.grad, rtol=1e-4, atol=1e-6)
        for place in range(len(linears) - 1, len(sub.widths)):  # layers this member lacks
            assert all(torch.count_nonzero(t[row]) == 0 for t in sub.grads[place].values())


@pytest.mark.parametrize("batch_norm", [False, True])
def test_compaction_of_mixed_depths_keeps_the_others_on_their_curves(digits, batch_norm: bool, update: str) -> None:  # type: ignore[no-untyped-def]
    """The deepest member leaves after one epoch: the layers only it had are dropped and
    the shallower members (and their batch-norm statistics) carry on unchanged."""
    common = {"batch_norm": batch_norm, "activation": "sigmoid"}
    configs = [
        TrainConfig(hidden_units=[48, 40, 32], epochs=1, seed=1, optimizer="adam", learning_rate=3e-3, **common),
        TrainConfig(hidden_units=[20], epochs=3, seed=2, optimizer="momentum", learning_rate=0.05, **common),
        TrainConfig(hidden_units=[36, 12], epochs=3, seed=3, optimizer="rmsprop", learning_rate=1e-3, **common),
        TrainConfig(hidden_units=[28], epochs=3, seed=4, optimizer="adam", learning_rate=3e-3, **common),
    ]
    results = train_population(configs, digits, device="cpu")
    assert [r.result.epochs_run for r in results] == [1, 3, 3, 3]
    for config, fused in zip(configs, results, strict=True):
        _close(fused.result.curve, train(config, digits).curve, len(digits.x_dev))


def test_grouped_update_serves_every_run_and_group_of_rows(digits, update: str) -> None:  # type: ignore[no-untyped-def]
    """Members sorted deepest first, then by optimizer and betas: here Adam's default
    betas fall into two runs of rows (one per depth), Adam with another beta2 and RMSprop
    into groups of their own, momentum and gd into one group of two runs; each member
    stays on its own curve."""
    common = {"epochs": 2, "batch_size": 128, "activation": "relu"}
    configs = [
        TrainConfig(optimizer="adam", learning_rate=2e-3, hidden_units=[40, 24], seed=1, **common),
        TrainConfig(optimizer="momentum", learning_rate=0.05, momentum=0.8, hidden_units=[32, 16], seed=2, **common),
        TrainConfig(optimizer="rmsprop", learning_rate=1e-3, hidden_units=[24, 24], seed=3, **common),
        TrainConfig(optimizer="adam", learning_rate=1e-3, hidden_units=16, n_layers=1, seed=4, **common),
        TrainConfig(optimizer="gd", learning_rate=0.1, hidden_units=40, n_layers=1, seed=5, **common),
        TrainConfig(optimizer="adam", learning_rate=3e-3, adam_beta2=0.99, hidden_units=8, n_layers=1, **common),
    ]
    (bucket,) = plan(configs, digits.n_features, digits.n_outputs, len(digits.x_train), device="cuda")
    sub = _SubPopulation(bucket, configs, digits, torch.device("cpu"))
    assert sub.update_form == {"vectorized": "vectorized", "grouped": "grouped", "by member": "rows"}[update]
    if update == "grouped":
        runs = {key[1:4]: rows for key, rows in sub.groups}  # (optimizer, beta1, beta2): runs of rows
        assert len(runs[("adam", 0.9, 0.999)]) == 2 and len(runs[("", 0.0, 0.0)]) == 2
        assert ("adam", 0.9, 0.99) in runs and ("rmsprop", 0.0, 0.999) in runs
    x, y = torch.from_numpy(digits.x_train), torch.from_numpy(digits.y_train)
    costs = [sub.train_epoch(x, y)[0].tolist() for _ in range(2)]
    for row, member in enumerate(sub.members):
        solo = train(configs[member.index], digits).curve
        for epoch in range(2):
            assert costs[epoch][row] == pytest.approx(solo[epoch]["train_cost"], rel=RTOL), (member.index, epoch)


def test_members_built_as_modules_follow_the_ordinary_trainer(digits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Where a torch release draws initial weights otherwise than initial_weights
    mirrors, each member's model is built instead: with batch norm, its hidden layers
    have no bias and gamma and beta start at 1 and 0."""
    from hyperlab.train import model

    monkeypatch.setattr(model, "_draws_like_build_mlp", lambda: False)
    common = {"epochs": 2, "batch_size": 64, "batch_norm": True, "optimizer": "adam", "learning_rate": 3e-3}
    configs = [
        TrainConfig(hidden_units=[32, 16], seed=1, **common),
        TrainConfig(hidden_units=24, n_layers=1, seed=2, activation="tanh", **common),
    ]
    for config, fused in zip(configs, train_population(configs, digits, device="cpu"), strict=True):
        _close(fused.result.curve, train(config, digits).curve, len(digits.x_dev))


def test_padded_units_and_skipped_layers_stay_exact(digits, update: str) -> None:  # type: ignore[no-untyped-def]
    configs = [
        TrainConfig(optimizer="adam", activation="tanh", hidden_units=8, n_layers=1, l2=0.1, epochs=1),
        TrainConfig(optimizer="rmsprop", activation="tanh", hidden_units=[32, 24, 16], epochs=1, seed=4),
    ]
    (bucket,) = plan(configs, digits.n_features, digits.n_outputs, len(digits.x_train), device="cuda")
    assert bucket.widths == (32, 24, 16)
    sub = _SubPopulation(bucket, configs, digits, torch.device("cpu"))
    assert [m.index for m in sub.members] == [1, 0]  # deepest first
    assert sub.active == [2, 1, 1]
    x, y = torch.from_numpy(digits.x_train), torch.from_numpy(digits.y_train)
    sub.train_epoch(x, y)
    # Member 0 (row 1) is 8 wide and one layer deep: its padded units and the two layers
    # it skips hold exact zeros in the weights, the gradients and both moments.
    for buffer in (sub.theta, sub.grad, sub.m, sub.v):
        row = buffer[1]
        for layer, slot in enumerate(sub.slots):
            off, (a, b) = slot["W"]
            block = row[off : off + a * b].view(a, b)
            if layer == 0:
                assert torch.count_nonzero(block[:, 8:]) == 0
            elif layer == 3:  # the output layer reads its 8 units
                assert torch.count_nonzero(block[8:]) == 0
            else:
                assert torch.count_nonzero(block) == 0
    shallow, deep = train_population(configs, digits)
    _close(shallow.result.curve, train(configs[0], digits).curve, len(digits.x_dev))
    _close(deep.result.curve, train(configs[1], digits).curve, len(digits.x_dev))
    assert torch.count_nonzero(sub.theta[0]) > 0


def test_a_diverging_member_leaves_without_disturbing_the_others(digits) -> None:  # type: ignore[no-untyped-def]
    calm = [TrainConfig(learning_rate=lr, hidden_units=32, epochs=4, optimizer="momentum") for lr in (0.05, 0.1)]
    wild = TrainConfig(learning_rate=1e3, hidden_units=32, epochs=4, optimizer="momentum")
    reports: list[tuple[int, int]] = []
    results = train_population([calm[0], wild, calm[1]], digits, report=lambda i, e, m: reports.append((i, e)))
    assert results[1].diverged is not None and results[1].result.epochs_run < 4
    assert [e for i, e in reports if i == 1] == list(range(results[1].result.epochs_run))
    alone = train_population(calm, digits)
    for with_wild, without in zip((results[0], results[2]), alone, strict=True):
        assert with_wild.diverged is None
        assert [c["dev_cost"] for c in with_wild.result.curve] == [c["dev_cost"] for c in without.result.curve]
        assert all(math.isfinite(c["train_cost"]) for c in with_wild.result.curve)


def test_members_leave_at_their_own_epoch_and_the_rest_train_on(digits) -> None:  # type: ignore[no-untyped-def]
    short = TrainConfig(epochs=2, hidden_units=24, seed=5)
    stopped = TrainConfig(epochs=6, hidden_units=48, seed=6, lr_decay="exponential", decay_base=0.9)
    long = TrainConfig(epochs=5, hidden_units=64, seed=7, optimizer="rmsprop")
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    results = train_population(
        [short, stopped, long],
        digits,
        report=lambda i, e, m: seen[i].append(e),
        should_stop=lambda i: i == 1 and len(seen[1]) >= 3,  # a scheduler stops member 1 after 3 epochs
    )
    assert [r.result.epochs_run for r in results] == [2, 3, 5]
    assert seen == {0: [0, 1], 1: [0, 1, 2], 2: [0, 1, 2, 3, 4]}
    _close(results[2].result.curve, train(long, digits).curve, len(digits.x_dev))


def _tested_population() -> list[TrainConfig]:
    """One mini-batch size: widths, depths and optimizers mixed, rates high enough that curves peak before their last epoch, one member
    that stops early (patience), one a scheduler stops, one that diverges."""
    return [
        TrainConfig(epochs=8, hidden_units=32, learning_rate=0.05, seed=1),
        TrainConfig(epochs=8, hidden_units=48, n_layers=3, learning_rate=0.03, seed=1),
        TrainConfig(epochs=6, hidden_units=24, optimizer="momentum", learning_rate=0.8, seed=1),
        TrainConfig(epochs=8, hidden_units=64, n_layers=1, learning_rate=0.3, patience=1, seed=1),
        TrainConfig(epochs=8, hidden_units=32, learning_rate=0.02, seed=1),  # the scheduler stops it
        TrainConfig(epochs=8, hidden_units=32, optimizer="momentum", learning_rate=1e3, seed=1),  # diverges
    ]


def _tested(configs: list[TrainConfig], data, **kwargs):  # type: ignore[no-untyped-def]
    seen: dict[int, int] = {}

    def should_stop(i: int) -> bool:
        seen[i] = seen.get(i, 0) + 1
        return i == 4 and seen[i] == 3

    return train_population(configs, data, should_stop=should_stop, device="cpu", **{"test": True, **kwargs})


@pytest.mark.usefixtures("one_thread")  # bit for bit: see conftest.one_thread
@pytest.mark.parametrize("batch_norm", [False, True])
def test_a_completed_member_is_tested_on_its_own_weights_at_its_best_epoch(digits, batch_norm: bool) -> None:  # type: ignore[no-untyped-def]
    """The test split is measured with each completed member's parameters (and batch
    norm's running statistics) as they were at its best dev error, not as they ended:
    the same member, trained in the same population only up to that epoch, ends there
    and gives exactly the same test numbers."""
    configs = [dataclasses.replace(c, batch_norm=batch_norm) for c in _tested_population()]
    assert all(len(b.members) > 1 for b in population_plan(configs, digits, device="cpu"))  # each among others
    results = _tested(configs, digits)
    assert results[4].result.epochs_run == 3 and results[4].test is None  # stopped: not tested
    assert results[5].diverged is not None and results[5].test is None
    assert results[3].result.stopped_early and results[3].test is not None  # early stopping completes
    peaked = 0
    for i in (0, 1, 2, 3):
        r = results[i]
        assert r.test is not None and all(math.isfinite(v) for v in r.test)
        best = r.result.best_epoch
        if best == r.result.epochs_run - 1:
            continue
        peaked += 1
        again = _tested(
            [dataclasses.replace(c, epochs=best + 1) if j == i else c for j, c in enumerate(configs)], digits
        )
        assert again[i].result.best_epoch == best and again[i].result.epochs_run == best + 1
        assert again[i].test == r.test, i
    assert peaked >= 2  # the premise: most members' last epoch is not their best
    untested = _tested(configs, digits, test=False)
    assert all(r.test is None for r in untested)  # only when asked
    # and measuring members as they leave disturbs no other member's training (5 is NaN)
    for r, un in zip(results[:5], untested[:5], strict=True):
        assert [{**m, "seconds": 0} for m in r.result.curve] == [{**m, "seconds": 0} for m in un.result.curve]


def test_a_member_awaiting_its_test_leaves_untested_when_the_run_stops(digits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C (or a dead worker) while a member that completed is being tested: it
    leaves all the same, without test numbers (its training is not lost); the members
    still training do not."""

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_SubPopulation, "test_best", interrupted)
    left: dict[int, fused_module.FusedResult] = {}
    configs = [TrainConfig(epochs=1, hidden_units=16), TrainConfig(epochs=3, hidden_units=32)]
    with pytest.raises(KeyboardInterrupt):
        train_population(configs, digits, test=True, on_leave=left.__setitem__)
    assert list(left) == [0] and left[0].test is None and left[0].result.epochs_run == 1


def test_dropout_is_equal_in_distribution(digits) -> None:  # type: ignore[no-untyped-def]
    """Fused dropout masks come from the population's generator, not each member's own:
    the final dev error over seeds must agree in mean, not curve by curve."""
    seeds = range(10)
    configs = [TrainConfig(dropout=0.4, hidden_units=64, epochs=4, learning_rate=3e-3, seed=s) for s in seeds]
    fused = [r.result.curve[-1]["dev_error"] for r in train_population(configs, digits)]
    solo = [train(c, digits).curve[-1]["dev_error"] for c in configs]
    spread = math.sqrt((statistics.variance(fused) + statistics.variance(solo)) / len(configs))
    assert abs(statistics.mean(fused) - statistics.mean(solo)) <= 3 * spread + 2 / len(digits.x_dev), (fused, solo)


def test_plan_groups_by_batch_and_activation_and_buckets_by_width(digits) -> None:  # type: ignore[no-untyped-def]
    n = len(digits.x_train)
    configs = [
        TrainConfig(hidden_units=16, n_layers=1, batch_size=64),
        TrainConfig(hidden_units=512, n_layers=3, batch_size=64),
        TrainConfig(hidden_units=20, n_layers=2, batch_size=64),
        TrainConfig(hidden_units=16, n_layers=1, batch_size=128),
        TrainConfig(hidden_units=16, n_layers=1, batch_size=64, activation="tanh"),
        TrainConfig(hidden_units=16, n_layers=2, batch_size=64, activation="tanh"),
    ]
    cpu = plan(configs, digits.n_features, digits.n_outputs, n, device="cpu")
    groups = {b.members for b in cpu}
    assert (3,) in groups and (4, 5) in groups  # batch 128; tanh of both depths together
    assert (1,) in groups and (0, 2) in groups  # the 512-wide one is not padded onto small ones
    assert wasted_share(cpu, configs, digits.n_features, digits.n_outputs) < 0.05
    gpu = plan(configs, digits.n_features, digits.n_outputs, n, device="cuda")
    assert (0, 1, 2) in {b.members for b in gpu}  # a step costs more than padding there
    assert wasted_share(gpu, configs, digits.n_features, digits.n_outputs) > 0.3  # 16 and 20 wide padded to 512


def test_memory_budget_splits_a_bucket_into_chunks(digits) -> None:  # type: ignore[no-untyped-def]
    configs = [TrainConfig(hidden_units=32, seed=s) for s in range(6)]
    one = population_plan(configs, digits, device="cpu")
    assert len(one) == 1
    chunks = population_plan(configs, digits, device="cpu", max_memory=2_000_000)
    assert len(chunks) > 1 and sorted(i for b in chunks for i in b.members) == list(range(6))
    with pytest.raises(InvalidArgumentError, match=re.escape("The 'max_memory' setting (1,000 bytes) is too small")):
        population_plan(configs, digits, device="cpu", max_memory=1000)


def test_the_memory_budget_counts_the_test_copies_only_when_testing(digits) -> None:  # type: ignore[no-untyped-def]
    # wide and deep, so that the parameters' copies are most of a member's memory
    configs = [TrainConfig(hidden_units=512, n_layers=4, seed=s) for s in range(8)]
    widths, batch = [512] * 4, configs[0].batch_size
    tested = member_bytes(digits.n_features, widths, digits.n_outputs, batch, EVAL_ROWS, test=True)
    untested = member_bytes(digits.n_features, widths, digits.n_outputs, batch, EVAL_ROWS)
    dims = [digits.n_features, *widths, digits.n_outputs]
    params = sum(a * b + 2 * b for a, b in itertools.pairwise(dims))
    assert tested - untested == 4 * 2 * params  # the best-epoch copy and the live one kept while testing
    budget = 4 * tested + 1
    tested_chunks = population_plan(configs, digits, device="cpu", max_memory=budget, test=True)
    assert [len(b.members) for b in tested_chunks] == [4, 4]
    untested_chunks = population_plan(configs, digits, device="cpu", max_memory=budget)  # as train_population
    assert [len(b.members) for b in untested_chunks] == [5, 3]  # budget // untested: 5


@pytest.mark.parametrize("test", [True, False])
def test_a_population_plans_its_memory_for_the_test_only_when_testing(digits, monkeypatch, test: bool) -> None:  # type: ignore[no-untyped-def]
    asked: list[bool] = []
    real = fused_module.population_plan

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs["test"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fused_module, "population_plan", spy)
    train_population([TrainConfig(hidden_units=16, epochs=1)], digits, device="cpu", test=test)
    assert asked == [test]


@pytest.mark.parametrize(
    ("text", "expected"), [("4GiB", 4 * 2**30), ("500MB", 500 * 10**6), (1e9, 10**9), ("2048", 2048)]
)
def test_parse_memory(text: str | float, expected: int) -> None:
    assert parse_memory(text) == expected


def test_parse_memory_names_bad_sizes() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("Got 'lots' instead.")):
        parse_memory("lots")


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (checked on a GPU machine when one is lent)"
)
def test_cuda_matches_cpu(digits) -> None:  # type: ignore[no-untyped-def]
    configs = [TrainConfig(hidden_units=w, epochs=3, optimizer=o) for w, o in ((32, "adam"), (64, "momentum"))]
    on_gpu = train_population(configs, digits, device="cuda")
    on_cpu = train_population(configs, digits, device="cpu")
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert [m["dev_cost"] for m in g.result.curve] == pytest.approx(
            [m["dev_cost"] for m in c.result.curve], rel=1e-3
        )
