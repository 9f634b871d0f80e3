"""Worker processes that train the sub-populations of a fused population side by side.

The sub-populations of a population are independent, and on a CPU most of a small
network's step is single-threaded Python and dispatch: extra torch threads do not help,
extra processes do. A :class:`PopulationPool` keeps ``workers`` spawned processes for a
whole study (each start costs an import of torch) and deals each population's
sub-populations out to them.

The parent keeps every member's books. A worker trains one epoch of each of its
sub-populations in turn and sends the per-member numbers; the parent records them,
reports them and asks the scheduler, and answers with the rows that train on; the
worker compacts that sub-population before its next epoch. So each member's curve and
the scheduler's decisions are what they would be in one process.

Messages (tuples, first item the kind). Parent to worker: ``("data", dataset)``,
``("job", threads, configs, buckets, device, eval_rows)``, ``("keep", sub, verdict, configs,
buckets)`` (verdict: the rows that train on, those whose state to keep as their best,
and those to measure on the test split; configs: a dict from member index to config,
of the buckets' members; a verdict may bring new buckets when the population is
refilled). Worker to parent: ``("ready",)`` once, when it has started; ``("epoch",
sub, epoch, members, train_cost, train_error, dev_cost, dev_error, seconds)``,
``("tested", members, test_cost, test_error)`` after a verdict with rows to test,
``("done",)``, ``("error", traceback)``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Protocol

from hyperlab._signals import release_sigint, start_holding_sigint
from hyperlab.errors import HyperlabError, check_int

if TYPE_CHECKING:
    from hyperlab.train._plan import Bucket
    from hyperlab.train.data import Dataset
    from hyperlab.train.hparams import TrainConfig

__all__ = ["PopulationPool", "PoolError", "PoolStartError", "WorkerDiedError"]


class Judge(Protocol):
    """Every member's books, in the parent (``hyperlab.train.fused._Judge``)."""

    def __call__(
        self,
        epoch: int,
        members: list[int],
        train_cost: list[float],
        train_error: list[float],
        dev_cost: list[float],
        dev_error: list[float],
        seconds: float,
        /,
    ) -> tuple[list[int], list[int], list[int]]:
        """The verdict on a sub-population's epoch, by row: who trains on, whose state
        to keep as its best, who completed and is measured on the test split."""
        ...

    def tested(self, members: list[int], cost: list[float], error: list[float], /) -> None:
        """The test split's numbers of members that completed."""
        ...


# grow(members each worker holds) -> new buckets, one list per worker
Grow = Callable[[list[set[int]]], list[list["Bucket"]]]


class PoolError(HyperlabError, RuntimeError):
    """A worker of the pool failed or died; the message carries its traceback."""


class WorkerDiedError(PoolError):
    """A worker died mid-run (killed: the kernel's out-of-memory killer, a signal), not
    on an error of its own: the population's trials were not at fault."""


class PoolStartError(PoolError):
    """A worker died before it was ready: nothing of the population's training is at
    fault (an import error, a script without a ``__main__`` guard, no memory)."""


class _Worker:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        self.conn, self.child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(self.child,), daemon=True, name="hyperlab-fused")
        self.data: Any = None  # the dataset this worker holds (kept alive here, compared by identity)
        self.ready = False  # it has said so

    def start(self) -> None:
        # A Ctrl-C as it starts would kill it, or print a traceback: it is held, and one
        # the pool got meanwhile is raised once the worker is started and known here.
        with start_holding_sigint():
            self.process.start()
            # It ignores SIGTERM, which multiprocessing sends its daemons at exit before it
            # waits for them: a pool that was never closed would then hang the exit.
            weakref.finalize(self, self.process.kill)
            self.child.close()


