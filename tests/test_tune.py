"""TuneJob: a study file run with the built-in trainer, and its re-test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperlab.analysis.curves import ranked_trials
from hyperlab.config import parse_config
from hyperlab.errors import NoCompletedTrialError, UnknownStudyError
from hyperlab.tune import TuneJob, retest_summary

SPACE = {
    "learning_rate": {"type": "float", "low": 0.003, "high": 0.3, "scale": "log"},
    "n_layers": {"type": "int", "low": 1, "high": 2},
}


def job(folder: Path, *, engine: str = "fused", **train: Any) -> TuneJob:
    raw = {
        "name": "r",
        "storage": f"sqlite:///{folder / 'r.db'}",
        "data": {"source": "sklearn:digits"},
        "trials": 4,
        "runner": {"type": "inline", "engine": engine},
        "train": {"epochs": 2, **train},
        "search": SPACE,
    }
    return TuneJob(parse_config(raw))


@pytest.mark.parametrize("engine", ["fused", "ordinary"])
def test_a_retest_with_nothing_changed_gives_each_trial_its_value_back_at_its_seed(tmp_path: Path, engine: str) -> None:
    tuned = job(tmp_path, engine=engine)
    tuned.run()
    record = job(tmp_path, engine=engine).retest(top=3, seeds=2)
    ranked = ranked_trials(tuned.study.trials, maximize=False)  # ties in dev error: the lower dev cost first
    assert ranked[0].id == tuned.best_trial().id
    assert record["changed"] == [] and record["seeds"] == [0, 1] and record["metric"] == "dev_error"
    assert [r["trial"] for r in record["results"]] == [t.id for t in ranked[:3]]
    for r, t in zip(record["results"], ranked, strict=False):
        assert r["stored"] == t.value and r["values"][0] == t.value  # the trials' seed: the same run
    # the second seed is a fresh draw: it moves at least one configuration's value
    assert any(r["values"][1] != r["values"][0] for r in record["results"])
    stored = [v for k, v in job(tmp_path).stored_study().attrs.items() if k.startswith("retest ")]
    assert stored == [record]


def test_a_retest_names_what_changed_and_trains_with_the_file_as_it_is_now(tmp_path: Path) -> None:
    job(tmp_path).run()
    record = job(tmp_path, epochs=3, seed=5).retest(top=1, seeds=1)
    assert record["changed"] == ["train.epochs was 2, now 3", "train.seed was unset (the default), now 5"]
    assert record["seeds"] == [5]
    assert record["settings"]["train"] == {"epochs": 3, "seed": 5}


def test_an_interrupted_retest_keeps_the_configurations_it_finished(tmp_path: Path) -> None:
    tuned = job(tmp_path)
    tuned.run()
    seen = []

    def stop_after_one(result: dict[str, Any]) -> None:
        seen.append(result)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job(tmp_path).retest(top=3, seeds=2, on_result=stop_after_one)
    [record] = [v for k, v in TuneJob(tuned.config).stored_study().attrs.items() if k.startswith("retest ")]
    assert record["results"] == seen and len(seen) == 1


def test_a_retest_needs_the_study_and_a_complete_trial(tmp_path: Path) -> None:
    with pytest.raises(UnknownStudyError, match="There is no study named 'r'.*run hyperlab tune on the file first"):
        job(tmp_path).retest(top=1, seeds=1)
    job(tmp_path).study  # created, no trial run  # noqa: B018
    with pytest.raises(NoCompletedTrialError, match="Study 'r' has no complete trial to re-test yet"):
        job(tmp_path).retest(top=1, seeds=1)


def _record(*values: list[float | None]) -> dict[str, Any]:
    return {"results": [{"trial": i, "stored": 0.0, "values": v} for i, v in enumerate(values)]}


@pytest.mark.parametrize(
    ("values", "maximize", "best"),
    [
        (([0.9, 0.8], [0.85, 0.86]), True, 1),  # the stored best's mean (0.85) falls behind 0.855
        (([0.9, 0.8], [0.85, 0.86]), False, 0),  # minimizing, 0.85 is the better mean
        (([0.9, 0.8], [0.8, 0.9]), True, 0),  # a tie keeps the better-ranked trial
        (([None, None], [0.5, None]), True, 1),  # diverged draws are left out of the mean
        (([None], [None]), True, None),  # every draw diverged: no verdict
    ],
)
def test_the_retest_verdict_is_the_best_mean(values: Any, maximize: bool, best: int | None) -> None:
    summary = retest_summary(_record(*values), maximize)
    assert summary["best"] == best and summary["was_best"] == 0
