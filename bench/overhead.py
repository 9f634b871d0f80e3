"""Per-trial cost of ask + report + tell with a trivial objective: hyperlab vs Optuna.

Run from the bench/ folder, in the benchmarks' environment:

    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python overhead.py            # 1,000 and 10,000 trials
    .venv/bin/python overhead.py --trials 1000 --repeats 3

Both tools run the same loop, side by side in one process: ask a trial with three
parameters (a log-scaled float, a log-scaled int, a choice), report one intermediate
value, tell the final value. Storage: in memory and in SQLite (a fresh file per run,
in a temporary folder). The cost per trial is reported over all trials and separately
for the first and the last 10% of them: if the two differ, cost grows with the size
of the study.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def hyperlab_loop(storage: str, n: int) -> list[float]:
    import hyperlab as hl

    space = hl.Space(
        lr=hl.Float(1e-5, 1.0, scale="log"),
        units=hl.Int(16, 512, scale="log"),
        act=hl.Choice(["relu", "tanh", "sigmoid"]),
    )
    study = hl.Study("overhead", space, storage=storage, sampler=hl.RandomSampler(), seed=0)
    marks = []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        x = trial.params["lr"]
        trial.report(0, loss=x)
        study.tell(trial, x)
        marks.append(time.perf_counter() - t0)
    return marks


def optuna_loop(storage: str, n: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name="overhead",
        storage=None if storage == "memory" else storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    marks = []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        trial.suggest_int("units", 16, 512, log=True)
        trial.suggest_categorical("act", ["relu", "tanh", "sigmoid"])
        trial.report(x, 0)
        study.tell(trial, x)
        marks.append(time.perf_counter() - t0)
    return marks


def run(loop: Callable[[str, int], list[float]], backend: str, n: int, repeats: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            storage = "memory" if backend == "memory" else f"sqlite:///{Path(folder) / 'bench.db'}"
            marks = loop(storage, n)
        tenth = max(1, n // 10)
        row = {
            "all": statistics.fmean(marks) * 1e6,
            "first": statistics.fmean(marks[:tenth]) * 1e6,
            "last": statistics.fmean(marks[-tenth:]) * 1e6,
        }
        if best is None or row["all"] < best["all"]:
            best = row
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell; the fastest is kept")
    parser.add_argument("--backends", nargs="+", default=["memory", "sqlite"], choices=["memory", "sqlite"])
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import optuna

    import hyperlab

    print(f"python {sys.version.split()[0]}, hyperlab {hyperlab.__version__}, optuna {optuna.__version__}")
    header = (
        f"{'N':>6} {'storage':>7} {'tool':>8} {'us/trial':>10} {'first 10%':>10} {'last 10%':>10} {'last/first':>10}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for n in args.trials:
        for backend in args.backends:
            cells = {}
            for name, loop in (("hyperlab", hyperlab_loop), ("optuna", optuna_loop)):
                r = run(loop, backend, n, args.repeats)
                cells[name] = r
                print(
                    f"{n:>6} {backend:>7} {name:>8} {r['all']:>10.1f} {r['first']:>10.1f} {r['last']:>10.1f} "
                    f"{r['last'] / r['first']:>10.2f}",
                    flush=True,
                )
            ratios.append((n, backend, cells["optuna"]["all"] / cells["hyperlab"]["all"]))
    print()
    for n, backend, ratio in ratios:
        print(f"optuna / hyperlab cost per trial, {backend}, {n} trials: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
