"""The contract of a runner: where trials execute."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperlab.errors import InvalidArgumentError, check_seconds

if TYPE_CHECKING:
    from hyperlab.study import Objective, Study

__all__ = ["Runner", "RunPolicy", "ObjectiveFactory"]

# A picklable callable that builds the objective inside a worker (so that data are
# loaded once per worker and nothing heavy crosses process boundaries).
ObjectiveFactory = Callable[[], "Objective"]


@dataclass(frozen=True)
class RunPolicy:
    """How trials are run, whatever the runner.

    Attributes:
        max_trials: the study's budget (retries do not count), shared by every worker.
        retries: how often a trial whose worker was lost is run again with the same
            params (an interrupted trial is always run again, and does not count).
        heartbeat: seconds between heartbeats of a running trial.
        grace: a running trial without a heartbeat for this long is failed as lost.
        timeout: seconds after which no new trial starts.
    """

    max_trials: int
    retries: int = 1
    heartbeat: float = 5.0
    grace: float = 60.0
    timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_trials", "retries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidArgumentError(f"The '{name}' setting must be a non-negative integer. Got {v!r} instead.")
        for name in ("heartbeat", "grace"):
            if getattr(self, name) is None:
                raise InvalidArgumentError(f"The '{name}' setting of RunPolicy is a number of seconds, not None.")
        for name in ("heartbeat", "grace", "timeout"):
            check_seconds("RunPolicy", name, getattr(self, name))
        if self.grace <= self.heartbeat:
            raise InvalidArgumentError(
                f"The 'grace' setting ({self.grace:g} s) must be longer than the heartbeat interval "
                f"({self.heartbeat:g} s), or live trials would be failed as lost."
            )


class Runner(ABC):
    """Runs a study's trials until its budget is spent.

    :meth:`run` is called once by the tuner (``hyperlab tune``, or the user). It may
    start processes or cluster tasks, each of which opens the study from its store and
    runs ``study.optimize`` with the policy; ``on_poll(study)`` is called about twice a
    second in the calling process so a display can follow the stored results.
    """

    @abstractmethod
    def run(
        self,
        study: Study,
        make_objective: ObjectiveFactory,
        policy: RunPolicy,
        *,
        on_poll: Callable[[Study], None] | None = None,
    ) -> None:
        """Run trials until ``policy.max_trials`` trials exist and have finished."""

    def describe(self) -> str:
        return repr(self)


def refuse_inside_main_import(runner: str) -> None:
    """Refuse to run a study while this process is a spawned worker importing the main
    script. Worker processes are spawned, and a spawned process imports the script that
    started it; a script that runs a study outside ``if __name__ == "__main__":`` would
    run it again in each worker, where it waits on the trials its own parent holds."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):  # what multiprocessing itself checks
        raise InvalidArgumentError(
            f"The {runner} runner was started while a worker process was importing the main script. Worker "
            "processes import the script that starts them, so a script that runs a study with worker processes "
            'must do it under `if __name__ == "__main__":` (see "safe importing of main module" in Python\'s '
            "multiprocessing documentation)."
        )


def worker_settings(study: Study) -> dict[str, Any]:
    """What a worker needs to open the same study: its store URL, name and policies."""
    url = getattr(study.storage, "url", None)
    if url is None:
        raise InvalidArgumentError(
            "Running trials in other processes needs a store they can share: use storage "
            "'sqlite:///hyperlab.db' (one machine) or a PostgreSQL URL, not 'memory'."
        )
    return {"url": url, "name": study.name, "sampler": study.sampler, "scheduler": study.scheduler}


def wait_for_others(study: Study, policy: RunPolicy) -> bool:
    """When this tuner has nothing to start: False if the study is done; else wait a
    moment and return True. Trials still running belong to other tuners on the study:
    they finish, or are failed as lost and retried here."""
    import time

    from hyperlab.trial import TrialState

    if not study.get_trials((TrialState.RUNNING,)) and not work_left(study, policy):
        return False
    time.sleep(min(1.0, policy.grace / 4))
    return True


def work_left(study: Study, policy: RunPolicy) -> bool:
    """Whether trials remain to be started: the budget is not spent, or a lost trial
    waits for its retry."""
    record = study.storage.get_study(study.name)
    return record.n_budgeted < policy.max_trials or bool(study.retry_candidates(policy.retries))
