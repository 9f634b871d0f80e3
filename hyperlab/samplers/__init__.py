"""Where to look next: one sampler per module, all working in the unit cube."""

from hyperlab.samplers._base import SampleContext, Sampler, SearchExhausted
from hyperlab.samplers._coarse_to_fine import CoarseToFineSampler
from hyperlab.samplers._grid import GridSampler
from hyperlab.samplers._random import RandomSampler
from hyperlab.samplers._sobol import SobolSampler
from hyperlab.samplers._tpe import TPESampler

__all__ = [
    "Sampler",
    "SampleContext",
    "SearchExhausted",
    "RandomSampler",
    "GridSampler",
    "SobolSampler",
    "CoarseToFineSampler",
    "TPESampler",
]
