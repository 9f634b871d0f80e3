"""The benchmark scripts refuse bad arguments with a usage error that names them."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("shape", ["8x32", "0x32x16", "8x32x16,a"])
def test_compiled_names_a_bad_shape(shape: str) -> None:
    done = subprocess.run(
        [PYTHON, str(BENCH / "compiled.py"), "--shapes", "8x32x16", shape],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"--shapes: {shape!r} is not members x batch x widths, such as 8x32x64,64" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--confirm", "-1"], "--confirm must be 0 (off) or a number of training seeds, got -1"),
        (["--confirm", "3", "--kinds", "hyperlab-proc2-asha"], "--confirm needs 'optuna-tpe' in --kinds"),
        (["--confirm", "1", "--optuna-from", "nothere.json"], "--optuna-from nothere.json: there is no such file"),
        (["--confirm", "1", "--optuna-from", "{old}"], "has no incumbents (a run from before --confirm)"),
    ],
)
def test_caviar_names_a_bad_confirm(args: list[str], says: str, tmp_path: Path) -> None:
    old = tmp_path / "old.json"  # an --optuna-from file written before --confirm existed
    old.write_text(json.dumps({"mnist1d/0": {"optuna-tpe": {"wall": 1.0, "epochs": 1, "points": [[1.0, 0.5]]}}}))
    args = [a.replace("{old}", str(old)) for a in args]
    done = subprocess.run(
        [PYTHON, str(BENCH / "caviar.py"), *args], env=python_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr


def test_caviar_incumbents_are_the_named_bests_in_time_order() -> None:
    """What --confirm retrains: each complete trial that beat all ended before it; a
    tie keeps the earlier one, a NaN (diverged) value is never named."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_caviar", BENCH / "caviar.py")
    assert spec is not None and spec.loader is not None
    caviar = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(caviar)
    ended = [(3.0, 0.6, {"i": 1}), (1.0, 0.5, {"i": 0}), (4.0, 0.6, {"i": 2}), (0.5, float("nan"), {"i": 3})]
    ended += [(6.0, 0.55, {"i": 4}), (7.0, 0.7, {"i": 5})]
    assert [p["i"] for _, _, p in caviar.incumbents(ended)] == [0, 1, 5]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--top", "0"], "argument --top: must be a positive integer, got 0"),
        (["--seeds", "-2"], "argument --seeds: must be a positive integer, got -2"),
        (["--trials", "many"], "argument --trials: invalid positive value: 'many'"),
    ],
)
def test_noise_names_a_bad_count(args: list[str], says: str) -> None:
    done = subprocess.run(
        [PYTHON, str(BENCH / "noise.py"), *args], env=python_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr
