"""Runners: inline and worker processes sharing a stored study; lost workers; killed tuners."""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from hyperlab import Float, Space, Study, TrialState
from hyperlab.errors import InvalidArgumentError
from hyperlab.runners import InlineRunner, ProcessRunner, RunPolicy
from hyperlab.runners._processes import RunnerError
from tests.helpers import PYTHON, python_env, wait_for_trials
from tests.runners.objectives import slow_factory

SPACE = Space(x=Float(0.0, 1.0))


def study_at(tmp_path: Path, name: str = "caviar") -> Study:
    return Study(name, SPACE, storage=f"sqlite:///{tmp_path / 'c.db'}", metric="loss", seed=0)


def test_process_pool_runs_the_budget_once(tmp_path: Path) -> None:
    study = study_at(tmp_path)
    polls = []
    ProcessRunner(parallel=2).run(
        study, slow_factory(3, 0.02), RunPolicy(max_trials=12), on_poll=lambda s: polls.append(1)
    )
    trials = study.trials
    assert [t.id for t in trials] == list(range(12))
    assert all(t.state is TrialState.COMPLETE and list(t.curve) == [0, 1, 2] for t in trials)
    workers = {t.system_attrs["worker"] for t in trials}
    assert len(workers) >= 2  # both workers ran trials
    assert polls  # the display was fed
    # Running it again spends nothing: the budget is met.
    ProcessRunner(parallel=2).run(study, slow_factory(), RunPolicy(max_trials=12))
    assert len(study.trials) == 12


def test_inline_runner(tmp_path: Path) -> None:
    study = study_at(tmp_path)
    InlineRunner().run(study, slow_factory(2, 0.0), RunPolicy(max_trials=5))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5


def test_memory_store_cannot_be_shared_by_processes() -> None:
    study = Study("m", SPACE, storage="memory", metric="loss")
    with pytest.raises(InvalidArgumentError, match="needs a store they can share"):
        ProcessRunner(2).run(study, slow_factory(), RunPolicy(max_trials=2))


def test_workers_that_cannot_start_are_reported(tmp_path: Path) -> None:
    import functools

    from tests.runners import objectives

    with pytest.raises(RunnerError, match="2 worker processes exited with code 1 before starting a trial"):
        ProcessRunner(2).run(
            study_at(tmp_path), functools.partial(objectives.fails_at_startup), RunPolicy(max_trials=2)
        )


def test_every_worker_loads_a_factory_holding_a_tensor(tmp_path: Path) -> None:
    # The factory is pickled once and read by each worker (and each replacement): a
    # tensor in it must be stored by value, not as a handle only one process can claim.
    from tests.runners.objectives import tensor_factory

    study = study_at(tmp_path)
    ProcessRunner(2).run(study, tensor_factory(), RunPolicy(max_trials=12))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    assert len({t.system_attrs["worker"] for t in study.trials}) == 2  # both workers, the first ones


def test_an_unpicklable_factory_is_named_before_any_worker_starts(tmp_path: Path) -> None:
    from tests.runners.objectives import trivial

    study = study_at(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"\(a function\) cannot be sent to worker processes: pickling"):
        ProcessRunner(2).run(study, lambda: trivial, RunPolicy(max_trials=2))
    assert study.trials == []


