"""Objectives that worker processes import by name (spawned workers unpickle them)."""

from __future__ import annotations

import functools
import time
from typing import Any


def slow(trial: Any, *, epochs: int, seconds: float) -> float:
    x = trial.params["x"]
    for epoch in range(epochs):
        time.sleep(seconds)
        trial.report(epoch, loss=x / (epoch + 1))
        if trial.should_stop():
            break
    return x


def make_slow(epochs: int = 3, seconds: float = 0.02) -> Any:
    return functools.partial(slow, epochs=epochs, seconds=seconds)


def slow_factory(epochs: int = 3, seconds: float = 0.02) -> Any:
    """A picklable factory: what the runners send to their workers."""
    return functools.partial(make_slow, epochs, seconds)


def trivial(trial: Any) -> float:
    trial.report(0, loss=trial.params["x"])
    return float(trial.params["x"])


def fails_at_startup() -> Any:
    raise RuntimeError("cannot build the objective")
