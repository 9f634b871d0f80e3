"""Data for the built-in trainer: load, check, split train/dev/test, normalize.

Sources:

* ``sklearn:NAME``: a dataset bundled with scikit-learn (``digits``, ``iris``,
  ``wine``, ``breast_cancer``, ``diabetes``): nothing is downloaded.
* ``mnist1d``: MNIST-1D, generated offline by the ``mnist1d`` package's
  ``make_dataset`` (never its downloading ``get_dataset``) and cached as .npz in
  ``$HYPERLAB_CACHE`` (default ``~/.cache/hyperlab``). A small benchmark on which a
  fully-connected net's accuracy depends strongly on its hyperparameters.
* a path to a ``.csv``, ``.parquet`` or ``.npz`` file. CSV and Parquet need
  ``target`` (the label column); NPZ holds arrays ``X`` and ``y`` (or ``target`` names
  the label array).

Input normalization is fitted on the training split only. The test split is kept
apart for one final measurement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hyperlab.errors import HyperlabError

__all__ = ["DataError", "Dataset", "load_dataset", "SKLEARN_DATASETS", "Task"]

Task = Literal["multiclass", "binary", "regression"]
TASKS = ("auto", "multiclass", "binary", "regression")  # what load_dataset(task=) takes

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")

# Integer labels with at most this many distinct values are classes; more is a regression.
MAX_AUTO_CLASSES = 100


class DataError(HyperlabError, ValueError):
    """The data cannot be used as given; the message says what to change."""


@dataclass
class Dataset:
    """Train/dev/test arrays, normalized, with the task they pose.

    ``x_*`` are float32 arrays [rows, features]; ``y_*`` are int64 class indices for
    classification and float32 values for regression.
    """

    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[Any] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output units: one per class (multiclass), one logit (binary) or one value."""
        return len(self.classes) if self.task == "multiclass" else 1

    def describe(self) -> str:
        sizes = f"{len(self.x_train)}/{len(self.x_dev)}/{len(self.x_test)} train/dev/test rows"
        what = f"{len(self.classes)} classes" if self.task != "regression" else "regression"
        return f"{self.name}: {self.n_features} features, {what}, {sizes}"


# -- loading -----------------------------------------------------------------------------
def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if name not in SKLEARN_DATASETS:
        raise DataError(
            f"data.source 'sklearn:{name}' is not a bundled scikit-learn dataset; "
            f"choose one of: {', '.join('sklearn:' + n for n in SKLEARN_DATASETS)}."
        )
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    return np.asarray(bunch.data), np.asarray(bunch.target), names


def cache_dir() -> Path:
    return Path(os.environ.get("HYPERLAB_CACHE") or Path.home() / ".cache" / "hyperlab")


def _load_mnist1d() -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = cache_dir() / "mnist1d.npz"
    if not path.exists():
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise DataError(
                "data.source 'mnist1d' needs the mnist1d package: pip install 'hyperlab[mnist1d]'."
            ) from None
        made = make_dataset(get_dataset_args())  # generated locally from a fixed seed
        x = np.concatenate([made["x"], made["x_test"]]).astype(np.float32)
        y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, X=x, y=y)
        os.replace(tmp, path)  # never a half-written cache
    with np.load(path) as f:
        x, y = f["X"], f["y"]
    return x, y, [f"t{i}" for i in range(x.shape[1])]


