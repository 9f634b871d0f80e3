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


def heavy_factory(megabytes: int) -> Any:
    """A factory carrying ``megabytes`` of payload, as one carrying a loaded dataset does."""
    return functools.partial(_with_payload, b"x" * (megabytes << 20))


def _with_payload(payload: bytes) -> Any:
    return trivial


def tensor_factory() -> Any:
    """A factory holding a torch tensor: every worker must be able to load it."""
    import torch

    return functools.partial(_with_tensor, torch.ones(3))


def _with_tensor(tensor: Any) -> Any:
    return make_slow(2, 0.05) if float(tensor.sum()) == 3.0 else None
