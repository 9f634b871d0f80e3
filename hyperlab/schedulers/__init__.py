"""When to stop a trial: one scheduler per module. Divergence (NaN/inf) is always stopped."""

from hyperlab.schedulers._asha import ASHAScheduler
from hyperlab.schedulers._base import Decision, Scheduler, SchedulerContext, Verdict
from hyperlab.schedulers._hyperband import HyperbandScheduler
from hyperlab.schedulers._median import MedianScheduler

__all__ = [
    "Scheduler",
    "SchedulerContext",
    "Decision",
    "Verdict",
    "ASHAScheduler",
    "HyperbandScheduler",
    "MedianScheduler",
]
