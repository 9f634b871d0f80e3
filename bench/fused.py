"""Fused caviar: a population trained as one vectorized model vs the ordinary trainer.

    .venv/bin/python fused.py                                  # digits and MNIST-1D, K = 1 8 64 256
    .venv/bin/python fused.py --datasets mnist1d --ks 64 --epochs 2
    .venv/bin/python fused.py --device cuda --ks 1 64 256       # on a GPU machine
    .venv/bin/python fused.py --study --trials 256 --epochs 30  # fused + ASHA vs Optuna TPE

For each dataset, each space (``course``: hyperlab.course_space(); ``small``: the same
with at most 64 hidden units) and each K, K configurations are drawn at random (seeded)
and trained for ``--epochs`` epochs twice, side by side in one run, each in a fresh
process: fused (hyperlab.train.fused.train_population) and one after another with the
ordinary trainer (hyperlab.train.train). On a CPU the fused side deals its
sub-populations out to ``--workers`` processes (default: one per core, started before
the clock, as the fused runner keeps them for a study); the ordinary side runs in one
process with every core's threads. Reported: trial-epochs per second of both and
their ratio, the peak memory each added to its processes (RSS on the CPU, allocated
memory on a GPU), the useful FLOP/s of the fused run (padding not counted) next to the
FLOP/s of one large plain matrix product on the same device (the physical bound), the
share of the fused FLOPs spent on padding, and the *bmm ceiling*: the trial-epochs per
second the fused run would reach if a step cost nothing but its batched matrix products
(forward, and the two of the backward pass, at the population's own shapes, timed on
random data), and that over the ordinary trainer's rate: the most any cut of the step's
other work (elementwise passes, the loss, the optimizer, Python) could bring. The
ceiling shows how far below the large-matmul bound small products run, and how much of
the rest is per-step overhead. ``at bound``: the speedup a fused run would have if it
ran the population's useful FLOPs at the large-matmul bound (no padding, no overhead,
every product as fast as the largest): what no trainer on this machine can pass.

``--study``: the whole study, 256 trials x 30 epochs of the course space on MNIST-1D
with ``runner: fused`` + ASHA (and TPE) vs Optuna TPE sequential with the same budget.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLOP_PER_MAC_TRAIN = 6  # forward 2, backward 4 (input and weight gradients)
FLOP_PER_MAC_FIRST = 4  # the first layer's: no trainer needs the gradient of the data
FLOP_PER_MAC_EVAL = 2


def draw(space_name: str, k: int, epochs: int, seed: int = 0) -> list[dict[str, Any]]:
    import numpy as np

    from hyperlab import Int, Space, course_space

    space = course_space()
    if space_name == "small":
        space = Space({**space, "hidden_units": Int(16, 64, scale="log", tier=2, default=32)})
    rng = np.random.default_rng(seed)
    return [{**space.from_unit(rng.random(len(space)).tolist()), "epochs": epochs, "seed": 0} for _ in range(k)]


def warm_up(data: Any, device: str, pool: Any = None) -> None:
    """One short run of each trainer (and of the pool's workers), before any clock starts."""
    from hyperlab.train import TrainConfig, train
    from hyperlab.train.fused import train_population

    warm = [TrainConfig(epochs=1, hidden_units=16), TrainConfig(epochs=1, hidden_units=16, batch_size=32)]
    train_population(warm, data, device=device, pool=pool)  # warm up both paths
    train(TrainConfig(epochs=1, hidden_units=16), data)


def in_fresh_process(target: Any, *args: Any) -> Any:
    """What ``target(*args, queue)`` puts on its queue, run in a fresh (spawned) process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def _rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _worker_pids(pool: Any) -> list[int]:
    return [w.process.pid for w in pool._procs] if pool is not None else []


def measure(kind: str, source: str, params: list[dict[str, Any]], device: str, workers: int, queue: Any) -> None:
    """In a fresh process: train ``params`` fused or one by one; put the numbers on ``queue``."""
    import torch

    from hyperlab.train import Diverged, TrainConfig, load_dataset, train
    from hyperlab.train._plan import wasted_share
    from hyperlab.train.fused import PopulationPool, population_plan, train_population

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    data = load_dataset(source)
    configs = [TrainConfig.from_params(p) for p in params]
    # The fused runner keeps its worker processes for a whole study: they are started
    # (and warmed up) before the clock starts, as the imports are.
    pool = PopulationPool(workers, threads=cores) if workers > 1 and device == "cpu" else None
    warm_up(data, device, pool)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    # A worker's peak so far is its warm-up's; what it adds is its peak past its RSS now.
    worker_base = {pid: _rss_bytes(pid) for pid in _worker_pids(pool)}
    t0 = time.perf_counter()
    if kind == "fused":
        results = train_population(configs, data, device=device, pool=pool)
        epochs = [r.result.epochs_run for r in results]
    else:
        epochs = []
        for c in configs:
            seen: list[int] = []
            with contextlib.suppress(Diverged):  # a diverged run counts the epochs it ran
                train(c, data, report=functools.partial(_count, seen))
            epochs.append(len(seen))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
        peak += sum(max(0, _peak_rss_bytes(pid) - b) for pid, b in worker_base.items())
    seconds = time.perf_counter() - t0
    if pool is not None:
        pool.close()
    flops = train_flops(configs, epochs, data)
    buckets = population_plan(configs, data, device=device)
    ceiling = bmm_seconds(buckets, configs, data, epochs, device) if kind == "fused" else 0.0
    queue.put(
        {
            "ceiling": ceiling,
            "seconds": seconds,
            "trial_epochs": sum(epochs),
            "peak": max(peak, 0),
            "flops": flops,
            "buckets": len(buckets),
            "waste": wasted_share(buckets, configs, data.n_features, data.n_outputs),
        }
    )


def bmm_seconds(buckets: Any, configs: Any, data: Any, epochs: list[int], device: str) -> float:
    """Seconds the population's batched matrix products alone take: per bucket, a step's
    products (:func:`step_products_seconds`) times the steps the bucket trains."""
    from hyperlab.train.hparams import layer_widths

    total = 0.0
    m = len(data.x_train)
    for b in buckets:
        depths = [len(layer_widths(configs[i].n_layers, configs[i].hidden_units)) for i in b.members]
        counts = [len(depths) if layer == len(b.widths) else sum(d > layer for d in depths)
                  for layer in range(len(b.widths) + 1)]  # fmt: skip
        dims = [data.n_features, *b.widths, data.n_outputs]
        per_step = step_products_seconds(counts, b.batch_size, dims, device)
        total += per_step * -(-m // b.batch_size) * max(epochs[i] for i in b.members)
    return total


def step_products_seconds(counts: list[int], batch: int, dims: list[int], device: str) -> float:
    """Seconds of one training step's batched matrix products, timed on random data: per
    layer (``dims[l]`` to ``dims[l + 1]``), for the ``counts[l]`` members that have it, the
    forward product and the backward pass's two (one for the first layer, whose input
    needs no gradient)."""
    import torch

    mats = [
        (layer, torch.randn(k, batch, n_in, device=device), torch.randn(k, n_in, n_out, device=device),
         torch.randn(k, batch, n_out, device=device))
        for layer, (k, (n_in, n_out)) in enumerate(zip(counts, itertools.pairwise(dims), strict=True))
        if k
    ]  # fmt: skip
    for rep in range(6):  # the first is a warm-up
        if rep == 1:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        for layer, x, w, g in mats:
            torch.bmm(x, w)
            torch.bmm(x.transpose(1, 2), g)
            if layer > 0:
                torch.bmm(g, w.transpose(1, 2))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / 5


def _count(seen: list[int], epoch: int, metrics: dict[str, float]) -> None:
    seen.append(epoch)


def matmul_bound(device: str, rounds: int = 5) -> float:
    """FLOP/s of one large plain matrix product: the best of ``rounds`` timed rounds.
    The first round after start-up runs up to a quarter slower (threads waking, the
    clock rising), so a single round understates the bound."""
    import torch

    n = 4096 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    reps = 20 if device.startswith("cuda") else 5
    best = 0.0
    for _ in range(rounds):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, reps * 2 * n**3 / (time.perf_counter() - t0))
    return best


def train_flops(configs: Any, epochs: list[int], data: Any) -> float:
    """Useful FLOPs (no padding) of training ``configs`` for ``epochs`` epochs each,
    with a dev evaluation after each epoch."""
    from hyperlab.train.hparams import layer_widths

    m, n_dev = len(data.x_train), len(data.x_dev)
    flops = 0.0
    for c, e in zip(configs, epochs, strict=True):
        dims = [data.n_features, *layer_widths(c.n_layers, c.hidden_units), data.n_outputs]
        macs = sum(a * b for a, b in itertools.pairwise(dims))
        first = dims[0] * dims[1]
        train = FLOP_PER_MAC_TRAIN * macs - (FLOP_PER_MAC_TRAIN - FLOP_PER_MAC_FIRST) * first
        flops += e * (train * m + FLOP_PER_MAC_EVAL * macs * n_dev)
    return flops


def breakdown(source: str, params: list[dict[str, Any]], queue: Any) -> None:
    """In a fresh process on one thread: each bucket of ``params`` trained fused, then
    its configs one after another with the ordinary trainer; per bucket the seconds of
    both, the fused run's share of the one-thread matmul bound, and the seconds of its
    batched products alone (see :func:`bmm_seconds`)."""
    import torch

    from hyperlab.train import Diverged, TrainConfig, load_dataset, train
    from hyperlab.train.fused import population_plan, train_population

    torch.set_num_threads(1)
    bound = matmul_bound("cpu")
    data = load_dataset(source)
    configs = [TrainConfig.from_params(p) for p in params]
    warm_up(data, "cpu")
    rows = []
    for b in population_plan(configs, data, device="cpu"):
        group = [configs[i] for i in b.members]
        t0 = time.perf_counter()
        results = train_population(group, data, device="cpu")
        fused = time.perf_counter() - t0
        epochs = [r.result.epochs_run for r in results]
        t0 = time.perf_counter()
        for c in group:
            with contextlib.suppress(Diverged):
                train(c, data)
        seq = time.perf_counter() - t0
        products = bmm_seconds([dataclasses.replace(b, members=tuple(range(len(group))))], group, data, epochs, "cpu")
        rows.append((b.batch_size, list(b.widths), len(group), fused, seq, train_flops(group, epochs, data), products))
    queue.put({"bound": bound, "rows": rows})


def breakdown_table(args: argparse.Namespace) -> None:
    """``--buckets``: where the fused run's time goes, bucket by bucket, on one thread."""
    for source in args.datasets:
        for space in args.spaces:
            for k in args.ks:
                out = in_fresh_process(breakdown, source, draw(space, k, args.epochs))
                bound = out["bound"]
                print(f"\n{source}, {space}, K = {k}, {args.epochs} epochs; one thread, one large matmul: "
                      f"{bound / 1e9:.1f} GFLOP/s")  # fmt: skip
                print(f"{'batch':>5} {'members':>7} {'widths':>22} {'fused ms':>9} {'ordinary ms':>11} "
                      f"{'speedup':>8} {'of bound':>8} {'products ms':>11} {'share':>6} {'ceiling':>8}")  # fmt: skip
                for batch, widths, n, fused, seq, flops, products in out["rows"]:
                    print(f"{batch:5d} {n:7d} {widths!s:>22} {fused * 1e3:9.1f} {seq * 1e3:11.1f} "
                          f"{seq / fused:7.2f}x {flops / fused / bound:7.1%} {products * 1e3:11.1f} "
                          f"{products / fused:6.1%} {seq / products:7.2f}x")  # fmt: skip
                fused, seq, flops, products = (sum(r[i] for r in out["rows"]) for i in (3, 4, 5, 6))
                print(f"{'all':>5} {k:7d} {'':>22} {fused * 1e3:9.1f} {seq * 1e3:11.1f} {seq / fused:7.2f}x "
                      f"{flops / bound / fused:7.1%} {products * 1e3:11.1f} {products / fused:6.1%} "
                      f"{seq / products:7.2f}x")  # fmt: skip


