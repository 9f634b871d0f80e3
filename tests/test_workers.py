"""A trial's worker: recorded when it is claimed, and found exited when its process is gone."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hyperlab import Float, Space, Study, TrialState
from hyperlab._workers import worker_attrs, worker_exited
from tests.helpers import PYTHON, python_env

pytestmark = pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="needs Linux's /proc")

ATTRS = "import json; from hyperlab._workers import worker_attrs; print(json.dumps(worker_attrs()), flush=True)"


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def _wait_for_zombie(pid: int) -> None:
    deadline = time.monotonic() + 30
    while _state(pid) != "Z":
        assert time.monotonic() < deadline, f"process {pid} did not exit"
        time.sleep(0.01)


def test_this_process_is_named_and_alive() -> None:
    attrs = worker_attrs()
    assert attrs["worker"] == f"{os.uname().nodename}:{os.getpid()}"
    assert not worker_exited(attrs)


def test_an_exited_process_is_found_exited() -> None:
    assert worker_exited(_exited_attrs())


def _exited_attrs(code: str = "") -> dict[str, Any]:
    """The worker attributes of a process that ran ``code`` and has exited."""
    done = subprocess.run([PYTHON, "-c", code + ATTRS], env=python_env(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_reused_pid_is_another_process() -> None:
    attrs = worker_attrs()
    assert worker_exited({"worker_process": {**attrs["worker_process"], "start": "0"}})  # this pid, another start


@pytest.mark.parametrize(
    "change",
    [
        {"host": "another-host"},  # a cloned machine can share the boot id and namespace numbers
        {"boot": "another-boot"},  # another machine, or this one before a reboot
        {"namespaces": [1, 2]},  # another pid or time namespace (a container)
        {"pid": "12"},
        {"pid": True},
        {"pid": -1},
    ],
)
def test_a_process_out_of_sight_is_not_judged(change: dict[str, Any]) -> None:
    attrs = _exited_attrs()
    assert worker_exited(attrs)
    assert not worker_exited({"worker_process": {**attrs["worker_process"], **change}})
    assert not worker_exited({"worker": attrs["worker"]})  # recorded where there is no /proc
    assert not worker_exited({"worker_process": "garbage"})


def test_a_process_hidden_by_hidepid_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """With /proc mounted hidepid=1 or 2, another user's process cannot be read, or is
    not listed at all; signal 0 still finds it (EPERM: it exists, not ours)."""
    import hyperlab._workers as workers

    attrs = _exited_attrs()
    alive = {"worker_process": {**attrs["worker_process"], "pid": 1, "start": "-1"}}  # pid 1 always exists
    assert worker_exited(alive)  # pid 1 is another process than the one recorded
    monkeypatch.setattr(workers, "_start", lambda pid: None)  # its /proc entry hidden
    assert not worker_exited(alive)

    def not_ours(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(workers.os, "kill", not_ours)
    assert not worker_exited(attrs)


def test_a_command_name_with_parentheses_and_spaces() -> None:
    odd = "import pathlib; pathlib.Path('/proc/self/comm').write_text('py) (x Z 1');"
    child = subprocess.Popen([PYTHON, "-c", odd + ATTRS + "; input()"], env=python_env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    attrs = json.loads(child.stdout.readline())
    assert Path(f"/proc/{child.pid}/comm").read_text().strip() == "py) (x Z 1"
    assert attrs["worker_process"]["start"].isdigit() and not worker_exited(attrs)
    child.communicate("\n")
    assert worker_exited(attrs)


def test_a_zombie_is_left_to_its_parent() -> None:
    """An exited process not yet reaped is not judged: its parent is alive and reports
    how it ended (the process runner fails its trial with the exit code)."""
    child = subprocess.Popen([PYTHON, "-c", ATTRS], env=python_env(), stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    attrs = json.loads(child.stdout.readline())
    _wait_for_zombie(child.pid)
    assert not worker_exited(attrs)
    child.wait()
    assert worker_exited(attrs)
    # the same for another parent's zombie
    parent_code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {ATTRS!r}], stdout=subprocess.PIPE, text=True)\n"
        "print(child.stdout.readline(), end='', flush=True)\n"
        "time.sleep(60)  # never reaps it\n"
    )
    parent = subprocess.Popen([PYTHON, "-c", parent_code], env=python_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        attrs = json.loads(parent.stdout.readline())
        _wait_for_zombie(attrs["worker_process"]["pid"])
        assert not worker_exited(attrs)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while not worker_exited(attrs):  # reaped once its parent is gone
        assert time.monotonic() < deadline, "the orphaned zombie was not reaped"
        time.sleep(0.05)


def test_recover_fails_the_trials_of_exited_workers_at_once(tmp_path: Path) -> None:
    later = [0.0]
    study = Study(
        "s",
        Space(x=Float(0.0, 1.0)),
        storage=f"sqlite:///{tmp_path / 's.db'}",
        seed=0,
        clock=lambda: time.time() + later[0],
    )
    exited = _exited_attrs()
    orphan = study._ask(system_attrs=exited)
    mine = study._ask(system_attrs=worker_attrs())
    other = {**exited["worker_process"], "host": "other-host"}
    elsewhere = study._ask(system_attrs={"worker": "other-host:7", "worker_process": other})
    unnamed = study.ask()  # asked by hand (ask/tell): no worker is named, its heartbeat decides

    assert study.recover(600.0) == []  # the heartbeat rule alone: all are fresh
    assert study.recover(600.0, exited=True) == [orphan.id]
    lost = study.trial(orphan.id)
    assert lost.state is TrialState.FAILED
    assert lost.reason == f"worker lost: its process ({exited['worker']}) has exited"
    assert study.retry_candidates(1) == [lost]  # re-run like any lost trial
    running = [t.id for t in study.get_trials((TrialState.RUNNING,))]
    assert running == [mine.id, elsewhere.id, unnamed.id]

    later[0] = 601  # the grace passes: the heartbeat rule fails the silent ones
    assert study.recover(600.0, exited=True) == [mine.id, elsewhere.id, unnamed.id]


def test_optimize_names_its_worker_and_a_resumed_run_retries_the_orphan_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    killed = (
        "import os, sys\n"
        "from hyperlab import Float, Space, Study\n"
        f"study = Study('o', Space(x=Float(0.0, 1.0)), storage={url!r}, seed=0)\n"
        "study.optimize(lambda t: os._exit(9), n_trials=1, grace=600)  # dies mid-trial, as on SIGKILL\n"
    )
    died = subprocess.run([PYTHON, "-c", killed], env=python_env(), capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr
    study = Study("o", storage=url)
    (orphan,) = study.trials
    assert orphan.state is TrialState.RUNNING and set(orphan.system_attrs) == {"worker", "worker_process"}

    seen: list[float] = []
    study.optimize(lambda t: seen.append(t.params["x"]) or 1.0, n_trials=1, retries=1, grace=600)
    first, retry = study.trials
    assert first.state is TrialState.FAILED and first.reason.endswith("has exited")
    assert retry.retry_of == first.id and seen == [first.params["x"]]
    assert retry.system_attrs == worker_attrs()  # claimed by this process
