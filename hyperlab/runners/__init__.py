"""Where trials execute: in this process, fused into one population, in local worker processes, or on Ray."""

from hyperlab.runners._base import Runner, RunPolicy
from hyperlab.runners._fused import FusedRunner
from hyperlab.runners._inline import InlineRunner
from hyperlab.runners._processes import ProcessRunner
from hyperlab.runners._ray import MissingRayError, RayRunner

__all__ = ["Runner", "RunPolicy", "InlineRunner", "FusedRunner", "ProcessRunner", "RayRunner", "MissingRayError"]
