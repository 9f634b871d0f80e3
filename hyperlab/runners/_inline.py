"""Trials one at a time, in this process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hyperlab.runners._base import ObjectiveFactory, Runner, RunPolicy, wait_for_others

if TYPE_CHECKING:
    from hyperlab.study import Study

__all__ = ["InlineRunner"]


class InlineRunner(Runner):
    """Runs trials one after another in the calling process (easiest to debug)."""

    def __repr__(self) -> str:
        return "InlineRunner()"

    def run(
        self,
        study: Study,
        make_objective: ObjectiveFactory,
        policy: RunPolicy,
        *,
        on_poll: Callable[[Study], None] | None = None,
    ) -> None:
        callbacks = [lambda s, t: on_poll(s)] if on_poll is not None else []
        objective = make_objective()
        deadline = None if policy.timeout is None else time.monotonic() + policy.timeout
        while True:
            study.recover(policy.grace)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            study.optimize(
                objective,
                max_trials=policy.max_trials,
                timeout=left,
                retries=policy.retries,
                heartbeat=policy.heartbeat,
                grace=policy.grace,
                callbacks=callbacks,
            )
            if not wait_for_others(study, policy):
                return
