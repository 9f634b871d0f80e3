"""The contract of a sampler: where to look next."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hyperlab.errors import HyperlabError
from hyperlab.space import Space
from hyperlab.trial import Trial

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Sampler", "SampleContext", "SearchExhausted"]


class SearchExhausted(HyperlabError, LookupError):  # noqa: N818 - a signal, like StopIteration
    """The sampler has no new point to give (every grid point has been handed out)."""


@dataclass(frozen=True)
class SampleContext:
    """What a sampler may look at to choose the point of one trial.

    Attributes:
        space: the search space.
        number: the number of the trial being asked for (0, 1, ...).
        seed: the study's seed.
        rng: a generator seeded from (seed, number): the same study seed gives trial n
            the same stream whichever process asks for it, and after a resume.
        history: the study's trials (snapshots), when the sampler sets ``uses_history``;
            an empty tuple otherwise, so that samplers which ignore it cost nothing.
        direction: "minimize" or "maximize".
        attrs: the study's attributes; assigning a key stores it durably. Samplers keep
            their state here (the coarse-to-fine boxes), so it survives restarts.
        metric: the reported metric the study optimizes (how a model-based sampler
            compares trials a scheduler stopped at different steps), or None.

    ``pending`` gives the trials still running (in other workers): a model-based
    sampler should not propose their points again. Random, Sobol' and grid points
    differ by construction (trial n gets point n).
    """

    space: Space
    number: int
    seed: int
    rng: np.random.Generator
    history: Sequence[Trial]
    direction: str
    attrs: MutableMapping[str, Any]
    metric: str | None = None

    @property
    def pending(self) -> list[Trial]:
        """The trials running now (their points are taken)."""
        return [t for t in self.history if not t.state.is_finished]


class Sampler(ABC):
    """Chooses the point of the next trial in the unit cube of the space.

    :meth:`suggest` is called by :meth:`hyperlab.Study.ask`, once per trial, inside the
    store's transaction that reserves the trial's number; it returns one coordinate in
    [0, 1] per parameter of the space (coordinates of inactive conditional parameters
    are ignored). It must not touch the store except through ``ctx.attrs``. Raising
    :class:`SearchExhausted` ends the search: no trial is created.
    """

    #: Whether :meth:`suggest` reads ``ctx.history`` (loading it costs a query per ask).
    uses_history: ClassVar[bool] = False

    @abstractmethod
    def suggest(self, ctx: SampleContext) -> Sequence[float]:
        """The unit coordinates of trial ``ctx.number``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
