from __future__ import annotations

import re

import pytest

from hyperlab import Trial, TrialState
from hyperlab.errors import InvalidArgumentError, TrialFinishedError


def test_states() -> None:
    assert [s.value for s in TrialState] == ["running", "complete", "pruned", "diverged", "failed"]
    assert not TrialState.RUNNING.is_finished and TrialState.PRUNED.is_finished
    assert TrialState.parse("diverged") is TrialState.DIVERGED
    with pytest.raises(InvalidArgumentError, match="Got 'ok' instead"):
        TrialState.parse("ok")


def test_snapshot_cannot_report() -> None:
    t = Trial(3, {"lr": 0.1})
    with pytest.raises(TrialFinishedError, match=re.escape("Trial 3 is a detached snapshot")):
        t.report(0, loss=1.0)


def test_views() -> None:
    t = Trial(0, {}, curve={0: {"a": 1.0}, 1: {"a": 0.5, "b": 2.0}}, started=10.0, ended=12.5)
    assert t.duration == 2.5 and t.last_step == 1
    assert t.metric("b") == [(1, 2.0)]
    assert t.started_at is not None and t.started_at.year == 1970
