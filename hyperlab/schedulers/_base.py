"""The contract of a scheduler: when to stop a trial early."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyperlab.trial import Trial

__all__ = ["Scheduler", "Decision", "Verdict", "SchedulerContext"]


class Decision(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass(frozen=True)
class Verdict:
    """A scheduler's answer to one report."""

    decision: Decision
    reason: str = ""
    # Notes to store on the trial (merged into its system_attrs), e.g. the rung value.
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def stop(self) -> bool:
        return self.decision is Decision.STOP


CONTINUE = Verdict(Decision.CONTINUE)


@dataclass(frozen=True)
class SchedulerContext:
    """What a scheduler may look at when a trial reports.

    Attributes:
        trial: the reporting trial (its curve includes this report).
        step: the step just reported (0 is the first epoch: one epoch of resource).
        metric: the name of the study's metric.
        value: the study's metric at this step.
        maximize: whether larger values are better.
        peers: the system attributes of every trial of the study, by number (the rungs
            other trials recorded); read from the store when called.
        finished: the study's finished trials with their curves; read when called.
    """

    trial: Trial
    step: int
    metric: str
    value: float
    maximize: bool
    peers: Callable[[], dict[int, dict[str, Any]]]
    finished: Callable[[], Sequence[Trial]]


class Scheduler(ABC):
    """Decides, at each report of a trial, whether it goes on.

    :meth:`decide` is called by :meth:`hyperlab.Trial.report` after the report is
    stored, in the trial's own process. It must not change the store; what it wants
    remembered (a rung value) it returns in ``Verdict.notes``, which the study stores
    on the trial before the verdict is acted on, so decisions hold across processes
    and restarts. A STOP verdict ends the trial as PRUNED with ``Verdict.reason``.
    """

    @abstractmethod
    def decide(self, ctx: SchedulerContext) -> Verdict:
        """The verdict on ``ctx.trial`` after its report at ``ctx.step``."""

    def describe(self) -> str:
        return repr(self)
