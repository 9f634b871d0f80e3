"""Sub-populations trained side by side in worker processes (hyperlab.train._pool)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from hyperlab.errors import InvalidArgumentError
from hyperlab.train import TrainConfig, load_dataset
from hyperlab.train._plan import Bucket, deal, epoch_cost
from hyperlab.train._pool import PoolError
from hyperlab.train.fused import PopulationPool, population_plan, train_population
from tests.helpers import PYTHON, python_env


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("sklearn:digits", seed=0)


def _population() -> list[TrainConfig]:
    """Three mini-batch sizes (three sub-populations), widths and depths mixed, one member
    whose learning rate makes it diverge, and members with their own epoch counts."""
    return [
        TrainConfig(epochs=4, hidden_units=32, batch_size=64, seed=1),
        TrainConfig(epochs=4, hidden_units=48, n_layers=3, batch_size=64, seed=1, learning_rate=0.003),
        TrainConfig(epochs=3, hidden_units=16, batch_size=128, seed=1, optimizer="momentum", learning_rate=0.05),
        TrainConfig(epochs=4, hidden_units=64, n_layers=1, batch_size=128, seed=1, dropout=0.2),
        TrainConfig(epochs=4, hidden_units=32, batch_size=256, seed=1, optimizer="momentum", learning_rate=50.0),
        TrainConfig(epochs=4, hidden_units=24, batch_size=256, seed=1, optimizer="rmsprop", learning_rate=0.001),
    ]


def _run(configs: list[TrainConfig], data, pool: PopulationPool | None):  # type: ignore[no-untyped-def]
    """Results, each member's reports in order, and a scheduler that stops member 3 after
    its second epoch."""
    reports: dict[int, list[tuple[int, dict[str, float]]]] = {i: [] for i in range(len(configs))}

    def report(i: int, epoch: int, metrics: dict[str, float]) -> None:
        reports[i].append((epoch, {k: v for k, v in metrics.items() if k != "seconds"}))

    def should_stop(i: int) -> bool:
        return i == 3 and len(reports[3]) == 2

    results = train_population(
        configs, data, report=report, should_stop=should_stop, device="cpu", pool=pool, test=True
    )
    return results, reports


@pytest.mark.usefixtures("one_thread")  # bit for bit: see conftest.one_thread
def test_workers_give_every_member_the_curve_and_verdicts_it_gets_in_one_process(digits) -> None:  # type: ignore[no-untyped-def]
    configs = _population()
    assert len(population_plan(configs, digits, device="cpu")) >= 3
    alone, alone_reports = _run(configs, digits, None)
    with PopulationPool(2, threads=2) as pool:
        pooled, pooled_reports = _run(configs, digits, pool)
        assert all(w.process.is_alive() for w in pool._procs)  # kept for the next population
    assert not any(w.process.is_alive() for w in pool._procs)
    # The same numbers, not only close ones: each worker runs the same ops on its rows.
    assert pooled_reports == alone_reports
    for a, b in zip(alone, pooled, strict=True):
        assert a.diverged == b.diverged
        assert a.result.best_epoch == b.result.best_epoch
        assert a.test == b.test  # measured in the worker on the member's best state
        assert [{k: v for k, v in m.items() if k != "seconds"} for m in a.result.curve] == [
            {k: v for k, v in m.items() if k != "seconds"} for m in b.result.curve
        ]
    assert pooled[4].diverged is not None  # lr 50 blew up and left
    assert len(pooled_reports[3]) == 2  # stopped by the scheduler after its second epoch
    assert [r.test is not None for r in pooled] == [True, True, True, False, False, True]  # not 3 (stopped), 4
    assert len(pooled_reports[2]) == 3 and len(pooled_reports[0]) == 4  # each its own epochs


def test_a_dead_worker_is_an_error_and_the_pool_starts_afresh(digits) -> None:  # type: ignore[no-untyped-def]
    configs = _population()
    with PopulationPool(2, threads=2) as pool:
        killed: list[int] = []

        def report(i: int, epoch: int, metrics: dict[str, float]) -> None:
            if not killed:
                pid = pool._procs[0].process.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        with pytest.raises(PoolError, match=r"A fused-training worker \(pid \d+\) died"):
            train_population(configs, digits, report=report, device="cpu", pool=pool)
        assert pool._procs == []  # closed: the other worker is stopped too
        results = train_population(configs, digits, device="cpu", pool=pool)  # fresh workers
        assert [len(r.result.curve) for i, r in enumerate(results) if i != 4] == [4, 4, 3, 4, 4]
        assert results[4].diverged is not None


def test_deal_gives_the_costliest_bucket_first_to_the_least_loaded_worker(digits) -> None:  # type: ignore[no-untyped-def]
    configs = [TrainConfig(hidden_units=w, batch_size=b) for w, b in [(160, 32), (128, 32), (64, 64), (16, 512)]]
    buckets = [
        Bucket((configs[i].batch_size, "relu", False, None), (i,), (configs[i].hidden_units,) * 2) for i in range(4)
    ]
    n_in, n_out, rows = digits.n_features, digits.n_outputs, len(digits.x_train)
    costs = [epoch_cost(b, configs, n_in, n_out, rows) for b in buckets]
    assert costs == sorted(costs, reverse=True)  # wider and smaller batches cost more
    assert costs[1] < costs[0] < costs[1] + costs[2]
    # Longest first: 0 and 1 to the two workers, 2 to the lighter (1's), 3 to 0's.
    assert deal(buckets, configs, n_in, n_out, rows, 2) == [[buckets[0], buckets[3]], [buckets[1], buckets[2]]]
    assert deal(buckets, configs, n_in, n_out, rows, 6)[4:] == [[], []]  # more workers than buckets
    # Counting what workers already carry: worker 0 is busy with more than all four cost.
    busy = [sum(costs) + 1, 0.0]
    assert deal(buckets, configs, n_in, n_out, rows, 2, loads=busy) == [[], buckets]
    # Worker 0 carries bucket 0's cost: 0 goes to 1 (a tie then), 1 to 0, 2 and 3 to 1.
    assert deal(buckets, configs, n_in, n_out, rows, 2, loads=[costs[0], 0.0]) == [
        [buckets[1]],
        [buckets[0], buckets[2], buckets[3]],
    ]


def test_misuse_is_named_before_any_worker_starts(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError, match="'workers' parameter of PopulationPool must be a positive integer"):
        PopulationPool(0)
    with pytest.raises(InvalidArgumentError, match="'threads' parameter of PopulationPool"):
        PopulationPool(2, threads=-1)
    configs = _population()
    shares = [[b] for b in population_plan(configs, digits, device="cpu")[:2]]
    pool = PopulationPool(1)
    with pytest.raises(ValueError, match="2 shares for a pool of 1 workers"):
        pool.run(configs, digits, shares, device="cpu", eval_rows=512, judge=lambda *a: [], on_epoch=None)
    assert pool._procs == []  # refused before spawning anything


def _refilled(configs: list[TrainConfig], data, pool: PopulationPool | None, capacity: int, first: int):  # type: ignore[no-untyped-def]
    """Train ``configs`` through a refilled population of ``capacity`` that starts with
    the first ``first`` and takes the rest from ``more``, which gives nothing the first
    time it is asked (as when the study has no trial to start yet); what it saw on the way."""
    queue = list(configs[first:])
    seen: dict = {"left": [], "asks": [], "reports": {}, "active_max": 0}
    admitted = [first]

    def more(n: int) -> list[TrainConfig]:
        active = admitted[0] - len(seen["left"])
        seen["asks"].append((n, active, list(seen["left"])))
        if len(seen["asks"]) == 1:
            return []
        given, queue[:] = queue[:n], queue[n:]
        admitted[0] += len(given)
        return given

    def report(i: int, epoch: int, metrics: dict[str, float]) -> None:
        seen["reports"].setdefault(i, []).append(epoch)
        seen["active_max"] = max(seen["active_max"], admitted[0] - len(seen["left"]))

    def on_leave(i: int, result) -> None:  # type: ignore[no-untyped-def]
        assert i not in seen["left"]
        seen["left"].append(i)

    results = train_population(
        configs[:first], data, report=report, device="cpu", pool=pool, more=more, capacity=capacity, on_leave=on_leave
    )
    return results, seen


@pytest.mark.parametrize(("workers", "first"), [(1, 3), (2, 3), (2, 1)])
def test_a_refilled_population_takes_new_members_as_others_leave(digits, workers: int, first: int) -> None:  # type: ignore[no-untyped-def]
    """Members with 1 to 4 epochs, three at a time: each place is filled again as soon
    as its member leaves, every member trains its own epochs with the curve it gets in
    one population of all, and each ask comes after the members that left were told.
    Starting from one member, the second worker has nothing until a later ask fills it."""
    configs = [
        TrainConfig(epochs=e, hidden_units=w, batch_size=b, seed=s, learning_rate=lr)
        for e, w, b, s, lr in [
            (4, 32, 64, 1, 0.01), (1, 16, 128, 2, 0.02), (2, 48, 64, 3, 0.005), (3, 24, 128, 4, 0.01),
            (1, 32, 64, 5, 0.01), (2, 16, 256, 6, 0.03), (4, 40, 64, 7, 0.002), (1, 8, 128, 8, 0.05),
            (2, 32, 64, 9, 0.01),
        ]
    ]  # fmt: skip
    together = train_population(configs, digits, device="cpu")
    pool = PopulationPool(workers, threads=workers) if workers > 1 else None
    try:
        results, seen = _refilled(configs, digits, pool, capacity=3, first=first)
    finally:
        if pool is not None:
            pool.close()
    assert sorted(seen["left"]) == list(range(9))  # every member left once, and was told
    assert seen["active_max"] == 3  # never more than the capacity at once
    assert sum(n for n, _, _ in seen["asks"]) >= 6
    for n, active, _ in seen["asks"]:
        assert n == 3 - active >= 1  # asked for exactly the free places
    # An empty answer is not asked again until another member has left.
    assert len(seen["asks"][1][2]) > len(seen["asks"][0][2])
    if first == 3:  # refilled while member 0 (4 epochs) of the first three still trained
        assert 0 not in seen["asks"][1][2]
    assert {i: len(epochs) for i, epochs in seen["reports"].items()} == {i: c.epochs for i, c in enumerate(configs)}
    for i, (a, b) in enumerate(zip(together, results, strict=True)):
        assert [m["dev_cost"] for m in b.result.curve] == pytest.approx(
            [m["dev_cost"] for m in a.result.curve], rel=1e-4
        ), i


def test_refill_misuse_is_named(digits) -> None:  # type: ignore[no-untyped-def]
    configs = [TrainConfig(epochs=1, hidden_units=8, seed=s) for s in range(4)]
    with pytest.raises(InvalidArgumentError, match="'more' was asked for at most 1 configs and gave 3"):
        train_population(configs[:2], digits, device="cpu", more=lambda n: configs[1:], capacity=3)
    with pytest.raises(InvalidArgumentError, match="'capacity' parameter of train_population must be a positive"):
        train_population(configs, digits, device="cpu", more=lambda n: [], capacity=0)


def test_a_pool_left_open_does_not_hang_the_exit(tmp_path: Path) -> None:
    # Its workers ignore SIGTERM (the parent stops them; a job's SIGTERM reaches them
    # too), and multiprocessing sends its daemons SIGTERM at exit, then waits for them.
    script = tmp_path / "open_pool.py"
    script.write_text(
        "if __name__ == '__main__':\n"
        "    from hyperlab.train.fused import PopulationPool\n"
        "    pool = PopulationPool(2)\n"
        "    pool.start()\n"
    )
    out = subprocess.run([PYTHON, str(script)], env=python_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
