"""The Ray runner on a local Ray instance with 2 CPUs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hyperlab import Float, Space, Study, TrialState
from hyperlab.runners import MissingRayError, RayRunner, RunPolicy
from tests.runners.objectives import slow_factory


def test_missing_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    study = Study("r", Space(x=Float(0.0, 1.0)), storage=f"sqlite:///{tmp_path / 'r.db'}", metric="loss")
    with pytest.raises(MissingRayError, match=r"pip install 'hyperlab\[ray\]'"):
        RayRunner().run(study, slow_factory(), RunPolicy(max_trials=1))


def test_bad_ray_runner_arguments_are_refused_without_ray() -> None:
    from hyperlab.errors import InvalidArgumentError

    with pytest.raises(
        InvalidArgumentError, match="'address' parameter of RayRunner must be 'auto', a ray:// URL or None"
    ):
        RayRunner(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="'parallel' parameter of RayRunner must be a positive integer"):
        RayRunner(parallel=0)


def test_ray_runner_on_a_local_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must install Ray (the test extra) so that the Ray runner is tested")
        pytest.skip("Ray is not installed: pip install 'hyperlab[ray]' to run this")
    # Ray workers import the test objectives by name: make this checkout importable there.
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    study = Study("r", Space(x=Float(0.0, 1.0)), storage=f"sqlite:///{tmp_path / 'r.db'}", metric="loss", seed=0)
    RayRunner(num_cpus=2).run(study, slow_factory(3, 0.01), RunPolicy(max_trials=8))
    trials = study.trials
    assert [t.id for t in trials] == list(range(8))
    assert all(t.state is TrialState.COMPLETE and len(t.curve) == 3 for t in trials)
