"""Helpers shared by the tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hyperlab import HyperlabError, Study, Trial

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def python_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout of hyperlab."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def wait_for_trials(
    name: str, url: str, ready: Callable[[list[Trial]], bool], *, timeout: float = 120.0, interval: float = 0.3
) -> list[Trial]:
    """Poll a study that another process is writing until ``ready(trials)``; return its trials.

    The study (or its SQLite file) may not exist yet: the loop waits for it rather than
    creating it from here. Fails the test if ``ready`` never holds within ``timeout``
    seconds (it used to return quietly, and a test went on to signal a finished run).
    """
    deadline = time.monotonic() + timeout
    trials: list[Trial] = []
    while time.monotonic() < deadline:
        time.sleep(interval)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            continue
        try:
            trials = Study(name, storage=url).trials
        except HyperlabError:  # not created yet, or its schema is being written
            continue
        if ready(trials):
            return trials
    states = [t.state.name for t in trials]
    raise AssertionError(f"study {name!r} never became ready in {timeout} s; its trials' states: {states}")
