"""The built-in PyTorch trainer. torch is imported on first use of a name that needs it.

Example:
    >>> from hyperlab.train import load_dataset, TrainConfig, train  # doctest: +SKIP
    >>> data = load_dataset("sklearn:digits")
    >>> result = train(TrainConfig(learning_rate=3e-3, epochs=10), data)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DataError",
    "Dataset",
    "load_dataset",
    "TrainConfig",
    "TrainResult",
    "Diverged",
    "train",
    "evaluate",
    "measure_test",
    "make_objective",
    "ObjectiveFactory",
    "LoadedObjective",
    "METRICS",
]

_WHERE = {
    "DataError": "data",
    "Dataset": "data",
    "load_dataset": "data",
    "TrainConfig": "hparams",
    "TrainResult": "trainer",
    "Diverged": "trainer",
    "train": "trainer",
    "evaluate": "trainer",
    "measure_test": "trainer",
    "make_objective": "objective",
    "ObjectiveFactory": "objective",
    "LoadedObjective": "objective",
    "METRICS": "objective",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'hyperlab.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hyperlab.train.{_WHERE[name]}"), name)
