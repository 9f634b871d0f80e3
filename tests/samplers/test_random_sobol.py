from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from hyperlab import Float, RandomSampler, SobolSampler, Space, Study

SPACE = Space({f"x{i}": Float(0.0, 1.0) for i in range(4)})


def _units(sampler, seed: int, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    study = Study("s", SPACE, storage="memory", sampler=sampler, seed=seed)
    study.optimize(lambda t: 0.0, n_trials=n)
    return np.array([SPACE.to_unit(t.params) for t in study.trials])


def test_deterministic_under_a_seed() -> None:
    for make in (RandomSampler, SobolSampler):
        assert np.array_equal(_units(make(), 4, 16), _units(make(), 4, 16))
        assert not np.array_equal(_units(make(), 4, 16), _units(make(), 5, 16))


def test_sobol_trial_n_is_point_n_whatever_the_order() -> None:
    sampler = SobolSampler()
    first = _units(sampler, 9, 8)
    # Reuse of one sampler instance in a new study (position reset) and a jump ahead.
    again = _units(sampler, 9, 8)
    assert np.array_equal(first, again)
    engine = qmc.Sobol(4, scramble=True, seed=9)
    assert np.allclose(first, engine.random(8))


def test_sobol_covers_the_cube_better_than_random() -> None:
    """Lower centred discrepancy for 64 points, in every one of 10 seeds."""
    for seed in range(10):
        sobol = qmc.discrepancy(_units(SobolSampler(), seed, 64))
        rand = qmc.discrepancy(_units(RandomSampler(), seed, 64))
        assert sobol < rand, (seed, sobol, rand)


def test_every_sampler_travels_to_worker_processes() -> None:
    """Runners pickle the study's sampler for their workers; the copy draws the same points."""
    import pickle

    from hyperlab import CoarseToFineSampler, GridSampler

    for sampler in (RandomSampler(), SobolSampler(), GridSampler(3), CoarseToFineSampler(4)):
        _units(sampler, 2, 5)  # used once, so it holds its caches
        copy = pickle.loads(pickle.dumps(sampler))
        assert np.array_equal(_units(copy, 2, 5), _units(sampler, 2, 5))
