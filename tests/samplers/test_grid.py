from __future__ import annotations

import re

import pytest
from sklearn.model_selection import ParameterGrid

from hyperlab import Choice, Fixed, Float, GridSampler, Int, Space, Study
from hyperlab.errors import GridTooLargeError, InvalidArgumentError

SPACE = Space(
    lr=Float(1e-4, 1.0, scale="log"),
    beta=Float(0.9, 0.999, scale="reverse_log"),
    layers=Int(1, 3),
    act=Choice(["relu", "tanh"]),
    eps=Fixed(1e-8),
)


def _key(params: dict) -> tuple:
    return tuple(sorted((k, round(v, 12) if isinstance(v, float) else v) for k, v in params.items()))


def test_grid_matches_sklearn_parameter_grid() -> None:
    sampler = GridSampler({"lr": 5, "beta": 3})
    reference = ParameterGrid(
        {
            "lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            "beta": [0.9, 0.99, 0.999],
            "layers": [1, 2, 3],
            "act": ["relu", "tanh"],
            "eps": [1e-8],
        }
    )
    ours = sampler.grid(SPACE)
    assert sampler.size(SPACE) == len(reference) == 90
    assert sorted(map(_key, ours)) == sorted(map(_key, reference))
    study = Study("g", SPACE, storage="memory", sampler=sampler, seed=3)
    study.optimize(lambda t: 0.0, n_trials=1000)  # stops when the grid is exhausted
    assert sorted(_key(t.params) for t in study.trials) == sorted(map(_key, reference))


def test_conditional_grid_has_no_duplicates() -> None:
    space = Space(
        optimizer=Choice(["gd", "momentum", "adam"]),
        beta=Float(0.9, 0.999, scale="reverse_log", when={"optimizer": ["momentum", "adam"]}),
        beta2=Float(0.99, 0.9999, scale="reverse_log", when={"optimizer": "adam"}),
        lr=Float(1e-3, 1e-1, scale="log"),
    )
    sampler = GridSampler(3)
    grid = sampler.grid(space)
    # gd: 3 lr; momentum: 3 beta x 3 lr; adam: 3 x 3 x 3.
    assert len(grid) == sampler.size(space) == 3 + 9 + 27
    assert len({_key(p) for p in grid}) == len(grid)
    for p in grid:
        space.validate(p)


def test_shuffled_order_is_seeded_and_shared_by_workers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'g.db'}"
    a = Study("w", SPACE, storage=url, sampler=GridSampler(3), seed=1)
    b = Study("w", storage=url, sampler=GridSampler(3))
    for _ in range(10):  # two workers alternate on one study
        a.tell(a.ask(), 0.0)
        b.tell(b.ask(), 0.0)
    keys = [_key(t.params) for t in a.trials]
    assert len(set(keys)) == 20
    again = Study("w2", SPACE, storage="memory", sampler=GridSampler(3), seed=1)
    again.optimize(lambda t: 0.0, n_trials=20)
    assert [_key(t.params) for t in again.trials] == keys
    ordered = Study("w3", SPACE, storage="memory", sampler=GridSampler(3, shuffle=False), seed=1)
    ordered.optimize(lambda t: 0.0, n_trials=3)
    assert [t.params["act"] for t in ordered.trials] == ["relu", "tanh", "relu"]


def test_too_large_grid_is_refused_with_its_size() -> None:
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(8)})
    with pytest.raises(
        GridTooLargeError,
        match=re.escape(
            "The grid has 390,625 points, more than max_size=10,000. Use fewer n_points, fix some parameters, "
            "or raise the limit: GridSampler(max_size=390625)."
        ),
    ):
        GridSampler(5).grid(space)
    big = Space({f"x{i}": Float(0.0, 1.0) for i in range(40)})
    assert GridSampler(10).size(big) == 10**40  # counted, not built
    study = Study("big", big, storage="memory", sampler=GridSampler(10))
    with pytest.raises(GridTooLargeError):
        study.ask()
    assert study.trials == []
    six = Space({f"x{i}": Float(0.0, 1.0) for i in range(6)})
    with pytest.raises(GridTooLargeError, match="15,625 points"):
        GridSampler(5).grid(six)
    assert len(GridSampler(5, max_size=20_000).grid(six)) == 15_625


def test_bad_grid_arguments() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match="'n_points' parameter of GridSampler must be a positive integer \\(for 'n_points'\\). Got 0",
    ):
        GridSampler(0)
    with pytest.raises(InvalidArgumentError, match="for 'lr'\\). Got -2"):
        GridSampler({"lr": -2})
    with pytest.raises(InvalidArgumentError, match="'max_size' parameter of GridSampler must be a positive integer"):
        GridSampler(3, max_size=0)
    with pytest.raises(
        InvalidArgumentError, match="'shuffle' parameter of GridSampler must be True or False. Got 'no'"
    ):
        GridSampler(3, shuffle="no")  # type: ignore[arg-type]  # a truthy string shuffled
    with pytest.raises(InvalidArgumentError, match="GridSampler got n_points for 'lr_typo', which is not a parameter"):
        GridSampler({"lr_typo": 3}).grid(SPACE)
