"""Caviar: many models trained in parallel, hopeless ones stopped early. hyperlab vs Optuna.

    .venv/bin/python caviar.py                                   # the issue's setting: 64 trials x 30 epochs
    .venv/bin/python caviar.py --datasets mnist1d --seeds 0 1 2
    .venv/bin/python caviar.py --trials 16 --epochs 8 --datasets sklearn:digits   # a quick look
    .venv/bin/python caviar.py --ray-overhead 200                # Ray's per-trial overhead only
    # hyperlab variants, 3 runs each, against an earlier run's Optuna TPE (its --json):
    .venv/bin/python caviar.py --datasets mnist1d --seeds 0 1 2 --optuna-from earlier.json \
        --kinds optuna-tpe hyperlab-proc2-asha-tpe-quarter --repeats 3
    # the race judged on configurations too (each named best retrained at 3 fresh seeds):
    .venv/bin/python caviar.py --datasets mnist1d --seeds 0 1 2 \
        --kinds optuna-tpe hyperlab-proc2-asha-tpe-quarter --repeats 2 --confirm 3

Side by side in one run, on the course's search space (hyperlab.course_space) and the
built-in MLP trainer, for each dataset and seed:

* hyperlab, sequential (random search, InlineRunner);
* hyperlab, ``processes`` with 2 workers (random search);
* hyperlab, ``processes`` with 2 workers + ASHA (eta 3, rungs from 1 epoch);
* the same three with hyperlab's TPE sampler instead of random search (kinds ending
  in ``-tpe``: ``hyperlab-seq-tpe``, ``hyperlab-proc2-tpe``, ``hyperlab-proc2-asha-tpe``);
* ``-ashaM`` instead of ``-asha`` puts ASHA's first rung at M epochs (``-asha3``: rungs
  at 3, 9 and 27 epochs) instead of 1;
* ``hyperlab-fusedN-asha-tpe``: the fused runner, populations of N trials (N=16: four
  populations of 64 trials, so TPE learns between them), ASHA, TPE;
* Optuna, TPE, sequential, on the same trainer and the same space (log scales; 1 - beta
  on a log scale; the same conditions);
* Optuna, TPE + HyperbandPruner (min 1, max = epochs, eta 3), sequential;
* any hyperlab kind with ``-quarter`` appended (``hyperlab-proc2-asha-tpe-quarter``):
  time-boxed instead of trial-boxed, the way Hyperband-style tuners are compared. It
  gets a quarter of the wall time Optuna TPE took in the same run (``timeout``: no
  trial starts after it; running ones finish) and up to 8x the trials; ``optuna-tpe``
  must come before it in ``--kinds``.

Every trial reports dev accuracy each epoch. Reported: wall time, epochs trained, best
dev accuracy, and the time each configuration first reached Optuna-TPE-sequential's
final best dev accuracy (the target). Storage: SQLite in a temporary folder for all.

That target is one lucky training run (bench/noise.py: a fresh draw of Optuna's winning
configuration rarely reaches it). ``--confirm S`` also judges the race on
configurations: every configuration a tuner named as its best along the way is retrained
at S fresh training seeds (the ordinary trainer for all), and a tuner reaches the
configuration target when the one it names scores, on their mean, at least Optuna
TPE's winner.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hyperlab as hl
from hyperlab.runners import FusedRunner, InlineRunner, ProcessRunner, RayRunner, RunPolicy
from hyperlab.schedulers import ASHAScheduler
from hyperlab.space import Choice, Fixed, Float, Int
from hyperlab.train import Diverged, LoadedObjective, TrainConfig, load_dataset, train
from hyperlab.train.objective import best_value

METRIC = "dev_accuracy"


def curve_from_hyperlab(
    study: hl.Study, start: float
) -> tuple[int, list[tuple[float, float]], list[tuple[float, float, dict[str, Any]]]]:
    """Epochs trained; (seconds since ``start``, best dev accuracy) per finished trial;
    and the incumbents (see ``incumbents``) among the complete ones. ``start`` is when the
    runner was called: worker start-up counts against hyperlab."""
    trials = study.trials
    epochs = sum(len(t.curve) for t in trials)
    finished = [t for t in trials if t.metric(METRIC) and t.ended is not None]
    points = sorted(((t.ended or 0.0) - start, max(v for _, v in t.metric(METRIC))) for t in finished)
    complete = [
        ((t.ended or 0.0) - start, max(v for _, v in t.metric(METRIC)), t.params)
        for t in finished
        if t.state == hl.TrialState.COMPLETE
    ]
    return epochs, points, incumbents(complete)


def incumbents(complete: list[tuple[float, float, dict[str, Any]]]) -> list[tuple[float, float, dict[str, Any]]]:
    """Of (seconds, best dev accuracy, params) per complete trial, those that beat every
    trial ended before them, in time order: the configuration the tuner would name as its
    best at each moment (pruned trials are never named; a tie keeps the earlier one)."""
    out: list[tuple[float, float, dict[str, Any]]] = []
    for t, v, params in sorted(complete, key=lambda c: c[0]):
        if v == v and (not out or v > out[-1][1]):
            out.append((t, v, params))
    return out


def search_for(
    kind: str, epochs: int, tpe: dict[str, Any] | None = None
) -> tuple[ASHAScheduler | None, hl.TPESampler | hl.RandomSampler]:
    """A hyperlab kind's (scheduler, sampler): ``-asha`` or ``-ashaM`` prunes with ASHA
    (eta 3, first rung at 1 or M epochs), ``-tpe`` samples with TPE (``tpe``: its
    arguments), else random search."""
    asha = re.search(r"-asha(\d*)", kind)
    scheduler = ASHAScheduler(3, int(asha.group(1) or 1), epochs) if asha else None
    sampler = hl.TPESampler(**(tpe or {})) if kind.endswith("-tpe") else hl.RandomSampler()
    return scheduler, sampler


def run_hyperlab(
    kind: str,
    source: str,
    epochs: int,
    trials: int,
    seed: int,
    folder: Path,
    timeout: float | None = None,
    tpe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scheduler, sampler = search_for(kind, epochs, tpe)
    study = hl.Study(
        f"{kind}-{source}-{seed}",
        hl.course_space(),
        storage=f"sqlite:///{folder / 'h.db'}",
        metric=METRIC,
        direction="maximize",
        scheduler=scheduler,
        sampler=sampler,
        seed=seed,
    )
    # Loaded here, before the clock starts, as Optuna's side does and as `hyperlab tune`
    # does: the workers get the arrays and do not load (or import scikit-learn) themselves.
    factory = LoadedObjective(load_dataset(source, seed=seed), {"epochs": epochs, "seed": seed}, metric=METRIC)
    runner: Any
    if kind.startswith("hyperlab-fused"):
        size = kind.removeprefix("hyperlab-fused").split("-")[0]
        runner = FusedRunner(population=int(size or 64), device="cpu")
    else:
        runner = InlineRunner() if kind.startswith("hyperlab-seq") else ProcessRunner(2)
    t0 = time.time()
    runner.run(study, factory, RunPolicy(max_trials=trials, timeout=timeout))
    wall = time.time() - t0
    n_epochs, points, best = curve_from_hyperlab(study, t0)
    return {"wall": wall, "epochs": n_epochs, "points": points, "trials": len(study.trials), "incumbents": best}


def _optuna_params(trial: Any, space: hl.Space) -> dict[str, Any]:
    """The course space through Optuna's define-by-run API, on the same scales."""
    params: dict[str, Any] = {}
    for name in space.evaluation_order:
        p = space[name]
        if not space.is_active(name, params):
            continue
        if isinstance(p, Fixed):
            params[name] = p.value
        elif isinstance(p, Choice):
            params[name] = trial.suggest_categorical(name, list(p.options))
        elif isinstance(p, Int):
            params[name] = trial.suggest_int(name, p.low, p.high, log=p.scale == "log")
        elif isinstance(p, Float) and p.scale == "reverse_log":
            params[name] = 1.0 - trial.suggest_float(f"1-{name}", 1.0 - p.high, 1.0 - p.low, log=True)
        elif isinstance(p, Float):
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.scale == "log")
    return {k: params[k] for k in space.names if k in params}


