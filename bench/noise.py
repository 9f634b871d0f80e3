"""How noisy is the number caviar.py races to? A run's best dev accuracy, retrained.

    .venv/bin/python noise.py                        # MNIST-1D, seed 0: Optuna TPE 64 x 30, then its top 5
    .venv/bin/python noise.py --seed 1 --top 3 --seeds 4

caviar.py's target is Optuna TPE's final best dev accuracy: the best of 64 runs, each
the best epoch of one training run at the race's seed. This script runs that Optuna
study (as caviar.py does: the ordinary trainer, ``hyperlab.train.train``), takes its
``--top`` configurations, and retrains each

* at the same seed with the same trainer (it must give the same number: a check);
* at the same seed with the fused engine (``hyperlab.train.fused.train_alone``, what
  hyperlab's process runner trains with): the same arithmetic up to float32 rounding;
* at ``--seeds`` other training seeds (100, 101...) with the ordinary trainer, on the
  same data split.

The spread of the last two is how far the target can move with nothing of the
configuration changed: the noise a tuner's search has to beat to reach the target.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna

import hyperlab as hl
from hyperlab.train import Diverged, TrainConfig, load_dataset, train
from hyperlab.train.fused import train_alone

sys.path.insert(0, str(Path(__file__).parent))
from caviar import METRIC, _optuna_params


def best_of(run: Any, config: TrainConfig, data: Any) -> tuple[float, int]:
    """The run's best dev accuracy and the epoch it came at (nan, -1 if it diverged)."""
    try:
        result = run(config, data)
    except Diverged:
        return float("nan"), -1
    values = [m[METRIC] for m in result.curve]
    best = max(values)
    return best, values.index(best)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--seed", type=int, default=0, help="the race's seed: data split, trainer, Optuna")
    parser.add_argument("--trials", type=positive, default=64)
    parser.add_argument("--epochs", type=positive, default=30)
    parser.add_argument("--top", type=positive, default=5, help="Optuna's best configurations to retrain")
    parser.add_argument("--seeds", type=positive, default=6, help="other training seeds per configuration")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset(args.dataset, seed=args.seed)
    space = hl.course_space()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))

    def objective(trial: Any) -> float:
        params = _optuna_params(trial, space)
        trial.set_user_attr("params", params)
        config = TrainConfig.from_params({"epochs": args.epochs, "seed": args.seed, **params})
        return best_of(train, config, data)[0]

    t0 = time.time()
    study.optimize(objective, n_trials=args.trials)
    done = [t for t in study.trials if t.value is not None and t.value == t.value]
    top = sorted(done, key=lambda t: -t.value)[: args.top]  # type: ignore[operator]
    print(
        f"{args.dataset}, seed {args.seed}: Optuna TPE, {args.trials} trials x {args.epochs} epochs, "
        f"{time.time() - t0:.0f} s; its best {top[0].value:.3f} (the race's target)\n"
    )
    seeds = list(range(100, 100 + args.seeds))
    print(
        f"{'trial':>5} {'value':>6} {'again':>6} {'fused':>6} (epoch)   "
        f"other seeds {seeds[0]}-{seeds[-1]}: mean  min  max  reach the target"
    )
    shifts = []
    for t in top:
        config = TrainConfig.from_params({"epochs": args.epochs, "seed": args.seed, **t.user_attrs["params"]})
        again, at = best_of(train, config, data)
        fused, fused_at = best_of(train_alone, config, data)
        others = [best_of(train, dataclasses.replace(config, seed=s), data)[0] for s in seeds]
        reach = sum(v >= top[0].value - 1e-12 for v in others)
        shifts.append(fused - again)
        print(
            f"{t.number:>5} {t.value:6.3f} {again:6.3f} {fused:6.3f} ({at:>2} / {fused_at:>2})   "
            f"{statistics.mean(others):.3f} {min(others):.3f} {max(others):.3f}  {reach} of {len(others)}"
        )
    print(
        f"\nfused engine minus ordinary, same config and seed: mean {statistics.mean(shifts):+.3f}, "
        f"range {min(shifts):+.3f} to {max(shifts):+.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
