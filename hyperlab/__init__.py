"""hyperlab: hyperparameter tuning for deep networks, following the course's method.

``import hyperlab`` stays light (no NumPy, SQLAlchemy or torch): the names below that
need them are imported on first use.

Example:
    >>> import hyperlab as hl
    >>> space = hl.Space(learning_rate=hl.Float(1e-4, 1.0, scale="log", tier=1))
    >>> study = hl.Study("example", space, storage="memory", seed=1)
    >>> study.optimize(lambda t: abs(t.params["learning_rate"] - 0.01), n_trials=20)
    >>> study.best_trial.state.value
    'complete'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperlab.errors import HyperlabError
from hyperlab.space import Choice, Fixed, Float, Int, Param, Space, course_space
from hyperlab.trial import Trial, TrialDiverged, TrialPruned, TrialState

if TYPE_CHECKING:
    from hyperlab.samplers import (
        CoarseToFineSampler,
        GridSampler,
        RandomSampler,
        Sampler,
        SobolSampler,
        TPESampler,
    )
    from hyperlab.study import Study

__version__ = "0.1.0"

__all__ = [
    "HyperlabError",
    "Param",
    "Float",
    "Int",
    "Choice",
    "Fixed",
    "Space",
    "course_space",
    "Trial",
    "TrialState",
    "TrialPruned",
    "TrialDiverged",
    "Study",
    "Sampler",
    "RandomSampler",
    "GridSampler",
    "SobolSampler",
    "CoarseToFineSampler",
    "TPESampler",
]

_LAZY = {
    "Study": "hyperlab.study",
    "Sampler": "hyperlab.samplers",
    "RandomSampler": "hyperlab.samplers",
    "GridSampler": "hyperlab.samplers",
    "SobolSampler": "hyperlab.samplers",
    "CoarseToFineSampler": "hyperlab.samplers",
    "TPESampler": "hyperlab.samplers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hyperlab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
