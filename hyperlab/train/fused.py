"""Fused caviar: train a population of MLP configurations as one vectorized model.

The weights of K members are stacked as [K, fan_in, fan_out] tensors and every layer
is one batched matrix product (``torch.baddbmm``), so one step trains K models and
the per-step Python and dispatch overhead is paid once, not K times.

What may differ between members of one sub-population (see :mod:`hyperlab.train._plan`
for how members are grouped): the learning rate and its decay schedule and rate, the
optimizer (gd, momentum, RMSprop and Adam run as one update with per-member
coefficients: gd is momentum with beta 0), its betas and epsilon, L2, the dropout rate,
the number of epochs, early stopping, the seed (initialization and mini-batch order)
and the hidden widths: narrower members are padded to the widest of their bucket, with
the padded weights, biases, gradients and optimizer moments held at exactly zero (the
padded units compute 0 in the forward pass; for sigmoid, whose sigmoid(0) is 0.5, a
mask zeroes them). Depth, activation, mini-batch size and batch normalization make
separate sub-populations, which train interleaved: one epoch of each in turn, so a
scheduler sees every sub-population's curves advance together.

Each member starts from exactly the weights the ordinary trainer gives its config and
seed (the same modules are built under the same seed and copied in), draws its
mini-batches from its own generator like :func:`hyperlab.train.train`, and reports its
own learning curve. Dropout masks come from one generator for the population, so a
member's masks differ from those it would draw alone (equal in distribution).

A member whose cost becomes NaN/inf, or grows past ``diverge_factor`` times its first
epoch's, is removed at the end of the epoch; its values never enter another member's
arithmetic (every reduction is per member). Members that finish, stop early or are
stopped by a scheduler are removed too, and the sub-population is compacted so they
stop costing compute.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hyperlab.train._plan import Bucket, available_memory, padded_widths, plan
from hyperlab.train.data import Dataset
from hyperlab.train.hparams import TrainConfig, layer_widths
from hyperlab.train.model import LEAKY_SLOPE
from hyperlab.train.trainer import EpochBook, TrainResult, _tensors, build_model, epoch_metrics, learning_rate_at

__all__ = ["FusedResult", "train_population", "resolve_device", "population_plan"]

BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults, as the ordinary trainer uses
MEMORY_SHARE = 0.5  # default max_memory: this share of the free RAM / GPU memory

# The gradients are views into one flat buffer per sub-population, which autograd
# accumulates into in place; it warns that such strided views may be slower.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


@dataclass
class FusedResult:
    """How one member ended: its curve and best epoch, and why it diverged (or None)."""

    result: TrainResult
    diverged: str | None = None


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is available, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def population_plan(
    configs: Sequence[TrainConfig], data: Dataset, *, device: str = "cpu", max_memory: int | None = None
) -> list[Bucket]:
    """The sub-populations ``configs`` would train in (see :mod:`hyperlab.train._plan`)."""
    device = resolve_device(device)
    if max_memory is None:
        max_memory = int(MEMORY_SHARE * available_memory(device))
    return plan(configs, data.n_features, data.n_outputs, len(data.x_train), device=device, max_memory=max_memory)


class _Member:
    """One member: its place in the population, its config and its epoch book."""

    def __init__(self, index: int, config: TrainConfig) -> None:
        self.index, self.config = index, config
        self.book = EpochBook(config)
        self.diverged: str | None = None


class _SubPopulation:
    """The members of one bucket, stacked: parameters [K, P] with one row per member."""

    def __init__(self, bucket: Bucket, configs: Sequence[TrainConfig], data: Dataset, device: torch.device) -> None:
        self.bucket, self.device, self.task = bucket, device, data.task
        self.members = [_Member(i, configs[i]) for i in bucket.members]
        self.batch, self.activation, self.bn, _ = bucket.key
        depth = len(bucket.widths)
        self.dims = [data.n_features, *bucket.widths, data.n_outputs]
        self.epoch = 0
        self.steps = 0
        # Layout of one member's row of theta: per layer W [in, out], then the bias (or
        # BN's gamma and beta on hidden layers with batch norm).
        self.slots: list[dict[str, tuple[int, tuple[int, ...]]]] = []
        offset = 0
        for layer, (a, b) in enumerate(zip(self.dims, self.dims[1:], strict=False)):
            hidden_bn = self.bn and layer < depth
            slot: dict[str, tuple[int, tuple[int, ...]]] = {"W": (offset, (a, b))}
            offset += a * b
            for name in ("gamma", "beta") if hidden_bn else ("b",):
                slot[name] = (offset, (b,))
                offset += b
            self.slots.append(slot)
        k = len(self.members)
        self.theta = torch.zeros(k, offset, device=device)
        self.grad = torch.zeros_like(self.theta)
        self.m = torch.zeros_like(self.theta)
        self.v = torch.zeros_like(self.theta)
        self.running = (
            [(torch.zeros(k, w, device=device), torch.ones(k, w, device=device)) for w in bucket.widths]
            if self.bn
            else []
        )
        self.unit_masks = [torch.zeros(k, 1, w, device=device) for w in bucket.widths]
        # Identity layers padding a shallower member are frozen: 0 where a member's layer
        # is an identity (its gradients are zeroed), 1 where it trains; None: all train.
        depths = [len(layer_widths(m.config.n_layers, m.config.hidden_units)) for m in self.members]
        self.train_masks: list[torch.Tensor | None] = [
            None
            if all(d > layer for d in depths)
            else torch.tensor([float(d > layer) for d in depths], device=device).view(-1, 1, 1)
            for layer in range(depth)
        ]
        with torch.no_grad():
            for row, member in enumerate(self.members):
                self._load_initial(row, member.config, data)
        gens: dict[int, torch.Generator] = {}
        self.generators = [
            gens.setdefault(m.config.seed, torch.Generator().manual_seed(m.config.seed)) for m in self.members
        ]
        self.dropout_gen = torch.Generator(device=device).manual_seed(self.members[0].config.seed)
        self._coefficients()
        self._bind()

    # -- set-up ----------------------------------------------------------------------
    def _load_initial(self, row: int, config: TrainConfig, data: Dataset) -> None:
        """Copy the ordinary trainer's initial weights for ``config`` into this row
        (and identity layers after its last hidden layer, if it is shallower)."""
        torch.manual_seed(config.seed)
        model = build_model(config, data)
        linears = [mod for mod in model if isinstance(mod, nn.Linear)]
        norms = [mod for mod in model if isinstance(mod, nn.BatchNorm1d)]
        depth = len(self.bucket.widths)
        own = layer_widths(config.n_layers, config.hidden_units)
        places = [*range(len(own)), depth]  # the output layer is the bucket's last
        for layer, linear in zip(places, linears, strict=True):
            slot = self.slots[layer]
            out_w, in_w = linear.weight.shape
            self._block(row, slot["W"])[:in_w, :out_w] = linear.weight.detach().T
            if "b" in slot:
                self._block(row, slot["b"])[:out_w] = linear.bias.detach()
            else:
                norm = norms[layer]
                self._block(row, slot["gamma"])[:out_w] = norm.weight.detach()
                self._block(row, slot["beta"])[:out_w] = norm.bias.detach()
        for layer, w in enumerate(padded_widths(own, depth)):
            self.unit_masks[layer][row, 0, :w] = 1.0
            if layer >= len(own):
                self._block(row, self.slots[layer]["W"])[:w, :w] = torch.eye(w)

    def _block(self, row: int, slot: tuple[int, tuple[int, ...]]) -> torch.Tensor:
        off, shape = slot
        return self.theta[row, off : off + math.prod(shape)].view(shape)

    def _coefficients(self) -> None:
        """Per-member optimizer coefficients as [K, 1] columns."""

        def col(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64).view(-1, 1)

        cs = [m.config for m in self.members]
        opt = [c.optimizer for c in cs]
        self.beta1 = col(
            [
                c.momentum if o == "momentum" else c.adam_beta1 if o == "adam" else 0.0
                for c, o in zip(cs, opt, strict=True)
            ]
        )
        self.beta2 = col(
            [
                c.rmsprop_beta if o == "rmsprop" else c.adam_beta2 if o == "adam" else 0.0
                for c, o in zip(cs, opt, strict=True)
            ]
        )
        self.eps = col(
            [
                c.rmsprop_epsilon if o == "rmsprop" else c.adam_epsilon if o == "adam" else 1.0
                for c, o in zip(cs, opt, strict=True)
            ]
        )
        self.is_adam = col([1.0 if o == "adam" else 0.0 for o in opt])
        self.adaptive = torch.tensor([o in ("rmsprop", "adam") for o in opt]).view(-1, 1).to(self.device)
        self.l2 = torch.tensor([c.l2 for c in cs], device=self.device)
        self.dropout = [
            torch.tensor(
                [c.dropout if len(layer_widths(c.n_layers, c.hidden_units)) > layer else 0.0 for c in cs],
                device=self.device,
            ).view(-1, 1, 1)
            for layer in range(len(self.bucket.widths))
        ]
        self.any_l2 = any(c.l2 > 0 for c in cs)
        self.any_dropout = any(c.dropout > 0 for c in cs)
        self.all_adaptive = bool(self.adaptive.all())
        self.any_adaptive = bool(self.adaptive.any())
        self.mask_units = self.activation == "sigmoid"
        self._device_coefficients()

    def _device_coefficients(self) -> None:
        self.one_minus_b1 = (1 - self.beta1).to(self.device, torch.float32)
        self.one_minus_b2 = (1 - self.beta2).to(self.device, torch.float32)
        self.eps_d = self.eps.to(self.device, torch.float32)

    def _bind(self) -> None:
        """(Re)build the per-layer parameter views of theta and point their grads into ``grad``."""
        k = self.theta.shape[0]
        self.params: list[dict[str, torch.Tensor]] = []
        for slot in self.slots:
            views = {}
            for name, (off, shape) in slot.items():
                size = math.prod(shape)
                p = self.theta[:, off : off + size].view(k, *shape)
                p.requires_grad_()
                p.grad = self.grad[:, off : off + size].view(k, *shape)
                views[name] = p
            self.params.append(views)

    # -- one epoch -------------------------------------------------------------------
    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return torch.relu(z)
        if self.activation == "leaky_relu":
            return nn.functional.leaky_relu(z, LEAKY_SLOPE)
        if self.activation == "tanh":
            return torch.tanh(z)
        return torch.sigmoid(z)

    def _forward(self, h: torch.Tensor, train: bool) -> torch.Tensor:
        last = len(self.params) - 1
        for layer, p in enumerate(self.params):
            if layer == last:
                return torch.baddbmm(p["b"].unsqueeze(1), h, p["W"])
            if self.bn:
                z = torch.bmm(h, p["W"])
                mean_run, var_run = self.running[layer]
                if train:
                    mean = z.mean(1, keepdim=True)
                    var = z.var(1, unbiased=False, keepdim=True)
                    with torch.no_grad():
                        n = z.shape[1]
                        mean_run.mul_(1 - BN_MOMENTUM).add_(mean.squeeze(1), alpha=BN_MOMENTUM)
                        var_run.mul_(1 - BN_MOMENTUM).add_(var.squeeze(1) * (n / max(n - 1, 1)), alpha=BN_MOMENTUM)
                else:
                    mean, var = mean_run.unsqueeze(1), var_run.unsqueeze(1)
                z = (z - mean) * torch.rsqrt(var + BN_EPS) * p["gamma"].unsqueeze(1) + p["beta"].unsqueeze(1)
            else:
                z = torch.baddbmm(p["b"].unsqueeze(1), h, p["W"])
            h = self._act(z)
            if self.mask_units:
                h = h * self.unit_masks[layer]
            if train and self.any_dropout:
                p_drop = self.dropout[layer]
                keep = torch.rand(h.shape, generator=self.dropout_gen, device=h.device) >= p_drop
                h = h * keep / (1 - p_drop)
        raise AssertionError("unreachable: the output layer returns")

    def _losses(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member mean cost and summed errors of a batch (out [K, B, C], y [K, B])."""
        k, b = y.shape
        if self.task == "multiclass":
            cost = nn.functional.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b)
            errors = (out.argmax(2) != y).sum(1)
        elif self.task == "binary":
            logit = out[..., 0]
            cost = nn.functional.binary_cross_entropy_with_logits(logit, y.float(), reduction="none")
            errors = ((logit > 0).long() != y).sum(1)
        else:
            cost = (out[..., 0] - y) ** 2
            errors = cost.detach().sum(1)
        return cost.mean(1), errors

    def _l2(self, batch: int) -> torch.Tensor:
        total = torch.zeros_like(self.l2)
        for layer, p in enumerate(self.params):
            squares = (p["W"] * p["W"]).sum((1, 2))
            mask = self.train_masks[layer] if layer < len(self.train_masks) else None
            total = total + (squares if mask is None else squares * mask.view(-1))
        return self.l2 / (2 * batch) * total

    @staticmethod
    def _rows(x: torch.Tensor, idx: torch.Tensor, shared: bool) -> torch.Tensor:
        """The rows ``idx`` [K, B] of ``x``: one gather when all members share an order."""
        if shared:
            rows = x[idx[0]]
            return rows.expand(idx.shape[0], *rows.shape)
        return x[idx]

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One epoch for every member; per-member train cost and error (means over rows)."""
        k, m = len(self.members), x.shape[0]
        orders = {}
        for gen in self.generators:
            if id(gen) not in orders:
                orders[id(gen)] = torch.randperm(m, generator=gen)
        shared = len(orders) == 1
        order = torch.stack([orders[id(g)] for g in self.generators]).to(self.device)
        lr = torch.tensor([learning_rate_at(mm.config, self.epoch) for mm in self.members], dtype=torch.float64).view(
            -1, 1
        )
        cost_sum = torch.zeros(k, device=self.device)
        err_sum = torch.zeros(k, device=self.device)
        steps, bc2s = self._schedule(lr, -(-m // self.batch))
        for n, i in enumerate(range(0, m, self.batch)):
            idx = order[:, i : i + self.batch]
            bs = idx.shape[1]
            xb, yb = self._rows(x, idx, shared), self._rows(y, idx, shared)
            out = self._forward(xb, train=True)
            cost, errors = self._losses(out, yb)
            if self.any_l2:
                cost = cost + self._l2(bs)
            self.grad.zero_()
            cost.sum().backward()
            self._freeze_identities()
            self._update(steps[n], bc2s[n])
            cost_sum += cost.detach() * bs
            err_sum += errors
        self.epoch += 1
        return cost_sum / m, err_sum / m

    @torch.no_grad()
    def _freeze_identities(self) -> None:
        for p, mask in zip(self.params, self.train_masks, strict=False):
            if mask is not None:
                p["W"].grad.mul_(mask)  # type: ignore[union-attr]
                p["b"].grad.mul_(mask.view(-1, 1))  # type: ignore[union-attr]

    def _schedule(self, lr: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per step of the coming epoch and per member: the step size lr / (1 - beta1^t)
        and sqrt(1 - beta2^t) (Adam's bias corrections, 1 for the others), in float64
        as torch's Adam computes them. Members without a second moment get an infinite
        divisor, so their denominator sqrt(v) / inf + 1 is exactly 1."""
        t = torch.arange(self.steps + 1, self.steps + steps + 1, dtype=torch.float64).view(-1, 1, 1)
        bc1 = 1 - self.is_adam * self.beta1**t
        bc2 = (1 - self.is_adam * self.beta2**t).sqrt()
        bc2 = torch.where(self.adaptive.cpu(), bc2, torch.inf)
        step = lr / bc1
        return step.to(self.device, torch.float32), bc2.to(self.device, torch.float32)

    @torch.no_grad()
    def _update(self, step: torch.Tensor, bc2: torch.Tensor) -> None:
        """One optimizer step for every member: momentum / RMSprop / Adam, vectorized.

        m <- m + (1 - beta1) (g - m); v <- v + (1 - beta2) (g^2 - v);
        theta <- theta - step * m / (sqrt(v) / bc2 + eps), with beta1 = 0 for gd and
        RMSprop, and the denominator exactly 1 for gd and momentum.
        """
        self.steps += 1
        g = self.grad
        self.m.lerp_(g, self.one_minus_b1)
        if not self.any_adaptive:
            self.theta.sub_(step * self.m)
            return
        self.v.lerp_(g * g, self.one_minus_b2)
        denom = self.v.sqrt().div_(bc2).add_(self.eps_d)
        self.theta.addcdiv_(step * self.m, denom, value=-1.0)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member (cost, error) on a whole split in eval mode, ``rows`` rows at a time."""
        k, n = len(self.members), x.shape[0]
        cost = torch.zeros(k, device=self.device)
        errors = torch.zeros(k, device=self.device)
        for i in range(0, n, rows):
            xb, yb = x[i : i + rows], y[i : i + rows]
            out = self._forward(xb.expand(k, *xb.shape), train=False)
            c, e = self._losses(out, yb.expand(k, *yb.shape))
            cost += c * xb.shape[0]
            errors += e
        return cost / n, errors / n

    def keep(self, rows: list[int]) -> None:
        """Compact to the members at ``rows``: the others stop costing compute."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        cpu_index = index.cpu()
        self.members = [self.members[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]
        with torch.no_grad():
            self.theta = self.theta.index_select(0, index)
            self.grad = self.grad.index_select(0, index)
            self.m = self.m.index_select(0, index)
            self.v = self.v.index_select(0, index)
            self.running = [(a.index_select(0, index), b.index_select(0, index)) for a, b in self.running]
            self.unit_masks = [u.index_select(0, index) for u in self.unit_masks]
        for name in ("beta1", "beta2", "eps", "is_adam"):
            setattr(self, name, getattr(self, name).index_select(0, cpu_index))
        self.adaptive = self.adaptive.index_select(0, index)
        self.l2 = self.l2.index_select(0, index)
        self.dropout = [d.index_select(0, index) for d in self.dropout]
        self.train_masks = [None if t is None else t.index_select(0, index) for t in self.train_masks]
        self.all_adaptive = bool(self.adaptive.all())
        self.any_adaptive = bool(self.adaptive.any())
        self._device_coefficients()
        self._bind()


def train_population(
    configs: Sequence[TrainConfig],
    data: Dataset,
    *,
    report: Callable[[int, int, dict[str, float]], None] | None = None,
    should_stop: Callable[[int], bool] | None = None,
    device: str = "auto",
    max_memory: int | None = None,
    eval_rows: int = 1024,
    on_epoch: Callable[[], None] | None = None,
) -> list[FusedResult]:
    """Train every config of ``configs`` on ``data``, fused; results in the same order.

    ``report(i, epoch, metrics)`` gets member i's metrics after each of its epochs (the
    same names as :func:`hyperlab.train.train` reports); ``should_stop(i)`` is asked
    after each report (a scheduler's verdict). ``on_epoch()`` runs after each round of
    epochs (a live display). ``max_memory`` bounds the bytes a sub-population may take
    (default: half the free RAM or GPU memory); larger ones are split into chunks.
    """
    for c in configs:
        c.check()
    # Tiny gradients squared (Adam's and RMSprop's v) fall into float32's subnormal
    # range, where CPU arithmetic is many times slower; they are flushed to zero while
    # the population trains (the ordinary trainer's curves are unchanged at 1e-7).
    torch.set_flush_denormal(True)
    try:
        return _train_population(configs, data, report, should_stop, device, max_memory, eval_rows, on_epoch)
    finally:
        torch.set_flush_denormal(False)


def _train_population(
    configs: Sequence[TrainConfig],
    data: Dataset,
    report: Callable[[int, int, dict[str, float]], None] | None,
    should_stop: Callable[[int], bool] | None,
    device: str,
    max_memory: int | None,
    eval_rows: int,
    on_epoch: Callable[[], None] | None,
) -> list[FusedResult]:
    dev = torch.device(resolve_device(device))
    buckets = population_plan(configs, data, device=str(dev), max_memory=max_memory)
    t = _device_tensors(data, dev)
    x, y, x_dev, y_dev = t["x_train"], t["y_train"], t["x_dev"], t["y_dev"]
    classify = data.task != "regression"
    subs = [_SubPopulation(b, configs, data, dev) for b in buckets]
    done: dict[int, FusedResult] = {}
    while subs:
        for sub in list(subs):
            t0 = time.perf_counter()
            epoch = sub.epoch
            train_cost, train_error = (v.tolist() for v in sub.train_epoch(x, y))
            dev_cost, dev_error = (v.tolist() for v in sub.evaluate(x_dev, y_dev, eval_rows))
            seconds = (time.perf_counter() - t0) / len(sub.members)
            keep: list[int] = []
            for row, member in enumerate(sub.members):
                metrics = epoch_metrics(
                    classify,
                    train_cost[row],
                    train_error[row],
                    dev_cost[row],
                    dev_error[row],
                    learning_rate_at(member.config, epoch),
                    seconds,
                )
                if _after_epoch(member, epoch, metrics, report, should_stop):
                    keep.append(row)
                else:
                    done[member.index] = FusedResult(member.book.result, member.diverged)
            if not keep:
                subs.remove(sub)
            elif len(keep) < len(sub.members):
                sub.keep(keep)
        if on_epoch is not None:
            on_epoch()
    return [done[i] for i in range(len(configs))]


def _after_epoch(
    member: _Member,
    epoch: int,
    metrics: dict[str, float],
    report: Callable[[int, int, dict[str, float]], None] | None,
    should_stop: Callable[[int], bool] | None,
) -> bool:
    """Record one epoch of a member as ``train`` does; whether it trains on."""
    book = member.book
    book.record(epoch, metrics)
    if report is not None:
        report(member.index, epoch, metrics)
    member.diverged = book.divergence(epoch, metrics)
    if member.diverged is not None:
        return False
    book.improved(epoch, metrics)
    if book.patience_spent():
        return False
    if should_stop is not None and should_stop(member.index):
        return False
    return epoch + 1 < member.config.epochs


def _device_tensors(data: Dataset, device: torch.device) -> dict[str, torch.Tensor]:
    t = _tensors(data)
    if device.type == "cpu":
        return t
    cache: dict[str, dict[str, torch.Tensor]] = getattr(data, "_on_device", {})
    if str(device) not in cache:
        cache[str(device)] = {k: v.to(device) for k, v in t.items()}
        data._on_device = cache  # type: ignore[attr-defined]
    return cache[str(device)]
