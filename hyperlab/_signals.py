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

__all__ = ["Terminated", "raise_terminated", "stop_on_sigterm", "children_start_deaf"]


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
def children_start_deaf() -> Iterator[None]:
    """Processes started inside begin with SIGINT ignored.

    A Ctrl-C in a terminal reaches every process of the job; a worker still starting
    (Python and multiprocessing importing, before any code of ours runs) dies of it
    with a traceback, one per worker. An ignored signal stays ignored across exec (a
    handled one does not), so such a worker starts deaf to it and turns it back on once
    it can handle it (and then asks whether it should stop at all).

    For that instant (the time to start a process) SIGINT is ignored here too; it is
    also blocked in this thread, so in a process of one thread a Ctrl-C waits and
    arrives on leaving. With other threads (a study's heartbeats) the kernel hands it
    to one of them, and it is lost: the user presses Ctrl-C again. In the main thread
    only (elsewhere signals cannot be set, and nothing changes).
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C held meanwhile arrives here
