from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hyperlab import Choice, Float, Int, RandomSampler, Space, Study, TPESampler, TrialState
from hyperlab.config import StudyConfig
from hyperlab.errors import InvalidArgumentError
from hyperlab.samplers import SampleContext
from hyperlab.trial import Trial

# A bowl in log(learning rate) and beta, an optimizer choice worth 0.5, and Adam's
# epsilon (a conditional parameter) with its own optimum.
SPACE = Space(
    learning_rate=Float(1e-5, 1.0, scale="log"),
    beta=Float(0.0, 1.0),
    units=Int(16, 512, scale="log"),
    optimizer=Choice(["momentum", "adam", "rmsprop"]),
    epsilon=Float(1e-9, 1e-3, scale="log", when={"optimizer": "adam"}),
)


def bowl(p: dict) -> float:
    value = (math.log10(p["learning_rate"]) + 2.5) ** 2 + 4 * (p["beta"] - 0.3) ** 2
    if p["optimizer"] == "adam":
        return value + 0.1 * (math.log10(p["epsilon"]) + 6) ** 2
    return value + 0.5


def best(sampler: object, seed: int, n: int = 50) -> float:
    study = Study("b", SPACE, storage="memory", sampler=sampler, seed=seed)  # type: ignore[arg-type]
    study.optimize(lambda t: bowl(t.params), n_trials=n)
    return study.best_value  # the optimum is 0


def test_tpe_beats_random_search_with_a_conditional_parameter() -> None:
    seeds = range(6)
    tpe = [best(TPESampler(), s) for s in seeds]
    rnd = [best(RandomSampler(), s) for s in seeds]
    assert np.median(tpe) < 0.25 * np.median(rnd), (tpe, rnd)
    assert sum(a < b for a, b in zip(tpe, rnd, strict=True)) >= 5


def test_univariate_tpe_beats_random_search_too() -> None:
    seeds = range(6)
    tpe = [best(TPESampler(multivariate=False), s) for s in seeds]
    rnd = [best(RandomSampler(), s) for s in seeds]
    assert np.median(tpe) < 0.25 * np.median(rnd), (tpe, rnd)


def _truncnorm(x: float, mu: float, sigma: float) -> float:
    mass = 0.5 * (math.erf((1 - mu) / (sigma * math.sqrt(2))) - math.erf(-mu / (sigma * math.sqrt(2))))
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)) / mass


def test_joint_and_univariate_densities_are_the_mixtures_they_claim() -> None:
    from hyperlab.samplers._tpe._parzen import Axes, Parzen

    axes = Axes(np.array([0, 1]), np.array([], dtype=int), np.array([], dtype=int))
    points = np.array([[0.1, 0.1], [0.9, 0.9]])
    x = np.array([[0.1, 0.9], [0.5, 0.2]])
    active = np.ones(x.shape, dtype=bool)
    joint, uni = Parzen(points, axes, eps=0.2), Parzen(points, axes, eps=0.2, univariate=True)
    for row, (a, b) in enumerate(x):
        # two kernels and the uniform prior, each of weight 1/3
        k = [[_truncnorm(v, p[i], joint.sigma) for i, v in enumerate((a, b))] for p in points]
        expect_joint = (k[0][0] * k[0][1] + k[1][0] * k[1][1] + 1) / 3
        assert math.exp(joint.log_pdf(x[row : row + 1], active[:1])[0]) == pytest.approx(expect_joint, rel=1e-9)
        u = [[_truncnorm(v, p[i], uni.sigma) for i, v in enumerate((a, b))] for p in points]
        expect_uni = (u[0][0] + u[1][0] + 1) / 3 * (u[0][1] + u[1][1] + 1) / 3
        assert math.exp(uni.log_pdf(x[row : row + 1], active[:1])[0]) == pytest.approx(expect_uni, rel=1e-9)
    # An inactive axis drops out of the univariate product.
    only_a = np.array([[True, False]])
    u0 = (_truncnorm(0.1, 0.1, uni.sigma) + _truncnorm(0.1, 0.9, uni.sigma) + 1) / 3
    assert math.exp(uni.log_pdf(x[:1], only_a)[0]) == pytest.approx(u0, rel=1e-9)