def _load_table(path: Path, target: str | None, one_hot: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import pandas as pd

    if target is None:
        raise DataError(f"data.target is required for {path.name}: name the column that holds the labels.")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError as e:
        raise DataError(f"Reading {path.name} needs a Parquet engine: pip install pyarrow ({e}).") from None
    except Exception as e:
        raise DataError(f"Cannot read {path}: {type(e).__name__}: {e}") from None
    if target not in frame.columns:
        from difflib import get_close_matches

        near = get_close_matches(target, [str(c) for c in frame.columns], n=1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        raise DataError(
            f"data.target '{target}' is not a column of {path.name}; its columns are: "
            f"{', '.join(map(str, frame.columns))}.{hint}"
        )
    if frame.empty:
        raise DataError(f"{path.name} has columns ({', '.join(map(str, frame.columns))}) but no rows.")
    y = frame[target].to_numpy()
    features = frame.drop(columns=[target])
    text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        if not one_hot:
            raise DataError(
                f"{path.name} has non-numeric feature columns: {', '.join(text)}. Encode them yourself, or set "
                "data.one_hot: true to one-hot encode them."
            )
        features = pd.get_dummies(features, columns=text, dtype=np.float32)
    return features.to_numpy(dtype=np.float64, na_value=np.nan), y, [str(c) for c in features.columns]


def _load_npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:  # not an .npz at all (np.load then tries to read a pickle)
        said = "not an .npz file" if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"  # not a pickle hint
        raise DataError(f"Cannot read {path} as an .npz archive of NumPy arrays: {said}.") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name} holds a single NumPy array, not an .npz archive of arrays 'X' and 'y'.")
    with f:
        keys = list(f.keys())
        ykey = target or "y"
        xkey = next((k for k in ("X", "x") if k in keys), None)
        if ykey not in keys or xkey is None:
            raise DataError(
                f"{path.name} must hold a feature array 'X' and a label array '{ykey}'; it holds: "
                f"{', '.join(keys) or 'nothing'}."
            )
        x, y = np.asarray(f[xkey]), np.asarray(f[ykey])
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"{path.name}: '{xkey}' must be 2-D [rows, features] and '{ykey}' 1-D with as many rows; got shapes "
            f"{x.shape} and {y.shape}."
        )
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path.name}: '{xkey}' must be numeric; got dtype {x.dtype}.")
    return x.astype(np.float64), y, [f"x{i}" for i in range(x.shape[1])]


def _load_raw(source: str, target: str | None, one_hot: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if source.startswith("sklearn:"):
        return _load_sklearn(source.split(":", 1)[1])
    if source == "mnist1d":
        return _load_mnist1d()
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ".npz"):
        raise DataError(
            f"data.source {source!r} is not a known dataset or data file; use sklearn:NAME "
            f"({', '.join(SKLEARN_DATASETS)}), mnist1d, or a .csv, .parquet or .npz file."
        )
    if not path.is_file():
        raise DataError(f"data.source: the file {str(path)!r} does not exist.")
    return _load_npz(path, target) if suffix == ".npz" else _load_table(path, target, one_hot)