def run_optuna(kind: str, source: str, epochs: int, trials: int, seed: int, folder: Path) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset(source, seed=seed)
    space = hl.course_space()
    pruner = (
        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
        if kind == "optuna-hyperband"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
        storage=f"sqlite:///{folder / 'o.db'}",
        study_name=f"{kind}-{source}-{seed}",
    )
    n_epochs = 0
    points: list[tuple[float, float]] = []
    complete: list[tuple[float, float, dict[str, Any]]] = []
    t0 = time.time()

    def objective(trial: Any) -> float:
        nonlocal n_epochs
        params = _optuna_params(trial, space)
        config = TrainConfig.from_params({"epochs": epochs, "seed": seed, **params})
        best = 0.0

        def report(epoch: int, metrics: dict[str, float]) -> None:
            nonlocal n_epochs, best
            n_epochs += 1
            best = max(best, metrics[METRIC])
            trial.report(metrics[METRIC], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            train(config, data, report=report)
        except Diverged:
            return float("nan")
        except optuna.TrialPruned:
            points.append((time.time() - t0, best))
            raise
        points.append((time.time() - t0, best))
        complete.append((points[-1][0], best, params))
        return best

    study.optimize(objective, n_trials=trials)
    return {"wall": time.time() - t0, "epochs": n_epochs, "points": points, "incumbents": incumbents(complete)}


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    best = -1.0
    for t, v in sorted(points):
        best = max(best, v)
        if best >= target - 1e-12:
            return t
    return None


_DATA: Any = None


def _load_for_confirm(source: str, seed: int) -> None:
    """A confirm worker's set-up: one thread (two workers share the 2 cores), the race's split."""
    import torch

    global _DATA
    torch.set_num_threads(1)
    _DATA = load_dataset(source, seed=seed)


def best_of(run: Any, config: TrainConfig, data: Any) -> float:
    """A training run's best dev accuracy (``run``: ``train`` or ``train_alone``), as a
    trial's value is computed; nan if it diverged."""
    try:
        value = best_value(run(config, data).curve, METRIC)
    except Diverged:
        return math.nan
    return math.nan if value is None else value


def _fresh_draw(params: dict[str, Any], epochs: int, seed: int) -> float:
    """One training run of ``params`` at training seed ``seed``: its best dev accuracy
    (0.0 if it diverged: a draw that fell short)."""
    value = best_of(train, TrainConfig.from_params({"epochs": epochs, "seed": seed, **params}), _DATA)
    return 0.0 if math.isnan(value) else value


def _key(params: dict[str, Any]) -> str:
    """A configuration's params as a key (the same configuration, named by two tuners)."""
    return json.dumps(params, sort_keys=True)


def confirm(rows: dict[str, Any], source: str, seed: int, epochs: int, seeds: list[int]) -> dict[str, Any]:
    """The race judged on configurations instead of single training runs.

    The target above is the best of 64 training runs, each a single draw of its
    configuration at the race's seed: bench/noise.py shows a fresh draw of the winning
    configuration rarely reaches it. Here every configuration a tuner named as its best
    (its incumbents) is retrained at ``seeds`` (fresh training seeds, the race's data
    split, the ordinary trainer for every tuner) and scored by its mean best dev
    accuracy. The configuration target is Optuna TPE's final winner's mean; a tuner
    reaches it at the first moment its incumbent's mean is at least that. Returns, per
    row, the incumbents' means and that moment (None: never)."""
    import concurrent.futures
    import multiprocessing

    wanted: dict[str, dict[str, Any]] = {}
    for kind, r in rows.items():
        named = r["incumbents"] if kind != "optuna-tpe" else r["incumbents"][-1:]
        for _, _, params in named:
            wanted[_key(params)] = params
    draws: dict[str, list[float]] = {}
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"), initializer=_load_for_confirm, initargs=(source, seed)
    ) as pool:
        futures = {key: [pool.submit(_fresh_draw, params, epochs, s) for s in seeds] for key, params in wanted.items()}
        for key, fs in futures.items():
            draws[key] = [f.result() for f in fs]
    mean = {key: statistics.mean(v) for key, v in draws.items()}
    out: dict[str, Any] = {}
    target = mean[_key(rows["optuna-tpe"]["incumbents"][-1][2])]
    for kind, r in rows.items():
        named = r["incumbents"] if kind != "optuna-tpe" else r["incumbents"][-1:]
        chain = [(t, v, mean[_key(p)]) for t, v, p in named]
        reached = next((t for t, _, m in chain if m >= target - 1e-12), None)
        out[kind] = {"chain": chain, "reached": reached}
    return {"target": target, "rows": out, "seeds": seeds}