def test_univariate_samples_mix_the_axes_of_different_points() -> None:
    """Joint kernels keep each good point's combination; per-axis mixtures do not."""
    from hyperlab.samplers._tpe._parzen import Axes, Parzen

    axes = Axes(np.array([0, 1]), np.array([], dtype=int), np.array([], dtype=int))
    points = np.array([[0.1, 0.1], [0.9, 0.9]])

    def off_diagonal(univariate: bool) -> float:
        draws = Parzen(points, axes, eps=0.2, univariate=univariate).sample(np.random.default_rng(0), 3000)
        low = draws < 0.5
        return float(np.mean(low[:, 0] != low[:, 1]))

    # Joint: only the uniform prior (1/3 of draws) lands off the diagonal half the time.
    assert off_diagonal(False) == pytest.approx(1 / 6, abs=0.03)
    # Univariate: each axis picks its own component, so half of all draws do.
    assert off_diagonal(True) == pytest.approx(1 / 2, abs=0.03)


def test_startup_trials_are_the_random_samplers_points_and_a_seed_replays() -> None:
    def params(sampler: object, seed: int) -> list[dict]:
        study = Study("r", SPACE, storage="memory", sampler=sampler, seed=seed)  # type: ignore[arg-type]
        study.optimize(lambda t: bowl(t.params), n_trials=25)
        return [t.params for t in study.trials]

    tpe = params(TPESampler(n_startup=10), 4)
    assert tpe[:10] == params(RandomSampler(), 4)[:10]
    assert tpe == params(TPESampler(n_startup=10), 4)
    assert tpe != params(TPESampler(n_startup=10), 5)
    for p in tpe:  # every point valid; epsilon only where the optimizer is adam
        SPACE.validate(p)
        assert ("epsilon" in p) == (p["optimizer"] == "adam")


def _trial(n: int, params: dict, state: TrialState, value: float | None = None, curve: dict | None = None) -> Trial:
    return Trial(n, params, state=state, value=value, curve=curve or {})


def _ctx(history: list[Trial], seed: int = 0, number: int = 100) -> SampleContext:
    return SampleContext(
        space=SPACE,
        number=number,
        seed=seed,
        rng=np.random.default_rng([seed, number]),
        history=history,
        direction="minimize",
        attrs={},
        metric="dev_error",
    )


def _history(n: int = 30) -> list[Trial]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        p = SPACE.from_unit(rng.random(len(SPACE)).tolist())
        out.append(_trial(i, p, TrialState.COMPLETE, bowl(p)))
    return out


def test_pending_points_push_the_next_point_away() -> None:
    """Constant liar: workers asking while others run must not all pick the same point."""
    sampler = TPESampler()
    history = _history()
    alone = SPACE.from_unit(sampler.suggest(_ctx(history)))
    # Ten other workers are already running trials at (nearly) that point.
    running = [_trial(100 + k, alone, TrialState.RUNNING) for k in range(10)]
    crowded = SPACE.from_unit(sampler.suggest(_ctx(history + running)))

    def distance(p: dict) -> float:
        return float(np.linalg.norm(np.array(SPACE.to_unit(p)[:3]) - np.array(SPACE.to_unit(alone)[:3])))

    assert distance(crowded) > 0.05
    # Without the running trials the same call gives the same point again.
    assert SPACE.from_unit(sampler.suggest(_ctx(history))) == alone


def test_trials_rank_complete_then_pruned_or_running_by_depth_then_diverged_and_failed_are_left_out() -> None:
    p = SPACE.from_unit([0.5] * len(SPACE))
    history = [
        _trial(0, p, TrialState.PRUNED, curve={0: {"dev_error": 0.1}}),  # stopped at step 0
        _trial(1, p, TrialState.DIVERGED, curve={0: {"dev_error": math.nan}}),
        _trial(2, p, TrialState.COMPLETE, 0.4),
        _trial(3, p, TrialState.PRUNED, curve={0: {"dev_error": 0.5}, 2: {"dev_error": 0.3}}),
        _trial(4, p, TrialState.FAILED),
        _trial(5, p, TrialState.COMPLETE, 0.2),
        _trial(6, p, TrialState.PRUNED, curve={0: {"dev_error": 0.6}, 2: {"dev_error": 0.2}}),
        _trial(7, p, TrialState.RUNNING),
        _trial(8, p, TrialState.PRUNED, curve={0: {"dev_error": 0.05}}),
        # Running, and past the rung at step 0: ranked by how far it got, as if pruned now.
        _trial(9, p, TrialState.RUNNING, curve={0: {"dev_error": 0.4}, 1: {"dev_error": 0.25}}),
        # Running, and its latest report is NaN: about to be marked diverged.
        _trial(10, p, TrialState.RUNNING, curve={0: {"dev_error": 0.01}, 1: {"dev_error": math.nan}}),
        # Running, with reports of another metric only: still a pending point.
        _trial(11, p, TrialState.RUNNING, curve={0: {"train_cost": 0.01}}),
    ]
    ranked, pending = TPESampler()._split(_ctx(history))
    assert [t.id for t in ranked] == [5, 2, 6, 3, 9, 8, 0, 1, 10]
    assert [t.id for t in pending] == [7, 11]  # running without a report: a pending point, counted as bad
    # A study without a metric cannot rank a running trial's curve: it is pending.
    ctx = SampleContext(SPACE, 100, 0, np.random.default_rng(0), history, "minimize", {}, None)
    assert [t.id for t in TPESampler()._split(ctx)[1]] == [7, 9, 10, 11]


