"""The verdict of a stored re-test (hyperlab/analysis/retest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from hyperlab.analysis.retest import retest_summary


def _record(*values: list[float | None]) -> dict[str, Any]:
    return {"results": [{"trial": i, "stored": 0.0, "values": v} for i, v in enumerate(values)]}


@pytest.mark.parametrize(
    ("values", "maximize", "best", "clear"),
    [
        (([0.9, 0.8], [0.85, 0.86]), True, 1, False),  # 0.855 beats 0.85, well within the seeds' spread
        (([0.8, 0.81, 0.8], [0.9, 0.91, 0.9]), True, 1, True),  # a lead of 0.1 against a spread of 0.006
        (([0.8], [0.9]), True, 1, None),  # one run each: the spread is unknown
        (([0.9, 0.8], [0.85, 0.86]), False, 0, None),  # minimizing, 0.85 is the better mean: the best holds
        (([0.9, 0.8], [0.8, 0.9]), True, 0, None),  # a tie keeps the better-ranked trial
        (([0.02, 0.021, 0.019], [None, None, 0.01]), False, 0, None),  # fewer diverged runs first
        (([None, 0.5, 0.5], [0.6, 0.6, 0.61]), True, 1, True),  # ... and that is a clear lead
        (([None, None], [0.5, None]), True, 1, True),  # diverged draws are left out of the mean
        (([None], [None]), True, None, None),  # every draw diverged: no verdict
    ],
)
def test_the_retest_verdict_is_the_best_mean_of_the_fewest_diverged(
    values: Any, maximize: bool, best: int | None, clear: bool | None
) -> None:
    summary = retest_summary(_record(*values), maximize)
    assert summary["best"] == best and summary["was_best"] == 0 and summary["clear"] is clear
