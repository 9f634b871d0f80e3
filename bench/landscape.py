"""The landscape a tuner searches: many random configurations trained to the end, no pruning.

    .venv/bin/python landscape.py                          # 256 course configs x 30 epochs, MNIST-1D, seed 1
    .venv/bin/python landscape.py --seed 0 --target 0.697  # how many random configs reach a target
    .venv/bin/python landscape.py --trials 64 --epochs 10 --dataset sklearn:digits   # a quick look

Every configuration is trained for every epoch (the fused runner, no scheduler), so the
curves answer two questions about a search on this data:

* how rare good configurations are: quantiles of the best dev accuracy, and the share
  of random configurations that reach ``--target`` (e.g. Optuna TPE's best in
  caviar.py);
* whether early epochs predict the end, which is what ASHA's rungs bet on: at each rung
  epoch, the Spearman correlation of the value there with the run's best, and how many
  of the top-10% configurations a top-third cut at that epoch keeps.

It ends with the best configurations found.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import hyperlab as hl
from hyperlab.runners import FusedRunner, RunPolicy
from hyperlab.space import Fixed
from hyperlab.train import LoadedObjective, load_dataset

METRIC = "dev_accuracy"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--seed", type=int, default=1, help="the data split's and the trainer's seed")
    parser.add_argument("--trials", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--target", type=float, help="report the share of configurations whose best reaches it")
    parser.add_argument("--top", type=int, default=8, help="best configurations to list")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    data = load_dataset(args.dataset, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        study = hl.Study(
            "landscape",
            hl.course_space(),
            storage=f"sqlite:///{Path(folder) / 'l.db'}",
            metric=METRIC,
            direction="maximize",
            seed=args.seed + 100,  # configurations drawn independently of caviar.py's samplers
        )
        factory = LoadedObjective(data, {"epochs": args.epochs, "seed": args.seed}, metric=METRIC)
        t0 = time.time()
        FusedRunner(population=64, device="cpu").run(study, factory, RunPolicy(max_trials=args.trials))
        wall = time.time() - t0
        trials = [t for t in study.trials if len(t.metric(METRIC)) == args.epochs]
        short = Counter(t.state.value for t in study.trials if len(t.metric(METRIC)) < args.epochs)
    if not trials:
        print(f"no configuration trained all {args.epochs} epochs: {dict(short)}")
        return 1
    curves = np.array([[v for _, v in t.metric(METRIC)] for t in trials])
    best = curves.max(axis=1)
    print(
        f"{args.dataset}, seed {args.seed}: {len(trials)} of {args.trials} random course configurations trained "
        f"all {args.epochs} epochs ({wall:.0f} s)" + "".join(f"; {n} {state}" for state, n in sorted(short.items()))
    )
    q = np.quantile(best, [0.5, 0.9, 0.99])
    print(f"best {METRIC}: median {q[0]:.3f}, 90th percentile {q[1]:.3f}, 99th {q[2]:.3f}, maximum {best.max():.3f}")
    if args.target is not None:
        print(f"reaching the target {args.target:.4f}: {int((best >= args.target).sum())} of {len(best)}")
    top10 = best >= np.quantile(best, 0.9)
    print(f"\n{'rung epoch':>10} {'Spearman(value there, best)':>28} {'top-10% kept by a top-third cut':>32}")
    epoch = 1
    while epoch < args.epochs:
        at = curves[:, epoch - 1]
        kept = at >= np.quantile(at, 2 / 3)
        rho = spearmanr(at, best).statistic
        print(f"{epoch:>10} {rho:>28.2f} {kept[top10].mean():>32.0%}")
        epoch *= 3
    print("\nbest configurations (best epoch, searched params)")
    space = study.space
    for i in np.argsort(-best)[: args.top]:
        shown = {
            k: (f"{v:.3g}" if isinstance(v, float) else v)
            for k, v in trials[i].params.items()
            if not isinstance(space[k], Fixed)
        }
        print(f"  {best[i]:.3f} @{int(curves[i].argmax()) + 1:>2}  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