def test_a_running_trial_that_has_reported_well_draws_the_search_and_does_not_count_toward_startup() -> None:
    # Under ASHA the best trials are the ones still running: while they run, the next
    # points must be drawn near them, not pushed away as from a pending point.
    far = SPACE.from_unit([0.05, 0.9, 0.1, 0.0, 0.5])
    history = [_trial(i, far, TrialState.PRUNED, curve={0: {"dev_error": 0.9}}) for i in range(12)]
    near = SPACE.from_unit([0.8, 0.2, 0.7, 0.5, 0.5])
    running = [
        _trial(20 + k, near, TrialState.RUNNING, curve={0: {"dev_error": 0.1}, 2: {"dev_error": 0.05}})
        for k in range(3)
    ]
    sampler = TPESampler(n_startup=10)

    def distance(p: dict) -> float:
        return float(np.linalg.norm(np.array(SPACE.to_unit(p)[:3]) - np.array(SPACE.to_unit(near)[:3])))

    drawn = [SPACE.from_unit(sampler.suggest(_ctx(history + running, number=100 + k))) for k in range(10)]
    assert np.median([distance(p) for p in drawn]) < 0.3
    # Without reports the same running trials are pending points: they push away.
    pending = [_trial(t.id, t.params, TrialState.RUNNING) for t in running]
    drawn = [SPACE.from_unit(sampler.suggest(_ctx(history + pending, number=100 + k))) for k in range(10)]
    assert np.median([distance(p) for p in drawn]) > 0.3
    # Running trials do not end the random start-up: 9 finished + 3 running is still random.
    rng_point = sampler.suggest(_ctx(history[:9] + running, number=7))
    assert rng_point == np.random.default_rng([0, 7]).random(len(SPACE)).tolist()


def test_maximize_ranks_the_largest_first() -> None:
    p = SPACE.from_unit([0.5] * len(SPACE))
    history = [_trial(i, p, TrialState.COMPLETE, v) for i, v in enumerate([0.2, 0.9, 0.5])]
    ctx = SampleContext(SPACE, 10, 0, np.random.default_rng(0), history, "maximize", {}, "dev_accuracy")
    assert [t.id for t in TPESampler()._split(ctx)[0]] == [1, 2, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_startup": 0}, "The 'n_startup' parameter of TPESampler must be a positive integer. Got 0 instead."),
        (
            {"n_candidates": 2.5},
            "The 'n_candidates' parameter of TPESampler must be a positive integer. Got 2.5 instead.",
        ),
        ({"gamma": 1.0}, "The 'gamma' parameter of TPESampler must be a number in (0, 1). Got 1.0 instead."),
        ({"eps": True}, "The 'eps' parameter of TPESampler must be a number in (0, 1). Got True instead."),
        (
            {"multivariate": "no"},
            "The 'multivariate' parameter of TPESampler must be true or false. Got 'no' instead.",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        TPESampler(**kwargs)


def test_config_builds_tpe() -> None:
    config = StudyConfig.model_validate({"name": "x", "sampler": {"type": "tpe", "n_startup": 5, "gamma": 0.2}})
    sampler = config.sampler_object()
    assert isinstance(sampler, TPESampler)
    assert (sampler.n_startup, sampler.gamma) == (5, 0.2)


def test_config_builds_univariate_tpe() -> None:
    config = StudyConfig.model_validate({"name": "x", "sampler": {"type": "tpe", "multivariate": False}})
    sampler = config.sampler_object()
    assert isinstance(sampler, TPESampler) and sampler.multivariate is False


def test_config_names_a_bad_multivariate() -> None:
    from hyperlab.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=re.escape("sampler.multivariate: Input should be a valid boolean")) as e:
        parse_config({"name": "x", "sampler": {"type": "tpe", "multivariate": "maybe"}})
    assert "got 'maybe'" in str(e.value)
