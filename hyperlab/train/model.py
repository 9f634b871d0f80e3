"""The fully-connected network of the course, built from its hyperparameters."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["build_mlp", "layer_widths", "ACTIVATIONS", "INITS"]

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
        std = _init_std(init, activation, fan_in)
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
    std = _init_std(init if init != "he" else "xavier", "tanh", fan_in)  # the output layer is linear
    if std is not None:
        nn.init.normal_(out.weight, 0.0, std)
        nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


def weight_params(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices (what L2 regularization penalizes; not biases or BN's gamma/beta)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
