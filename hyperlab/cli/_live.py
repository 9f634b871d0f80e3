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


def _short(params: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for k, v in list(params.items())[:limit]:
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    more = "" if len(params) <= limit else f" (+{len(params) - limit})"
    return ", ".join(parts) + more


class LiveView:
    """A rich renderable updated by study callbacks and per-epoch reports."""

    def __init__(self, study: Study, total: int, done_before: int, metric: str, maximize: bool) -> None:
        self.study, self.metric, self.maximize = study, metric, maximize
        self.counts: Counter[TrialState] = Counter()
        for t in study.trials:
            if t.state.is_finished:
                self.counts[t.state] += 1
        self.best: Trial | None = None
        try:
            self.best = study.best_trial
        except Exception:
            self.best = None
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
        self.task = self.progress.add_task("trials", total=total, completed=done_before)
        self.started = time.monotonic()

    def on_report(self, trial: Trial, step: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric)
        shown = f"{value:.4g}" if value is not None else "-"
        self.current = f"trial {trial.id}: epoch {step}, {self.metric} {shown}"

    def on_trial(self, study: Study, trial: Trial) -> None:
        self.counts[trial.state] += 1
        self.progress.advance(self.task)
        if trial.state is TrialState.COMPLETE and trial.value is not None and self._better(trial.value):
            self.best = trial
        self.current = ""

    def _better(self, value: float) -> bool:
        if self.best is None or self.best.value is None:
            return True
        return value > self.best.value if self.maximize else value < self.best.value

    def __rich__(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        c = self.counts
        table.add_row(
            "states",
            f"[green]complete {c[TrialState.COMPLETE]}[/]  [grey50]pruned {c[TrialState.PRUNED]}[/]  "
            f"[red]diverged {c[TrialState.DIVERGED]}[/]  [orange1]failed {c[TrialState.FAILED]}[/]  "
            f"running {1 if self.current else 0}",
        )
        if self.best is not None:
            table.add_row(f"best {self.metric}", f"{self.best.value:.4g}  (trial {self.best.id})")
            table.add_row("best params", _short(self.best.params))
        if self.current:
            table.add_row("now", self.current)
        return Group(self.progress, table)
