"""The fused runner: populations of the built-in MLP's trials, judged by schedulers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyperlab import RandomSampler, Study, TrialState, course_space
from hyperlab.config import parse_config
from hyperlab.errors import InvalidArgumentError
from hyperlab.runners import FusedRunner, RunPolicy
from hyperlab.schedulers import ASHAScheduler
from hyperlab.train import ObjectiveFactory, TrainConfig, load_dataset, train


def _asha_study(tmp_path: Path, epochs: int, seed: int) -> tuple[Study, ObjectiveFactory]:
    """A course-space study of the digits MLP, stored in SQLite, pruned by ASHA (eta 3,
    first rung at 1 epoch), and its objective factory."""
    study = Study(
        f"asha{seed}",
        course_space(),
        storage=f"sqlite:///{tmp_path / f'asha{seed}.db'}",
        metric="dev_accuracy",
        direction="maximize",
        scheduler=ASHAScheduler(3, 1, epochs),
        seed=seed,
    )
    factory = ObjectiveFactory("sklearn:digits", {"epochs": epochs, "seed": seed}, metric="dev_accuracy", seed=seed)
    return study, factory


def test_population_runs_the_budget_with_asha_and_matches_the_ordinary_trainer(tmp_path: Path) -> None:
    study, factory = _asha_study(tmp_path, epochs=6, seed=3)
    polls: list[int] = []
    FusedRunner(population=9, device="cpu").run(
        study, factory, RunPolicy(max_trials=14), on_poll=lambda s: polls.append(1)
    )
    trials = study.trials
    assert [t.id for t in trials] == list(range(14))  # 9 at first, the 5 left as places free up
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.DIVERGED) for t in trials)
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and all("rung" in (t.reason or "") for t in pruned)
    assert polls
    # Every complete trial's value is the best dev accuracy of its own curve, and that
    # curve is the one the ordinary trainer draws for the same config and seed.
    data = load_dataset("sklearn:digits", seed=3)
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert done
    for t in done:
        assert t.value == max(v for _, v in t.metric("dev_accuracy"))
    solo = train(TrainConfig.from_params({"epochs": 6, "seed": 3, **done[0].params}), data)
    assert [round(v, 3) for _, v in done[0].metric("dev_cost")] == [round(m["dev_cost"], 3) for m in solo.curve]


def _overlap(trials: list) -> int:  # type: ignore[type-arg]
    """The most trials that were running at one moment."""
    events = sorted(
        [(t.started_at, 1) for t in trials] + [(t.ended_at, -1) for t in trials], key=lambda e: (e[0], e[1])
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize(("refill", "workers"), [(True, 1), (True, 2), (False, 1)])
def test_refill_starts_trials_as_members_leave(tmp_path: Path, refill: bool, workers: int) -> None:
    """With ASHA stopping most of a population at its first rungs, a refilled one asks
    for new trials while the survivors still train, never holding more than its
    population; without refill the next population starts only when the last is done."""
    study, factory = _asha_study(tmp_path, epochs=9, seed=4)
    FusedRunner(population=6, device="cpu", workers=workers, refill=refill).run(
        study, factory, RunPolicy(max_trials=18)
    )
    trials = study.trials
    assert [t.id for t in trials] == list(range(18))
    assert all(t.state.is_finished and t.started_at and t.ended_at for t in trials)
    assert _overlap(trials) <= 6
    first = trials[:6]
    later_starts = [t for t in trials[6:] if t.started_at < max(f.ended_at for f in first)]
    if refill:
        assert later_starts  # a place freed by a pruned member was filled before the first six ended
        # and each new trial was asked after the trial whose place it took was told
        assert all(sum(f.ended_at <= t.started_at for f in trials[: t.id]) >= t.id - 5 for t in trials[6:])
    else:
        assert not later_starts


class _BreaksAfter(RandomSampler):
    """Random search whose asks fail after the first ``n`` (a broken sampler or store)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def suggest(self, ctx):  # type: ignore[no-untyped-def]
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("the sampler broke")
        return super().suggest(ctx)


