"""Independent processes on one stored study: exactly the trials asked for, none lost or doubled."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from hyperlab import Float, Space, Study, TrialState
from tests.helpers import PYTHON, python_env

WORKER = textwrap.dedent(
    """
    import sys
    from hyperlab import Float, Space, Study
    study = Study("shared", Space(x=Float(0.0, 1.0)), storage=sys.argv[1], metric="loss", seed=0)
    def objective(trial):
        trial.report(0, loss=trial.params["x"])
        return trial.params["x"]
    study.optimize(objective, n_trials=int(sys.argv[2]))
    """
)


def run_four(url: str, per_process: int = 250) -> list:  # type: ignore[type-arg]
    Study("shared", Space(x=Float(0.0, 1.0)), storage=url, metric="loss", seed=0)  # created once, up front
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", WORKER, url, str(per_process)], env=python_env(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    return Study("shared", storage=url).trials


def check(trials: list, n: int) -> None:  # type: ignore[type-arg]
    assert len(trials) == n
    assert sorted(t.id for t in trials) == list(range(n))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.value == t.params["x"] and t.curve == {0: {"loss": t.params["x"]}} for t in trials)
    # Trial n always gets the point of seed (0, n), whichever process asked: no two alike.
    assert len({t.params["x"] for t in trials}) == n


def test_four_processes_on_one_sqlite_study(tmp_path: Path) -> None:
    check(run_four(f"sqlite:///{tmp_path / 'shared.db'}"), 1000)


@pytest.mark.skipif(not os.environ.get("HYPERLAB_TEST_POSTGRES"), reason="set HYPERLAB_TEST_POSTGRES to run")
def test_four_processes_on_one_postgres_study() -> None:
    url = os.environ["HYPERLAB_TEST_POSTGRES"]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    check(run_four(url), 1000)
