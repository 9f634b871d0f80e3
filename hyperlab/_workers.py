"""Which process runs a trial, and whether that process has exited.

The loops that run trials themselves (``Study.optimize``, the workers of the process
and Ray runners, the fused runner) record on each trial they claim the process that
runs it, as system attributes: ``worker`` (``host:pid``, for people) and ``worker_id``
(the machine's boot, the pid namespace, the pid and the process's start time).

A tuner killed outright (SIGKILL, the out-of-memory killer) leaves its trials running
in the store. Their heartbeats stop, and the next run fails them as lost after the
grace period. When the next run starts on the same machine it can tell at once: the
process a trial names is gone, or its pid now belongs to a process that started at
another time. Only a process this one can see is judged so: the same boot of the same
machine and the same pid namespace (a container sees its own). A worker elsewhere, or
a platform without ``/proc``, is left to its heartbeat.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["worker_attrs", "worker_exited"]


@functools.cache
def _here() -> str | None:
    """This machine's boot and this process's pid namespace, or None without /proc."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}/{namespace}"


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot), or None if it has exited.

    A zombie (exited, not yet reaped) of another parent counts as exited. A zombie
    child of this process does not: this process reaps it and reports how it ended
    (the process runner fails its trial with the exit code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, parent, start = fields[0], fields[1], fields[19]  # fields 3, 4 and 22 of proc(5)
    if state in ("Z", "X") and parent != str(os.getpid()):
        return None
    return start


def worker_attrs() -> dict[str, str]:
    """The system attributes naming this process as a trial's worker."""
    pid = os.getpid()
    attrs = {"worker": f"{os.uname().nodename}:{pid}"}
    here, start = _here(), _started(pid)
    if here is not None and start is not None:
        attrs["worker_id"] = f"{here}/{pid}/{start}"
    return attrs


def worker_exited(attrs: Mapping[str, Any]) -> bool:
    """Whether the worker a trial's system attributes name has certainly exited: it ran
    where this process can see, and its process is gone. False when unsure."""
    recorded = attrs.get("worker_id")
    here = _here()
    if not isinstance(recorded, str) or here is None:
        return False
    where, _, rest = recorded.rpartition("/")  # boot/namespace/pid, start
    machine, _, pid = where.rpartition("/")
    if machine != here or not pid.isdigit():
        return False
    return _started(int(pid)) != rest
