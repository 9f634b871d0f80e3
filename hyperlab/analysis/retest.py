"""Re-test records: what ``hyperlab retest`` stores in a study, and its verdict.

Plain functions of the stored record (no torch, no config), so that ``hyperlab show``
can read them cheaply; :meth:`hyperlab.tune.TuneJob.retest` writes them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["RETEST_PREFIX", "is_retest", "seed_stats", "retest_summary"]

RETEST_PREFIX = "retest "  # a study attribute per re-test: "retest <time> <pid>"


def is_retest(key: str, value: Any) -> bool:
    """Whether a study attribute is a re-test's record."""
    return (
        key.startswith(RETEST_PREFIX)
        and isinstance(value, dict)
        and {"at", "seeds", "results", "host", "torch"} <= value.keys()
    )


def seed_stats(values: Sequence[float | None]) -> dict[str, Any]:
    """One configuration's runs (``None``: diverged): the mean and standard deviation of
    those that did not diverge (``None`` when there are too few), how many there are,
    and how many diverged."""
    finite = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(finite) if finite else None,
        "sd": statistics.stdev(finite) if len(finite) > 1 else None,
        "runs": len(finite),
        "diverged": len(values) - len(finite),
    }


def retest_summary(record: dict[str, Any], maximize: bool) -> dict[str, Any]:
    """A re-test's verdict. Per configuration, its :func:`seed_stats` and stored value.
    The best configuration is the one with the fewest diverged seeds, then the best mean
    (a tie keeps the better-ranked trial); ``None`` when every run diverged. ``clear``:
    whether a new best leads the study's best by more than the seeds' noise (see
    ``_clear_lead``)."""
    rows = {r["trial"]: {**seed_stats(r["values"]), "stored": r["stored"]} for r in record["results"]}

    def better(a: dict[str, Any], b: dict[str, Any]) -> bool:
        if a["diverged"] != b["diverged"]:
            return bool(a["diverged"] < b["diverged"])
        return bool(a["mean"] > b["mean"] if maximize else a["mean"] < b["mean"])

    best = None
    for trial, row in rows.items():
        if row["mean"] is not None and (best is None or better(row, rows[best])):
            best = trial
    was = next(iter(rows), None)
    return {"rows": rows, "best": best, "was_best": was, "clear": _clear_lead(rows, best, was)}


def _clear_lead(rows: dict[int, dict[str, Any]], best: int | None, was: int | None) -> bool | None:
    """Whether ``best`` leads the study's best (``was``) by more than twice the standard
    error of the difference of their means; None when that cannot be told (one seed, or
    a configuration with fewer than two finite runs). Fewer diverged runs is a clear lead."""
    if best is None or was is None or best == was:
        return None
    a, b = rows[best], rows[was]
    if a["diverged"] != b["diverged"]:
        return True
    if a["sd"] is None or b["sd"] is None:
        return None
    se = math.sqrt(a["sd"] ** 2 / a["runs"] + b["sd"] ** 2 / b["runs"])
    return bool(abs(a["mean"] - b["mean"]) > 2 * se)