def test_a_failed_refill_leaves_the_running_trials_to_finish(caplog: pytest.LogCaptureFixture) -> None:
    """The ask that would refill the population fails: the members training go on and
    are told as usual, and the error surfaces at the next ask, after them."""
    study = Study("broken", course_space(), storage="memory", metric="dev_error", sampler=_BreaksAfter(5), seed=2)
    factory = ObjectiveFactory("sklearn:digits", {"epochs": 3, "hidden_units": 16}, metric="dev_error", seed=2)
    with pytest.raises(RuntimeError, match="the sampler broke"):
        FusedRunner(population=3, device="cpu", workers=1).run(study, factory, RunPolicy(max_trials=12))
    trials = study.trials
    assert len(trials) == 5  # three, then two places refilled before the sixth ask failed
    assert all(t.state in (TrialState.COMPLETE, TrialState.DIVERGED) for t in trials)
    assert "Refilling the fused population failed; it trains on: RuntimeError: the sampler broke" in caplog.text


def test_needs_the_built_in_trainer(tmp_path: Path) -> None:
    study = Study("other", course_space(), storage="memory")
    with pytest.raises(InvalidArgumentError, match=re.escape("The fused runner trains the built-in MLP only")):
        FusedRunner().run(study, lambda: lambda trial: 0.0, RunPolicy(max_trials=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population": 0}, "The 'population' parameter of FusedRunner must be a positive integer. Got 0 instead."),
        (
            {"device": "tpu"},
            "The 'device' parameter of FusedRunner must be one of auto, cpu, cuda (or cuda:N). Got 'tpu'",
        ),
        ({"max_memory": -1}, "The 'max_memory' parameter of FusedRunner must be a positive number of bytes. Got -1"),
        ({"workers": 0}, "The 'workers' parameter of FusedRunner must be a positive integer. Got 0 instead."),
        ({"refill": "yes"}, "The 'refill' parameter of FusedRunner must be true or false. Got 'yes' instead."),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        FusedRunner(**kwargs)


def test_config_defaults_to_fused_and_checks_its_settings() -> None:
    config = parse_config({"name": "x"})
    runner = config.runner_object()
    assert isinstance(runner, FusedRunner) and runner.population is None  # auto: see auto_population
    sized = parse_config({"name": "x", "runner": {"type": "fused", "population": 8, "max_memory": "2GiB"}})
    assert sized.runner_object().max_memory == 2 * 2**30
    from hyperlab.config import ConfigError

    with pytest.raises(
        ConfigError,
        match=re.escape(
            "runner.max_memory: must be a positive size such as '4GiB', '500MB' or a number of bytes; got 'lots'."
        ),
    ):
        parse_config({"name": "x", "runner": {"type": "fused", "max_memory": "lots"}})
    with pytest.raises(ConfigError, match=re.escape("runner.device")):
        parse_config({"name": "x", "runner": {"type": "fused", "device": "tpu"}})
    assert parse_config({"name": "x", "runner": {"type": "fused", "workers": 2}}).runner_object().workers == 2
    assert runner.refill
    assert not parse_config({"name": "x", "runner": {"type": "fused", "refill": False}}).runner_object().refill
    with pytest.raises(ConfigError, match=re.escape("runner.refill")):
        parse_config({"name": "x", "runner": {"type": "fused", "refill": "sometimes"}})
    with pytest.raises(ConfigError, match=re.escape("runner.workers")):
        parse_config({"name": "x", "runner": {"type": "fused", "workers": 0}})


def test_threads_must_be_positive() -> None:
    with pytest.raises(
        InvalidArgumentError, match=re.escape("The 'threads' parameter of FusedRunner must be a positive")
    ):
        FusedRunner(threads=0)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    study = Study("gpu", course_space(), storage="memory")
    factory = ObjectiveFactory("sklearn:digits", {"epochs": 1})
    with pytest.raises(InvalidArgumentError, match=re.escape("asked for device 'cuda', but torch sees no CUDA GPU")):
        FusedRunner(device="cuda").run(study, factory, RunPolicy(max_trials=1))
    assert study.trials == []  # nothing was started


@pytest.mark.parametrize("population", [8, 3])  # all at once; most through refills
def test_a_bad_config_fails_its_own_trial_only(population: int) -> None:
    from hyperlab import Choice, Space

    space = Space(hidden_units=Choice([0, 16]))  # 0 units is not a network
    study = Study("bad", space, storage="memory", metric="dev_error", seed=1)
    FusedRunner(population=population, device="cpu", workers=1).run(
        study, ObjectiveFactory("sklearn:digits", {"epochs": 2}), RunPolicy(max_trials=8)
    )
    trials = study.trials
    bad = [t for t in trials if t.params["hidden_units"] == 0]
    good = [t for t in trials if t.params["hidden_units"] == 16]
    assert bad and good
    assert all(
        t.state is TrialState.FAILED and "'hidden_units' hyperparameter must be" in (t.reason or "") for t in bad
    )
    assert all(t.state is TrialState.COMPLETE for t in good)


@pytest.mark.usefixtures("one_thread")  # bit for bit: see conftest.one_thread
def test_worker_processes_give_the_same_study_as_one_process(tmp_path: Path) -> None:
    """Without a scheduler nothing depends on the order epochs arrive in: two worker
    processes must store exactly the trials, values and curves one process does."""

    def run(workers: int) -> list[tuple]:
        study = Study(f"w{workers}", course_space(), storage=f"sqlite:///{tmp_path / f'{workers}.db'}", seed=5)
        factory = ObjectiveFactory("sklearn:digits", {"epochs": 2, "seed": 5}, metric="dev_error", seed=5)
        FusedRunner(population=12, device="cpu", workers=workers).run(study, factory, RunPolicy(max_trials=12))
        return [(t.params, t.state, t.value, t.metric("dev_cost")) for t in study.trials]

    one, two = run(1), run(2)
    assert len({p["batch_size"] for p, *_ in one}) > 1  # several sub-populations to deal out
    assert one == two


def test_the_default_population_leaves_a_learning_sampler_rounds_to_learn_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperlab import CoarseToFineSampler, TPESampler
    from hyperlab.runners._fused import auto_population

    def study(sampler) -> Study:  # type: ignore[no-untyped-def]
        return Study("p", course_space(), storage="memory", sampler=sampler, metric="dev_error")

    # random search keeps 64; TPE and coarse-to-fine get a sixteenth of the budget, 8 to 64
    assert [auto_population(study(RandomSampler()), b) for b in (30, 256)] == [64, 64]
    assert [auto_population(study(TPESampler()), b) for b in (30, 64, 256, 2000)] == [8, 8, 16, 64]
    assert auto_population(study(CoarseToFineSampler()), 64) == 8
    asked: list[int] = []
    ask = FusedRunner._ask

    def spy(self, study, policy, n, into=None):  # type: ignore[no-untyped-def]
        asked.append(n)
        return ask(self, study, policy, n, into)

    monkeypatch.setattr(FusedRunner, "_ask", spy)
    s = Study("tpe", course_space(), storage="memory", sampler=TPESampler(), metric="dev_error", seed=0)
    factory = ObjectiveFactory("sklearn:iris", {"epochs": 1})
    FusedRunner(device="cpu", workers=1).run(s, factory, RunPolicy(max_trials=40))
    assert asked[0] == 8 and len(s.trials) == 40  # not all 40 drawn before any had ended
    asked.clear()
    s = Study("tpe64", course_space(), storage="memory", sampler=TPESampler(), metric="dev_error", seed=0)
    FusedRunner(population=40, device="cpu", workers=1).run(s, factory, RunPolicy(max_trials=40))
    assert asked[0] == 40  # a population given is kept


def test_a_killed_worker_loses_no_trial(tmp_path: Path) -> None:
    """A worker killed mid-population (the out-of-memory killer, a signal): the trials
    still training are failed as lost, retried within ``retries`` in the same run and
    complete there; the ones told before keep their results."""
    import multiprocessing
    import os
    import signal

    from hyperlab.study import WORKER_LOST

    study = Study("killed", course_space(), storage=f"sqlite:///{tmp_path / 'k.db'}", metric="dev_error", seed=2)
    factory = ObjectiveFactory("sklearn:digits", {"epochs": 4, "seed": 2}, metric="dev_error", seed=2)
    runner = FusedRunner(population=6, device="cpu", workers=2, refill=False)
    killed: list[int] = []

    def kill_once(s: Study) -> None:
        workers = [p for p in multiprocessing.active_children() if p.name == "hyperlab-fused"]
        if not killed and workers and any(len(t.curve) >= 2 for t in s.trials):
            assert workers[0].pid is not None
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    runner.run(study, factory, RunPolicy(max_trials=6, retries=1), on_poll=kill_once)
    assert killed
    trials = study.trials
    lost = [t for t in trials if t.state is TrialState.FAILED]
    assert lost and all((t.reason or "").startswith(f"{WORKER_LOST}: A fused-training worker") for t in lost)
    retries = {t.retry_of: t for t in trials if t.retry_of is not None}
    assert sorted(retries) == sorted(t.id for t in lost)  # each lost trial ran again, with its params
    assert all(r.state is TrialState.COMPLETE and r.params == study.trial(r.retry_of).params for r in retries.values())
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 6
