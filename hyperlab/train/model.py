"""The fully-connected network of the course, built from its hyperparameters."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

__all__ = ["build_mlp", "initial_weights", "layer_widths", "ACTIVATIONS", "INITS"]

from hyperlab.train.hparams import ACTIVATIONS, INITS, layer_widths

LEAKY_SLOPE = 0.01


def _activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(LEAKY_SLOPE),
        "tanh": nn.Tanh(),
        "sigmoid": nn.Sigmoid(),
    }[name]


def _init_std(init: str, activation: str, fan_in: int) -> float | None:
    """Standard deviation of the weights, matched to the activation.

    He (variance 2/n for ReLU; 2/(1+a^2)/n for leaky ReLU) keeps ReLU activations from
    vanishing or exploding; Xavier (variance 1/n, as in the course) does it for tanh
    and sigmoid. "auto" picks by activation; "torch" keeps PyTorch's default.
    """
    if init == "auto":
        init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    if init == "torch":
        return None
    if init == "he":
        gain = 2.0 / (1.0 + LEAKY_SLOPE**2) if activation == "leaky_relu" else 2.0
        return math.sqrt(gain / fan_in)
    return math.sqrt(1.0 / fan_in)


def _layer_std(init: str, activation: str, fan_in: int, *, output: bool) -> float | None:
    """:func:`_init_std` for a hidden layer; the output layer is linear, so it gets
    Xavier's (tanh's) where the init would give He's."""
    if output:
        return _init_std(init if init != "he" else "xavier", "tanh", fan_in)
    return _init_std(init, activation, fan_in)


def build_mlp(
    n_in: int,
    n_out: int,
    *,
    widths: list[int],
    activation: str = "relu",
    init: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer, then a linear output.

    With batch normalization the hidden linear layers have no bias: BN's learned beta
    takes its place (the course: "making the bias unnecessary"). BatchNorm1d keeps
    exponentially weighted averages of the mean and variance for test time.
    """
    layers: list[nn.Module] = []
    fan_in = n_in
    for width in widths:
        linear = nn.Linear(fan_in, width, bias=not batch_norm)
        std = _layer_std(init, activation, fan_in, output=False)
        if std is not None:
            nn.init.normal_(linear.weight, 0.0, std)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)
        layers.append(linear)
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    out = nn.Linear(fan_in, n_out)
    std = _layer_std(init, activation, fan_in, output=True)
    if std is not None:
        nn.init.normal_(out.weight, 0.0, std)
        nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


def initial_weights(
    n_in: int,
    n_out: int,
    *,
    widths: list[int],
    activation: str = "relu",
    init: str = "auto",
    batch_norm: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """The weight [out, in] and bias of each linear layer of :func:`build_mlp` with these
    arguments, drawn from the default generator as building the model draws them, but
    without building it: for a small net, making the modules costs ~10x the draws. (A
    hidden layer with batch norm has no bias: zeros stand for it.)

    None where only the modules can give them: for init "torch" (nn.Linear's own values
    are kept), or when this torch draws differently (see :func:`_draws_like_build_mlp`).
    """
    if not _draws_like_build_mlp():
        return None
    return _draw_initial(n_in, n_out, widths, activation, init, batch_norm)


def _draw_initial(
    n_in: int, n_out: int, widths: list[int], activation: str, init: str, batch_norm: bool
) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    layers = []
    fan_in = n_in
    for i, width in enumerate([*widths, n_out]):
        hidden = i < len(widths)
        std = _layer_std(init, activation, fan_in, output=not hidden)
        if std is None:
            return None
        # nn.Linear initializes its weight, then its bias, with uniform draws; build_mlp
        # then draws the weight again from a normal. The uniform values are discarded,
        # but their draws advance the generator.
        weight = torch.empty(width, fan_in).uniform_()
        if not (hidden and batch_norm):
            torch.empty(width).uniform_()
        layers.append((weight.normal_(0.0, std), torch.zeros(width)))
        fan_in = width
    return layers


@functools.cache
def _draws_like_build_mlp() -> bool:
    """Whether :func:`_draw_initial` gives exactly what :func:`build_mlp` does under this
    torch (it mirrors nn.Linear's initialization, which a torch release may change).
    Checked once per process; the CPU generator's state is put back afterwards, and no
    other device's generator is touched."""
    cases: list[tuple[list[int], str, bool]] = [([5, 3], "relu", False), ([20], "tanh", True)]
    with torch.random.fork_rng(devices=[]):
        for widths, activation, batch_norm in cases:
            torch.default_generator.manual_seed(0)
            model = build_mlp(17, 4, widths=widths, activation=activation, batch_norm=batch_norm)
            torch.default_generator.manual_seed(0)
            drawn = _draw_initial(17, 4, widths, activation, "auto", batch_norm)
            linears = [m for m in model if isinstance(m, nn.Linear)]
            if drawn is None or len(drawn) != len(linears):
                return False
            for (weight, bias), linear in zip(drawn, linears, strict=True):
                if not torch.equal(weight, linear.weight.detach()):
                    return False
                if linear.bias is not None and not torch.equal(bias, linear.bias.detach()):
                    return False
    return True


def weight_params(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices (what L2 regularization penalizes; not biases or BN's gamma/beta)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
