"""Spaces: scales, round trips, conditions, tiers and the errors for bad spaces."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperlab import Choice, Fixed, Float, Int, Space, course_space
from hyperlab.errors import InvalidParamsError, InvalidSpaceError
from hyperlab.space import ADAM_DEFAULTS

N = 10_000


def draws(param: Float | Int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([param.from_unit(u) for u in rng.random(N)])


def test_log_scale_gives_each_decade_a_quarter() -> None:
    values = draws(Float(1e-4, 1.0, scale="log"))
    shares = np.histogram(np.log10(values), bins=[-4, -3, -2, -1, 0])[0] / N
    # Binomial(10000, 0.25) has sd 0.0043; 0.02 is 4.6 sd: a false failure about 1 in 200,000.
    assert shares == pytest.approx([0.25] * 4, abs=0.02)
    # Uniform on a linear scale would put 90% in [0.1, 1] (the course's warning).
    linear = draws(Float(1e-4, 1.0))
    assert np.mean(linear >= 0.1) == pytest.approx(0.9, abs=0.02)


def test_reverse_log_splits_beta_between_0_99_and_the_rest() -> None:
    values = draws(Float(0.9, 0.999, scale="reverse_log"))
    assert values.min() >= 0.9 and values.max() <= 0.999
    # sd of the share is 0.005; 0.025 is 5 sd.
    assert np.mean(values <= 0.99) == pytest.approx(0.5, abs=0.025)
    assert np.mean((values > 0.99) & (values <= 0.999)) == pytest.approx(0.5, abs=0.025)


def test_log_int_is_log_uniform() -> None:
    values = draws(Int(16, 512, scale="log"))
    assert set(np.unique(values)) <= set(range(16, 513))
    # [16, 64) and [128, 512] both span two octaves: about the same share each.
    low, high = np.mean(values < 64), np.mean(values >= 128)
    assert low == pytest.approx(0.4, abs=0.03) and high == pytest.approx(0.4, abs=0.03)


def test_linear_int_and_choice_are_uniform() -> None:
    values = draws(Int(1, 4))
    assert np.bincount(values)[1:] / N == pytest.approx([0.25] * 4, abs=0.02)
    stepped = draws(Int(0, 100, step=25))
    assert sorted(set(stepped)) == [0, 25, 50, 75, 100]
    choice = Choice(["a", "b", "c"])
    counts = {o: 0 for o in "abc"}
    for u in np.random.default_rng(1).random(3000):
        counts[choice.from_unit(u)] += 1
    assert all(abs(c / 3000 - 1 / 3) < 0.04 for c in counts.values())


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(u=unit, scale=st.sampled_from(["linear", "log", "reverse_log"]))
def test_float_round_trip(u: float, scale: str) -> None:
    p = {
        "linear": Float(-3.0, 7.0),
        "log": Float(1e-6, 10.0, scale="log"),
        "reverse_log": Float(0.5, 0.9999, scale="reverse_log"),
    }[scale]
    v = p.from_unit(u)
    assert p.low <= v <= p.high
    assert p.to_unit(v) == pytest.approx(u, abs=1e-9)


@given(u=unit, p=st.sampled_from([Int(1, 4), Int(16, 512, scale="log"), Int(-10, 20, step=5), Int(1, 2, scale="log")]))
def test_int_round_trip(u: float, p: Int) -> None:
    v = p.from_unit(u)
    assert p.contains(v)
    assert p.from_unit(p.to_unit(v)) == v  # a value's coordinate maps back to it exactly
    assert 0.0 <= p.to_unit(v) <= 1.0


@given(u=unit)
def test_choice_and_fixed_round_trip(u: float) -> None:
    c = Choice(["gd", 2, 3.5, True, None])
    v = c.from_unit(u)
    assert c.from_unit(c.to_unit(v)) == v and type(c.from_unit(c.to_unit(v))) is type(v)
    f = Fixed(1e-8)
    assert f.from_unit(u) == 1e-8 and f.from_unit(f.to_unit(1e-8)) == 1e-8


def test_choice_keeps_true_and_1_apart() -> None:
    c = Choice([1, True])
    assert c.from_unit(c.to_unit(True)) is True
    assert c.from_unit(c.to_unit(1)) == 1 and c.from_unit(c.to_unit(1)) is not True


def test_grid_versus_random_the_course_argument() -> None:
    """A 5 x 5 grid tries 5 values of each axis; 25 random points try 25."""
    from hyperlab import GridSampler, RandomSampler, Study

    space = Space(learning_rate=Float(1e-4, 1.0, scale="log"), epsilon=Float(1e-10, 1e-6, scale="log"))
    for sampler, distinct in ((GridSampler(5), 5), (RandomSampler(), 25)):
        study = Study("g", space, storage="memory", sampler=sampler, seed=0)
        study.optimize(lambda t: 0.0, n_trials=25)
        assert len(study.trials) == 25
        for name in space:
            assert len({t.params[name] for t in study.trials}) == distinct, (sampler, name)


def test_grid_points_are_spaced_on_the_scale() -> None:
    p = Float(1e-4, 1.0, scale="log")
    assert [p.from_unit(u) for u in p.grid_units(5)] == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    beta = Float(0.9, 0.999, scale="reverse_log")
    assert [beta.from_unit(u) for u in beta.grid_units(3)] == pytest.approx([0.9, 0.99, 0.999])
    units = Int(16, 512, scale="log")
    assert [units.from_unit(u) for u in units.grid_units(6)] == [16, 32, 64, 128, 256, 512]
    assert [Int(1, 3).from_unit(u) for u in Int(1, 3).grid_units(10)] == [1, 2, 3]


def test_conditional_parameter_only_when_condition_holds() -> None:
    space = Space(
        optimizer=Choice(["momentum", "adam"]),
        beta2=Float(0.99, 0.9999, scale="reverse_log", when={"optimizer": "adam"}),
        lr=Float(1e-4, 1.0, scale="log"),
    )
    momentum = space.from_unit([0.25, 0.5, 0.5])
    adam = space.from_unit([0.75, 0.5, 0.5])
    assert momentum.keys() == {"optimizer", "lr"}
    assert adam.keys() == {"optimizer", "beta2", "lr"}
    assert list(adam) == ["optimizer", "beta2", "lr"]  # declaration order
    assert math.isnan(space.to_unit(momentum)[1])
    space.validate(adam)
    with pytest.raises(InvalidParamsError, match=re.escape("Parameter 'beta2' was given, but its condition")):
        space.validate({**momentum, "beta2": 0.999})
    with pytest.raises(InvalidParamsError, match="Parameter 'beta2' is missing"):
        space.validate({"optimizer": "adam", "lr": 0.1})


def test_condition_declared_before_its_parent_and_chained() -> None:
    space = Space(
        decay_rate=Float(0.01, 1.0, when={"decay": ["inverse", "step"]}),
        decay=Choice(["none", "inverse", "step"], when={"schedule": True}),
        schedule=Choice([False, True]),
    )
    assert space.from_unit([0.5, 0.5, 0.25]) == {"schedule": False}
    assert space.from_unit([0.5, 0.5, 0.75]) == {"decay_rate": 0.505, "decay": "inverse", "schedule": True}
    assert space.evaluation_order == ["schedule", "decay", "decay_rate"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"lr": Float(1.0, 0.1)},
            "Parameter 'lr' (Float(low=1.0, high=0.1, scale='linear')) is invalid: low must be less than high; got low=1.0, high=0.1.",
        ),
        (
            {"lr": Float(0.5, 0.5)},
            "Parameter 'lr' (Float(low=0.5, high=0.5, scale='linear')) is invalid: low must be less than high",
        ),
        (
            {"lr": Float(0.0, 1.0, scale="log")},
            "Parameter 'lr' (Float(low=0.0, high=1.0, scale='log')) is invalid: scale='log' needs low > 0; got low=0.0.",
        ),
        (
            {"beta": Float(0.9, 1.0, scale="reverse_log")},
            "Parameter 'beta' (Float(low=0.9, high=1.0, scale='reverse_log')) is invalid: scale='reverse_log' samples 1 - x on a log scale and needs high < 1; got high=1.0.",
        ),
        ({"x": Float(0.0, 1.0, scale="cubic")}, "scale must be 'linear', 'log' or 'reverse_log'; got 'cubic'"),  # type: ignore[arg-type]
        (
            {"x": Float(0.0, math.inf)},
            "Parameter 'x' (Float(low=0.0, high=inf, scale='linear')) is invalid: high must be a finite number; got inf.",
        ),
        (
            {"units": Int(0, 512, scale="log")},
            "Parameter 'units' (Int(low=0, high=512, scale='log', step=1)) is invalid: scale='log' needs low >= 1; got low=0.",
        ),
        (
            {"units": Int(1, 10, step=4)},
            "Parameter 'units' (Int(low=1, high=10, scale='linear', step=4)) is invalid: high - low must be a multiple of step=4; got low=1, high=10.",
        ),
        ({"units": Int(1.5, 10)}, "low must be an integer; got 1.5"),  # type: ignore[arg-type]
        (
            {"act": Choice([])},
            "Parameter 'act' (Choice(options=[])) is invalid: options must hold at least one value; got an empty list.",
        ),
        ({"act": Choice(["relu", "relu"])}, "options must be distinct; 'relu' appears twice"),
        ({"act": Choice([1, 1.0])}, "options must be distinct; 1.0 equals 1"),  # 1.0 would always pick 1
        ({"act": Choice([0.5, math.nan])}, "options must be strings, numbers (not NaN), booleans or None; got nan"),
        ({"act": Fixed(math.nan)}, "value must be a string, number (not NaN), boolean or None; got nan"),
        ({"lr": Float(0, 10**400)}, f"high must be a finite number; got {10**400}"),  # not an OverflowError
        (
            {"lr": Float(0.1, 1.0, tier=5)},
            "Parameter 'lr' (Float(low=0.1, high=1.0, scale='linear', tier=5)) is invalid: tier must be an integer from 1 to 4; got 5.",
        ),
        ({"lr": Float(0.1, 1.0, default=2.0)}, "default 2.0 is not a value of this parameter"),
        ({"lr": 0.1}, "Parameter 'lr' must be a Float, Int, Choice or Fixed; got 0.1."),
        (
            {"beta2": Float(0.9, 0.99, when={"optimiser": "adam"})},
            "Parameter 'beta2' has when={'optimiser': ...}, but there is no parameter 'optimiser'; known parameters: beta2.",
        ),
        (
            {"opt": Choice(["sgd"]), "b": Float(0.0, 1.0, when={"opt": "adam"})},
            "Parameter 'b' has when={'opt': 'adam'}, but 'adam' is not a value of 'opt' ({'sgd'}).",
        ),
        ({"a": Choice([1, 2], when={"a": 1})}, "Parameter 'a' has a 'when' on itself."),
        (
            {"a": Choice([1, 2], when={"b": 1}), "b": Choice([1, 2], when={"a": 1})},
            "The 'when' conditions form a cycle: a -> b -> a.",
        ),
        ({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0, when={"x": 0.5})}, "Parameter 'y' has a 'when' on 'x', a Float"),
    ],
)
def test_invalid_spaces_name_parameter_value_and_what_is_valid(params: dict, message: str) -> None:
    with pytest.raises(InvalidSpaceError, match=re.escape(message)):
        Space(params)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(InvalidSpaceError, match=re.escape("Parameter 'lr' is defined twice")):
        Space({"lr": Float(0.1, 1.0)}, lr=Float(0.1, 1.0))


def test_course_space_tiers_and_adam_defaults() -> None:
    space = course_space()
    tiers = space.tiers()
    assert tiers[1] == ["learning_rate"]
    assert {"momentum", "hidden_units", "batch_size"} <= set(tiers[2])
    assert {"n_layers", "lr_decay"} <= set(tiers[3])
    assert set(tiers[4]) == {"adam_beta1", "adam_beta2", "adam_epsilon"}
    assert space["learning_rate"] == Float(1e-4, 1.0, scale="log", tier=1, default=1e-3)
    assert space["momentum"].scale == "reverse_log"  # type: ignore[attr-defined]
    assert space["hidden_units"].scale == "log"  # type: ignore[attr-defined]
    for name, value in ADAM_DEFAULTS.items():
        assert isinstance(space[name], Fixed) and space[name].value == value  # type: ignore[attr-defined]
    opened = course_space(max_tier=4)
    assert isinstance(opened["adam_beta2"], Float) and opened["adam_beta2"].scale == "reverse_log"
    adam = opened.from_unit([0.5, 0.75] + [0.5] * (len(opened) - 2))
    assert adam["optimizer"] == "adam" and 0.99 < adam["adam_beta2"] < 0.9999


def test_restrict_fixes_higher_tiers_at_defaults() -> None:
    tier1 = course_space(max_tier=4).restrict(1)
    free = [n for n, p in tier1.items() if not isinstance(p, Fixed)]
    assert free == ["learning_rate"]
    assert tier1["hidden_units"] == Fixed(128, tier=2, default=128)
    # Conditions survive fixing: momentum still only applies to the momentum optimizer.
    assert tier1.from_unit([0.5] * len(tier1)).get("momentum") is None
    with pytest.raises(
        InvalidParamsError, match=re.escape("Cannot fix 'n_layers' at 9; valid values are [1, 4] linear (int).")
    ):
        course_space().fix(n_layers=9)


def test_to_dict_round_trip() -> None:
    space = course_space(max_tier=4)
    assert Space.from_dict(space.to_dict()) == space
    with pytest.raises(
        InvalidSpaceError, match="Parameter 'x' has kind 'gaussian'; valid kinds: float, int, choice, fixed."
    ):
        Space.from_dict({"x": {"kind": "gaussian"}})


def test_point_of_wrong_length() -> None:
    with pytest.raises(InvalidParamsError, match="has 2 coordinates; got 1"):
        Space(a=Float(0, 1), b=Float(0, 1)).from_unit([0.5])


def test_fixed_holds_its_value_only_not_a_bool_or_a_numpy_scalar() -> None:
    space = Space(n=Fixed(1), flag=Fixed(True))
    space.validate({"n": 1, "flag": True})
    for params in ({"n": True, "flag": True}, {"n": 1, "flag": 1}, {"n": np.int64(1), "flag": True}):
        with pytest.raises(InvalidParamsError, match="valid values are = "):
            space.validate(params)


def test_validate_names_unknown_and_out_of_range() -> None:
    space = Space(lr=Float(1e-4, 1.0, scale="log"))
    with pytest.raises(
        InvalidParamsError, match=re.escape("Parameter 'lr' got 3.0; valid values are [0.0001, 1] log.")
    ):
        space.validate({"lr": 3.0})
    with pytest.raises(InvalidParamsError, match="Unknown parameter 'learning_rate'; the space has: lr."):
        space.validate({"learning_rate": 0.1})
