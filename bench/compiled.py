"""What a compiled step would give the fused engine: its eager step vs torch.compile's.

    .venv/bin/python compiled.py                      # the default shapes, one thread
    .venv/bin/python compiled.py --shapes 8x32x64,64,64,40 64x64x64,64

For each shape (members x batch x hidden widths, MNIST-1D's 40 inputs and 10 classes,
ReLU, Adam, every member as deep as the widths say), one thread, in this process:

- ``engine``: microseconds per step of hyperlab's fused engine (``_SubPopulation``, an
  epoch of MNIST-1D; its per-epoch work spread over the steps);
- ``eager`` and ``compiled``: the same step written as plain functional torch (forward,
  loss, a hand-written backward, Adam), run eagerly and through ``torch.compile``
  (inductor with its C++ wrapper: the fewest Python calls per step it offers);
- ``compile s``: the first compiled call's seconds (cold, unless inductor's on-disk cache
  already holds this shape), which a study pays for every variant of a step it trains;
- ``products``: the step's batched matrix products alone, the floor for both
  (``fused.step_products_seconds``).

The gap between ``engine`` and ``compiled`` is what compiling the engine's step could
win, at most, before its compile cost.
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

DEFAULT_SHAPES = ["8x32x64,64,64,40", "64x32x32,32", "16x128x32,32,32", "10x512x32,32,32,32", "64x64x64,64"]
N_IN, N_OUT = 40, 10


def parse(shape: str) -> str:
    """A --shapes value, checked: MEMBERSxBATCHxW1,W2,... (positive integers)."""
    try:
        k, b, widths = shape.split("x")
        if min(int(k), int(b), *(int(w) for w in widths.split(","))) < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shape!r} is not members x batch x widths, such as 8x32x64,64 (positive integers)"
        ) from None
    return shape


def dims_of(shape: str) -> tuple[int, int, list[int]]:
    k, b, widths = shape.split("x")
    return int(k), int(b), [int(w) for w in widths.split(",")]


def engine_us(k: int, batch: int, widths: list[int], data: Any) -> float:
    import torch

    from hyperlab.train import TrainConfig
    from hyperlab.train._plan import Bucket
    from hyperlab.train.fused import _SubPopulation

    configs = [
        TrainConfig(optimizer="adam", batch_size=batch, n_layers=len(widths), hidden_units=list(widths), seed=i)
        for i in range(k)
    ]
    bucket = Bucket((batch, "relu", False, None), tuple(range(k)), tuple(widths), widths[-1])
    sub = _SubPopulation(bucket, configs, data, torch.device("cpu"))
    x, y = torch.as_tensor(data.x_train, dtype=torch.float32), torch.as_tensor(data.y_train)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sub.train_epoch(x, y)
        best = min(best, time.perf_counter() - t0)
    return best / -(-len(x) // batch) * 1e6


def reference_step(widths: list[int]) -> Any:
    """One training step of ``len(widths)`` ReLU layers and a softmax output, members
    stacked, gradients by hand, Adam with per-member coefficients: plain torch."""
    import torch

    depth = len(widths)

    def step(x: Any, y: Any, params: list[Any], ms: list[Any], vs: list[Any], coef: Any) -> Any:
        lr, b1, b2, eps = coef.unbind(0)
        ws, bs = params[: depth + 1], params[depth + 1 :]
        hs = [x]
        h = x
        for layer in range(depth):
            h = torch.relu(torch.baddbmm(bs[layer], h, ws[layer]))
            hs.append(h)
        out = torch.baddbmm(bs[depth], h, ws[depth])
        logp = torch.log_softmax(out, 2)
        cost = -logp.gather(2, y.unsqueeze(2)).squeeze(2)
        g = (logp.exp() - torch.nn.functional.one_hot(y, N_OUT)) / x.shape[1]
        grads_w: list[Any] = [None] * (depth + 1)
        grads_b: list[Any] = [None] * (depth + 1)
        for layer in range(depth, -1, -1):
            grads_w[layer] = torch.bmm(hs[layer].transpose(1, 2), g)
            grads_b[layer] = g.sum(1, keepdim=True)
            if layer > 0:
                g = torch.bmm(g, ws[layer].transpose(1, 2)) * (hs[layer] > 0)
        for p, grad, m, v in zip(params, grads_w + grads_b, ms, vs, strict=True):
            m.lerp_(grad, 1 - b1)
            v.lerp_(grad * grad, 1 - b2)
            p.sub_(lr * m / (v.sqrt() + eps))
        return cost

    return step


def reference_us(k: int, batch: int, widths: list[int], compiled: bool) -> tuple[float, float]:
    """Microseconds per step of the reference step, and the first call's seconds."""
    import torch

    dims = [N_IN, *widths, N_OUT]
    params = [torch.randn(k, a, b) * 0.1 for a, b in itertools.pairwise(dims)]
    params += [torch.zeros(k, 1, b) for b in dims[1:]]
    ms = [torch.zeros_like(p) for p in params]
    vs = [torch.zeros_like(p) for p in params]
    coef = torch.tensor([1e-3, 0.9, 0.999, 1e-8]).view(4, 1, 1, 1).expand(4, k, 1, 1).contiguous()
    n_rows = 3000
    x, y = torch.randn(k, n_rows, N_IN), torch.randint(0, N_OUT, (k, n_rows))
    step = reference_step(widths)
    first = 0.0
    if compiled:
        import torch._inductor.config as inductor

        inductor.cpp_wrapper = True
        step = torch.compile(step, fullgraph=True, dynamic=False)
        t0 = time.perf_counter()
        step(x[:, :batch], y[:, :batch], params, ms, vs, coef)
        first = time.perf_counter() - t0
    steps = n_rows // batch
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(steps):
            step(x[:, i * batch : (i + 1) * batch], y[:, i * batch : (i + 1) * batch], params, ms, vs, coef)
        best = min(best, time.perf_counter() - t0)
    return best / steps * 1e6, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", type=parse, default=DEFAULT_SHAPES, help="members x batch x widths")
    args = parser.parse_args()
    import torch
    from fused import step_products_seconds  # bench/fused.py, beside this script

    from hyperlab.train import load_dataset

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    data = load_dataset("mnist1d")
    print("one thread; microseconds per step")
    print(
        f"{'members x batch x widths':>26} {'engine':>8} {'eager':>8} {'compiled':>9} {'products':>9} "
        f"{'engine/compiled':>15} {'compile s':>9}"
    )
    for shape in args.shapes:
        k, batch, widths = dims_of(shape)
        engine = engine_us(k, batch, widths, data)
        eager, _ = reference_us(k, batch, widths, compiled=False)
        compiled, first = reference_us(k, batch, widths, compiled=True)
        products = step_products_seconds([k] * (len(widths) + 1), batch, [N_IN, *widths, N_OUT], "cpu") * 1e6
        print(
            f"{shape:>26} {engine:8.1f} {eager:8.1f} {compiled:9.1f} {products:9.1f} "
            f"{engine / compiled:14.2f}x {first:9.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
