"""How a population of configurations is cut into sub-populations that train as one model.

Members that differ in activation, mini-batch size or batch normalization cannot share a
step, so they form separate *groups*. Members of different depths share one: a
shallower member skips the layers it lacks (see :mod:`hyperlab.train.fused`), and each
hidden layer is as wide as the widest member that has it. (Members without hidden
layers, whose output layer reads the inputs, form a group of their own.) Within a
group, members of different widths are padded to the widest member of their *bucket*
(rounded up to a multiple of ``ALIGN``); buckets are chosen by dynamic programming over the
members sorted by width, minimizing

    sum over buckets (sum over members of the FLOPs of its own depth at the bucket's
    padded widths + step overhead),

so a CPU (where one more step costs little next to 512-wide products) gets several
tight buckets, and a GPU (where every step costs a fixed launch overhead) gets few wide
ones. A bucket larger than the memory budget is split into chunks that fit.
No torch here: the plan is plain arithmetic.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from hyperlab.errors import InvalidArgumentError
from hyperlab.train.hparams import TrainConfig, layer_widths

__all__ = [
    "Bucket",
    "plan",
    "deal",
    "epoch_cost",
    "group_key",
    "wasted_share",
    "parse_memory",
    "available_memory",
    "member_bytes",
]

# A step's fixed cost, in the units of the cost above (a forward multiply-add for one
# row) of useful work it could have done instead. On a CPU a step of one member costs
# 75-160 us (1-4 layers), ~2e6 of these units; padding costs more than its products
# (elementwise passes and optimizer state over the padded units too), which a smaller
# figure stands for: 1e6 trained K = 64 fused populations 1.1-1.3x faster than 2e7 on
# digits and MNIST-1D, small nets and the course space (bench/fused.py), wasting 4% of
# the FLOPs on padding in the course space instead of 18%. On a GPU, about 0.5 ms of
# kernel launches at ~100 TFLOP/s.
STEP_OVERHEAD_FLOPS = {"cpu": 1e6, "cuda": 5e10}
# Padded widths are rounded up to a multiple of this: batched products of 31 or 63 units
# take longer than of 32 or 64 on a CPU (bench/fused.py's shapes: 88 vs 61 us, 206 vs
# 181 us), and GPUs' tensor cores want multiples of 8 too.
ALIGN = 8


@dataclass(frozen=True)
class Bucket:
    """Members (indices into the population) that train as one stacked model."""

    key: tuple[int, str, bool, int | None]  # batch size, activation, batch norm, 0 (no hidden layer) or None
    members: tuple[int, ...]
    widths: tuple[int, ...]  # padded hidden widths, one per layer (the deepest member's depth)
    last: int = 0  # the output layer's input width: the widest last hidden layer (0: no hidden layer)

    @property
    def batch_size(self) -> int:
        return self.key[0]


def group_key(config: TrainConfig, n_rows: int) -> tuple[int, str, bool, int | None]:
    depth = len(layer_widths(config.n_layers, config.hidden_units))
    return min(config.batch_size, n_rows), config.activation, bool(config.batch_norm), 0 if depth == 0 else None


def _flops(n_in: int, widths: Sequence[int], n_out: int) -> float:
    """Multiply-adds of one row through the network (what a forward pass costs per row)."""
    dims = [n_in, *widths, n_out]
    return float(sum(a * b for a, b in itertools.pairwise(dims)))


def _padded_flops(n_in: int, padded: Sequence[int], depth: int, n_out: int) -> float:
    """A member of ``depth`` hidden layers in a bucket of ``padded`` widths: its own
    layers at the bucket's widths (it skips the rest)."""
    return _flops(n_in, padded[:depth], n_out)


def member_bytes(
    n_in: int, widths: Sequence[int], n_out: int, batch: int, eval_rows: int, *, test: bool = False
) -> int:
    """Memory one member takes in a population: parameters with their gradient, two
    optimizer moments, the step's direction (the grouped update's buffer), with ``test``
    the copy kept at the best epoch (to measure the test split on) and the live copy kept
    while that is measured, and the activations of a step and of an evaluation chunk."""
    dims = [n_in, *widths, n_out]
    params = sum(a * b + 2 * b for a, b in itertools.pairwise(dims))
    acts = sum(dims[1:])
    copies = 7 if test else 5
    return 4 * (copies * params + 6 * batch * acts + 2 * eval_rows * max(dims))


