"""SIGTERM, the stop that job schedulers (Slurm, Kubernetes) and ``kill`` send, handled
as Ctrl-C is: the running trials are marked interrupted and the next run re-runs them.

Without it SIGTERM ends the process at once: nothing is lost (the trials it ran are
found by their stale heartbeats), but a resumed study first waits out the grace period
before it re-runs them. Only the command line installs the handler in the process it
runs in (a library call leaves the signals of the program that makes it alone); the
process runner's workers, processes of hyperlab's own, install it too.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "raise_terminated", "stop_on_sigterm", "start_holding_sigint", "release_sigint"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: a KeyboardInterrupt, so everything that stops cleanly on Ctrl-C
    stops the same way; the trials it interrupts say ``interrupted (Terminated)``."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While in force, SIGTERM raises :class:`Terminated` in the main thread."""
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; the default then
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def start_holding_sigint() -> Iterator[None]:
    """Processes started inside begin with SIGINT blocked (a signal mask survives fork
    and exec), until they call :func:`release_sigint`.

    A Ctrl-C in a terminal reaches every process of the job. A worker still starting
    (Python and multiprocessing importing, before any code of ours runs) died of it:
    silently before Python's own handler was up, so the tuner took it for a lost
    worker, or with a KeyboardInterrupt traceback, one per worker. Held, the signal
    waits and arrives once the worker can handle it.

    Here, for the same instant, SIGINT is blocked in this thread and a Ctrl-C that
    another thread takes is recorded; either is raised on leaving, so the start is
    neither cut halfway nor the signal lost. In the main thread only (elsewhere
    signals cannot be set, and nothing changes), and where POSIX signal masks exist.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # The first spawned process launches multiprocessing's resource tracker, and that
    # launch unblocks SIGINT in this thread when it is done: the worker started next
    # would begin unheld. So the tracker is up before SIGINT is blocked.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one held in this thread arrives here
        if caught:
            signal.raise_signal(signal.SIGINT)  # and one another thread took, here


def release_sigint() -> None:
    """In a process started by :func:`start_holding_sigint`, once SIGINT is handled as
    this process means to: a Ctrl-C held since it started arrives now."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
