"""Which process runs a trial, and whether that process has exited.

The loops that run trials themselves (``Study.optimize``, the workers of the process
and Ray runners, the fused runner) record on each trial they claim the process that
runs it, as system attributes: ``worker`` (``host:pid``, for people) and
``worker_process`` (what tells that process apart from any other: the host, the
machine's boot, the pid and time namespaces, the pid and the process's start time).

A tuner killed outright (SIGKILL, the out-of-memory killer) leaves its trials running
in the store. Their heartbeats stop, and the next run fails them as lost after the
grace period. When the next run starts where it can see the killed run's processes,
it can tell at once: no process has the pid a trial names, or the one that has it
started at another time. Only then is a worker judged to have exited. Anything
uncertain leaves the trial to its heartbeat:

* a worker on another host, another boot, or in another pid or time namespace (a
  container sees its own processes; a time namespace shifts start times);
* a process this one may not inspect (``/proc`` mounted with ``hidepid``: it exists,
  whoever owns it);
* a zombie (exited, not yet reaped): its parent is alive and reports how it ended, as
  the process runner fails its dead workers' trials with their exit code;
* a platform without ``/proc``.
"""

from __future__ import annotations

import copy
import errno
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["worker_attrs", "worker_exited"]


@functools.cache
def _here() -> dict[str, Any] | None:
    """Where this process runs: host, boot and namespaces; None without a /proc that
    shows this process's own pid namespace."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):  # a /proc of another pid namespace
            return None
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespaces = [os.stat("/proc/self/ns/pid").st_ino]
        if os.path.exists("/proc/self/ns/time"):  # Linux >= 5.6
            namespaces.append(os.stat("/proc/self/ns/time").st_ino)
    except OSError:
        return None
    return {"host": os.uname().nodename, "boot": boot, "namespaces": namespaces}


def _start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot), from /proc; None where it
    cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of proc(5)


def worker_attrs() -> dict[str, Any]:
    """The system attributes naming this process as a trial's worker."""
    return copy.deepcopy(_attrs_of(os.getpid()))


@functools.cache
def _attrs_of(pid: int) -> dict[str, Any]:
    """:func:`worker_attrs` of this process, once per pid (a forked child has its own)."""
    attrs: dict[str, Any] = {"worker": f"{os.uname().nodename}:{pid}"}
    here, start = _here(), _start(pid)
    if here is not None and start is not None:
        attrs["worker_process"] = {**here, "pid": pid, "start": start}
    return attrs


def worker_exited(attrs: Mapping[str, Any]) -> bool:
    """Whether the worker a trial's system attributes name has certainly exited (see
    the module's docstring); False when unsure."""
    recorded, here = attrs.get("worker_process"), _here()
    if not isinstance(recorded, dict) or here is None or any(recorded.get(k) != v for k, v in here.items()):
        return False
    pid = recorded.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: is there such a process (whoever owns it)?
    except OSError as e:
        return e.errno == errno.ESRCH
    start = _start(pid)
    if start is None:  # hidden from us: it exists
        return False
    # The same start: the worker itself, alive, or a zombie whose parent will report it.
    return start != recorded.get("start")
