"""Trials in a pool of local worker processes sharing one stored study."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperlab.errors import HyperlabError, InvalidArgumentError, TrialFinishedError, check_int
from hyperlab.runners._base import (
    ObjectiveFactory,
    Runner,
    RunPolicy,
    refuse_inside_main_import,
    work_left,
    worker_settings,
)
from hyperlab.trial import TrialState

if TYPE_CHECKING:
    from hyperlab.study import Study

__all__ = ["ProcessRunner", "run_worker"]

logger = logging.getLogger("hyperlab")


class RunnerError(HyperlabError, RuntimeError):
    """The workers could not run (they failed before starting any trial)."""


def _watch_parent(parent_pid: int) -> None:
    """Exit when the tuner that started this worker is gone (e.g. SIGKILLed): an orphan
    would go on spending the study's budget. Its running trial's heartbeat stops, so the
    next tuner fails it as lost and retries it."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)


def run_worker(
    settings: dict[str, Any],
    make_objective: ObjectiveFactory,
    policy: RunPolicy,
    *,
    threads: int | None = None,
    deadline: float | None = None,
    events: Any = None,
    parent_pid: int | None = None,
) -> None:
    """The loop of one worker: open the study from its store and run trials until the
    budget is spent. Used by the process and Ray runners."""
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="hyperlab-parent").start()
    from hyperlab._optimize import run_trials
    from hyperlab.study import Study

    study = Study(
        settings["name"], storage=settings["url"], sampler=settings["sampler"], scheduler=settings["scheduler"]
    )
    objective = make_objective()
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    pid = os.getpid()

    def tracked(trial: Any) -> Any:  # the trial names this process as its worker (see next_trial)
        if events is not None:
            events.put((pid, trial.id))
        return objective(trial)

    timeout = None if deadline is None else max(1e-3, deadline - time.time())
    # The runner failed the trials of exited workers before starting this one: a check
    # here could beat it to a sibling that died since, and lose its exit code.
    run_trials(
        study,
        tracked,
        n_trials=None,
        timeout=timeout,
        max_trials=policy.max_trials,
        retries=policy.retries,
        heartbeat=policy.heartbeat,
        grace=policy.grace,
        check_exited=False,
    )


