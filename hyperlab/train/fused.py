"""Fused caviar: train a population of MLP configurations as one vectorized model.

The weights of K members are stacked as [K, fan_in, fan_out] tensors and every layer
is one batched matrix product (``torch.baddbmm``), so one step trains K models and
the per-step Python and dispatch overhead is paid once, not K times.

What may differ between members of one sub-population (see :mod:`hyperlab.train._plan`
for how members are grouped): the learning rate and its decay schedule and rate, the
optimizer (gd, momentum, RMSprop and Adam run as one update with per-member
coefficients: gd is momentum with beta 0; on a CPU with torch >= 2.4, Adam and
RMSprop go through torch's fused Adam kernel instead, 2-3x faster there than the nine
passes of the vectorized form: see ``_SubPopulation._update``), its betas and epsilon,
L2, the dropout rate,
the number of epochs, early stopping, the seed (initialization and mini-batch order),
the depth and the hidden widths. Narrower members are padded to the widest of their
bucket, with the padded weights, biases, gradients and optimizer moments held at
exactly zero (the padded units compute 0 in the forward pass; for sigmoid, whose
sigmoid(0) is 0.5, a mask zeroes them). Shallower members skip the layers they lack:
rows are sorted deepest first, each hidden layer is computed for the prefix of members
that have it, and each member's output layer reads its own last hidden layer. The
backward pass is written out by hand (a few batched products per layer), not recorded
by autograd. Activation, mini-batch size and batch normalization make separate
sub-populations, which train interleaved: one epoch of each in turn, so a scheduler sees
every sub-population's curves advance together.

Each member starts from exactly the weights the ordinary trainer gives its config and
seed (drawn under the same seed by the same generator calls, see
:func:`hyperlab.train.model.initial_weights`, and copied in), draws its
mini-batches from its own generator like :func:`hyperlab.train.train`, and reports its
own learning curve. Dropout masks come from one generator for the population, so a
member's masks differ from those it would draw alone (equal in distribution). On one
thread a member's numbers are, bit for bit, those it gets among any other members; on
more, a product of a single matrix (a member alone in its sub-population, or the last
row left in a layer) may have its sum split among the threads by the BLAS (MKL on an AMD
EPYC does, for 10 x 128 by 128 x 64), and round differently from the same product in a
batch, where each matrix runs on one thread.

A member whose cost becomes NaN/inf, or grows past ``diverge_factor`` times its first
epoch's, is removed at the end of the epoch; its values never enter another member's
arithmetic (every reduction is per member). Members that finish, stop early or are
stopped by a scheduler are removed too, and the sub-population is compacted so they
stop costing compute.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import torch
from torch import nn

from hyperlab.errors import InvalidArgumentError, check_int
from hyperlab.train._plan import Bucket, available_memory, deal, epoch_cost, plan
from hyperlab.train._pool import PopulationPool
from hyperlab.train.data import Dataset
from hyperlab.train.hparams import TrainConfig, layer_widths
from hyperlab.train.model import LEAKY_SLOPE, initial_weights
from hyperlab.train.trainer import (
    _FAST_ADAM,
    Diverged,
    EpochBook,
    TrainResult,
    _tensors,
    build_model,
    epoch_metrics,
    learning_rate_at,
    optimizer_betas,
)

__all__ = [
    "FusedResult",
    "PopulationPool",
    "train_population",
    "train_alone",
    "train_and_test_alone",
    "resolve_device",
    "population_plan",
]

BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults, as the ordinary trainer uses
MEMORY_SHARE = 0.5  # default max_memory: this share of the free RAM / GPU memory
FLT_MIN = torch.finfo(torch.float32).tiny  # the smallest normal float32
# On a CPU with torch's fused Adam kernel (torch >= 2.4), Adam and RMSprop steps run
# through it (see _SubPopulation._update): one member at a time where a member's row (its
# parameters, padded) holds at least this many, else one call for all members of an
# optimizer and betas. Per step at 64 members, grouped vs one at a time vs the nine passes of the
# vectorized form: 29 / 294 / 54 us at 610 parameters, 288 / 459 / 695 us at 4,810,
# 1,094 / 902 / 2,624 us at 17,290 (the state no longer fits in the cache).
ROW_UPDATE_MIN = 12_000
FUSED_KERNEL = "fused" in _FAST_ADAM
# Batched products into a strided view of matrices smaller than this go through a
# contiguous copy (see _bmm_into): the break-even measured on a CPU, 64 members.
VIEW_BMM_MIN = 4096
# A refilled population (train_population's ``more``) takes new members once at least
# this share of its places is free: new members make new sub-populations, and a cohort
# of a few members fuses little.
REFILL_SHARE = 1 / 8
# Rows per forward pass when a split is evaluated (bounds the memory of an evaluation).
EVAL_ROWS = 1024


@dataclass
class FusedResult:
    """How one member ended: its curve and best epoch, why it diverged (or None), and,
    when :func:`train_population` was asked to ``test``, the test split's cost and error
    on its own weights at its best epoch (None for a member that diverged or that
    ``should_stop`` stopped)."""

    result: TrainResult
    diverged: str | None = None
    test: tuple[float, float] | None = None


class _Verdict(NamedTuple):
    """The judge's word on one epoch of a sub-population, by row: who trains on, whose
    state is its best so far (to keep), and who completed (to measure on the test split
    with the kept state)."""

    keep: list[int]
    best: list[int]
    test: list[int]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is available, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def population_plan(
    configs: Sequence[TrainConfig],
    data: Dataset,
    *,
    device: str = "cpu",
    max_memory: int | None = None,
    test: bool = False,
) -> list[Bucket]:
    """The sub-populations ``train_population(configs, data, test=test)`` trains in (see
    :mod:`hyperlab.train._plan`): with ``test``, the memory measuring the test split
    takes is counted."""
    device = resolve_device(device)
    if max_memory is None:
        max_memory = int(MEMORY_SHARE * available_memory(device))
    n_rows = len(data.x_train)
    return plan(configs, data.n_features, data.n_outputs, n_rows, device=device, max_memory=max_memory, test=test)


class _Member:
    """One member of a sub-population: its place in the population, its config and depth
    (its books are the :class:`_Judge`'s)."""

    def __init__(self, index: int, config: TrainConfig) -> None:
        self.index, self.config = index, config
        self.depth = len(layer_widths(config.n_layers, config.hidden_units))


@dataclass
class _Tape:
    """What one training step's forward pass keeps for its backward pass, per hidden layer."""

    inputs: list[torch.Tensor]  # inputs[l]: what layer l reads ([n_l, B, in]); inputs[L]: the last hidden output
    acts: list[torch.Tensor]  # the activation's output, before dropout
    keeps: list[torch.Tensor | None]  # dropout's scaled keep mask
    norms: list[tuple[torch.Tensor, torch.Tensor]]  # batch norm's normalized z and 1/std


class _Layer:
    """Views of one hidden layer's parameters and gradients for its active rows: the
    first ``n`` members (rows are sorted deepest first)."""

    w: torch.Tensor
    wt: torch.Tensor
    gw: torch.Tensor
    bias: torch.Tensor  # without batch norm
    g_bias: torch.Tensor
    gamma: torch.Tensor  # with batch norm
    beta: torch.Tensor
    g_gamma: torch.Tensor
    g_beta: torch.Tensor

    def __init__(self, sub: _SubPopulation, index: int, n: int) -> None:
        p, g = sub.params[index], sub.grads[index]
        self.n, self.width = n, sub.widths[index]
        self.w, self.gw = p["W"][:n], g["W"][:n]
        self.wt = self.w.transpose(1, 2)
        if sub.bn:
            self.gamma, self.beta = p["gamma"][:n].unsqueeze(1), p["beta"][:n].unsqueeze(1)
            self.g_gamma, self.g_beta = g["gamma"][:n], g["beta"][:n]
            mean, var = sub.running[index]
            self.running = (mean[:n], var[:n])
        else:
            self.bias, self.g_bias = p["b"][:n].unsqueeze(1), g["b"][:n]
        self.unit_mask = sub.unit_masks[index][:n] if sub.mask_units else None
        self.dropout = sub.dropout[:n]


class _Run:
    """Rows ``lo`` to ``hi`` of one depth: views of the output layer for them, which
    reads ``units`` units of their last hidden layer (the inputs for depth 0)."""

    def __init__(self, sub: _SubPopulation, lo: int, hi: int, depth: int, units: int) -> None:
        p, g = sub.params[-1], sub.grads[-1]
        self.lo, self.hi, self.depth, self.units = lo, hi, depth, units
        self.w, self.gw = p["W"][lo:hi, :units], g["W"][lo:hi, :units]
        self.wt = self.w.transpose(1, 2)
        self.bias = p["b"][lo:hi].unsqueeze(2)  # [n, C, 1]: the outputs are class-major

    def source(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """What the output layer reads for these rows."""
        h = inputs[self.depth]
        if self.lo > 0 or self.hi < h.shape[0]:
            h = h[self.lo : self.hi]
        return h if self.units == h.shape[2] else h[..., : self.units]


class _Rows(NamedTuple):
    """A run of rows of the optimizer state (see _SubPopulation._update_grouped)."""

    direction: torch.Tensor
    grad: torch.Tensor
    m: torch.Tensor
    v: torch.Tensor
    one_minus_b1: torch.Tensor


class _SubPopulation:
    """The members of one bucket, stacked: parameters [K, P] with one row per member.

    Rows are sorted deepest first, so the members that have a hidden layer l are the
    first ``active[l]`` rows: layer l is computed for that prefix only, and a shallower
    member's output layer reads its own last hidden layer. No work is spent on layers a
    member does not have. Gradients are computed by hand (the MLP's backward pass is a
    few batched products), which costs a fraction of autograd's per-op overhead; they
    are written into ``grad``. Entries for layers a member lacks are never written, and
    those of its padded units are computed as exact zeros (their inputs and outgoing
    weights are zero), so the weights, gradients and moments there stay exactly zero.
    """

    def __init__(
        self,
        bucket: Bucket,
        configs: Sequence[TrainConfig] | Mapping[int, TrainConfig],
        data: Dataset,
        device: torch.device,
    ) -> None:
        self.device, self.task = device, data.task
        members = [_Member(i, configs[i]) for i in bucket.members]
        # deepest first (see _layout); within a depth, members of one optimizer and betas
        # side by side, so the grouped update reads few runs of rows
        self.members = sorted(members, key=lambda m: (-m.depth, _update_key(m.config), m.index))
        self.batch, self.activation, self.bn, _ = bucket.key
        self.widths = list(bucket.widths)
        depth = len(self.widths)
        self.dims = [data.n_features, *self.widths, data.n_outputs]
        self.epoch = 0
        self.steps = 0
        self.counts = {"adam": torch.zeros(()), "rmsprop": torch.full((), 2.0**40)}  # see _update
        # Layout of one member's row of theta: every layer's W [in, out] first (the part
        # L2 penalizes), then the biases (BN's gamma and beta on hidden layers with BN).
        self.slots: list[dict[str, tuple[int, tuple[int, ...]]]] = [{} for _ in range(depth + 1)]
        # The output layer reads the widest last hidden layer (or the inputs).
        shapes = [*itertools.pairwise(self.dims[:-1]), (bucket.last or self.dims[-2], self.dims[-1])]
        offset = 0
        for layer, (a, b) in enumerate(shapes):
            self.slots[layer]["W"] = (offset, (a, b))
            offset += a * b
        self.n_weights = offset
        for layer, b in enumerate(self.dims[1:]):
            for name in ("gamma", "beta") if self.bn and layer < depth else ("b",):
                self.slots[layer][name] = (offset, (b,))
                offset += b
        k = len(self.members)
        self.theta = torch.zeros(k, offset, device=device)
        self.grad = torch.zeros_like(self.theta)
        self.m = torch.zeros_like(self.theta)
        self.v = torch.zeros_like(self.theta)
        self.running = (
            [(torch.zeros(k, w, device=device), torch.ones(k, w, device=device)) for w in self.widths]
            if self.bn
            else []
        )
        self.best: list[torch.Tensor] = []  # see save_best: a copy of state(), per row as of its best epoch
        self.mask_units = self.activation == "sigmoid"  # sigmoid(0) = 0.5: padded units need a mask
        self.unit_masks = [torch.zeros(k, 1, w, device=device) for w in self.widths] if self.mask_units else []
        self._bind()
        for row, member in enumerate(self.members):
            self._load_initial(row, member.config, data)
        gens: dict[int, torch.Generator] = {}
        self.generators = [
            gens.setdefault(m.config.seed, torch.Generator().manual_seed(m.config.seed)) for m in self.members
        ]
        first = min(self.members, key=lambda m: (-m.depth, m.index))  # whatever the update's row order
        self.dropout_gen = torch.Generator(device=device).manual_seed(first.config.seed)
        self._coefficients()
        self._layout()

    # -- set-up ----------------------------------------------------------------------
    def _load_initial(self, row: int, config: TrainConfig, data: Dataset) -> None:
        """Copy the ordinary trainer's initial weights for ``config`` into this row."""
        # The ordinary trainer seeds with torch.manual_seed, which also seeds every
        # accelerator (~1 ms a call); the initialization draws only from the CPU generator.
        torch.default_generator.manual_seed(config.seed)
        widths = layer_widths(config.n_layers, config.hidden_units)
        layers = initial_weights(
            data.n_features,
            data.n_outputs,
            widths=widths,
            activation=config.activation,
            init=config.init,
            batch_norm=config.batch_norm,
        )
        if layers is None:  # only the modules give them
            model = build_model(config, data)
            layers = [(m.weight.detach(), m.bias.detach() if m.bias is not None else torch.zeros(m.out_features))
                      for m in model if isinstance(m, nn.Linear)]  # fmt: skip
        places = [*range(len(layers) - 1), len(self.widths)]  # the output layer is the bucket's last
        for layer, (weight, bias) in zip(places, layers, strict=True):
            p = self.params[layer]
            out_w, in_w = weight.shape
            p["W"][row, :in_w, :out_w] = weight.T
            if "b" in p:
                p["b"][row, :out_w] = bias
            else:  # batch norm's initial gamma and beta
                p["gamma"][row, :out_w] = 1.0
                p["beta"][row, :out_w] = 0.0
            if self.mask_units and layer < len(self.widths):
                self.unit_masks[layer][row, 0, :out_w] = 1.0

    def _coefficients(self) -> None:
        """Per-member optimizer coefficients as [K, 1] columns."""

        def col(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64).view(-1, 1)

        cs = [m.config for m in self.members]
        # (optimizer, beta1, beta2, eps) per member, as Python numbers for the fused kernel
        self.row_betas = [(c.optimizer, *optimizer_betas(c)) for c in cs]
        self.beta1 = col([b[1] for b in self.row_betas])
        self.beta2 = col([b[2] for b in self.row_betas])
        self.eps = col([b[3] for b in self.row_betas])
        self.is_adam = col([1.0 if c.optimizer == "adam" else 0.0 for c in cs])
        self.adaptive = torch.tensor([c.optimizer in ("rmsprop", "adam") for c in cs]).view(-1, 1)
        self.l2 = torch.tensor([c.l2 for c in cs], device=self.device).view(-1, 1)
        self.dropout = torch.tensor([c.dropout for c in cs], device=self.device).view(-1, 1, 1)
        self.any_l2 = any(c.l2 > 0 for c in cs)
        self.any_dropout = any(c.dropout > 0 for c in cs)
        self.any_adaptive = bool(self.adaptive.any())
        self.one_minus_b1 = (1 - self.beta1).to(self.device, torch.float32)
        self.one_minus_b2 = (1 - self.beta2).to(self.device, torch.float32)
        self.eps_d = self.eps.to(self.device, torch.float32)
        self._update_views()

    def _update_views(self) -> None:
        """Which form the optimizer step takes (see :meth:`_update`) and the views of the
        state it works on."""
        k, p = self.theta.shape
        self.rows: list[tuple[list[torch.Tensor], ...]] = []
        self.groups: list[tuple[tuple[bool, str, float, float, float], list[_Rows]]] = []
        if self.device.type != "cpu" or not FUSED_KERNEL:
            self.update_form = "vectorized"
        elif p >= ROW_UPDATE_MIN:
            self.update_form = "rows"
            # each member's rows, as the one-tensor lists the kernel takes
            self.rows = [([self.theta[i]], [self.grad[i]], [self.m[i]], [self.v[i]]) for i in range(k)]
        else:
            self.update_form = "grouped"
            self.direction = torch.zeros_like(self.theta)
            runs: dict[tuple[bool, str, float, float, float], list[tuple[int, int]]] = {}
            for row, member in enumerate(self.members):
                spans = runs.setdefault(_update_key(member.config), [])
                if spans and spans[-1][1] == row:
                    spans[-1] = (spans[-1][0], row + 1)
                else:
                    spans.append((row, row + 1))
            state = (self.direction, self.grad, self.m, self.v, self.one_minus_b1)
            self.groups = [
                (key, [_Rows(*(t[lo:hi] for t in state)) for lo, hi in spans]) for key, spans in runs.items()
            ]

    def _bind(self) -> None:
        """(Re)build the per-layer views of theta and of grad."""
        k = self.theta.shape[0]

        def views(flat: torch.Tensor) -> list[dict[str, torch.Tensor]]:
            return [
                {name: flat[:, off : off + math.prod(shape)].view(k, *shape) for name, (off, shape) in slot.items()}
                for slot in self.slots
            ]

        self.params, self.grads = views(self.theta), views(self.grad)

    def _layout(self) -> None:
        """Which rows each layer computes, the runs of equal depth the output layer reads,
        and views of those rows (rebuilt whenever the rows change)."""
        depths = [m.depth for m in self.members]
        self.active = [sum(d > layer for d in depths) for layer in range(len(self.widths))]
        # Layers no member has any more (the deepest left) cost nothing: they are dropped.
        self.layers = [_Layer(self, layer, n) for layer, n in enumerate(self.active) if n > 0]
        last_in = self.slots[-1]["W"][1][0]
        self.runs: list[_Run] = []
        start = 0
        for d, run in itertools.groupby(depths):
            n = len(list(run))
            self.runs.append(_Run(self, start, start + n, d, min(self.dims[d], last_in)))
            start += n
        # grad_h[l] is written whole by layer l + 1 and the runs that read layer l, except
        # where a run reads fewer units than the layer has: those columns must be zeros.
        self.partial = {r.depth - 1 for r in self.runs if r.depth > 0 and r.units < self.dims[r.depth]}

    # -- one step --------------------------------------------------------------------
    def _act(self, z: torch.Tensor) -> torch.Tensor:
        """The activation, in place on ``z``."""
        if self.activation == "relu":
            return z.relu_()
        if self.activation == "leaky_relu":
            return nn.functional.leaky_relu_(z, LEAKY_SLOPE)
        if self.activation == "tanh":
            return z.tanh_()
        return z.sigmoid_()

    def _act_backward(self, grad: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The gradient at the activation's input from the one at its output ``a``
        (the sign of a is the sign of its input for ReLU and leaky ReLU), written over
        ``grad``: on a CPU, into a buffer still in cache, ~2x faster at 10 x 512 x 32
        than into a new one."""
        aten = torch.ops.aten
        if self.activation == "relu":
            return aten.threshold_backward.grad_input(grad, a, 0.0, grad_input=grad)
        if self.activation == "leaky_relu":
            return aten.leaky_relu_backward.grad_input(grad, a, LEAKY_SLOPE, False, grad_input=grad)
        if self.activation == "tanh":
            return aten.tanh_backward.grad_input(grad, a, grad_input=grad)
        return aten.sigmoid_backward.grad_input(grad, a, grad_input=grad)

    def _forward(self, x: torch.Tensor, tape: _Tape | None) -> torch.Tensor:
        """The outputs [K, C, B] (class-major: see :meth:`_loss`) for inputs [K, B, F];
        training mode when ``tape`` is given (batch statistics, dropout, and what the
        backward pass needs kept on the tape)."""
        h = x
        inputs = [x]
        for layer in self.layers:
            n = layer.n
            if self.bn:
                z = torch.bmm(h[:n] if n < h.shape[0] else h, layer.w)
                mean_run, var_run = layer.running
                if tape is not None:
                    var, mean = torch.var_mean(z, 1, unbiased=False, keepdim=True)
                    mean_run.lerp_(mean.squeeze(1), BN_MOMENTUM)
                    b = z.shape[1]
                    var_run.lerp_(var.squeeze(1) * (b / max(b - 1, 1)), BN_MOMENTUM)
                else:
                    mean, var = mean_run.unsqueeze(1), var_run.unsqueeze(1)
                rstd = (var + BN_EPS).rsqrt_()
                zhat = (z - mean).mul_(rstd)
                z = torch.addcmul(layer.beta, zhat, layer.gamma)
                if tape is not None:
                    tape.norms.append((zhat, rstd))
            else:
                z = torch.baddbmm(layer.bias, h[:n] if n < h.shape[0] else h, layer.w)
            a = self._act(z)
            if layer.unit_mask is not None:
                a.mul_(layer.unit_mask)
            h = a
            if tape is not None:
                tape.acts.append(a)
                keep = None
                if self.any_dropout:
                    draw = torch.rand(a.shape, generator=self.dropout_gen, device=a.device)
                    keep = (draw >= layer.dropout).to(a.dtype).div_(1 - layer.dropout)
                    h = a * keep
                tape.keeps.append(keep)
            inputs.append(h)
        if tape is not None:
            tape.inputs = inputs
        if len(self.runs) == 1:
            run = self.runs[0]
            return torch.baddbmm(run.bias, run.wt, run.source(inputs).transpose(1, 2))
        out = torch.empty(len(self.members), self.dims[-1], x.shape[1], device=x.device)
        for run in self.runs:
            torch.baddbmm(run.bias, run.wt, run.source(inputs).transpose(1, 2), out=out[run.lo : run.hi])
        return out

    def _loss(
        self, out: torch.Tensor, y: torch.Tensor, minus_one: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-row costs [K, B] of a batch (out [K, C, B], y [K, B]) and, given
        ``minus_one`` (a [K, 1, >=B] tensor of -1), the gradient of the members' mean
        costs at ``out``.

        The outputs are class-major, rows innermost: on a CPU, torch's log_softmax over a
        last axis of ~10 classes runs ~20x slower than over the middle axis of this layout
        (it vectorizes along the reduced axis, too short there), and so does the max of
        the errors; the output layer computes this layout directly (W^T h^T), so no
        transposing copy is made."""
        b = y.shape[1]
        if self.task == "multiclass":
            logp = torch.log_softmax(out, 1)
            target = y.unsqueeze(1)
            costs = logp.gather(1, target).squeeze(1).neg_()
            if minus_one is None:
                return costs, None
            return costs, logp.exp_().scatter_add_(1, target, minus_one).div_(b)  # (softmax - one-hot) / B
        if self.task == "binary":
            logit, yf = out[:, 0], y.to(out.dtype)
            costs = nn.functional.binary_cross_entropy_with_logits(logit, yf, reduction="none")
            if minus_one is None:
                return costs, None
            return costs, (torch.sigmoid(logit) - yf).div_(b).unsqueeze(1)
        diff = out[:, 0] - y
        costs = diff * diff
        return costs, None if minus_one is None else diff.mul_(2.0 / b).unsqueeze(1)

    def _errors(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member wrong rows (the squared error for regression) of outputs [K, C, N]."""
        if self.task == "multiclass":
            return (out.max(1).indices != y).sum(1)  # argmax's first-maximum rule, ~1.5x faster on a CPU
        if self.task == "binary":
            return ((out[:, 0] > 0).long() != y).sum(1)
        diff = out[:, 0] - y
        return (diff * diff).sum(1)

    def _backward(self, grad_out: torch.Tensor, tape: _Tape, batch: int) -> None:
        """Write every member's gradient of its own cost (at its outputs: ``grad_out``,
        [K, C, B]) into ``grad``."""
        torch.sum(grad_out, 2, out=self.grads[-1]["b"])
        grad_h = [
            (torch.zeros if i in self.partial else torch.empty)(layer.n, batch, layer.width, device=self.device)
            for i, layer in enumerate(self.layers)
        ]
        whole = len(self.runs) == 1
        for run in self.runs:
            g = (grad_out if whole else grad_out[run.lo : run.hi]).transpose(1, 2)  # [n, B, C]
            _bmm_into(run.gw, run.source(tape.inputs).transpose(1, 2), g)
            if run.depth > 0:
                target = grad_h[run.depth - 1]
                if run.lo > 0 or run.hi < target.shape[0]:
                    target = target[run.lo : run.hi]
                if run.units < target.shape[2]:
                    target = target[..., : run.units]
                _bmm_into(target, g, run.wt)
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            gh = grad_h[i]
            keep = tape.keeps[i]
            if keep is not None:
                gh.mul_(keep)
            gz = self._act_backward(gh, tape.acts[i])
            if self.bn:
                zhat, rstd = tape.norms[i]
                torch.sum(gz * zhat, 1, out=layer.g_gamma)
                torch.sum(gz, 1, out=layer.g_beta)
                gz = gz.mul_(layer.gamma)
                gz = (gz - gz.mean(1, keepdim=True)).sub_(zhat * (gz * zhat).mean(1, keepdim=True)).mul_(rstd)
            else:
                torch.sum(gz, 1, out=layer.g_bias)
            inp = tape.inputs[i]
            _bmm_into(layer.gw, (inp[: layer.n] if layer.n < inp.shape[0] else inp).transpose(1, 2), gz)
            if i > 0:
                below = grad_h[i - 1]
                _bmm_into(below[: layer.n] if layer.n < below.shape[0] else below, gz, layer.wt)
        if self.any_l2:  # d/dW of l2 / (2 B) * sum W^2, for every layer's W at once
            self.grad[:, : self.n_weights].addcmul_(self.theta[:, : self.n_weights], self.l2, value=1.0 / batch)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One epoch for every member; per-member train cost and error (means over rows).
        Like the ordinary trainer, the epoch's cost and error are reduced once at its end."""
        k, m = len(self.members), x.shape[0]
        orders = {}
        for gen in self.generators:
            if id(gen) not in orders:
                orders[id(gen)] = torch.randperm(m, generator=gen)
        shared = len(orders) == 1
        if shared:  # every member reads the same rows: gather the epoch once
            (order,) = orders.values()
            xs, ys = x[order.to(x.device)], y[order.to(y.device)]
        else:
            order = torch.stack([orders[id(g)] for g in self.generators]).to(self.device)
            ys = y[order]
        lrs = [learning_rate_at(mm.config, self.epoch) for mm in self.members]
        lr = torch.tensor(lrs, dtype=torch.float64)
        lr_column = lr.to(self.device, torch.float32).view(-1, 1)
        steps, bc2s = self._schedule(lr.view(-1, 1), -(-m // self.batch))
        minus_one = torch.full((k, 1, self.batch), -1.0, device=self.device)
        costs: list[torch.Tensor] = []
        outs: list[torch.Tensor] = []
        l2_cost = torch.zeros(k, device=self.device)
        for n, i in enumerate(range(0, m, self.batch)):
            if shared:
                xb, yb = xs[i : i + self.batch], ys[i : i + self.batch]
                xb, yb = xb.expand(k, *xb.shape), yb.expand(k, *yb.shape)
            else:
                idx = order[:, i : i + self.batch]
                xb, yb = x[idx], ys[:, i : i + self.batch]
            bs = yb.shape[1]
            tape = _Tape([], [], [], [])
            out = self._forward(xb, tape)
            row_costs, grad_out = self._loss(out, yb, minus_one)
            assert grad_out is not None
            costs.append(row_costs)
            outs.append(out)
            self._backward(grad_out, tape, bs)
            if self.any_l2:  # the ordinary trainer's cost includes l2 / (2 B) * sum W^2, per row
                weights = self.theta[:, : self.n_weights]
                l2_cost.add_((weights * weights).sum(1), alpha=0.5)
            self._update(steps[n], bc2s[n], lrs, lr_column)
        self.epoch += 1
        cost = torch.cat(costs, 1).sum(1)
        if self.any_l2:
            cost += self.l2.view(-1) * l2_cost
        errors = self._errors(torch.cat(outs, 2), ys if not shared else ys.expand(k, *ys.shape))
        return cost / m, errors.double() / m  # an exact ratio, as the ordinary trainer's

    def _schedule(self, lr: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per step of the coming epoch and per member: the step size lr / (1 - beta1^t)
        and sqrt(1 - beta2^t) (Adam's bias corrections, 1 for the others), in float64
        as torch's Adam computes them. Members without a second moment get an infinite
        divisor, so their denominator sqrt(v) / inf + 1 is exactly 1."""
        t = torch.arange(self.steps + 1, self.steps + steps + 1, dtype=torch.float64).view(-1, 1, 1)
        bc1 = 1 - self.is_adam * self.beta1**t
        bc2 = (1 - self.is_adam * self.beta2**t).sqrt()
        bc2 = torch.where(self.adaptive, bc2, torch.inf)
        step = lr / bc1
        return step.to(self.device, torch.float32), bc2.to(self.device, torch.float32)

    def _update(self, step: torch.Tensor, bc2: torch.Tensor, lrs: list[float], lr_column: torch.Tensor) -> None:
        """One optimizer step for every member: momentum / RMSprop / Adam.

        Vectorized (a GPU, or torch without the fused CPU kernel), with per-member [K, 1]
        coefficients: m <- m + (1 - beta1) (g - m); v <- v + (1 - beta2) (g^2 - v);
        theta <- theta - step * m / (sqrt(v) / bc2 + eps), with beta1 = 0 for gd and
        RMSprop, and the denominator exactly 1 for gd and momentum. v is read through
        max(v, FLT_MIN): the square root of a subnormal float is ~50x slower on a CPU.
        Where v < FLT_MIN that adds at most sqrt(FLT_MIN) / bc2 < 1.1e-17 (bc2 >= 0.01
        for beta2 <= 0.9999) to the denominator: below 1e-7 of any epsilon >= 1e-10.
        That form makes nine passes over the whole state, one per op.

        On a CPU, torch's fused Adam kernel (what the ordinary trainer uses) makes one:
        see :meth:`_update_grouped` and :meth:`_update_rows`. RMSprop runs through it as
        Adam with beta1 = 0 and no bias corrections: at a step count of 2^40, 1 - beta2^t
        is 1 in float64 for any beta2 below 1 - 3.3e-11. The kernel takes the square root of
        v as it is, subnormal or not, as the ordinary trainer's Adam does.
        """
        self.steps += 1
        if self.update_form == "grouped":
            self._update_grouped(lr_column)
            return
        if self.update_form == "rows":
            self._update_rows(lrs)
            return
        g = self.grad
        self.m.lerp_(g, self.one_minus_b1)
        if not self.any_adaptive:
            self.theta.sub_(step * self.m)
            return
        self.v.lerp_(g * g, self.one_minus_b2)
        denom = torch.clamp_min(self.v, FLT_MIN).sqrt_().div_(bc2).add_(self.eps_d)
        self.theta.addcdiv_(step * self.m, denom, value=-1.0)

    def _kernel_counts(self) -> dict[str, torch.Tensor]:
        """The step counts the fused kernel reads, per optimizer it serves."""
        self.counts["adam"].fill_(float(self.steps))
        return self.counts

    def _update_grouped(self, lr_column: torch.Tensor) -> None:
        """The step for members of few parameters: one kernel call per optimizer (and
        betas), over every run of rows that has it, with a learning rate of 1 on a zeroed
        buffer, which leaves there minus Adam's direction m_hat / (sqrt(v_hat) + eps);
        momentum and gd put minus m there. Then theta += lr * that, with each member's
        own rate: three passes over the state, and no Python per member."""
        counts = self._kernel_counts()
        self.direction.zero_()
        for (plain, optimizer, beta1, beta2, eps), runs in self.groups:
            if not plain:
                torch._fused_adam_(
                    [r.direction for r in runs], [r.grad for r in runs], [r.m for r in runs], [r.v for r in runs],
                    [], [counts[optimizer]] * len(runs),
                    lr=1.0, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False,
                )  # fmt: skip
            else:
                for r in runs:
                    r.m.lerp_(r.grad, r.one_minus_b1)
                    torch.neg(r.m, out=r.direction)
        self.theta.addcmul_(self.direction, lr_column)

    def _update_rows(self, lrs: list[float]) -> None:
        """The step for members of many parameters, one member at a time: one pass over
        a member's state while it is in the cache (momentum and gd: two), and a Python
        call per member costs little next to it."""
        counts = self._kernel_counts()
        for (theta, g, m, v), (optimizer, beta1, beta2, eps), lr in zip(self.rows, self.row_betas, lrs, strict=True):
            if optimizer in counts:
                torch._fused_adam_(
                    theta, g, m, v, [], [counts[optimizer]],
                    lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False,
                )  # fmt: skip
            else:
                m[0].lerp_(g[0], 1.0 - beta1)
                theta[0].add_(m[0], alpha=-lr)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member (cost, error) on a whole split in eval mode, ``rows`` rows at a time."""
        k, n = len(self.members), x.shape[0]
        cost = torch.zeros(k, device=self.device)
        errors = torch.zeros(k, device=self.device)
        for i in range(0, n, rows):
            xb, yb = x[i : i + rows], y[i : i + rows]
            yb = yb.expand(k, *yb.shape)
            out = self._forward(xb.expand(k, *xb.shape), None)
            cost += self._loss(out, yb)[0].sum(1)
            errors += self._errors(out, yb)
        return cost / n, errors.double() / n

    def state(self) -> list[torch.Tensor]:
        """A copy of what the members' predictions depend on: the parameters and batch
        norm's running statistics."""
        return [s.clone() for s in self._live()]

    def load_state(self, state: list[torch.Tensor]) -> None:
        """Put back a :meth:`state` (in place: every view of the parameters stays bound)."""
        for target, saved in zip(self._live(), state, strict=True):
            target.copy_(saved)

    def save_best(self, rows: list[int]) -> None:
        """Keep the state of these rows (their new best epoch) for :meth:`test_best`: one
        more copy of the parameters, made at the first epoch, where every row that did
        not diverge is at its best."""
        if not self.best:
            self.best = self.state()
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        live = self._live()
        for saved, now in zip(self.best, live, strict=True):
            saved.index_copy_(0, index, now.index_select(0, index))

    def test_best(
        self, rows: list[int], x: torch.Tensor, y: torch.Tensor, eval_rows: int
    ) -> tuple[list[float], list[float]]:
        """The (cost, error) on a split of each of these rows with its state saved at its
        best epoch (:meth:`save_best`); the live state is put back after."""
        now = self.state()
        self.load_state(self.best)
        cost, error = self.evaluate(x, y, eval_rows)
        self.load_state(now)
        return cost[rows].tolist(), error[rows].tolist()

    def _live(self) -> list[torch.Tensor]:
        return [self.theta, *(s for pair in self.running for s in pair)]

    def keep(self, rows: list[int]) -> None:
        """Compact to the members at ``rows``: the others stop costing compute."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.best = [b.index_select(0, index) for b in self.best]
        self.members = [self.members[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]
        self.theta = self.theta.index_select(0, index)
        self.grad = self.grad.index_select(0, index)
        self.m = self.m.index_select(0, index)
        self.v = self.v.index_select(0, index)
        self.running = [(a.index_select(0, index), b.index_select(0, index)) for a, b in self.running]
        self.unit_masks = [u.index_select(0, index) for u in self.unit_masks]
        self._coefficients()
        self._bind()
        self._layout()


def _update_key(config: TrainConfig) -> tuple[bool, str, float, float, float]:
    """Members of equal keys share the grouped optimizer step: (plain, optimizer, beta1,
    beta2, eps), plain for momentum and gd, which all share one key (their beta1 is
    read per row)."""
    if config.optimizer in ("rmsprop", "adam"):
        return (False, config.optimizer, *optimizer_betas(config))
    return (True, "", 0.0, 0.0, 0.0)


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``out`` = a @ b, batched. Into a view of the stacked parameters' gradient (batch
    stride a member's whole row, not one matrix) torch's CPU ``bmm`` takes a path that
    costs ~1 us more per matrix: for matrices under ``VIEW_BMM_MIN`` entries the product
    is made contiguous and copied in instead (2x faster at 64 members of 64 x 8). Not on a
    GPU, whose strided batched product takes any batch stride."""
    if out.is_contiguous() or out.device.type != "cpu" or out.shape[1] * out.shape[2] >= VIEW_BMM_MIN:
        torch.bmm(a, b, out=out)
    else:
        out.copy_(torch.bmm(a, b))


def train_population(
    configs: Sequence[TrainConfig],
    data: Dataset,
    *,
    report: Callable[[int, int, dict[str, float]], None] | None = None,
    should_stop: Callable[[int], bool] | None = None,
    device: str = "auto",
    max_memory: int | None = None,
    eval_rows: int = EVAL_ROWS,
    on_epoch: Callable[[], None] | None = None,
    pool: PopulationPool | None = None,
    more: Callable[[int], Sequence[TrainConfig]] | None = None,
    capacity: int | None = None,
    on_leave: Callable[[int, FusedResult], None] | None = None,
    test: bool = False,
) -> list[FusedResult]:
    """Train every config of ``configs`` on ``data``, fused; results in the same order
    (then those of the members ``more`` gave, in the order it gave them).

    ``report(i, epoch, metrics)`` gets member i's metrics after each of its epochs (the
    same names as :func:`hyperlab.train.train` reports); ``should_stop(i)`` is asked
    after each report (a scheduler's verdict). ``on_leave(i, result)`` is called as soon
    as member i has left (finished, stopped or diverged). With ``test``, each member
    that completes (its epochs, or early stopping; not one ``should_stop`` stopped) is
    measured on the test split with its own parameters at its best dev error, kept
    while it trained (one more copy of the parameters), before it leaves: its result's
    ``test``. That is the model the member's curve describes; a retrained run, even
    of the same config and seed, can end elsewhere (float rounding, which padding among
    other members changes, grows over epochs in a fast-learning run). ``on_epoch()`` runs after each
    round of epochs (a live display). ``max_memory`` bounds the bytes a sub-population
    may take (default: half the free RAM or GPU memory); larger ones are split into chunks.

    With ``more``, the population is refilled as members leave, so it keeps training
    about ``capacity`` members (default: ``len(configs)``): whenever at least an eighth of
    the places are free (see :data:`REFILL_SHARE`), ``more(n)`` is asked for up to n
    configs, which join as new sub-populations beside the running ones and take the
    next indices (``len(configs)``, ``len(configs) + 1``...). When it gives none, it is
    asked again once another member has left; training ends when no member is left and
    it gives none.

    With a :class:`~hyperlab.train._pool.PopulationPool` (CPU only), the
    sub-populations are dealt out to its worker processes and train side by side;
    ``report``, ``should_stop``, ``on_leave`` and ``more`` are still called in this
    process, and every member's curve is the one it gets here (up to float rounding of
    the thread count).
    """
    for c in configs:
        c.check()
    if capacity is not None:
        check_int("train_population", "capacity", capacity)
    with torch.no_grad():
        dev = torch.device(resolve_device(device))
        if max_memory is None:
            max_memory = int(MEMORY_SHARE * available_memory(str(dev)))
        judge = _Judge(list(configs), data.task != "regression", report, should_stop, on_leave, test)
        intake = _Intake(more, capacity or len(configs), judge, data, dev, max_memory)
        try:
            buckets = intake.place(0, judge.configs)
            buckets += intake()  # places the first configs leave free
            if pool is not None and pool.workers > 1 and dev.type == "cpu" and (len(buckets) > 1 or more is not None):
                grow = None if more is None else intake.deal
                shares = intake.deal([set() for _ in range(pool.workers)], buckets)
                pool.run(
                    judge.configs,
                    data,
                    shares,
                    device=str(dev),
                    eval_rows=eval_rows,
                    judge=judge,
                    on_epoch=on_epoch,
                    grow=grow,
                )
                return judge.results()
            t = _device_tensors(data, dev)
            subs = [_SubPopulation(b, judge.configs, data, dev) for b in buckets]
            while subs:
                for sub in list(subs):
                    epoch, train_cost, train_error, dev_cost, dev_error, seconds = _epoch(sub, t, eval_rows)
                    indices = [m.index for m in sub.members]
                    verdict = judge(epoch, indices, train_cost, train_error, dev_cost, dev_error, seconds)
                    tested = _follow(sub, verdict, t, eval_rows)
                    if tested is not None:
                        judge.tested(*tested)
                    if not verdict.keep:
                        subs.remove(sub)
                if on_epoch is not None:
                    on_epoch()
                subs += [_SubPopulation(b, judge.configs, data, dev) for b in intake()]
            return judge.results()

        except BaseException:
            judge.release()  # members that completed leave untested: their training is not lost
            raise


def train_alone(
    config: TrainConfig,
    data: Dataset,
    *,
    report: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train one config as a population of one, on the CPU: what
    :func:`hyperlab.train.train` does (its ``report`` and ``should_stop``, metrics, early
    stopping and :class:`~hyperlab.train.Diverged`; no ``keep_best_state``: see
    :func:`train_and_test_alone`), with the same curve up to float32 rounding (which a
    sensitive run can amplify over epochs, as it would a change of thread count; dropout
    draws other masks, equal in distribution), but with the backward pass written out
    and no autograd: 1.5x faster over the course space on one thread
    (``bench/trainer.py --space course``), slower with batch normalization. Trials of
    the built-in MLP that run one at a time (the inline, process and Ray runners) train
    this way, unless they use batch norm.
    """
    return _alone(config, data, report=report, should_stop=should_stop).result


def train_and_test_alone(config: TrainConfig, data: Dataset) -> tuple[TrainResult, float, float]:
    """Train ``config`` as :func:`train_alone` does (the same run), keep its parameters
    at its best dev error and measure the test split with them: the run, the test cost
    and the test error. What :func:`hyperlab.train.trainer.measure_test` does for a
    configuration whose trials trained fused.

    Raises:
        Diverged: as :func:`train_alone`.
    """
    outcome = _alone(config, data, test=True)
    assert outcome.test is not None  # (a run that does not diverge has a best epoch)
    return outcome.result, *outcome.test


def _alone(
    config: TrainConfig,
    data: Dataset,
    *,
    report: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    test: bool = False,
) -> FusedResult:
    """One config as a population of one on the CPU (:func:`train_population`), but a
    divergence raises :class:`Diverged`."""
    # one member cannot be split, and train has no budget to refuse it by
    (outcome,) = train_population(
        [config],
        data,
        report=None if report is None else lambda i, epoch, metrics: report(epoch, metrics),
        should_stop=None if should_stop is None else lambda i: should_stop(),
        device="cpu",
        max_memory=sys.maxsize,
        test=test,
    )
    if outcome.diverged is not None:
        raise Diverged(outcome.diverged)
    return outcome


class _Intake:
    """New members of a refilled population: when enough places are free, asks ``more``
    for configs and plans them into buckets whose indices continue the population's."""

    def __init__(
        self,
        more: Callable[[int], Sequence[TrainConfig]] | None,
        capacity: int,
        judge: _Judge,
        data: Dataset,
        device: torch.device,
        max_memory: int,
    ) -> None:
        self.more, self.capacity, self.judge = more, capacity, judge
        self.at = max(1, math.ceil(REFILL_SHARE * capacity))  # free places that call for a refill
        self.data, self.device, self.max_memory = data, device, max_memory
        self.costs: dict[int, float] = {}  # a member's share of its bucket's epoch cost (to deal buckets out)
        self.dry = -1  # members that had left when ``more`` last gave none

    def __call__(self) -> list[Bucket]:
        """Buckets of new members (none while fewer than ``self.at`` places are free)."""
        free = self.capacity - self.judge.active
        if self.more is None or free < self.at or self.judge.left == self.dry:
            return []
        configs = list(self.more(free))
        if len(configs) > free:
            raise InvalidArgumentError(
                f"train_population's 'more' was asked for at most {free} configs and gave {len(configs)}."
            )
        # none to give: ask again only once another member has left (in a run's tail,
        # when the budget is spent, not after every epoch)
        self.dry = self.judge.left if not configs else -1
        for c in configs:
            c.check()
        base = len(self.judge.configs)
        self.judge.add(configs)
        return self.place(base, configs)

    def place(self, base: int, configs: Sequence[TrainConfig]) -> list[Bucket]:
        """The buckets of ``configs``, the members numbered from ``base``."""
        if not configs:
            return []
        d = self.data
        buckets = [
            dataclasses.replace(b, members=tuple(base + i for i in b.members))
            for b in population_plan(
                configs, d, device=str(self.device), max_memory=self.max_memory, test=self.judge.test
            )
        ]
        for b in buckets:
            cost = epoch_cost(b, self.judge.configs, d.n_features, d.n_outputs, len(d.x_train))
            self.costs.update((i, cost / len(b.members)) for i in b.members)
        return buckets

    def deal(self, holding: list[set[int]], buckets: list[Bucket] | None = None) -> list[list[Bucket]]:
        """``buckets`` (default: new ones, see ``__call__``) dealt out to workers that
        train ``holding[w]`` now (see :func:`hyperlab.train._plan.deal`)."""
        if buckets is None:
            buckets = self()
        if not buckets:  # most verdicts bring none: no loads to add up
            return [[] for _ in holding]
        loads = [sum(self.costs[i] for i in members) for members in holding]
        d = self.data
        return deal(buckets, self.judge.configs, d.n_features, d.n_outputs, len(d.x_train), len(holding), loads)


def _follow(
    sub: _SubPopulation, verdict: _Verdict, t: dict[str, torch.Tensor], eval_rows: int
) -> tuple[list[int], list[float], list[float]] | None:
    """Carry out a verdict on a sub-population's last epoch, before its next: keep the
    state of the rows at a new best, measure the test split for the rows that completed
    (their members, and the cost and error), and compact to the rows that train on."""
    if verdict.best:
        sub.save_best(verdict.best)
    tested = None
    if verdict.test:
        cost, error = sub.test_best(verdict.test, t["x_test"], t["y_test"], eval_rows)
        tested = [sub.members[r].index for r in verdict.test], cost, error
    if verdict.keep and len(verdict.keep) < len(sub.members):
        sub.keep(verdict.keep)
    return tested


def _epoch(
    sub: _SubPopulation, t: dict[str, torch.Tensor], eval_rows: int
) -> tuple[int, list[float], list[float], list[float], list[float], float]:
    """One epoch of a sub-population: its number, the per-member train cost and error,
    dev cost and error, and the seconds it took per member."""
    t0 = time.perf_counter()
    epoch = sub.epoch
    train_cost, train_error = (v.tolist() for v in sub.train_epoch(t["x_train"], t["y_train"]))
    dev_cost, dev_error = (v.tolist() for v in sub.evaluate(t["x_dev"], t["y_dev"], eval_rows))
    return epoch, train_cost, train_error, dev_cost, dev_error, (time.perf_counter() - t0) / len(sub.members)


def work(
    conn: Connection,
    data: Dataset,
    configs: dict[int, TrainConfig],
    buckets: list[Bucket],
    device: str,
    eval_rows: int,
) -> None:
    """A pool worker's job (see :mod:`hyperlab.train._pool`): train ``buckets``, one
    epoch of each in turn, sending each epoch's numbers and waiting for the verdict on it
    before that sub-population's next epoch. A verdict is carried out as soon as it is
    read, and verdicts that came meanwhile are read before each epoch, so a member that
    completed is tested (and its trial told) within about one epoch of another
    sub-population, not a round of them. A verdict may bring new buckets (with their
    members' configs), which join the job."""
    with torch.no_grad():
        dev = torch.device(device)
        t = _device_tensors(data, dev)
        subs = {i: _SubPopulation(b, configs, data, dev) for i, b in enumerate(buckets)}
        made = len(subs)
        judged: set[int] = set()  # sub-populations whose last epoch's verdict is carried out

        def carry_out(message: tuple[Any, ...]) -> None:
            nonlocal made
            _, j, verdict, new_configs, new_buckets = message
            configs.update(new_configs)
            for b in new_buckets:
                subs[made] = _SubPopulation(b, configs, data, dev)
                made += 1
            verdict = _Verdict(*verdict)
            tested = _follow(subs[j], verdict, t, eval_rows)
            if tested is not None:
                conn.send(("tested", *tested))
            if verdict.keep:
                judged.add(j)
            else:
                del subs[j]

        while subs:
            for i in list(subs):
                while conn.poll():
                    carry_out(conn.recv())
                if i not in subs:
                    continue
                sub = subs[i]
                if sub.epoch > 0:  # the verdict on its last epoch decides who trains on
                    while i not in judged and i in subs:
                        carry_out(conn.recv())
                    if i not in subs:
                        continue
                    judged.discard(i)
                epoch, *numbers = _epoch(sub, t, eval_rows)
                conn.send(("epoch", i, epoch, [m.index for m in sub.members], *numbers))
    conn.send(("done",))


COMPLETED, STOPPED = "completed", "stopped"  # how a member that did not diverge ends (_Judge._ends)


class _Judge:
    """Every member's books, kept where the scheduler and the reports are: after each
    epoch of a sub-population, record and report each member's metrics (as ``train``
    does) and say which rows train on."""

    def __init__(
        self,
        configs: list[TrainConfig],
        classify: bool,
        report: Callable[[int, int, dict[str, float]], None] | None,
        should_stop: Callable[[int], bool] | None,
        on_leave: Callable[[int, FusedResult], None] | None = None,
        test: bool = False,
    ) -> None:
        self.configs = configs
        self.books = [EpochBook(c) for c in configs]
        self.classify = classify
        self.report, self.should_stop, self.on_leave = report, should_stop, on_leave
        self.test = test
        self.done: dict[int, FusedResult] = {}
        self.awaiting: set[int] = set()  # members that completed, until they are tested

    @property
    def left(self) -> int:
        """Members that have left (one that completed leaves once it is tested)."""
        return len(self.done) - len(self.awaiting)

    @property
    def active(self) -> int:
        """Members that have not left."""
        return len(self.configs) - self.left

    def add(self, configs: Sequence[TrainConfig]) -> None:
        """New members, numbered on from the last."""
        self.configs.extend(configs)
        self.books.extend(EpochBook(c) for c in configs)

    def __call__(
        self,
        epoch: int,
        indices: list[int],
        train_cost: list[float],
        train_error: list[float],
        dev_cost: list[float],
        dev_error: list[float],
        seconds: float,
    ) -> _Verdict:
        verdict = _Verdict([], [], [])
        for row, index in enumerate(indices):
            metrics = epoch_metrics(
                self.classify,
                train_cost[row],
                train_error[row],
                dev_cost[row],
                dev_error[row],
                learning_rate_at(self.configs[index], epoch),
                seconds,
            )
            book = self.books[index]
            book.record(epoch, metrics)
            if self.report is not None:
                self.report(index, epoch, metrics)
            diverged = book.divergence(epoch, metrics)
            if diverged is None and book.improved(epoch, metrics) and self.test:
                verdict.best.append(row)
            ends = diverged or self._ends(index, epoch)
            if ends is None:
                verdict.keep.append(row)
                continue
            self.done[index] = FusedResult(book.result, diverged)
            if self.test and ends == COMPLETED and book.result.best_epoch >= 0:
                verdict.test.append(row)  # it leaves once tested (see tested)
                self.awaiting.add(index)
            elif self.on_leave is not None:
                self.on_leave(index, self.done[index])
        return verdict

    def tested(self, members: list[int], cost: list[float], error: list[float]) -> None:
        """The test split's numbers of members that completed (a verdict's ``test`` rows),
        measured on their best epoch's state: now they leave."""
        for index, c, e in zip(members, cost, error, strict=True):
            self.done[index].test = (c, e)
            self.awaiting.discard(index)
            if self.on_leave is not None:
                self.on_leave(index, self.done[index])

    def release(self) -> None:
        """Let the members awaiting their test leave without it (the run is stopping: a
        Ctrl-C, a dead worker): each completed its training, which is not lost."""
        for index in sorted(self.awaiting):
            self.awaiting.discard(index)
            if self.on_leave is not None:
                self.on_leave(index, self.done[index])

    def _ends(self, index: int, epoch: int) -> str | None:
        """Whether member ``index`` ends after this epoch: None (it trains on),
        :data:`COMPLETED` (its epochs, or early stopping) or :data:`STOPPED` (``should_stop``: a scheduler)."""
        if self.books[index].patience_spent():
            return COMPLETED
        if self.should_stop is not None and self.should_stop(index):
            return STOPPED
        return None if epoch + 1 < self.configs[index].epochs else COMPLETED

    def results(self) -> list[FusedResult]:
        return [self.done[i] for i in range(len(self.configs))]


def _device_tensors(data: Dataset, device: torch.device) -> dict[str, torch.Tensor]:
    t = _tensors(data)
    if device.type == "cpu":
        return t
    cache: dict[str, dict[str, torch.Tensor]] = getattr(data, "_on_device", {})
    if str(device) not in cache:
        cache[str(device)] = {k: v.to(device) for k, v in t.items()}
        data._on_device = cache  # type: ignore[attr-defined]
    return cache[str(device)]