# -- checks and splits -----------------------------------------------------------------------
def _clean_nan(x: np.ndarray, y: np.ndarray, nan: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    y_bad = ~np.isfinite(y) if np.issubdtype(y.dtype, np.floating) else np.zeros(len(y), dtype=bool)
    if y.dtype == object:
        y_bad = np.array([v is None or (isinstance(v, float) and not np.isfinite(v)) for v in y])
    x_bad = ~np.isfinite(x)
    rows = x_bad.any(axis=1) | y_bad
    if not rows.any():
        return x, y
    if nan == "drop":
        keep = ~rows
        if not keep.any():
            raise DataError("Every row has a NaN or infinite value; nothing is left after data.nan: drop.")
        return x[keep], y[keep]
    cols = [names[j] for j in np.flatnonzero(x_bad.any(axis=0))][:5]
    where = f"in columns {', '.join(cols)}" if cols else "in the target"
    first = np.flatnonzero(rows)[:5].tolist()
    raise DataError(
        f"The data has {int(x_bad.sum() + y_bad.sum())} NaN or infinite values in {int(rows.sum())} rows "
        f"({where}; first rows: {first}). Clean them, or set data.nan: drop to drop those rows."
    )


def _task_and_labels(y: np.ndarray, task: str) -> tuple[Task, np.ndarray, list[Any]]:
    numeric = np.issubdtype(y.dtype, np.number) and y.dtype != bool
    integral = numeric and np.all(np.mod(y, 1) == 0)
    if task == "auto":
        if not numeric or (integral and len(np.unique(y)) <= MAX_AUTO_CLASSES):
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        else:
            task = "regression"
    if task == "regression":
        if not numeric:
            raise DataError(f"task: regression needs a numeric target; got values such as {y[:3].tolist()}.")
        return "regression", y.astype(np.float32), []
    if task == "multiclass" and numeric and not integral:
        raise DataError(
            f"data.task: multiclass needs class labels, but the target holds non-integer numbers such as "
            f"{y[~(np.mod(y, 1) == 0)][:3].tolist()}; use task: regression (or auto)."
        )
    classes, codes = np.unique(y, return_inverse=True)
    if task == "binary" and len(classes) != 2:
        raise DataError(f"task: binary needs exactly 2 classes; the target has {len(classes)}.")
    if len(classes) < 2:
        raise DataError(f"A classification target needs at least 2 classes; got only {classes.tolist()}.")
    return task, codes.astype(np.int64), classes.tolist()  # type: ignore[return-value]


def split_sizes(n: int, split: tuple[float, float, float]) -> tuple[int, int, int]:
    """Rows for train/dev/test from shares (summing to 1) or sizes (whole numbers)."""
    if all(float(s).is_integer() and s >= 1 for s in split):
        sizes = tuple(int(s) for s in split)
        if sum(sizes) > n:
            raise DataError(f"data.split asks for {sum(sizes)} rows ({sizes}) but the data has {n}.")
        return sizes  # type: ignore[return-value]
    dev, test = round(n * split[1]), round(n * split[2])
    return n - dev - test, dev, test


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    task: str = "auto",
    one_hot: bool = False,
    nan: str = "error",
) -> Dataset:
    """Load ``source``, check it, split it with ``seed`` and normalize on the training split.

    Example:
        >>> data = load_dataset("sklearn:digits", seed=0)  # doctest: +SKIP
        >>> data.describe()
        'sklearn:digits: 64 features, 10 classes, 1079/359/359 train/dev/test rows'
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(source, str | Path):
        raise DataError(
            f"The data source must be a string (a file path, 'mnist1d' or 'sklearn:NAME'). Got {source!r} instead."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:  # what scikit-learn takes
        raise DataError(f"The data's seed must be an integer in [0, 2**32). Got {seed!r} instead.")
    for name, value, valid in (("task", task, TASKS), ("nan", nan, ("error", "drop"))):
        if value not in valid:
            raise DataError(f"data.{name}: got {value!r}; valid: {', '.join(map(repr, valid))}.")
    x, y, names = _load_raw(str(source), target, one_hot)
    x, y = _clean_nan(x, y, nan, names)
    n_train, n_dev, n_test = split_sizes(len(x), split)
    if min(n_train, n_dev, n_test) < 1:
        raise DataError(
            f"The data has {len(x)} rows: too few for a train/dev/test split of {split} (each split needs a row)."
        )
    kind, labels, classes = _task_and_labels(y, task)
    stratify = None
    if kind != "regression":
        counts = np.bincount(labels)
        small = np.flatnonzero(counts < 3)
        if len(small):
            c = int(small[0])
            raise DataError(
                f"Class {classes[c]!r} has {int(counts[c])} sample(s), fewer than the 3 splits (train, dev, test) "
                "need; add samples of it or drop it."
            )
        if min(n_dev, n_test) >= len(classes):
            stratify = labels
    idx = np.arange(len(x))
    rest, test_idx = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
    train_idx, dev_idx = train_test_split(
        rest, test_size=n_dev, random_state=seed, stratify=None if stratify is None else labels[rest]
    )
    if n_train + n_dev + n_test < len(x):  # sizes given: use only that many training rows
        train_idx = train_idx[:n_train]
    x = x.astype(np.float64)
    mean = x[train_idx].mean(axis=0)
    std = x[train_idx].std(axis=0)
    # A feature that barely varies on the training split (a digits pixel that is almost
    # always 0) would otherwise reach hundreds of standard deviations on dev or test rows
    # (186 on digits' dev split) and wreck their cost. Its scale is floored at a tenth
    # of the typical feature's; constant features stay at 0.
    varying = std[std > 0]
    floor = 0.1 * float(np.median(varying)) if len(varying) else 1.0
    std = np.where(std == 0, 1.0, np.maximum(std, floor))
    xs = ((x - mean) / std).astype(np.float32)
    return Dataset(
        name=source,
        task=kind,
        x_train=xs[train_idx],
        y_train=labels[train_idx],
        x_dev=xs[dev_idx],
        y_dev=labels[dev_idx],
        x_test=xs[test_idx],
        y_test=labels[test_idx],
        classes=classes,
        feature_names=names,
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
    )