class _StoredFactory:
    """The objective factory, pickled once into a file that each worker reads.

    Passed to a spawned process instead of the factory itself: spawn writes a process's
    arguments into a pipe whose reading end the parent holds until the write is done, so
    a worker that dies before reading them (a script without an ``if __name__ ==
    "__main__":`` guard re-runs itself in the worker and fails) would leave the tuner
    blocked for ever on a factory larger than the pipe's buffer, as one holding a
    loaded dataset is. A path is a few bytes; a replaced worker costs no new pickling.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> Any:
        with self.path.open("rb") as f:
            factory = pickle.load(f)
        return factory()


def _store_factory(make_objective: ObjectiveFactory, folder: str) -> _StoredFactory:
    # Plain pickle, not multiprocessing's: that one sends a torch tensor as a handle to
    # shared memory that only one process can claim, and every worker reads this file.
    try:
        payload = pickle.dumps(make_objective, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise InvalidArgumentError(
            f"The objective factory (a {type(make_objective).__name__}) cannot be sent to worker processes: "
            f"pickling it failed with {type(e).__name__}: {e}. It must be picklable: a function defined at module "
            "level, functools.partial of one, or hyperlab.train.ObjectiveFactory, holding picklable values."
        ) from e
    path = Path(folder) / "objective.pickle"
    try:
        path.write_bytes(payload)
    except OSError as e:
        raise InvalidArgumentError(
            f"The objective factory ({len(payload) / 2**20:.1f} MiB pickled) could not be written to {folder} "
            f"for the worker processes: {e}. Point TMPDIR to a folder with room."
        ) from e
    return _StoredFactory(path)


def _process_main(*args: Any, **kwargs: Any) -> None:
    from hyperlab._signals import raise_terminated, release_sigint

    # A SIGTERM sent to the whole job (as Slurm does) reaches the workers too: each
    # marks its trial interrupted, as on Ctrl-C, instead of dying with it running.
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        # SIGINT is how the tuner stops its workers, even in a job started with it ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        release_sigint()  # held since this worker started (start_holding_sigint): one sent meanwhile arrives now
        run_worker(*args, **kwargs)
    except KeyboardInterrupt:
        sys.exit(130)


class ProcessRunner(Runner):
    """A pool of ``parallel`` worker processes, each running trials of the same stored
    study (SQLite on one machine, or PostgreSQL).

    Each worker gets ``cores // parallel`` torch threads, so the pool does not
    oversubscribe the CPU. A worker that dies (killed, out of memory) has its trial
    failed at once as lost (and retried by the others, per ``RunPolicy.retries``) and is
    replaced while the budget is not spent.

    Args:
        parallel: worker processes; default: the number of CPU cores.
    """

    def __init__(self, parallel: int | None = None) -> None:
        if parallel is not None:
            check_int("ProcessRunner", "parallel", parallel)
        self.parallel = parallel or os.cpu_count() or 1

    def __repr__(self) -> str:
        return f"ProcessRunner(parallel={self.parallel})"

    def run(
        self,
        study: Study,
        make_objective: ObjectiveFactory,
        policy: RunPolicy,
        *,
        on_poll: Callable[[Study], None] | None = None,
    ) -> None:
        refuse_inside_main_import("processes")
        settings = worker_settings(study)
        with tempfile.TemporaryDirectory(prefix="hyperlab-") as folder:
            factory = _store_factory(make_objective, folder)
            study.recover(policy.grace, exited=True)  # trials orphaned by an earlier, killed tuner
            self._run(study, factory, settings, policy, on_poll)

    def _run(
        self,
        study: Study,
        factory: _StoredFactory,
        settings: dict[str, Any],
        policy: RunPolicy,
        on_poll: Callable[[Study], None] | None,
    ) -> None:
        from hyperlab._signals import start_holding_sigint
        from hyperlab.study import WORKER_LOST, interrupted

        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        events = ctx.Queue()
        threads = max(1, (os.cpu_count() or 1) // self.parallel)
        deadline = None if policy.timeout is None else time.time() + policy.timeout
        procs: dict[int, Any] = {}
        running: dict[int, int] = {}  # pid -> trial id
        started_any: set[int] = set()
        failures = 0

        def spawn() -> None:
            p = ctx.Process(
                target=_process_main,
                args=(settings, factory, policy),
                kwargs={"threads": threads, "deadline": deadline, "events": events, "parent_pid": os.getpid()},
                name="hyperlab-worker",
            )
            # A Ctrl-C as it starts would kill it, or print a traceback: it is held, and one
            # the tuner got meanwhile is raised once the worker is started and known here.
            with start_holding_sigint():
                p.start()
                assert p.pid is not None  # set by start()
                procs[p.pid] = p

        def drain() -> None:
            while True:
                try:
                    pid, number = events.get_nowait()
                except queue.Empty:
                    return
                running[pid] = number
                started_any.add(pid)

        polls = 0
        try:
            while True:
                drain()
                for pid, p in list(procs.items()):
                    if p.exitcode is None:
                        continue
                    del procs[pid]
                    p.join()
                    if p.exitcode == 0:
                        continue
                    number = running.pop(pid, None)
                    if self._fail(study, number, f"{WORKER_LOST}: its process {pid} exited with code {p.exitcode}"):
                        logger.warning("Trial %d lost its worker (process %d, exit code %s)", number, pid, p.exitcode)
                    if pid not in started_any:
                        failures += 1
                        if failures >= self.parallel and not started_any:
                            raise RunnerError(
                                f"{failures} worker processes exited with code {p.exitcode} before starting a "
                                "trial; their error is printed above."
                            )
                if polls % 4 == 0:
                    study.recover(policy.grace)  # trials of workers lost without our knowing
                out_of_time = deadline is not None and time.time() >= deadline
                if len(procs) < self.parallel and not out_of_time and work_left(study, policy):
                    for _ in range(self.parallel - len(procs)):
                        spawn()
                elif not procs and (out_of_time or not study.get_trials((TrialState.RUNNING,))):
                    break  # budget spent and nothing running (or time is up)
                if on_poll is not None:
                    on_poll(study)
                polls += 1
                time.sleep(0.25)
        except BaseException as e:
            for p in procs.values():  # Ctrl-C or an error: let workers mark their trials interrupted
                if p.exitcode is None and p.pid is not None:
                    os.kill(p.pid, signal.SIGINT)
            for p in procs.values():
                p.join(timeout=15)
                if p.exitcode is None:
                    p.kill()
            # A worker that got the signal twice (its own, as Ctrl-C in a terminal or a
            # job's SIGTERM reach every process, then ours) may have stopped before it
            # marked its trial: mark it here, so the next run re-runs it at once.
            drain()
            for pid in procs:
                try:
                    self._fail(study, running.get(pid), interrupted(e))
                except Exception as told:  # the store: the trial is found later by its stale heartbeat
                    logger.warning("Trial %s could not be marked interrupted: %s", running.get(pid), told)
            raise
        finally:
            events.close()
        if on_poll is not None:
            on_poll(study)

    @staticmethod
    def _fail(study: Study, number: int | None, reason: str) -> bool:
        """Fail trial ``number`` if it still runs; whether it did."""
        if number is None:
            return False
        try:
            study.tell(number, state=TrialState.FAILED, reason=reason)
        except TrialFinishedError:  # it ended, or its worker marked it, first
            return False
        return True
