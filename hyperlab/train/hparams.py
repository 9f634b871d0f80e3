"""The trainer's hyperparameters (no torch here: the CLI and config read them cheaply)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from hyperlab.errors import InvalidArgumentError

__all__ = ["TrainConfig", "OPTIMIZERS", "DECAYS", "ACTIVATIONS", "INITS", "hyperparameter_names", "layer_widths"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
INITS = ("auto", "he", "xavier", "torch")
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
DECAYS = ("none", "inverse", "exponential", "step", "cosine")
# How a trial of the built-in MLP that runs alone trains: "fused", a population of one
# (hyperlab.train.fused.train_alone, faster), or "ordinary", hyperlab.train.train
# (torch.nn modules and autograd); see hyperlab.train.objective.make_objective.
Engine = Literal["fused", "ordinary"]


def trains_alone_fused(config: TrainConfig, engine: str) -> bool:
    """Whether a trial of ``config`` that runs alone trains as a population of one:
    the fused engine, except with batch normalization, where it is slower."""
    check_engine(engine)
    return engine == "fused" and not config.batch_norm


def check_engine(engine: str) -> None:
    if engine not in get_args(Engine):
        raise InvalidArgumentError(
            f"The 'engine' parameter must be one of {', '.join(get_args(Engine))}. Got {engine!r} instead."
        )


@dataclass
class TrainConfig:
    """Every hyperparameter of the course's training algorithm, with its default.

    Names match :func:`hyperlab.course_space`, so a trial's params can be passed as is.
    """

    learning_rate: float = 1e-3
    optimizer: str = "adam"  # gd | momentum | rmsprop | adam
    momentum: float = 0.9  # beta of momentum: v = beta v + (1 - beta) dW
    rmsprop_beta: float = 0.999  # beta of RMSprop: s = beta s + (1 - beta) dW^2
    rmsprop_epsilon: float = 1e-8
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    batch_size: int = 64  # >= training rows: batch gradient descent
    n_layers: int = 2
    hidden_units: int | list[int] = 128  # one width, or one per layer
    activation: str = "relu"  # relu | leaky_relu | tanh | sigmoid
    init: str = "auto"  # auto (He for ReLU, Xavier for tanh/sigmoid) | he | xavier | torch
    l2: float = 0.0  # lambda: cost += lambda / (2 m) * sum ||W||^2, m = mini-batch rows
    dropout: float = 0.0  # drop probability (1 - keep_prob)
    batch_norm: bool = False
    lr_decay: str = "none"  # none | inverse | exponential | step | cosine
    decay_rate: float = 1.0  # inverse: alpha0 / (1 + decay_rate * epoch)
    decay_base: float = 0.95  # exponential: decay_base^epoch * alpha0; step: per step_size epochs
    step_size: int = 10
    epochs: int = 30
    patience: int | None = None  # early stopping: epochs without a better dev metric
    diverge_factor: float = 10.0  # diverged when the train cost exceeds this times its first value
    seed: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """A config from a dict such as a trial's params; unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            from difflib import get_close_matches

            near = get_close_matches(unknown[0], known, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise InvalidArgumentError(
                f"'{unknown[0]}' is not a hyperparameter of the built-in trainer.{hint} "
                f"Known: {', '.join(sorted(known))}."
            )
        config = cls(**dict(params))
        config.check()
        return config

    def check(self) -> None:
        """Raise InvalidArgumentError naming the first invalid hyperparameter."""

        def bad(name: str, valid: str) -> InvalidArgumentError:
            return InvalidArgumentError(
                f"The '{name}' hyperparameter must be {valid}. Got {getattr(self, name)!r} instead."
            )

        choices = {"optimizer": OPTIMIZERS, "activation": ACTIVATIONS, "init": INITS, "lr_decay": DECAYS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise bad(name, "one of " + ", ".join(valid))

        def number(name: str, ok: Callable[[float], bool], valid: str, finite: bool = True) -> None:
            v = getattr(self, name)
            real = isinstance(v, numbers.Real) and not isinstance(v, bool)
            if not real or math.isnan(v) or (finite and math.isinf(v)) or not ok(v):
                raise bad(name, valid)

        number("learning_rate", lambda v: v > 0, "a positive, finite number")
        for name in ("momentum", "rmsprop_beta", "adam_beta1", "adam_beta2"):
            number(name, lambda v: 0 <= v < 1, "in [0, 1)")
        for name in ("rmsprop_epsilon", "adam_epsilon"):
            number(name, lambda v: v > 0, "a positive, finite number")
        for name in ("batch_size", "n_layers", "epochs", "step_size", "seed"):
            v = getattr(self, name)
            low = 0 if name in ("n_layers", "seed") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise bad(name, "a positive integer" if low else "a non-negative integer")
        widths = self.hidden_units if isinstance(self.hidden_units, list) else [self.hidden_units]
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise bad("hidden_units", "a positive integer or a list of them")
        number("l2", lambda v: v >= 0, "a non-negative, finite number")
        number("dropout", lambda v: 0 <= v < 1, "in [0, 1)")
        number("decay_rate", lambda v: v >= 0, "a non-negative, finite number")
        number("decay_base", lambda v: 0 < v <= 1, "in (0, 1]")
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1
        ):
            raise bad("patience", "a positive integer or null")
        number("diverge_factor", lambda v: v > 1, "a number greater than 1 (inf: only NaN/inf diverge)", finite=False)
        if not isinstance(self.batch_norm, bool):  # the string 'no' would have switched it on
            raise bad("batch_norm", "true or false")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_widths(n_layers: int, hidden_units: int | list[int]) -> list[int]:
    """Hidden widths: one width repeated ``n_layers`` times, or a list per layer."""
    if isinstance(hidden_units, list):
        return list(hidden_units)
    return [int(hidden_units)] * int(n_layers)


def hyperparameter_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]