def plan(
    configs: Sequence[TrainConfig],
    n_in: int,
    n_out: int,
    n_rows: int,
    *,
    device: str = "cpu",
    max_memory: int | None = None,
    eval_rows: int = 1024,
    test: bool = False,
) -> list[Bucket]:
    """The buckets the population trains in, each within ``max_memory`` bytes (counting
    the copies that measuring the ``test`` split needs, see :func:`member_bytes`)."""
    overhead = STEP_OVERHEAD_FLOPS["cuda" if device.startswith("cuda") else "cpu"]
    groups: dict[tuple[int, str, bool, int | None], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c, n_rows), []).append(i)
    buckets: list[Bucket] = []
    for key, members in groups.items():
        widths = {i: layer_widths(configs[i].n_layers, configs[i].hidden_units) for i in members}
        order = sorted(members, key=lambda i: (max(widths[i], default=0), _flops(n_in, widths[i], n_out), i))
        n = len(order)
        # best[j]: least cost of bucketing order[:j]; cut[j]: where its last bucket starts.
        best = [0.0] + [math.inf] * n
        cut = [0] * (n + 1)
        for j in range(1, n + 1):
            padded: list[int] = []
            depths: dict[int, int] = {}  # members of the last bucket per depth
            for i in range(j, 0, -1):  # last bucket = order[i-1 : j]
                member = widths[order[i - 1]]
                padded = _cover(padded, member)
                depths[len(member)] = depths.get(len(member), 0) + 1
                work = sum(count * _padded_flops(n_in, padded, d, n_out) for d, count in depths.items())
                cost = best[i - 1] + key[0] * work + overhead
                if cost < best[j]:
                    best[j], cut[j] = cost, i - 1
        j = n
        spans = []
        while j > 0:
            spans.append((cut[j], j))
            j = cut[j]
        for a, b in reversed(spans):
            chunk = order[a:b]
            padded = []
            for i in chunk:
                padded = _cover(padded, widths[i])
            last = max((_align(widths[i][-1]) for i in chunk if widths[i]), default=0)
            size = member_bytes(n_in, padded, n_out, key[0], eval_rows, test=test)
            per_chunk = len(chunk) if max_memory is None else max(1, max_memory // size)
            if max_memory is not None and size > max_memory:
                raise InvalidArgumentError(
                    f"The 'max_memory' setting ({max_memory:,} bytes) is too small for one member of widths "
                    f"{padded} and batch size {key[0]}, which needs {size:,} bytes."
                )
            for s in range(0, len(chunk), per_chunk):
                part = tuple(sorted(chunk[s : s + per_chunk]))
                buckets.append(Bucket(key, part, tuple(padded), last))
    return buckets


def epoch_cost(bucket: Bucket, configs: Sequence[TrainConfig], n_in: int, n_out: int, n_rows: int) -> float:
    """What an epoch of ``bucket`` costs, in FLOPs: its steps, each the members' own
    layers at the padded widths (forward and backward) plus the step overhead."""
    work = sum(
        _padded_flops(n_in, bucket.widths, len(layer_widths(configs[i].n_layers, configs[i].hidden_units)), n_out)
        for i in bucket.members
    )
    steps = -(-n_rows // bucket.batch_size)
    return steps * (bucket.batch_size * work + STEP_OVERHEAD_FLOPS["cpu"])


def deal(
    buckets: Sequence[Bucket],
    configs: Sequence[TrainConfig],
    n_in: int,
    n_out: int,
    n_rows: int,
    workers: int,
    loads: Sequence[float] | None = None,
) -> list[list[Bucket]]:
    """Deal ``buckets`` out to ``workers`` so that their epochs cost about the same:
    the costliest first, each to the least loaded worker (longest processing time
    first), counting the ``loads`` (epoch costs) they already carry. Workers left
    without a bucket get an empty list."""
    shares: list[list[Bucket]] = [[] for _ in range(workers)]
    loads = [0.0] * workers if loads is None else list(loads)
    costs = [epoch_cost(b, configs, n_in, n_out, n_rows) for b in buckets]
    for cost, b in sorted(zip(costs, buckets, strict=True), key=lambda cb: -cb[0]):
        w = loads.index(min(loads))
        shares[w].append(b)
        loads[w] += cost
    return shares


def _align(width: int) -> int:
    return -(-width // ALIGN) * ALIGN


def _cover(padded: list[int], widths: list[int]) -> list[int]:
    """The smallest padded widths holding both ``padded`` and ``widths``, layer by layer
    (a layer only the deeper one has keeps its width), rounded up to a multiple of ``ALIGN``."""
    depth = max(len(padded), len(widths))
    a = [*padded, *[0] * (depth - len(padded))]
    b = [*widths, *[0] * (depth - len(widths))]
    return [_align(max(x, y)) for x, y in zip(a, b, strict=True)]


def wasted_share(buckets: Sequence[Bucket], configs: Sequence[TrainConfig], n_in: int, n_out: int) -> float:
    """The share of the population's FLOPs spent on padding (0 = none)."""
    done = useful = 0.0
    for b in buckets:
        for i in b.members:
            own = layer_widths(configs[i].n_layers, configs[i].hidden_units)
            done += _padded_flops(n_in, b.widths, len(own), n_out)
            useful += _flops(n_in, own, n_out)
    return 0.0 if done == 0 else 1.0 - useful / done


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_memory(value: int | float | str) -> int:
    """Bytes from ``4GiB``, ``500MB``, ``1e9`` or an int."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"The 'max_memory' setting must be a size such as '4GiB'. Got {value!r} instead.")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        text = str(value).strip().lower().replace(" ", "")
        split = len(text.rstrip("kmgib"))
        number_text, unit = text[:split], text[split:]
        try:
            number = float(number_text)
        except ValueError:
            number = math.nan
    if unit not in _UNITS or not number > 0 or not math.isfinite(number):
        raise InvalidArgumentError(
            f"The 'max_memory' setting must be a positive size such as '4GiB', '500MB' or a number of bytes. "
            f"Got {value!r} instead."
        )
    return int(number * _UNITS[unit])


def available_memory(device: str) -> int:
    """Free memory on ``device`` in bytes (GPU memory for CUDA, available RAM otherwise)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
