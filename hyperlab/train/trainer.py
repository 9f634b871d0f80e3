"""The course's training algorithm as a PyTorch trainer whose every knob can be searched.

One epoch: shuffle, run mini-batch steps (batch size >= m is batch gradient descent),
average the mini-batch cost and error as the epoch's train cost and error, measure the
dev cost and error, apply the learning-rate decay, report, check for divergence and
early stopping.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hyperlab.train.data import Dataset
from hyperlab.train.hparams import DECAYS, OPTIMIZERS, TrainConfig, trains_alone_fused
from hyperlab.train.model import build_mlp, layer_widths, weight_params

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Diverged",
    "train",
    "evaluate",
    "measure_test",
    "train_as_trials",
    "best_epoch_metrics",
    "learning_rate_at",
    "OPTIMIZERS",
    "DECAYS",
    "CourseMomentum",
]


class Diverged(Exception):  # noqa: N818 - named after what happened
    """The training cost became NaN/inf or grew past ``diverge_factor`` times its start."""


@dataclass
class TrainResult:
    """What one training run produced."""

    best_epoch: int
    best_dev_error: float
    best_dev_cost: float
    epochs_run: int
    curve: list[dict[str, float]] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False


class CourseMomentum(torch.optim.Optimizer):
    """Momentum as the course writes it: v = beta v + (1 - beta) dW, W -= alpha v, v0 = 0.

    PyTorch's SGD(momentum=beta, dampening=beta) matches this except on the first
    step, where it starts the buffer at dW instead of (1 - beta) dW.
    """

    def __init__(self, params: Any, lr: float, beta: float) -> None:
        super().__init__(params, {"lr": lr, "beta": beta})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            bufs = []
            for p in params:
                state = self.state[p]
                if "v" not in state:
                    state["v"] = torch.zeros_like(p)
                bufs.append(state["v"])
            grads = [p.grad for p in params]
            torch._foreach_mul_(bufs, group["beta"])
            torch._foreach_add_(bufs, grads, alpha=1.0 - group["beta"])
            torch._foreach_add_(params, bufs, alpha=-group["lr"])


def optimizer_betas(config: TrainConfig) -> tuple[float, float, float]:
    """(beta1, beta2, epsilon) of the config's optimizer as one update rule:
    m <- beta1 m + (1 - beta1) g and v <- beta2 v + (1 - beta2) g^2. gd has no moments
    (beta1 0), momentum no second moment, RMSprop no first (beta1 0)."""
    if config.optimizer == "momentum":
        return config.momentum, 0.0, 1.0
    if config.optimizer == "rmsprop":
        return 0.0, config.rmsprop_beta, config.rmsprop_epsilon
    if config.optimizer == "adam":
        return config.adam_beta1, config.adam_beta2, config.adam_epsilon
    return 0.0, 0.0, 1.0


def _optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """The config's optimizer. On the CPU torch.optim defaults to a loop of ~8 small ops
    per parameter tensor per step, which dominates a small MLP's step; the multi-tensor
    (``foreach``) forms give the same numbers with a few ops per step, and Adam's fused
    kernel does the whole update in one (bench/trainer.py)."""
    lr = config.learning_rate
    beta1, beta2, eps = optimizer_betas(config)
    if config.optimizer == "gd":
        return torch.optim.SGD(params, lr=lr, foreach=True)
    if config.optimizer == "momentum":
        return CourseMomentum(params, lr=lr, beta=beta1)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=beta2, eps=eps, foreach=True)
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, **_FAST_ADAM)


# Adam's fused CPU kernel came with torch 2.4; before it, the multi-tensor form.
_FAST_ADAM = {"fused": True} if torch.__version__ >= "2.4" else {"foreach": True}


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate in effect during ``epoch`` (0-based)."""
    a0 = config.learning_rate
    if config.lr_decay == "inverse":
        return a0 / (1.0 + config.decay_rate * epoch)
    if config.lr_decay == "exponential":
        return a0 * config.decay_base**epoch
    if config.lr_decay == "step":
        return a0 * config.decay_base ** (epoch // config.step_size)
    if config.lr_decay == "cosine":
        return a0 * 0.5 * (1.0 + math.cos(math.pi * epoch / config.epochs))
    return a0


def _loss_fn(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task == "multiclass":
        return nn.functional.cross_entropy
    if task == "binary":
        return lambda out, y: nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), y.float())
    return lambda out, y: nn.functional.mse_loss(out.squeeze(1), y)