def test_a_factory_that_cannot_be_written_for_the_workers_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.runners.objectives import trivial

    def full(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    study = study_at(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"MiB pickled\) could not be written .* Point TMPDIR"):
        ProcessRunner(2).run(study, functools.partial(_identity, trivial), RunPolicy(max_trials=2))
    assert study.trials == []


def _identity(objective: object) -> object:
    return objective


NO_GUARD_RUNS = {
    # A factory carrying MBs, as one with a loaded dataset does.
    "processes": (
        "ProcessRunner(2)",
        "heavy_factory(4)",
        "RunnerError: 2 worker processes exited with code 1 before starting a trial",
    ),
    "fused": (
        "FusedRunner(population=8, device='cpu', workers=2)",
        "LoadedObjective(load_dataset('sklearn:digits'), {'epochs': 1}, metric='dev_error')",
        "PoolStartError: A fused-training worker",
    ),
}


@pytest.mark.parametrize("runner", list(NO_GUARD_RUNS))
def test_a_script_without_a_main_guard_fails_instead_of_hanging(tmp_path: Path, runner: str) -> None:
    # A script that runs a study at import time, without an `if __name__ == "__main__":`
    # guard: each spawned worker imports the script and so runs the study again. Both
    # runners used to hang for ever: the processes runner's tuner blocked writing a large
    # factory to a worker that had died before reading it; the fused runner's workers
    # waited on the trials their parent held while the parent waited to send them data.
    # Now each worker refuses with a message saying why, and the tuner reports it.
    make_runner, factory, parent_error = NO_GUARD_RUNS[runner]
    script, url = tmp_path / "no_guard.py", f"sqlite:///{tmp_path / 'g.db'}"
    script.write_text(
        textwrap.dedent(
            f"""
            from hyperlab import Study, course_space
            from hyperlab.runners import FusedRunner, ProcessRunner, RunPolicy
            from hyperlab.train import LoadedObjective, load_dataset
            from tests.runners.objectives import heavy_factory

            # The course space: several sub-populations (batch sizes), so the fused runner uses its pool.
            study = Study("g", course_space(), storage="{url}", metric="dev_error", seed=0)
            {make_runner}.run(study, {factory}, RunPolicy(max_trials=8))
            """
        )
    )
    try:
        done = subprocess.run(
            [PYTHON, str(script)], env=python_env(), capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the tuner hung when its workers imported a script without a __main__ guard")
    assert done.returncode != 0
    assert parent_error in done.stderr
    # each worker's own error, shown above the tuner's
    assert f"The {runner} runner was started while a worker process was importing the main script" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    # The workers are found unable to start before any trial is asked: nothing spent.
    assert Study("g", storage=url).trials == []


def test_a_killed_worker_fails_its_trial_which_is_retried(tmp_path: Path) -> None:
    study = study_at(tmp_path)
    killed: dict[str, int] = {}

    def kill_one(s: Study) -> None:
        if killed:
            return
        for t in s.get_trials((TrialState.RUNNING,)):
            if "worker" in t.system_attrs and t.curve:  # mid-trial: it has reported
                pid = int(t.system_attrs["worker"].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.update(trial=t.id, pid=pid)
                return

    ProcessRunner(parallel=2).run(study, slow_factory(8, 0.1), RunPolicy(max_trials=6, retries=1), on_poll=kill_one)
    assert killed, "no worker was caught mid-trial"
    trials = study.trials
    lost = study.trial(killed["trial"])
    assert lost.state is TrialState.FAILED
    assert lost.reason == f"worker lost: its process {killed['pid']} exited with code -9"
    retry = next(t for t in trials if t.retry_of == lost.id)
    assert retry.state is TrialState.COMPLETE and retry.params == lost.params
    budgeted = [t for t in trials if t.retry_of is None]
    assert len(budgeted) == 6 and len(trials) == 7
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 6


def test_policy_validation() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=re.escape("The 'grace' setting (1 s) must be longer than the heartbeat interval (5 s)"),
    ):
        RunPolicy(max_trials=1, heartbeat=5, grace=1)
    with pytest.raises(InvalidArgumentError, match="The 'max_trials' setting must be a non-negative integer. Got -1"):
        RunPolicy(max_trials=-1)
    with pytest.raises(InvalidArgumentError, match="The 'grace' setting of RunPolicy is a number of seconds, not None"):
        RunPolicy(max_trials=1, grace=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="'heartbeat' parameter of RunPolicy must be a positive, finite"):
        RunPolicy(max_trials=1, heartbeat=math.nan)
    with pytest.raises(
        InvalidArgumentError, match="The 'parallel' parameter of ProcessRunner must be a positive integer"
    ):
        ProcessRunner(0)


TUNER = textwrap.dedent(
    """
    import sys
    from hyperlab import Float, Space, Study
    from hyperlab.runners import ProcessRunner, RunPolicy
    from tests.runners.objectives import slow_factory
    study = Study("killed", Space(x=Float(0.0, 1.0)), storage=sys.argv[1], metric="loss", seed=0)
    grace = float(sys.argv[2])
    ProcessRunner(parallel=2).run(study, slow_factory(6, 0.1), RunPolicy(max_trials=10, heartbeat=0.3, grace=grace))
    """
)


def test_a_killed_tuner_restarts_and_finishes_with_nothing_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    proc = subprocess.Popen([PYTHON, "-c", TUNER, url, "2.0"], env=python_env())
    try:
        wait_for_trials(
            "killed",
            url,
            lambda ts: (
                sum(t.state is TrialState.COMPLETE for t in ts) >= 3
                and any(t.state is TrialState.RUNNING and t.curve for t in ts)
            ),
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(3)  # the orphaned workers notice within a second that their tuner is gone, and exit
    before = Study("killed", storage=url).trials
    orphans = [t.id for t in before if t.state is TrialState.RUNNING]
    assert orphans, "the tuner was not killed mid-trial"
    # The restart has a grace of 10 minutes: it finds (before starting its workers) that the
    # orphans' workers, on this machine, have exited, and re-runs them at once.
    done = subprocess.run(
        [PYTHON, "-c", TUNER, url, "600"], env=python_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    after = Study("killed", storage=url).trials
    # Everything finished before the kill is intact.
    for t in before:
        if t.state is TrialState.COMPLETE:
            assert after[t.id] == t
    # The orphans were failed as lost and retried with their params.
    for n in orphans:
        worker = before[n].system_attrs["worker"]
        assert after[n].state is TrialState.FAILED
        assert after[n].reason == f"worker lost: its process ({worker}) has exited"
        retry = next(t for t in after if t.retry_of == n)
        assert retry.state is TrialState.COMPLETE and retry.params == after[n].params
    assert len([t for t in after if t.retry_of is None]) == 10
    assert all(t.state is not TrialState.RUNNING for t in after)
    assert sum(t.state is TrialState.COMPLETE for t in after) == 10


def test_builtin_trainer_in_worker_processes(tmp_path: Path) -> None:
    from hyperlab.train import ObjectiveFactory

    study = Study(
        "iris",
        Space(learning_rate=Float(1e-3, 1e-1, scale="log")),
        storage=f"sqlite:///{tmp_path / 'i.db'}",
        metric="dev_accuracy",
        direction="maximize",
        seed=0,
    )
    ProcessRunner(2).run(
        study,
        ObjectiveFactory("sklearn:iris", {"epochs": 2, "hidden_units": 8}, metric="dev_accuracy"),
        RunPolicy(max_trials=3),
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert all(set(t.curve) == {0, 1} for t in study.trials)


def test_samplers_see_pending_trials() -> None:
    from hyperlab.samplers import RandomSampler, SampleContext

    seen: list[list[int]] = []

    class Spy(RandomSampler):
        uses_history = True

        def suggest(self, ctx: SampleContext) -> list[float]:
            seen.append([t.id for t in ctx.pending])
            return super().suggest(ctx)

    study = Study("p", SPACE, storage="memory", sampler=Spy(), seed=0)
    a = study.ask()
    study.ask()
    study.tell(a, 1.0)
    study.ask()
    assert seen == [[], [0], [1]]