def print_confirm(result: dict[str, Any], optuna_wall: float) -> None:
    seeds = result["seeds"]
    print(
        f"  configuration target: Optuna TPE's winner retrained at training seeds {seeds[0]}-{seeds[-1]}, "
        f"mean best dev accuracy {result['target']:.4f}"
    )
    print(f"{'':>32} {'named':>6} {'final: value':>13} {'its mean':>9} {'t to config target s':>21} {'/ Optuna':>9}")
    for kind, r in result["rows"].items():
        chain, reached = r["chain"], r["reached"]
        _, value, final = chain[-1]
        shown = "never" if reached is None else f"{reached:.1f}"
        ratio = "" if reached is None or kind == "optuna-tpe" else f"{reached / optuna_wall:.3f}"
        print(f"{kind:>32} {len(chain):6d} {value:13.4f} {final:9.4f} {shown:>21} {ratio:>9}")


def ray_overhead(n: int) -> None:
    """Seconds per trial of a trivial objective: Ray runner vs inline, same SQLite store."""
    import functools

    space = hl.Space(x=hl.Float(0.0, 1.0))
    with tempfile.TemporaryDirectory() as folder:
        results = {}
        for name, runner in (
            ("inline", InlineRunner()),
            ("processes(2)", ProcessRunner(2)),
            ("ray(2 cpus)", RayRunner(num_cpus=2)),
        ):
            study = hl.Study(name, space, storage=f"sqlite:///{Path(folder) / 'r.db'}", metric="loss", seed=0)
            t0 = time.time()
            runner.run(study, functools.partial(_identity, trivial), RunPolicy(max_trials=n))
            results[name] = (time.time() - t0) / n
        for name, per in results.items():
            print(f"  {name:>12}: {per * 1e3:8.2f} ms per trial (wall, incl. start-up, {n} trials)")


