"""The built-in PyTorch trainer (torch is imported only by this package).

Example:
    >>> from hyperlab.train import load_dataset, TrainConfig, train  # doctest: +SKIP
    >>> data = load_dataset("sklearn:digits")
    >>> result = train(TrainConfig(learning_rate=3e-3, epochs=10), data)
"""

from hyperlab.train.data import DataError, Dataset, load_dataset
from hyperlab.train.objective import METRICS, make_objective
from hyperlab.train.trainer import Diverged, TrainConfig, TrainResult, evaluate, measure_test, train

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
    "METRICS",
]