def _errors(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of per-row errors: misclassified rows (classification) or squared error."""
    if task == "multiclass":
        return (out.argmax(1) != y).sum()
    if task == "binary":
        return ((out.squeeze(1) > 0).long() != y).sum()
    return ((out.squeeze(1) - y) ** 2).sum()


def build_model(config: TrainConfig, data: Dataset) -> nn.Sequential:
    return build_mlp(
        data.n_features,
        data.n_outputs,
        widths=layer_widths(config.n_layers, config.hidden_units),
        activation=config.activation,
        init=config.init,
        batch_norm=config.batch_norm,
        dropout=config.dropout,
    )


@torch.no_grad()
def evaluate(model: nn.Module, task: str, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(cost, error) of ``model`` on a whole split, in eval mode (BN running stats, no dropout)."""
    model.eval()
    out = model(x)
    cost = float(_loss_fn(task)(out, y))
    error = float(_errors(task, out, y)) / len(y)
    return cost, error


def _tensors(data: Dataset) -> dict[str, torch.Tensor]:
    cached: dict[str, torch.Tensor] | None = getattr(data, "_torch", None)
    if cached is None:
        cached = {
            k: torch.from_numpy(getattr(data, k)) for k in ("x_train", "y_train", "x_dev", "y_dev", "x_test", "y_test")
        }
        data._torch = cached  # type: ignore[attr-defined]  # reused by every trial on this data
    return cached


def epoch_metrics(
    classify: bool, train_cost: float, train_error: float, dev_cost: float, dev_error: float, lr: float, seconds: float
) -> dict[str, float]:
    """What an epoch reports, in the order the trainers report it."""
    metrics = {"train_cost": train_cost, "train_error": train_error, "dev_cost": dev_cost, "dev_error": dev_error}
    if classify:
        metrics["train_accuracy"] = 1.0 - train_error
        metrics["dev_accuracy"] = 1.0 - dev_error
    metrics["lr"] = lr
    metrics["seconds"] = seconds
    return metrics


class EpochBook:
    """One run's bookkeeping after each epoch, shared by the ordinary and the fused
    trainer: its curve, its best epoch, divergence and early stopping."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.result = TrainResult(best_epoch=-1, best_dev_error=math.inf, best_dev_cost=math.inf, epochs_run=0)
        self.start_cost: float | None = None
        self.since_best = 0

    def record(self, epoch: int, metrics: dict[str, float]) -> None:
        self.result.curve.append(metrics)
        self.result.epochs_run = epoch + 1
        if self.start_cost is None:
            self.start_cost = metrics["train_cost"]

    def divergence(self, epoch: int, metrics: dict[str, float]) -> str | None:
        """Why the run diverged at this epoch (NaN/inf, or a cost past diverge_factor x its first), or None."""
        train_cost, dev_cost = metrics["train_cost"], metrics["dev_cost"]
        if not math.isfinite(train_cost) or not math.isfinite(dev_cost):
            return f"the train cost became {train_cost} at epoch {epoch}"
        start = self.start_cost if self.start_cost is not None else train_cost
        if train_cost > self.config.diverge_factor * start and epoch > 0:
            return (
                f"the train cost grew to {train_cost:.4g} at epoch {epoch}, more than "
                f"{self.config.diverge_factor:g} x its first value {start:.4g}"
            )
        return None

    def improved(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record a new best dev error; whether this epoch is it."""
        best = self.result
        if metrics["dev_error"] < best.best_dev_error:
            best.best_epoch, best.best_dev_error, best.best_dev_cost = epoch, metrics["dev_error"], metrics["dev_cost"]
            self.since_best = 0
            return True
        self.since_best += 1
        return False

    def patience_spent(self) -> bool:
        """Early stopping: ``patience`` epochs without a better dev error."""
        if self.config.patience is not None and self.since_best >= self.config.patience:
            self.result.stopped_early = True
            return True
        return False


def train(
    config: TrainConfig,
    data: Dataset,
    *,
    report: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_best_state: bool = False,
) -> TrainResult:
    """Train the MLP of ``config`` on ``data``; the test split is not touched.

    ``report(epoch, metrics)`` is called after every epoch with train_cost, train_error,
    dev_cost, dev_error (plus train/dev accuracy for classification), lr and seconds.
    ``should_stop()`` is asked after each report (a scheduler's verdict).

    Raises:
        Diverged: the train cost became NaN/inf or exceeded diverge_factor x its start.
    """
    config.check()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    t = _tensors(data)
    x, y, x_dev, y_dev = t["x_train"], t["y_train"], t["x_dev"], t["y_dev"]
    m = len(x)
    batch = min(config.batch_size, m)
    model = build_model(config, data)
    weights = weight_params(model)
    optimizer = _optimizer(config, model.parameters())
    task = data.task
    loss_fn = _loss_fn(task)
    classify = task != "regression"
    book = EpochBook(config)
    best = book.result
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        lr = learning_rate_at(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(m, generator=gen)
        # The epoch's train cost and error are the mean over its mini-batches. They are
        # reduced once per epoch from the detached losses and outputs: reducing them at
        # every step cost 3% of an epoch of a 3 x 256 MLP on digits (bench/trainer.py).
        losses: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        for i in range(0, m, batch):
            idx = order[i : i + batch]
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            if config.l2 > 0:
                loss = loss + config.l2 / (2 * len(idx)) * sum((w * w).sum() for w in weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            outputs.append(out.detach())
        sizes = torch.tensor([min(batch, m - i) for i in range(0, m, batch)], dtype=torch.float32)
        train_cost = float((torch.stack(losses) * sizes).sum()) / m
        train_error = float(_errors(task, torch.cat(outputs), y[order])) / m
        dev_cost, dev_error = evaluate(model, task, x_dev, y_dev)
        metrics = epoch_metrics(classify, train_cost, train_error, dev_cost, dev_error, lr, time.perf_counter() - t0)
        book.record(epoch, metrics)
        if report is not None:
            report(epoch, metrics)
        diverged = book.divergence(epoch, metrics)
        if diverged is not None:
            raise Diverged(diverged)
        if book.improved(epoch, metrics) and keep_best_state:
            best.state_dict = copy.deepcopy(model.state_dict())
        if book.patience_spent():
            break
        if should_stop is not None and should_stop():
            break
    if keep_best_state and best.state_dict is None:
        best.state_dict = copy.deepcopy(model.state_dict())
    return best


def train_as_trials(
    config: TrainConfig, data: Dataset, *, engine: str = "fused", population: bool = False
) -> TrainResult:
    """Train ``config`` the way its trials trained: fused when ``population`` (the fused
    runner's trials, batch norm too) or when a lone trial trains fused (see
    :func:`~hyperlab.train.hparams.trains_alone_fused`), else :func:`train`. Always on
    the CPU. A lone trial's run comes back exactly; a fused population member's up to
    float rounding (it trained padded among others, perhaps on a GPU; with dropout, with
    other masks).

    Raises:
        Diverged: as :func:`train`.
    """
    if _fused(config, engine, population):
        from hyperlab.train.fused import train_alone

        return train_alone(config, data)
    return train(config, data)


def _fused(config: TrainConfig, engine: str, population: bool) -> bool:
    return population or trains_alone_fused(config, engine)


def measure_test(
    config: TrainConfig, data: Dataset, *, engine: str = "fused", population: bool = False
) -> dict[str, float]:
    """Retrain ``config`` (deterministic under its seed) as :func:`train_as_trials` does,
    keep its best-dev weights and measure the test split: the one look at it, at the end
    of a study. Also gives the retrained run's best epoch and its dev metrics there,
    which a user compares with the trial's."""
    if _fused(config, engine, population):
        from hyperlab.train.fused import train_and_test_alone

        result, cost, error = train_and_test_alone(config, data)
    else:
        result = train(config, data, keep_best_state=True)
        model = build_model(config, data)
        model.load_state_dict(result.state_dict or {})
        t = _tensors(data)
        cost, error = evaluate(model, data.task, t["x_test"], t["y_test"])
    return best_epoch_metrics(result, cost, error, data.task)


def best_epoch_metrics(result: TrainResult, cost: float, error: float, task: str) -> dict[str, float]:
    """The test metrics of a run measured with its weights at its best epoch (cost,
    error and, for a classifier, accuracy), with that epoch and its dev metrics."""
    out = {"test_cost": cost, "test_error": error, "best_epoch": float(result.best_epoch)}
    if task != "regression":
        out["test_accuracy"] = 1.0 - error
    if result.best_epoch >= 0:
        at_best = result.curve[result.best_epoch]
        out.update({k: v for k, v in at_best.items() if k.startswith("dev_")})
    return out