def _identity(objective: Any) -> Any:
    return objective


def trivial(trial: Any) -> float:
    """The trivial objective of the overhead run (module level: workers import it by name)."""
    trial.report(0, loss=trial.params["x"])
    return float(trial.params["x"])


def tpe_options(parser: argparse.ArgumentParser, options: list[str]) -> dict[str, Any]:
    """``--tpe-options NAME=VALUE ...`` as TPESampler's keyword arguments; a usage error
    (exit 2) names the option that TPESampler or the syntax refuses."""
    out: dict[str, Any] = {}
    for option in options:
        name, sep, value = option.partition("=")
        try:
            if not sep:
                raise ValueError("expected NAME=VALUE, such as multivariate=False or gamma=0.1")
            out[name] = ast.literal_eval(value)
            hl.TPESampler(**out)
        except (ValueError, SyntaxError, TypeError, hl.errors.InvalidArgumentError) as e:
            parser.error(f"--tpe-options {option!r}: {e}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["sklearn:digits", "mnist1d"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=[
            "optuna-tpe",
            "optuna-hyperband",
            "hyperlab-seq",
            "hyperlab-proc2",
            "hyperlab-proc2-asha",
            "hyperlab-seq-tpe",
            "hyperlab-proc2-asha-tpe",
        ],
    )
    parser.add_argument("--ray-overhead", type=int, default=0, help="only measure Ray's per-trial overhead")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--optuna-from",
        type=Path,
        help="take optuna-tpe's rows from an earlier run's --json file (same datasets, seeds, trials and epochs) "
        "instead of running it: to try hyperlab variants against the same target. Its times come from that run",
    )
    parser.add_argument(
        "--tpe-options",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="arguments of hyperlab's TPESampler for the -tpe kinds (Python literals: multivariate=False gamma=0.1)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="run each hyperlab kind this many times")
    parser.add_argument(
        "--confirm",
        type=int,
        default=0,
        metavar="S",
        help="also judge the race on configurations: retrain Optuna TPE's winner and each configuration a "
        "hyperlab kind named as its best at S fresh training seeds and compare their means (needs optuna-tpe)",
    )
    args = parser.parse_args()
    if args.confirm and "optuna-tpe" not in args.kinds:
        parser.error("--confirm needs 'optuna-tpe' in --kinds: its winner sets the configuration target")
    if args.confirm < 0:
        parser.error(f"--confirm must be 0 (off) or a number of training seeds, got {args.confirm}")
    if args.optuna_from and not args.optuna_from.is_file():
        parser.error(f"--optuna-from {args.optuna_from}: there is no such file")
    earlier = json.loads(args.optuna_from.read_text()) if args.optuna_from else {}
    if args.confirm and any("incumbents" not in r.get("optuna-tpe", {}) for k, r in earlier.items() if k != "confirm"):
        parser.error(f"{args.optuna_from} has no incumbents (a run from before --confirm): --confirm cannot use it")
    logging.disable(logging.WARNING)
    tpe = tpe_options(parser, args.tpe_options)
    if args.ray_overhead:
        ray_overhead(args.ray_overhead)
        return 0
    import optuna

    print(
        f"hyperlab {hl.__version__}, optuna {optuna.__version__}, {os.cpu_count()} cores; "
        f"{args.trials} trials x {args.epochs} epochs, course space, metric {METRIC}"
    )
    raw: dict[str, Any] = {}
    confirmed: dict[str, Any] = {}
    for source in args.datasets:
        load_dataset(source)  # generate / cache once, outside the timings
        for seed in args.seeds:
            rows = {}
            runs = [
                (kind, f"{kind}#{r + 1}" if args.repeats > 1 and kind.startswith("hyperlab") else kind)
                for kind in args.kinds
                for r in range(args.repeats if kind.startswith("hyperlab") else 1)
            ]
            for kind, key in runs:
                with tempfile.TemporaryDirectory() as folder:
                    if kind == "optuna-tpe" and earlier:
                        if f"{source}/{seed}" not in earlier:
                            parser.error(f"{args.optuna_from} has no results for {source} seed {seed}")
                        rows[key] = earlier[f"{source}/{seed}"]["optuna-tpe"]
                        print(f"  optuna-tpe on {source} seed {seed}: from {args.optuna_from}", file=sys.stderr)
                        continue
                    if kind.startswith("optuna"):
                        rows[key] = run_optuna(kind, source, args.epochs, args.trials, seed, Path(folder))
                    elif kind.endswith("-quarter"):
                        if "optuna-tpe" not in rows:
                            parser.error(f"kind {kind!r} needs 'optuna-tpe' before it in --kinds")
                        quarter = rows["optuna-tpe"]["wall"] / 4
                        base = kind.removesuffix("-quarter")
                        rows[key] = run_hyperlab(
                            base, source, args.epochs, 8 * args.trials, seed, Path(folder), timeout=quarter, tpe=tpe
                        )
                    else:
                        rows[key] = run_hyperlab(kind, source, args.epochs, args.trials, seed, Path(folder), tpe=tpe)
                print(f"  ran {key} on {source} seed {seed}: {rows[key]['wall']:.0f} s", file=sys.stderr, flush=True)
            target = max(v for _, v in rows["optuna-tpe"]["points"]) if "optuna-tpe" in rows else None
            print(f"\n{source}, seed {seed}" + (f"; target = Optuna TPE's best {target:.4f}" if target else ""))
            print(f"{'':>32} {'wall s':>8} {'trials':>6} {'epochs':>7} {'best dev acc':>13} {'t to target s':>14}")
            for kind, r in rows.items():
                best = max(v for _, v in r["points"])
                tt = time_to(r["points"], target) if target is not None else None
                shown = f"{tt:.1f}" if tt is not None else "never"
                n = r.get("trials", args.trials)
                print(f"{kind:>32} {r['wall']:8.1f} {n:6d} {r['epochs']:7d} {best:13.4f} {shown:>14}")
            for kind in rows:
                if target is not None and "asha" in kind and kind.startswith("hyperlab"):
                    tt = time_to(rows[kind]["points"], target)
                    ratio = "never" if tt is None else f"{tt / rows['optuna-tpe']['wall']:.3f}"
                    print(f"{kind} time to target / Optuna TPE wall time: {ratio}")
            if args.confirm:
                judged = confirm(rows, source, seed, args.epochs, list(range(100, 100 + args.confirm)))
                print_confirm(judged, rows["optuna-tpe"]["wall"])
                confirmed[f"{source}/{seed}"] = judged
            raw[f"{source}/{seed}"] = rows
    if len(args.seeds) > 1:
        print("\nmedians over seeds")
        for source in args.datasets:
            for kind in raw[f"{source}/{args.seeds[0]}"]:
                runs = [raw[f"{source}/{s}"][kind] for s in args.seeds]
                print(
                    f"{source:>16} {kind:>20}: wall {statistics.median(r['wall'] for r in runs):7.1f} s, "
                    f"best {statistics.median(max(v for _, v in r['points']) for r in runs):.4f}"
                )
    if confirmed:
        print(f"\nconfiguration target (--confirm {args.confirm}) reached within a quarter of Optuna TPE's wall time")
        for source in args.datasets:
            for kind in confirmed[f"{source}/{args.seeds[0]}"]["rows"]:
                if kind == "optuna-tpe":
                    continue
                hits = sum(
                    (r := confirmed[f"{source}/{s}"]["rows"][kind]["reached"]) is not None
                    and r <= raw[f"{source}/{s}"]["optuna-tpe"]["wall"] / 4
                    for s in args.seeds
                )
                print(f"{source:>16} {kind:>32}: {hits} of {len(args.seeds)} seeds")
    if args.json:
        args.json.write_text(json.dumps({**raw, "confirm": confirmed} if confirmed else raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