def population_table(args: argparse.Namespace) -> None:
    import torch

    from hyperlab.train import load_dataset

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    bound = matmul_bound(device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"{os.cpu_count()} CPU cores"
    print(f"device {device} ({name}); one large matmul: {bound / 1e9:.1f} GFLOP/s; {args.epochs} epochs per trial")
    if device == "cpu":
        print(
            f"fused: sub-populations in {args.workers} worker processes; "
            f"ordinary: one process, {os.cpu_count()} threads"
        )
    print(
        f"{'dataset':>15} {'space':>6} {'K':>4} {'fused t-ep/s':>12} {'seq t-ep/s':>11} {'speedup':>8} "
        f"{'fused GFLOP/s':>13} {'of bound':>8} {'waste':>6} {'buckets':>7} {'fused MiB':>9} {'seq MiB':>8} "
        f"{'bmm ceiling t-ep/s':>18} {'ceiling':>8} {'at bound':>8}"
    )
    for source in args.datasets:
        load_dataset(source)  # generate and cache once
        for space in args.spaces:
            for k in args.ks:
                params = draw(space, k, args.epochs)
                fused = in_fresh_process(measure, "fused", source, params, device, args.workers)
                seq_params = params[: args.seq_max] if args.seq_max else params
                seq = in_fresh_process(measure, "seq", source, seq_params, device, 1)
                f_rate = fused["trial_epochs"] / fused["seconds"]
                s_rate = seq["trial_epochs"] / seq["seconds"]
                gflops = fused["flops"] / fused["seconds"] / 1e9
                print(
                    f"{source:>15} {space:>6} {k:>4} {f_rate:12.1f} {s_rate:11.1f} {f_rate / s_rate:7.2f}x "
                    f"{gflops:13.2f} {gflops * 1e9 / bound:7.1%} {fused['waste']:6.1%} {fused['buckets']:7d} "
                    f"{fused['peak'] / 2**20:9.1f} {seq['peak'] / 2**20:8.1f} "
                    f"{fused['trial_epochs'] / fused['ceiling']:18.1f} "
                    f"{fused['trial_epochs'] / fused['ceiling'] / s_rate:7.2f}x "
                    f"{bound / fused['flops'] * fused['trial_epochs'] / s_rate:7.2f}x",
                    flush=True,
                )


# fused kinds: "-asha" prunes with ASHA, "-tpe" samples with hyperlab's TPE, else random
# (caviar.search_for); "-sync" waits for a whole population before asking for the next
# (FusedRunner(refill=False)) instead of refilling it as members leave
FUSED_KINDS = ["fused", "fused-tpe", "fused-asha", "fused-asha-tpe"]
STUDY_KINDS = ["optuna-tpe", *FUSED_KINDS, *(k + "-sync" for k in FUSED_KINDS)]


def whole_study(args: argparse.Namespace) -> None:
    """256 trials x 30 epochs on MNIST-1D: fused (+ ASHA, + TPE) vs Optuna TPE sequential."""
    sys.path.insert(0, str(Path(__file__).parent))
    import caviar

    import hyperlab as hl
    from hyperlab.runners import FusedRunner, RunPolicy
    from hyperlab.train import LoadedObjective, load_dataset

    source = args.datasets[-1]
    data = load_dataset(source, seed=args.seed)  # before the clocks start, on both sides
    rows: dict[str, Any] = {}
    for kind in args.study_kinds:
        with tempfile.TemporaryDirectory() as folder:
            if kind.startswith("optuna"):
                rows[kind] = caviar.run_optuna(kind, source, args.epochs, args.trials, args.seed, Path(folder))
            else:
                scheduler, sampler = caviar.search_for(kind.removesuffix("-sync"), args.epochs)
                study = hl.Study(
                    kind,
                    hl.course_space(),
                    storage=f"sqlite:///{Path(folder) / 'f.db'}",
                    metric=caviar.METRIC,
                    direction="maximize",
                    scheduler=scheduler,
                    sampler=sampler,
                    seed=args.seed,
                )
                factory = LoadedObjective(data, {"epochs": args.epochs, "seed": args.seed}, metric=caviar.METRIC)
                t0 = time.time()
                runner = FusedRunner(
                    population=args.population,
                    device=args.device,
                    workers=args.workers,
                    refill=not kind.endswith("-sync"),
                )
                runner.run(study, factory, RunPolicy(max_trials=args.trials))
                wall = time.time() - t0
                epochs, points = caviar.curve_from_hyperlab(study, t0)
                rows[kind] = {"wall": wall, "epochs": epochs, "points": points}
        print(f"  ran {kind}: {rows[kind]['wall']:.0f} s", file=sys.stderr, flush=True)
    target = args.target
    if target is None and "optuna-tpe" in rows:
        target = max(v for _, v in rows["optuna-tpe"]["points"])
    said = "Optuna TPE's best" if args.target is None else "--target"
    print(
        f"\n{source}, seed {args.seed}, {args.trials} trials x {args.epochs} epochs, "
        f"populations of {args.population or 'auto'}"
    )
    print(f"target = {said}: {'none' if target is None else f'{target:.4f}'}")
    # every kind's best by the time the quickest kind ended: the same wall time for all
    common = min(r["wall"] for r in rows.values())
    by = f"best by {common:.0f} s"
    print(f"{'':>22} {'wall s':>8} {'epochs':>7} {'best dev acc':>13} {by:>14} {'t to target s':>14}")
    for kind, r in rows.items():
        best = max(v for _, v in r["points"])
        early = max((v for t, v in r["points"] if t <= common), default=float("nan"))
        tt = caviar.time_to(r["points"], target) if target is not None else None
        print(
            f"{kind:>22} {r['wall']:8.1f} {r['epochs']:7d} {best:13.4f} {early:14.4f} "
            f"{'never' if tt is None else f'{tt:.1f}':>14}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["sklearn:digits", "mnist1d"])
    parser.add_argument("--spaces", nargs="+", default=["small", "course"], choices=["small", "course"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="fused worker processes on a CPU (1: in process)"
    )
    parser.add_argument("--seq-max", type=int, default=0, help="time the ordinary trainer on only the first N configs")
    parser.add_argument("--study", action="store_true", help="the whole-study comparison instead")
    parser.add_argument(
        "--buckets", action="store_true", help="per bucket, on one thread: fused vs ordinary (CPU), instead"
    )
    parser.add_argument("--trials", type=int, default=256)
    parser.add_argument(
        "--population", type=int, default=None, help="fused population (default: the runner's, see auto_population)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--study-kinds", nargs="+", default=["optuna-tpe", "fused-asha", "fused-asha-tpe"], choices=STUDY_KINDS
    )
    parser.add_argument(
        "--target", type=float, help="the dev accuracy to time (default: Optuna TPE's best, when it runs)"
    )
    args = parser.parse_args()
    if args.study:
        if args.epochs == 2:
            args.epochs = 30
        whole_study(args)
    elif args.buckets:
        breakdown_table(args)
    else:
        population_table(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
