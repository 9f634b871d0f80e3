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
    done = subprocess.run([PYTHON, "-c", ATTRS], env=python_env(), capture_output=True, text=True, check=True)
    assert worker_exited(json.loads(done.stdout))


def test_a_reused_pid_is_another_process() -> None:
    attrs = worker_attrs()
    boot, namespace, pid, _start = attrs["worker_id"].split("/")
    assert worker_exited({"worker_id": f"{boot}/{namespace}/{pid}/0"})  # this pid, started at another time


@pytest.mark.parametrize(
    "recorded",
    [
        None,  # recorded by a platform without /proc
        "another-boot/{namespace}/{pid}/1",  # another machine, or this one before a reboot
        "{boot}/1/{pid}/1",  # another pid namespace (a container)
        "{boot}/{namespace}/not-a-pid/1",
        "garbage",
    ],
)
def test_a_process_out_of_sight_is_not_judged(recorded: str | None) -> None:
    done = subprocess.run([PYTHON, "-c", ATTRS], env=python_env(), capture_output=True, text=True, check=True)
    boot, namespace, pid, _ = json.loads(done.stdout)["worker_id"].split("/")  # an exited process
    attrs: dict[str, Any] = {"worker": "elsewhere:1"}
    if recorded is not None:
        attrs["worker_id"] = recorded.format(boot=boot, namespace=namespace, pid=pid)
    assert not worker_exited(attrs)


def test_a_zombie_child_is_left_to_its_parent_which_reaps_it() -> None:
    """This process's exited child, not yet reaped, is not judged: this process reaps it
    and reports how it ended (the process runner fails its trial with the exit code)."""
    child = subprocess.Popen([PYTHON, "-c", ATTRS], env=python_env(), stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    attrs = json.loads(child.stdout.readline())
    _wait_for_zombie(child.pid)
    assert not worker_exited(attrs)
    child.wait()
    assert worker_exited(attrs)


def test_a_zombie_of_another_parent_has_exited() -> None:
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
        _wait_for_zombie(int(attrs["worker"].rsplit(":", 1)[1]))
        assert worker_exited(attrs)
    finally:
        parent.kill()
        parent.wait()


def test_recover_fails_the_trials_of_exited_workers_at_once(tmp_path: Path) -> None:
    later = [0.0]
    study = Study(
        "s",
        Space(x=Float(0.0, 1.0)),
        storage=f"sqlite:///{tmp_path / 's.db'}",
        seed=0,
        clock=lambda: time.time() + later[0],
    )
    done = subprocess.run([PYTHON, "-c", ATTRS], env=python_env(), capture_output=True, text=True, check=True)
    exited = json.loads(done.stdout)
    orphan = study._ask(system_attrs=exited)
    mine = study._ask(system_attrs=worker_attrs())
    elsewhere = study._ask(system_attrs={"worker": "other-host:7", "worker_id": "another-boot/1/7/1"})
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
    assert orphan.state is TrialState.RUNNING and set(orphan.system_attrs) == {"worker", "worker_id"}

    seen: list[float] = []
    study.optimize(lambda t: seen.append(t.params["x"]) or 1.0, n_trials=1, retries=1, grace=600)
    first, retry = study.trials
    assert first.state is TrialState.FAILED and first.reason.endswith("has exited")
    assert retry.retry_of == first.id and seen == [first.params["x"]]
    assert retry.system_attrs == worker_attrs()  # claimed by this process
