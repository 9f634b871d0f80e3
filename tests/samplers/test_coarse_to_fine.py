from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hyperlab import Choice, CoarseToFineSampler, Float, Int, RandomSampler, Space, Study
from hyperlab.errors import InvalidArgumentError

# A narrow valley in the learning rate (on its log scale) plus a milder bowl in beta.
SPACE = Space(
    learning_rate=Float(1e-5, 1.0, scale="log"),
    beta=Float(0.8, 0.9999, scale="reverse_log"),
    units=Int(16, 512, scale="log"),
    act=Choice(["relu", "tanh"]),
)
LR_STAR, BETA_STAR = 3.7e-3, 0.99


def valley(params: dict) -> float:
    r = math.log10(params["learning_rate"]) - math.log10(LR_STAR)
    b = math.log10(1 - params["beta"]) - math.log10(1 - BETA_STAR)
    return 1.0 - math.exp(-((r / 0.05) ** 2)) + 0.05 * b * b


def regret(sampler, seed: int, n: int = 120) -> float:  # type: ignore[no-untyped-def]
    study = Study("v", SPACE, storage="memory", sampler=sampler, seed=seed)
    study.optimize(lambda t: valley(t.params), n_trials=n)
    return study.best_value  # the optimum is 0


def test_coarse_to_fine_beats_random_on_a_narrow_valley() -> None:
    seeds = range(8)
    c2f = [regret(CoarseToFineSampler(20, top_k=3, shrink=0.5), s) for s in seeds]
    rnd = [regret(RandomSampler(), s) for s in seeds]
    # Medians over 8 seeds; c2f should also win on most seeds individually.
    assert np.median(c2f) < 0.25 * np.median(rnd), (c2f, rnd)
    assert sum(a < b for a, b in zip(c2f, rnd, strict=True)) >= 6


def test_rounds_zoom_and_are_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    sampler = CoarseToFineSampler(10, top_k=3, shrink=0.5)
    study = Study("zoom", SPACE, storage=url, sampler=sampler, seed=2)
    study.optimize(lambda t: valley(t.params), n_trials=40)
    rounds = CoarseToFineSampler.rounds(study)
    assert [r["round"] for r in rounds] == [0, 1, 2, 3]
    assert rounds[0]["box"]["learning_rate"] == (1e-5, 1.0)
    assert "act" not in rounds[0]["box"]  # choices keep every option
    widths = [math.log10(hi / lo) for lo, hi in (r["box"]["learning_rate"] for r in rounds)]
    assert widths == pytest.approx([5.0, 2.5, 1.25, 0.625])
    for r, box in enumerate(rounds[1:], start=1):
        lo, hi = box["box"]["learning_rate"]
        assert len(box["top"]) == 3 and all(t < 10 * r for t in box["top"])
        best = study.trial(box["top"][0]).params["learning_rate"]
        assert lo <= best <= hi
        for t in study.trials[10 * r : 10 * (r + 1)]:  # every trial of round r lies in its box
            assert lo <= t.params["learning_rate"] <= hi
    # A resumed study keeps the stored boxes and continues in round 4.
    resumed = Study("zoom", storage=url, sampler=CoarseToFineSampler(10, top_k=3, shrink=0.5))
    resumed.optimize(lambda t: valley(t.params), n_trials=10)
    assert [r["round"] for r in CoarseToFineSampler.rounds(resumed)] == [0, 1, 2, 3, 4]
    assert CoarseToFineSampler.rounds(resumed)[:4] == rounds


def test_n_rounds_caps_the_zoom() -> None:
    study = Study("cap", SPACE, storage="memory", sampler=CoarseToFineSampler(5, n_rounds=2), seed=0)
    study.optimize(lambda t: valley(t.params), n_trials=30)
    assert len(CoarseToFineSampler.rounds(study)) == 3


def test_maximize_zooms_on_the_largest_values() -> None:
    study = Study(
        "max", SPACE, storage="memory", direction="maximize", sampler=CoarseToFineSampler(20, top_k=1), seed=4
    )
    study.optimize(lambda t: -valley(t.params), n_trials=21)
    top = CoarseToFineSampler.rounds(study)[1]["top"][0]
    assert top == max(study.trials[:20], key=lambda t: t.value).id


def test_a_round_whose_trials_all_failed_is_searched_again_then_the_zoom_goes_on() -> None:
    study = Study("fail", SPACE, storage="memory", sampler=CoarseToFineSampler(5, top_k=2), seed=1)

    def objective(trial):  # type: ignore[no-untyped-def]
        if trial.id < 5:
            raise RuntimeError("round 0 fails")
        return valley(trial.params)

    study.optimize(objective, n_trials=20)
    rounds = CoarseToFineSampler.rounds(study)
    assert [r["round"] for r in rounds] == [0, 1, 2, 3]
    assert rounds[1]["box"] == rounds[0]["box"] and rounds[1]["top"] == []  # nothing to zoom on yet
    assert all(5 <= t < 10 for t in rounds[2]["top"])  # then round 1's trials are zoomed on
    widths = [math.log10(hi / lo) for lo, hi in (r["box"]["learning_rate"] for r in rounds)]
    assert widths == pytest.approx([5.0, 5.0, 2.5, 1.25])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_per_round": 0}, "The 'n_per_round' parameter of CoarseToFineSampler must be a positive integer. Got 0"),
        ({"top_k": 0}, "'top_k' parameter of CoarseToFineSampler must be a positive integer"),
        ({"shrink": 1.0}, "'shrink' parameter of CoarseToFineSampler must be a number in \\(0, 1\\). Got 1.0"),
        ({"n_rounds": 0}, "'n_rounds' parameter of CoarseToFineSampler must be a positive integer or None. Got 0"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        CoarseToFineSampler(**kwargs)
