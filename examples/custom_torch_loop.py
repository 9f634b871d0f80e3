"""Tune your own PyTorch training loop through hyperlab's Python API.

    python examples/custom_torch_loop.py --trials 20 --epochs 15

The loop is yours; hyperlab chooses the hyperparameters (on the right scales),
stores every epoch's metrics as they are reported, and keeps the best.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import hyperlab as hl


def load() -> tuple[torch.Tensor, ...]:
    x, y = load_wine(return_X_y=True)
    x_train, x_dev, y_train, y_dev = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)  # fitted on the training split only
    as_x = lambda a: torch.tensor(scaler.transform(a), dtype=torch.float32)  # noqa: E731
    return as_x(x_train), torch.tensor(y_train), as_x(x_dev), torch.tensor(y_dev)


def main(argv: list[str] | None = None) -> hl.Study:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--storage", default="memory")
    args = parser.parse_args(argv)
    x_train, y_train, x_dev, y_dev = load()

    space = hl.Space(
        learning_rate=hl.Float(1e-4, 1e-1, scale="log", tier=1),
        momentum=hl.Float(0.8, 0.999, scale="reverse_log", tier=2),
        hidden_units=hl.Int(8, 128, scale="log", tier=2),
    )

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        torch.manual_seed(trial.id)
        model = torch.nn.Sequential(
            torch.nn.Linear(x_train.shape[1], p["hidden_units"]),
            torch.nn.ReLU(),
            torch.nn.Linear(p["hidden_units"], 3),
        )
        opt = torch.optim.SGD(model.parameters(), lr=p["learning_rate"], momentum=p["momentum"])
        best = 1.0
        for epoch in range(args.epochs):
            model.train()
            for idx in torch.randperm(len(x_train)).split(32):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                dev_error = float((model(x_dev).argmax(1) != y_dev).float().mean())
            trial.report(epoch, train_cost=loss.item(), dev_error=dev_error)  # stored at once
            best = min(best, dev_error)
        return best

    study = hl.Study("wine-custom-loop", space, metric="dev_error", storage=args.storage, seed=0)
    study.optimize(objective, n_trials=args.trials)
    print(f"best dev error {study.best_value:.3f} with {study.best_trial.params}")
    return study


if __name__ == "__main__":
    main()
