"""The live view of a running study: counts by state, the best so far, time and ETA."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hyperlab.study import Study
from hyperlab.trial import Trial, TrialState


def _waits_for_retry(t: Trial) -> bool:
    from hyperlab.study import INTERRUPTED, WORKER_LOST

    return t.state is TrialState.FAILED and (t.reason or "").startswith((WORKER_LOST, INTERRUPTED))


def _short(params: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for k, v in list(params.items())[:limit]:
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    more = "" if len(params) <= limit else f" (+{len(params) - limit})"
    return ", ".join(parts) + more


class LiveView:
    """A rich renderable updated by study callbacks and per-epoch reports."""

    def __init__(self, study: Study, total: int, metric: str, maximize: bool) -> None:
        self.study, self.metric, self.maximize = study, metric, maximize
        self.counts: Counter[TrialState] = Counter()
        self.best: Trial | None = None
        self.current: str = ""
        self.progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("trials", total=total, completed=0)
        self._last_poll = 0.0
        self.poll(study, force=True)

    def poll(self, study: Study, force: bool = False) -> None:
        """Refresh counts and the best trial from the store (at most twice a second)."""
        now = time.monotonic()
        if not force and now - self._last_poll < 0.5:
            return
        self._last_poll = now
        from hyperlab.analysis.curves import best_trial

        trials = study.fresh_trials()  # re-reads only unfinished trials
        self.counts = Counter(t.state for t in trials)
        self.best = best_trial(trials, self.maximize)
        # Done: every finished trial that is not waiting for a retry (lost, interrupted).
        retried = {t.retry_of for t in trials if t.retry_of is not None}
        done = sum(1 for t in trials if t.state.is_finished and t.id not in retried and not _waits_for_retry(t))
        self.progress.update(self.task, completed=done)

    def on_report(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric)
        shown = f"{value:.4g}" if value is not None else "-"
        self.current = f"trial {trial.id}: epoch {step}, {self.metric} {shown}"

    def __rich__(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        c = self.counts
        table.add_row(
            "states",
            f"[green]complete {c[TrialState.COMPLETE]}[/]  [grey50]pruned {c[TrialState.PRUNED]}[/]  "
            f"[red]diverged {c[TrialState.DIVERGED]}[/]  [orange1]failed {c[TrialState.FAILED]}[/]  "
            f"[cyan]running {c[TrialState.RUNNING]}[/]",
        )
        if self.best is not None:
            table.add_row(f"best {self.metric}", f"{self.best.value:.4g}  (trial {self.best.id})")
            table.add_row("best params", _short(self.best.params))
        if self.current:
            table.add_row("now", self.current)
        return Group(self.progress, table)
