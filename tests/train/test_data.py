"""Data loading: bundled sets, files, splits, normalization, and a clear error for each bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperlab.train.data import DataError, load_dataset


def test_digits_split_and_normalization() -> None:
    d = load_dataset("sklearn:digits", seed=0)
    assert (len(d.x_train), len(d.x_dev), len(d.x_test)) == (1079, 359, 359)
    assert d.task == "multiclass" and d.n_outputs == 10 and d.n_features == 64
    # Fitted on the training split only: its columns have mean 0; the dev split's do not exactly.
    assert np.abs(d.x_train.mean(axis=0)).max() < 1e-5
    assert np.abs(d.x_dev.mean(axis=0)).max() > 1e-3
    spread = d.x_train.std(axis=0)
    floored = (spread > 0) & (spread < 0.999)
    assert spread.max() < 1.0001  # unit variance, or less for a floored scale
    # The few nearly constant pixels are scaled with the floor, not blown up: no dev value
    # lies hundreds of standard deviations out (186 without the floor).
    assert 1 <= floored.sum() <= 8
    assert np.abs(d.x_dev).max() < 25 and np.abs(d.x_test).max() < 25
    # Stratified: every class in every split.
    for y in (d.y_train, d.y_dev, d.y_test):
        assert set(np.unique(y)) == set(range(10))
    # Same seed, same split; another seed, another split.
    again = load_dataset("sklearn:digits", seed=0)
    assert np.array_equal(again.x_dev, d.x_dev)
    assert not np.array_equal(load_dataset("sklearn:digits", seed=1).x_dev, d.x_dev)


def test_tasks_from_data() -> None:
    assert load_dataset("sklearn:breast_cancer").task == "binary"
    reg = load_dataset("sklearn:diabetes")
    assert reg.task == "regression" and reg.y_train.dtype == np.float32 and reg.n_outputs == 1
    assert load_dataset("sklearn:iris", task="multiclass").task == "multiclass"


def test_split_as_sizes() -> None:
    d = load_dataset("sklearn:digits", split=(500, 200, 300))
    assert (len(d.x_train), len(d.x_dev), len(d.x_test)) == (500, 200, 300)


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": rng.integers(0, 3, n)})


def test_csv_parquet_npz(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    np.savez(tmp_path / "d.npz", X=frame[["a", "b"]].to_numpy(), y=frame["label"].to_numpy())
    for name in ("d.csv", "d.parquet"):
        d = load_dataset(str(tmp_path / name), target="label")
        assert d.task == "multiclass" and d.n_features == 2 and d.feature_names == ["a", "b"]
        assert len(d.x_train) + len(d.x_dev) + len(d.x_test) == 60
    d = load_dataset(str(tmp_path / "d.npz"))
    assert d.n_features == 2


def test_one_hot_switch(tmp_path: Path) -> None:
    frame = _frame()
    frame["color"] = ["red", "green", "blue"] * 20
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(
        DataError,
        match=re.escape(
            "c.csv has non-numeric feature columns: color. Encode them yourself, or set data.one_hot: true"
        ),
    ):
        load_dataset(str(tmp_path / "c.csv"), target="label")
    d = load_dataset(str(tmp_path / "c.csv"), target="label", one_hot=True)
    assert d.n_features == 5 and "color_red" in d.feature_names


def test_nan_error_and_drop(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[3, "a"] = np.nan
    frame.loc[7, "b"] = np.inf
    frame.to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(
        DataError,
        match=re.escape(
            "The data has 2 NaN or infinite values in 2 rows (in columns a, b; first rows: [3, 7]). Clean them, or set data.nan: drop"
        ),
    ):
        load_dataset(str(tmp_path / "n.csv"), target="label")
    d = load_dataset(str(tmp_path / "n.csv"), target="label", nan="drop")
    assert len(d.x_train) + len(d.x_dev) + len(d.x_test) == 58


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (None, {"source": "nope.csv", "target": "y"}, "data.source: the file 'nope.csv' does not exist."),
        (
            None,
            {"source": "sklearn:mnist"},
            "data.source 'sklearn:mnist' is not a bundled scikit-learn dataset; choose one of: sklearn:digits",
        ),
        (None, {"source": "data.xlsx"}, "data.source 'data.xlsx' is not a known dataset or data file"),
        (
            "csv",
            {"target": "lable"},
            "data.target 'lable' is not a column of d.csv; its columns are: a, b, label. Did you mean 'label'?",
        ),
        ("csv", {"target": None}, "data.target is required for d.csv: name the column that holds the labels."),
        ("rare", {"target": "label"}, "Class 9 has 2 sample(s), fewer than the 3 splits (train, dev, test) need"),
        ("npz_bad", {}, "d.npz must hold a feature array 'X' and a label array 'y'; it holds: features, y."),
        ("npz_text", {}, "as an .npz archive of NumPy arrays: not an .npz file."),  # was np.load's traceback
        ("header_only", {"target": "label"}, "d.csv has columns (a, b, label) but no rows."),
        ("tiny", {"target": "label"}, "The data has 2 rows: too few for a train/dev/test split"),
        # an unknown task trained as a regression, silently, before it was checked
        (
            None,
            {"source": "sklearn:iris", "task": "classify"},
            "data.task: got 'classify'; valid: 'auto', 'multiclass'",
        ),
        (None, {"source": "sklearn:iris", "nan": "ignore"}, "data.nan: got 'ignore'; valid: 'error', 'drop'."),
        (None, {"source": "sklearn:iris", "seed": 2**32}, "The data's seed must be an integer in [0, 2**32)."),
        (None, {"source": 5}, "The data source must be a string (a file path, 'mnist1d' or 'sklearn:NAME'). Got 5"),
    ],
)
def test_bad_data_gets_a_clear_error(tmp_path: Path, make: str | None, kwargs: dict, message: str) -> None:
    frame = _frame()
    source = kwargs.pop("source", None)
    if make in ("csv", "rare", "tiny"):
        if make == "rare":
            frame.loc[:1, "label"] = 9
        if make == "tiny":
            frame = frame.iloc[:2]
        frame.to_csv(tmp_path / "d.csv", index=False)
        source = str(tmp_path / "d.csv")
    elif make == "npz_text":
        (tmp_path / "d.npz").write_text("not arrays")
        source = str(tmp_path / "d.npz")
    elif make == "header_only":
        frame.iloc[:0].to_csv(tmp_path / "d.csv", index=False)
        source = str(tmp_path / "d.csv")
    elif make == "npz_bad":
        np.savez(tmp_path / "d.npz", features=np.zeros((5, 2)), y=np.zeros(5))
        source = str(tmp_path / "d.npz")
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset(source, **kwargs)


def test_mnist1d_generated_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERLAB_CACHE", str(tmp_path))
    import mnist1d.data

    def no_download(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("get_dataset downloads; hyperlab must not call it")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    d = load_dataset("mnist1d")
    assert d.n_features == 40 and d.n_outputs == 10 and len(d.x_train) == 3000
    assert (tmp_path / "mnist1d.npz").exists()
    monkeypatch.setattr(mnist1d.data, "make_dataset", no_download)  # the second load reads the cache
    assert np.array_equal(load_dataset("mnist1d").x_dev, d.x_dev)
