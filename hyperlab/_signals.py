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
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "raise_terminated", "stop_on_sigterm"]


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
