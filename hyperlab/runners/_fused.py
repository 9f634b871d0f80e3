"""Trials of the built-in MLP trained together, fused into one vectorized population."""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hyperlab._optimize import Heartbeat, next_trial, tell_result
from hyperlab.errors import HyperlabError, InvalidArgumentError, check_int
from hyperlab.runners._base import (
    ObjectiveFactory,
    Runner,
    RunPolicy,
    refuse_inside_main_import,
    wait_for_others,
    work_left,
)
from hyperlab.trial import TRIAL_TEST_ATTR, Trial, TrialState

if TYPE_CHECKING:
    from hyperlab.study import Study
    from hyperlab.train._pool import PopulationPool

__all__ = ["FusedRunner"]

logger = logging.getLogger("hyperlab")

DEVICES = ("auto", "cpu", "cuda")


DEFAULT_POPULATION = 64


def auto_population(study: Study, budget: int) -> int:
    """The population a fused run takes when none is given: 64; for a sampler that
    learns from finished trials (``uses_history``: TPE, coarse-to-fine), a sixteenth of
    the study's trial budget, at least 8.

    A population's trials are all drawn before any of them has ended, and a refill
    only once members leave, so a large population starves such a sampler of results
    (TPE's first ``n_startup`` draws, and all others until a trial ends, are random).
    On MNIST-1D with ASHA and TPE (``bench/fused.py --study``, seeds 0-5), 64 trials
    reached a best dev accuracy of 0.629 in populations of 64, 0.651 in populations of
    16 and 0.664 in populations of 8 (mean over seeds); 256 trials 0.686 in
    populations of 64 and 0.695 in populations of 16. Smaller populations are slower
    (8: about twice the wall time of 64 there), so random search keeps 64."""
    if not study.sampler.uses_history:
        return DEFAULT_POPULATION
    return min(DEFAULT_POPULATION, max(8, -(-budget // 16)))


class FusedRunner(Runner):
    """Asks up to ``population`` trials at a time and trains them as one fused model
    (:func:`hyperlab.train.fused.train_population`), in this process.

    Each trial gets its own learning curve, reported epoch by epoch as if it ran alone,
    so schedulers (ASHA, Hyperband, median) judge and stop members at their rungs; a
    stopped, diverged or finished member leaves the population, which is compacted,
    and its trial is told at once.

    By default the population is refilled while it trains: once an eighth of its places
    are free, new trials are asked for and join it as new sub-populations beside the
    running ones. So a model-based sampler (TPE) learns from every trial that has
    ended, as with the process runner, and no place idles while the slowest members of
    a population finish. With ``refill=False``, the next population is asked for only
    when the last one is done: with a pool of workers and no scheduler, a run is then
    repeatable (when a refill comes depends on the workers' timing, and a scheduler's
    verdicts on the order epochs arrive in).

    On a CPU, the sub-populations of a population (members that differ in mini-batch
    size, activation, batch norm or much in width) train side by side in ``workers``
    processes, kept for the whole run: a small network's step is mostly
    single-threaded overhead, which more processes spread and more threads do not.
    Reports and the scheduler's verdicts stay in this process. Like the process
    runner, a script that uses it must guard its entry point with
    ``if __name__ == "__main__":`` (the workers are spawned).

    Only the built-in MLP can be fused: the objective factory must be a
    :class:`hyperlab.train.ObjectiveFactory` (or what ``hyperlab tune`` builds), whose
    ``population_recipe()`` gives the data, the fixed hyperparameters and the metric.

    Args:
        population: trials trained together (fewer when the budget has fewer left).
            By default (None), 64, or fewer for a sampler that learns from finished
            trials: see :func:`auto_population`.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda`` (``cuda:1``...).
        max_memory: bytes one sub-population may take (default: half the free RAM or
            GPU memory); larger ones are split into chunks trained one after another.
        threads: torch threads on the CPU (default: every core), shared out among the
            workers.
        workers: processes that train sub-populations side by side on a CPU (default:
            one per core; 1 trains everything in this process).
        refill: start new trials as members leave (default), or only once the whole
            population is done.
    """

    def __init__(
        self,
        population: int | None = None,
        *,
        device: str = "auto",
        max_memory: int | None = None,
        threads: int | None = None,
        workers: int | None = None,
        refill: bool = True,
    ) -> None:
        if population is not None:
            check_int("FusedRunner", "population", population)
        if not isinstance(device, str) or not (device in DEVICES or re.fullmatch(r"cuda:\d+", device)):
            raise InvalidArgumentError(
                f"The 'device' parameter of FusedRunner must be one of {', '.join(DEVICES)} (or cuda:N). "
                f"Got {device!r} instead."
            )
        if max_memory is not None and (
            isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory < 1
        ):
            raise InvalidArgumentError(
                "The 'max_memory' parameter of FusedRunner must be a positive number of bytes. "
                f"Got {max_memory!r} instead."
            )
        if threads is not None:
            check_int("FusedRunner", "threads", threads)
        if workers is not None:
            check_int("FusedRunner", "workers", workers)
        if not isinstance(refill, bool):
            raise InvalidArgumentError(
                f"The 'refill' parameter of FusedRunner must be true or false. Got {refill!r} instead."
            )
        self.population = population
        self.device = device
        self.max_memory = max_memory
        self.threads = threads
        self.workers = workers
        self.refill = refill

    def __repr__(self) -> str:
        return (
            f"FusedRunner(population={self.population or 'auto'}, device={self.device!r}, "
            f"max_memory={self.max_memory}, workers={self.workers}, refill={self.refill})"
        )

    def run(
        self,
        study: Study,
        make_objective: ObjectiveFactory,
        policy: RunPolicy,
        *,
        on_poll: Callable[[Study], None] | None = None,
    ) -> None:
        refuse_inside_main_import("fused")
        recipe = getattr(make_objective, "population_recipe", None)
        if recipe is None:
            raise InvalidArgumentError(
                "The fused runner trains the built-in MLP only: it needs a hyperlab.train.ObjectiveFactory, "
                f"got {make_objective!r}. Use runner 'processes' or 'inline' for other objectives."
            )
        import torch

        device = self.check_device()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        data, fixed, metric = recipe()
        deadline = None if policy.timeout is None else time.monotonic() + policy.timeout
        beat = Heartbeat(study, policy.heartbeat)
        pool = self._pool(device)
        population = self.population or auto_population(study, policy.max_trials)
        try:
            if pool is not None and work_left(study, policy):
                pool.start()  # before any trial is asked: workers that cannot start cost no trial
            exited = True  # the first check also fails the trials of an earlier, killed tuner's workers here
            while True:
                study.recover(policy.grace, exited=exited)
                exited = False
                if deadline is not None and time.monotonic() >= deadline:
                    return
                trials = self._ask(study, policy, population)
                if trials:
                    self._train(
                        study, trials, (data, fixed, metric), device, beat, on_poll, pool, policy, deadline, population
                    )
                    continue
                if not wait_for_others(study, policy):
                    return
        finally:
            beat.close()
            if pool is not None:
                pool.close()

    def check_device(self) -> str:
        """The device the run will use; an error now if it is a GPU torch cannot see."""
        import torch

        from hyperlab.train.fused import resolve_device

        device = resolve_device(self.device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidArgumentError(
                f"The fused runner was asked for device {self.device!r}, but torch sees no CUDA GPU; "
                "use device auto (a GPU when there is one) or cpu."
            )
        return device

    def _pool(self, device: str) -> PopulationPool | None:
        """The worker processes for a CPU run (started by :meth:`run`, before the first population)."""
        if device != "cpu":
            return None
        import torch

        from hyperlab.train.fused import PopulationPool

        cores = os.cpu_count() or 1
        workers = self.workers if self.workers is not None else cores
        if workers <= 1:
            return None
        return PopulationPool(workers, threads=self.threads or torch.get_num_threads())

    def _ask(self, study: Study, policy: RunPolicy, n: int, into: list[Trial] | None = None) -> list[Trial]:
        """Up to n new trials, appended to ``into`` as they come (so the caller has them
        if an ask fails midway)."""
        trials = [] if into is None else into
        while len(trials) < n:
            trial = next_trial(study, max_trials=policy.max_trials, retries=policy.retries)
            if trial is None:
                break
            trials.append(trial)
        return trials

    def _train(
        self,
        study: Study,
        trials: list[Trial],
        recipe: tuple[Any, dict[str, Any], str],
        device: str,
        beat: Heartbeat,
        on_poll: Callable[[Study], None] | None,
        pool: PopulationPool | None,
        policy: RunPolicy,
        deadline: float | None,
        population: int,
    ) -> None:
        from hyperlab.study import WORKER_LOST, interrupted
        from hyperlab.train._pool import PoolStartError, WorkerDiedError
        from hyperlab.train.fused import FusedResult, train_population
        from hyperlab.train.hparams import TrainConfig
        from hyperlab.train.objective import best_value
        from hyperlab.train.trainer import best_epoch_metrics

        data, fixed, metric = recipe
        members: list[Trial] = []  # member i of the population is trial members[i]
        owned = list(trials)  # every trial asked for this population, admitted or not

        def admit(trials: list[Trial]) -> list[TrainConfig]:
            configs = []
            for trial in trials:
                beat.watch(trial.id)
                try:
                    configs.append(TrainConfig.from_params({**fixed, **trial.params}))
                    members.append(trial)
                except Exception as e:  # a bad config fails its own trial, not the population
                    said = str(e) if isinstance(e, HyperlabError) else "".join(traceback.format_exception(e)).rstrip()
                    study.tell(trial, state=TrialState.FAILED, reason=said)
                    beat.unwatch(trial.id)
            return configs

        refilling = True  # until an ask fails

        def more(n: int) -> list[TrainConfig]:
            """New trials for the places members left (none after the deadline). If
            asking fails (the sampler, the store), the population trains on without
            new ones: its trials are not the error's victims; the next ask after the
            population raises it again if it persists."""
            nonlocal refilling
            if not refilling or (deadline is not None and time.monotonic() >= deadline):
                return []
            asked: list[Trial] = []
            try:
                study.recover(policy.grace)
                self._ask(study, policy, n, asked)
            except Exception as e:
                refilling = False
                logger.warning("Refilling the fused population failed; it trains on: %s: %s", type(e).__name__, e)
            finally:  # with Ctrl-C too: the trials asked so far are told as interrupted below
                owned.extend(asked)
            return admit(asked)

        def leave(i: int, outcome: FusedResult) -> None:
            """Tell member i's trial as soon as it leaves, so the sampler learns from it."""
            trial = members[i]
            beat.unwatch(trial.id)
            if outcome.test is not None and trial._stop is None:  # it completed: tested on its own weights
                try:
                    tested = best_epoch_metrics(outcome.result, *outcome.test, data.task)
                    study._add_system_attrs(trial, {TRIAL_TEST_ATTR: tested})
                except Exception as e:  # the trial is told all the same (a best trial without them is retrained)
                    logger.warning("Trial %d's test metrics could not be stored: %s: %s", trial.id, type(e).__name__, e)
            try:
                if outcome.diverged is not None:
                    study.tell(trial, state=TrialState.DIVERGED, reason=outcome.diverged)
                else:  # as for a trial the ordinary objective trained
                    tell_result(study, trial, best_value(outcome.result.curve, metric))
            except Exception as e:  # e.g. another tuner marked it lost meanwhile: the others train on
                logger.warning("Trial %d could not be told: %s: %s", trial.id, type(e).__name__, e)

        configs = admit(trials)
        if not configs:
            return
        try:
            train_population(
                configs,
                data,
                report=lambda i, epoch, metrics: members[i].report(epoch, **metrics),
                should_stop=lambda i: members[i].should_stop(),
                device=device,
                max_memory=self.max_memory,
                on_epoch=None if on_poll is None else lambda: on_poll(study),
                pool=pool,
                more=more if self.refill else None,
                capacity=population,
                on_leave=leave,
                test=True,
            )
        except (KeyboardInterrupt, SystemExit, PoolStartError) as e:
            # Not the trials' fault (workers restarted after an earlier failure could not
            # start): they are interrupted, so a resumed run retries them (up to
            # ``retries``), and the run stops.
            for trial in owned:
                if not trial.state.is_finished:
                    study.tell(trial, state=TrialState.FAILED, reason=interrupted(e))
            raise
        except Exception as e:
            # A worker that died (killed: out of memory, a signal) lost its trials, which
            # are retried (up to ``retries``) as any lost worker's; an error is the trials'.
            reason = (
                f"{WORKER_LOST}: {e}"
                if isinstance(e, WorkerDiedError)
                else "".join(traceback.format_exception(e)).rstrip()
            )
            running = [trial for trial in owned if not trial.state.is_finished]
            logger.warning(
                "A fused population failed, with %d trials running: %s: %s", len(running), type(e).__name__, e
            )
            for trial in running:
                study.tell(trial, state=TrialState.FAILED, reason=reason)
            return
        finally:
            for trial in owned:
                beat.unwatch(trial.id)
        if on_poll is not None:
            on_poll(study)
