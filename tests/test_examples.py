"""Every shipped example runs, with tiny budgets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hyperlab.cli import main
from tests.helpers import PYTHON, ROOT, python_env


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("custom_torch_loop.py", ["--trials", "3", "--epochs", "2"]),
        ("sklearn_mlp.py", ["--trials", "2", "--max-iter", "5"]),
    ],
)
def test_python_examples(script: str, args: list[str]) -> None:
    out = subprocess.run(
        [PYTHON, str(ROOT / "examples" / script), *args], env=python_env(), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("best dev error ")


def test_yaml_example(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tune", str(ROOT / "examples" / "digits.yaml"), "--trials", "2", "--epochs", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "digits-example" in out and (in_tmp / "digits-example-curves.png").exists()
