"""Tune scikit-learn's MLPClassifier with hyperlab (no PyTorch needed in the objective).

python examples/sklearn_mlp.py --trials 20
"""

from __future__ import annotations

import argparse
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import hyperlab as hl


def main(argv: list[str] | None = None) -> hl.Study:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--max-iter", type=int, default=60)
    parser.add_argument("--storage", default="memory")
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)
    x_train, x_dev, y_train, y_dev = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_dev = scaler.transform(x_train), scaler.transform(x_dev)

    space = hl.Space(
        learning_rate_init=hl.Float(1e-4, 1e-1, scale="log", tier=1),
        alpha=hl.Float(1e-6, 1e-1, scale="log", tier=3),  # L2
        hidden=hl.Int(16, 256, scale="log", tier=2),
        beta_1=hl.Fixed(0.9, tier=4),
        beta_2=hl.Float(0.99, 0.9999, scale="reverse_log", tier=4),
    )

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        clf = MLPClassifier(
            hidden_layer_sizes=(p["hidden"],),
            learning_rate_init=p["learning_rate_init"],
            alpha=p["alpha"],
            beta_1=p["beta_1"],
            beta_2=p["beta_2"],
            max_iter=args.max_iter,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x_train, y_train)
        for step, loss in enumerate(clf.loss_curve_):
            trial.report(step, train_cost=loss)
        return 1.0 - clf.score(x_dev, y_dev)

    study = hl.Study("digits-sklearn-mlp", space, metric="dev_error", storage=args.storage, seed=0)
    study.optimize(objective, n_trials=args.trials)
    print(f"best dev error {study.best_value:.3f} with {study.best_trial.params}")
    return study


if __name__ == "__main__":
    main()
