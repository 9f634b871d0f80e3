"""Trials as Ray tasks, on a Ray cluster or a local Ray instance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hyperlab.errors import HyperlabError, InvalidArgumentError
from hyperlab.runners._base import ObjectiveFactory, Runner, RunPolicy, worker_settings

if TYPE_CHECKING:
    from hyperlab.study import Study

__all__ = ["RayRunner", "MissingRayError"]


class MissingRayError(HyperlabError, ImportError):
    """Ray is an optional extra."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingRayError("runner: ray needs Ray, which is not installed: pip install 'hyperlab[ray]'.") from None
    return ray


class RayRunner(Runner):
    """``parallel`` Ray tasks, each a worker that runs trials of the stored study until
    its budget is spent. The store must be reachable from every node: PostgreSQL for a
    cluster (SQLite works for a single-machine Ray).

    A task lost with its node has its trial's heartbeat stop: the other workers fail it
    after the grace period and retry it; a lost task is resubmitted while the budget is
    not spent.

    Args:
        address: a Ray cluster (``"auto"``, ``"ray://host:10001"``); None starts a local
            Ray instance with ``num_cpus`` CPUs.
        parallel: worker tasks; default: the cluster's CPUs.
        num_cpus: CPUs of a local instance (default: all of this machine's).
        cpus_per_worker: CPUs each worker task reserves (its torch threads).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        parallel: int | None = None,
        num_cpus: int | None = None,
        cpus_per_worker: int = 1,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise InvalidArgumentError(
                f"The 'address' parameter of RayRunner must be 'auto', a ray:// URL or None. Got {address!r} instead."
            )
        for name, v in (("parallel", parallel), ("num_cpus", num_cpus), ("cpus_per_worker", cpus_per_worker)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InvalidArgumentError(
                    f"The '{name}' parameter of RayRunner must be a positive integer. Got {v!r} instead."
                )
        self.address, self.parallel, self.num_cpus, self.cpus_per_worker = address, parallel, num_cpus, cpus_per_worker

    def __repr__(self) -> str:
        return f"RayRunner(address={self.address!r}, parallel={self.parallel})"

    def run(
        self,
        study: Study,
        make_objective: ObjectiveFactory,
        policy: RunPolicy,
        *,
        on_poll: Callable[[Study], None] | None = None,
    ) -> None:
        ray = _ray()
        settings = worker_settings(study)
        study.recover(policy.grace, exited=True)
        started_here = not ray.is_initialized()
        if started_here:
            if self.address is None:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=True)
            else:
                ray.init(address=self.address, log_to_driver=True)
        try:
            from hyperlab.runners._processes import run_worker

            parallel = self.parallel or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.cpus_per_worker)
            task = ray.remote(num_cpus=self.cpus_per_worker, max_retries=3)(run_worker)
            deadline = None if policy.timeout is None else time.time() + policy.timeout
            pending = [
                task.remote(settings, make_objective, policy, threads=self.cpus_per_worker, deadline=deadline)
                for _ in range(parallel)
            ]
            while pending:
                done, pending = ray.wait(pending, timeout=0.5)
                for ref in done:
                    ray.get(ref)  # re-raises a worker's error here
                if on_poll is not None:
                    on_poll(study)
        finally:
            if started_here:
                ray.shutdown()
