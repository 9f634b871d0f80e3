"""The benchmark scripts refuse bad arguments with a usage error that names them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, python_env

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("gamma=3", "'gamma' parameter of TPESampler must be a number in (0, 1)"),
        ("frobnicate=1", "unexpected keyword argument 'frobnicate'"),
        ("multivariate", "expected NAME=VALUE"),
        ("gamma=0.1)", "gamma=0.1)"),
    ],
)
def test_caviar_names_a_bad_tpe_option(option: str, says: str) -> None:
    done = subprocess.run(
        [PYTHON, str(BENCH / "caviar.py"), "--tpe-options", "n_startup=5", option],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"--tpe-options {option!r}" in done.stderr and says in done.stderr, done.stderr


def test_fused_study_names_a_bad_kind() -> None:
    done = subprocess.run(
        [PYTHON, str(BENCH / "fused.py"), "--study", "--study-kinds", "fused-hyperband"],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "--study-kinds" in done.stderr and "'fused-hyperband'" in done.stderr and "fused-asha-tpe" in done.stderr