class PopulationPool:
    """``workers`` processes, started on first use and kept until :meth:`close` (or the
    end of a ``with`` block). A run shares ``threads`` torch threads (default: one per
    core) among the workers it gives sub-populations to, so a population with fewer
    sub-populations than workers still uses every core. A failed or interrupted run
    closes the pool; the next run starts fresh processes."""

    def __init__(self, workers: int, threads: int | None = None) -> None:
        check_int("PopulationPool", "workers", workers)
        if threads is not None:
            check_int("PopulationPool", "threads", threads)
        self.workers = workers
        self.threads = threads or os.cpu_count() or 1
        self._procs: list[_Worker] = []

    def __enter__(self) -> PopulationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (at once: a worker mid-epoch is killed; it holds nothing to
        clean up, and it ignores SIGTERM)."""
        for w in self._procs:
            if w.process.pid is not None:  # (one that failed to start has none)
                if w.process.is_alive():
                    w.process.kill()
                w.process.join(timeout=5)
            w.conn.close()
        self._procs = []

    def start(self) -> None:
        """Start the missing workers, side by side, and wait until each says it is ready.

        Raises:
            PoolStartError: a worker died before it was ready (the pool is closed).
        """
        try:
            while len(self._procs) < self.workers:
                w = _Worker()
                self._procs.append(w)  # before it starts: a Ctrl-C raised then must find it to stop it
                w.start()
            for w in self._procs:
                if w.ready:
                    continue
                wait([w.conn, w.process.sentinel])  # a message, or the worker's end
                try:
                    if w.conn.poll():
                        w.conn.recv()  # ("ready",)
                        w.ready = True
                        continue
                except (EOFError, OSError):
                    pass
                raise PoolStartError(_died(w, "while starting"))
        except BaseException:
            self.close()
            raise

    def run(
        self,
        configs: Sequence[TrainConfig],
        data: Dataset,
        shares: Sequence[Sequence[Bucket]],
        *,
        device: str,
        eval_rows: int,
        judge: Judge,
        on_epoch: Callable[[], None] | None = None,
        grow: Grow | None = None,
    ) -> None:
        """Train ``shares[w]`` (a list of buckets) on worker w, until every member has left.

        With ``grow``, the population is refilled: after each verdict,
        ``grow(holding)`` (``holding[w]``: the members worker w trains now) may give
        new buckets, one list per worker, whose members are in ``configs`` by then. A
        worker gets its new buckets with its next verdict, or at once as a new job
        when it has finished its share.
        """
        if len(shares) > self.workers:
            raise ValueError(f"{len(shares)} shares for a pool of {self.workers} workers")
        self.start()
        pending = [list(share) for share in shares] + [[] for _ in range(self.workers - len(shares))]
        holding = [{i for b in share for i in b.members} for share in pending]  # dealt to each worker
        used = self.workers if grow is not None else max(1, sum(1 for share in shares if share))
        threads = max(1, self.threads // used)
        busy: dict[Connection, int] = {}

        def handed(w: int) -> tuple[dict[int, TrainConfig], list[Bucket]]:
            """Worker w's pending buckets and their members' configs, now its own."""
            buckets, pending[w] = pending[w], []
            return {i: configs[i] for b in buckets for i in b.members}, buckets

        def start_job(w: int) -> None:
            proc = self._procs[w]
            if proc.data is not data:
                _exchange(proc, ("data", dataclasses.replace(data)))  # its fields, not its caches
                proc.data = data
            _exchange(proc, ("job", threads, *handed(w), device, eval_rows))
            busy[proc.conn] = w

        def refill() -> None:
            """New buckets for the places free now, dealt to the workers' pending lists."""
            if grow is not None:
                for v, extra in enumerate(grow(holding)):
                    pending[v] += extra
                    holding[v].update(i for b in extra for i in b.members)

        def start_idle() -> None:
            for v in range(self.workers):
                if pending[v] and self._procs[v].conn not in busy:
                    start_job(v)

        try:
            for w in range(self.workers):
                if pending[w]:
                    start_job(w)
            while busy:
                for ready in wait(list(busy)):
                    w = busy[ready]  # type: ignore[index]
                    proc = self._procs[w]
                    msg = _exchange(proc, None)
                    if msg[0] == "epoch":
                        sub, members = msg[1], msg[3]
                        verdict = judge(msg[2], *msg[3:])
                        holding[w].difference_update(members)
                        holding[w].update(members[r] for r in verdict[0])
                        refill()
                        _exchange(proc, ("keep", sub, tuple(verdict), *handed(w)))
                        start_idle()
                        if on_epoch is not None:
                            on_epoch()
                    elif msg[0] == "tested":  # places free up
                        judge.tested(*msg[1:])
                        refill()
                        start_idle()
                    elif msg[0] == "done":
                        del busy[proc.conn]
                        if pending[w]:
                            start_job(w)
                    else:
                        raise PoolError(f"A fused-training worker failed:\n{msg[1]}")
        except BaseException:
            self.close()
            raise


def _exchange(w: _Worker, message: tuple[Any, ...] | None) -> Any:
    """Send ``message`` to worker w, or (None) receive its next one; a closed or reset
    pipe means the worker died."""
    try:
        if message is None:
            return w.conn.recv()
        w.conn.send(message)
        return None
    except (EOFError, OSError):
        raise WorkerDiedError(_died(w)) from None


def _died(w: _Worker, when: str = "") -> str:
    """What to say of a worker that is gone."""
    w.process.join(timeout=5)
    code = w.process.exitcode
    said = f"A fused-training worker (pid {w.process.pid}) died{' ' + when if when else ''} (exit code {code})"
    if code is not None and code > 0:  # it exited on an error, which it printed
        return said + "; its error is printed above."
    return said + "."


def _serve(conn: Connection) -> None:
    """A worker's loop: keep the dataset it is sent, train the jobs it is given."""
    # The parent handles Ctrl-C and SIGTERM (sent to the whole job, they reach us too) and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    release_sigint()  # held since it started (start_holding_sigint); ignored now
    import torch

    from hyperlab.train.fused import work

    conn.send(("ready",))
    data: Any = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg[0] == "data":
            data = msg[1]
        elif msg[0] == "job":
            try:
                torch.set_num_threads(msg[1])
                work(conn, data, *msg[2:])
            except Exception as e:
                try:
                    conn.send(("error", "".join(traceback.format_exception(e)).rstrip()))
                except (BrokenPipeError, OSError):
                    return
