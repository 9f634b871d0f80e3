"""Signals around the worker processes hyperlab starts."""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess

from hyperlab._signals import children_start_deaf
from tests.helpers import PYTHON, python_env


def _report_sigint(queue: mp.Queue) -> None:  # type: ignore[type-arg]
    queue.put(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


def _sigint_ignored_in_child(deaf: bool) -> bool:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_report_sigint, args=(queue,))
    if deaf:
        with children_start_deaf():
            p.start()
    else:
        p.start()
    ignored = queue.get(timeout=60)
    p.join(timeout=60)
    return bool(ignored)


def test_a_child_started_deaf_ignores_sigint_until_it_says_otherwise() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert _sigint_ignored_in_child(deaf=True)
        assert not _sigint_ignored_in_child(deaf=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours is put back
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_while_children_start_is_held_not_lost_in_a_process_of_one_thread() -> None:
    # (with other threads, the kernel hands a process's signal to one that does not block
    # it, and it is ignored for that instant: see children_start_deaf)
    script = (
        "import os, signal\n"
        "from hyperlab._signals import children_start_deaf\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "try:\n"
        "    with children_start_deaf():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        print('held', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('arrived on leaving')\n"
    )
    done = subprocess.run([PYTHON, "-c", script], env=python_env(), capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["held", "arrived on leaving"], done.stderr
