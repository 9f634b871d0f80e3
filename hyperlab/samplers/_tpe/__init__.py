"""Tree-structured Parzen estimator: model where good trials lie, sample there."""

from hyperlab.samplers._tpe._sampler import TPESampler

__all__ = ["TPESampler"]
