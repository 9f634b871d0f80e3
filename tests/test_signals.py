"""Signals around the worker processes hyperlab starts."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import threading
from pathlib import Path

from hyperlab._signals import release_sigint, start_holding_sigint
from tests.helpers import PYTHON, python_env


def _ctrl_c_as_it_starts(queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """A worker that gets SIGINT before it is ready for it: is it held, and does it
    arrive once released?"""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    held = False
    try:
        os.kill(os.getpid(), signal.SIGINT)
        held = signal.SIGINT in signal.sigpending()
        release_sigint()
    except KeyboardInterrupt:
        queue.put("held, then arrived" if held else "arrived at once")
        return
    queue.put("never arrived")


def _start(holding: bool) -> str:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_ctrl_c_as_it_starts, args=(queue,))
    if holding:
        with start_holding_sigint():
            p.start()
    else:
        p.start()
    said = queue.get(timeout=60)
    p.join(timeout=60)
    return str(said)


def test_a_process_started_holding_sigint_gets_it_once_it_releases_it() -> None:
    assert _start(holding=True) == "held, then arrived"
    assert _start(holding=False) == "arrived at once"


def test_a_ctrl_c_that_another_thread_takes_while_workers_start_is_raised_on_leaving() -> None:
    # The tuner has other threads (heartbeats): the kernel hands a process's signal to
    # one that does not block it. It must neither cut the start halfway nor be lost.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached = False
    try:
        try:
            with start_holding_sigint():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):  # give the Python-level handler every chance to run here
                    sum(range(10))
                reached = True
        except KeyboardInterrupt:
            interrupted = True
        else:
            interrupted = False
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
    assert reached and interrupted
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_ctrl_c_while_workers_start_is_held_in_a_process_of_one_thread() -> None:
    script = (
        "import os, signal\n"
        "from hyperlab._signals import start_holding_sigint\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "try:\n"
        "    with start_holding_sigint():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        print('held', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('arrived on leaving')\n"
    )
    done = subprocess.run([PYTHON, "-c", script], env=python_env(), capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["held", "arrived on leaving"], done.stderr


def test_the_first_worker_a_process_starts_is_held_too(tmp_path: Path) -> None:
    # The first spawn of a process launches multiprocessing's resource tracker, which
    # unblocks SIGINT in the launching thread when it is done: the worker then started
    # with it unblocked, and a Ctrl-C while it imported killed it with a traceback.
    script = (
        "import multiprocessing as mp, signal\n"
        "from hyperlab._signals import start_holding_sigint\n"
        "def blocked(conn):\n"
        "    conn.send(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('spawn')\n"
        "    mine, theirs = ctx.Pipe()\n"
        "    p = ctx.Process(target=blocked, args=(theirs,))\n"
        "    with start_holding_sigint():\n"
        "        p.start()\n"
        "        print('still held here' if signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []) else 'unheld')\n"
        "    print('held in the worker' if mine.recv() else 'not held in the worker')\n"
        "    p.join()\n"
    )
    (tmp_path / "first.py").write_text(script)
    done = subprocess.run(
        [PYTHON, str(tmp_path / "first.py")], env=python_env(), capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split("\n")[:2] == ["still held here", "held in the worker"], done.stdout + done.stderr
