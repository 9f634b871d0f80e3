"""Cost of an epoch through hyperlab's trainer vs a bare PyTorch loop, same model and data.

    .venv/bin/python trainer.py                 # 3 x 256 MLP, batch 64, digits
    .venv/bin/python trainer.py --repeats 9 --epochs 30

Both sides train the same network (3 hidden layers of 256 ReLU units, Adam, batch 64)
on the same digits split, with the same seed, one after the other in one process,
interleaved over several repeats; the median seconds per epoch is compared.

* bare: the minimal loop (shuffle, forward, loss, backward, step);
* bare + dev: the same plus a dev-set forward pass per epoch, which any tuning run
  needs to see its dev error;
* bare, fused Adam: the bare loop with ``torch.optim.Adam(fused=True)``, the update
  hyperlab's trainer uses (torch.optim's default on the CPU is a loop of small ops per
  parameter tensor);
* hyperlab: ``hyperlab.train.train`` (train cost/error averaged over the mini-batches,
  dev cost/error, lr, seconds, divergence checks);
* hyperlab (sqlite): the same, reporting every epoch's metrics to a trial stored in
  SQLite, as ``hyperlab tune`` does;
* hyperlab, fused engine: ``hyperlab.train.fused.train_alone``, the same run as a
  population of one (backward pass written out, no autograd), which the objective of
  the inline, process and Ray runners uses by default.

``--space course`` (or ``small``): instead, ``--configs`` configurations drawn from the
search space (seeded), each trained for ``--epochs`` epochs by the ordinary trainer and
by the fused engine, back to back in alternating order; the ratio of the total times
and the quartiles of the per-configuration ratios.

    .venv/bin/python trainer.py --space course --configs 48 --epochs 3 --threads 1

Times are CPU seconds of this process (time.process_time), which a busy shared
machine disturbs less than wall time; run with --threads 1 for the steadiest figures.
Each repeat runs the four in a rotated order; ratios are taken within a repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import hyperlab as hl
from hyperlab.train import TrainConfig, load_dataset, train
from hyperlab.train.fused import train_alone
from hyperlab.train.trainer import build_model


def bare_loop(data, epochs: int, seed: int, with_dev: bool, fused: bool = False) -> float:  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xd, yd = torch.from_numpy(data.x_dev), torch.from_numpy(data.y_dev)
    model = build_model(TrainConfig(n_layers=3, hidden_units=256, seed=seed), data)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    t0 = time.process_time()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(64):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if with_dev:
            model.eval()
            with torch.no_grad():
                out = model(xd)
                float(nn.functional.cross_entropy(out, yd)), float((out.argmax(1) != yd).float().mean())
    return (time.process_time() - t0) / epochs


def _config(epochs: int, seed: int) -> TrainConfig:
    return TrainConfig(n_layers=3, hidden_units=256, batch_size=64, learning_rate=1e-3, epochs=epochs, seed=seed)


def hyperlab_loop(data, epochs: int, seed: int, storage: str | None) -> float:  # type: ignore[no-untyped-def]
    """The trainer; with a storage, every epoch is reported to a stored trial."""
    config = _config(epochs, seed)
    if storage is None:
        t0 = time.process_time()
        train(config, data)
        return (time.process_time() - t0) / epochs
    study = hl.Study(f"bench-{time.perf_counter_ns()}", hl.Space(x=hl.Fixed(0)), storage=storage, seed=seed)
    trial = study.ask()
    t0 = time.process_time()
    train(config, data, report=lambda e, m: trial.report(e, **m))
    elapsed = (time.process_time() - t0) / epochs
    study.tell(trial, 0.0)
    return elapsed


def fused_loop(data, epochs: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    config = _config(epochs, seed)
    t0 = time.process_time()
    train_alone(config, data)
    return (time.process_time() - t0) / epochs


def space_comparison(args: argparse.Namespace) -> None:
    """The ordinary trainer vs the fused engine over configurations of a search space."""
    from fused import draw

    from hyperlab.train import Diverged

    data = load_dataset(args.dataset, seed=0)
    configs = [TrainConfig.from_params(p) for p in draw(args.space, args.configs, args.epochs, seed=args.seed)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {data.describe()}")
    print(f"{len(configs)} configurations of the {args.space} space, {args.epochs} epochs each")

    def timed(run, config) -> float:  # type: ignore[no-untyped-def]
        t0 = time.process_time()
        with contextlib.suppress(Diverged):
            run(config, data)
        return time.process_time() - t0

    warm = TrainConfig(epochs=1, hidden_units=16)  # imports, first allocations
    timed(train, warm)
    timed(train_alone, warm)
    ordinary, fused = [], []
    for i, config in enumerate(configs):
        pair = [(ordinary, train), (fused, train_alone)]
        for out, run in pair if i % 2 == 0 else pair[::-1]:
            out.append(timed(run, config))
    ratios = [a / b for a, b in zip(ordinary, fused, strict=True)]
    q = statistics.quantiles(ratios, n=4)
    print(f"ordinary trainer: {sum(ordinary):.2f} s; fused engine: {sum(fused):.2f} s")
    print(f"ordinary / fused: {sum(ordinary) / sum(fused):.2f}x in total; per configuration median {q[1]:.2f}x")
    print(f"  (quartiles {q[0]:.2f}-{q[2]:.2f}x, min {min(ratios):.2f}x, max {max(ratios):.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--space", choices=["course", "small"], help="compare the engines over this space instead")
    parser.add_argument("--configs", type=int, default=48)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.space:
        space_comparison(args)
        return 0
    data = load_dataset("sklearn:digits", seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {data.describe()}")
    print(f"model 3 x 256 ReLU, Adam, batch 64; {args.epochs} epochs x {args.repeats} repeats, interleaved")
    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{Path(folder) / 'bench.db'}"
        runs = {
            "bare": lambda r: bare_loop(data, args.epochs, r, False),
            "bare + dev": lambda r: bare_loop(data, args.epochs, r, True),
            "bare, fused Adam": lambda r: bare_loop(data, args.epochs, r, False, fused=True),
            "hyperlab": lambda r: hyperlab_loop(data, args.epochs, r, None),
            "hyperlab (sqlite)": lambda r: hyperlab_loop(data, args.epochs, r, storage),
            "hyperlab, fused engine": lambda r: fused_loop(data, args.epochs, r),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():  # warm-up: imports, first allocations
            run(0)
        names = list(runs)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
                times[name].append(runs[name](r))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, m in med.items():
        print(f"{name:>22}: {m * 1e3:7.2f} ms/epoch (median; min {min(times[name]) * 1e3:.2f})")
    # Ratios within each repeat (the three runs are back to back), then their median:
    # this cancels most of the drift of a shared machine.
    pairs = (
        ("hyperlab (sqlite)", "bare + dev"),
        ("hyperlab", "bare + dev"),
        ("hyperlab (sqlite)", "bare"),
        ("bare, fused Adam", "bare"),
        ("hyperlab", "hyperlab, fused engine"),
    )
    for ours, ref in pairs:
        ratios = [a / b for a, b in zip(times[ours], times[ref], strict=True)]
        q = statistics.quantiles(ratios, n=4)
        print(f"{ours:>17} / {ref:<22}: median {statistics.median(ratios):.3f}x (quartiles {q[0]:.3f}-{q[2]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
