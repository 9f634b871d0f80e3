"""study.yaml validation: field paths, values, suggestions."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import pytest
import yaml

from hyperlab import Fixed, Float, GridSampler, course_space
from hyperlab.cli._example import EXAMPLE_YAML
from hyperlab.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_and_shipped_examples_parse() -> None:
    for text in (EXAMPLE_YAML, (ROOT / "examples" / "digits.yaml").read_text()):
        config = parse_config(yaml.safe_load(text))
        space = config.space()
        assert space["learning_rate"] == Float(1e-4, 1e-1, scale="log", tier=1)
        assert space["momentum"].when == (("optimizer", ("momentum",)),)
        assert config.train["epochs"] == 15 and config.direction == "minimize"


def test_defaults_and_shorthands() -> None:
    config = parse_config(
        {"name": "x", "search": "course", "sampler": {"type": "grid", "n_points": 3}, "metric": "dev_accuracy"}
    )
    assert config.space() == course_space()
    assert config.direction == "maximize"
    assert isinstance(config.sampler_object(), GridSampler)
    opened = parse_config({"name": "x", "search": {"preset": "course", "max_tier": 4}}).space()
    assert not isinstance(opened["adam_beta2"], Fixed)
    # the engine a runner that trains one trial at a time uses (see make_objective)
    assert parse_config({"name": "x", "runner": "processes"}).runner.engine == "fused"  # type: ignore[union-attr]
    ordinary = parse_config({"name": "x", "runner": {"type": "inline", "engine": "ordinary"}})
    assert ordinary.runner.engine == "ordinary"  # type: ignore[union-attr]


LR = {"type": "float", "low": 1e-3, "high": 1e-1, "scale": "log"}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"name": "x", "search": {"learning_rate": {"type": "float", "low": 0.0, "high": 1.0, "scale": "log"}}},
            "search.learning_rate.low: scale='log' needs low > 0; got low=0.0.",
        ),
        (
            {"name": "x", "search": {"learning_rate": {"type": "float", "low": 1.0, "high": 0.1}}},
            "search.learning_rate.low: low must be less than high; got low=1.0, high=0.1.",
        ),
        (
            {"name": "x", "search": {"momentum": {"type": "float", "low": 0.9, "high": 1.0, "scale": "reverse_log"}}},
            "search.momentum.high: scale='reverse_log' samples 1 - x on a log scale and needs high < 1; got high=1.0.",
        ),
        (
            {"name": "x", "search": {"optimizer": {"type": "choice", "options": []}}},
            "search.optimizer.options: options must hold at least one value; got an empty list.",
        ),
        (
            {"name": "x", "search": {"lerning_rate": {"type": "float", "low": 0.1, "high": 1}}},
            "search.lerning_rate: not a hyperparameter of the built-in trainer. Did you mean 'learning_rate'?",
        ),
        (
            {"name": "x", "search": {"learning_rate": {"type": "float", "low": 0.1, "hihg": 1}}},
            "search.learning_rate.hihg: unknown key 'hihg'. Did you mean 'high'?",
        ),
        (
            {"name": "x", "search": {"learning_rate": {"type": "real", "low": 0.1, "high": 1}}},
            "search.learning_rate.type: got 'real'; valid: 'float', 'int', 'choice', 'fixed'.",
        ),
        ({"name": "x", "serch": "course"}, "serch: unknown key 'serch'. Did you mean 'search'?"),
        ({"name": "x", "data": {"sorce": "sklearn:digits"}}, "data.sorce: unknown key 'sorce'. Did you mean 'source'?"),
        ({"name": "x", "trials": 0}, "trials: Input should be greater than or equal to 1; got 0."),
        (
            {"name": "x", "metric": "accuracy"},
            "metric: Input should be 'dev_error', 'dev_cost' or 'dev_accuracy'; got 'accuracy'.",
        ),
        (
            {"name": "x", "sampler": "bayes"},
            "sampler.type: got 'bayes'; valid: 'random', 'sobol', 'grid', 'coarse_to_fine', 'tpe'.",
        ),
        (
            {"name": "x", "sampler": {"type": "tpe", "gamma": 1.5}},
            "sampler.gamma: Input should be less than 1; got 1.5.",
        ),
        (
            {"name": "x", "train": {"epoch": 3}},
            "train.epoch: not a hyperparameter of the built-in trainer. Did you mean 'epochs'?",
        ),
        (
            {"name": "x", "data": {"split": {"train": 0.5, "dev": 0.1, "test": 0.1}}},
            "data.split: shares must sum to 1 (or all be row counts); got train=0.5, dev=0.1, test=0.1, summing to 0.7",
        ),
        (
            {"name": "x", "search": {"preset": "course", "max_tier": 7}},
            "search.max_tier: Input should be less than or equal to 4; got 7.",
        ),
        (
            {
                "name": "x",
                "train": {"learning_rate": 0.1},
                "search": {"learning_rate": {"type": "float", "low": 0.1, "high": 1}},
            },
            "search.learning_rate: also given in train; a hyperparameter is either fixed or searched.",
        ),
        ({"search": "course"}, "name: Field required."),
        # found by an audit of the CLI: each was taken silently, failed every trial, or came too late
        ({"name": "x", "trials": True}, "trials: needs a number, not true/false; got True."),
        (
            {"name": "x", "data": {"source": "sklearn:iris", "target": "label"}},
            "data.target: sklearn:iris brings its own",
        ),
        (
            {"name": "x", "train": {"n_layers": 3, "hidden_units": [16, 8]}},
            "train.n_layers: 3, but hidden_units lists 2 widths",
        ),
        (
            {
                "name": "x",
                "train": {"hidden_units": [16, 8]},
                "search": {"n_layers": {"type": "int", "low": 1, "high": 3}},
            },
            "search.n_layers: train.hidden_units lists the widths of every layer, so it sets the depth",
        ),
        ({"name": "x", "seed": 2**32}, "seed: Input should be less than or equal to 4294967295; got 4294967296."),
        (
            {"name": "x", "search": {"learning_rate": {"low": 0.1, "high": 1}}},
            "search.learning_rate.type: got None; valid: 'float', 'int', 'choice', 'fixed'.",
        ),
        (
            {"name": "x", "search": {"hidden_units": {"type": "choice", "options": [[16, 16], [32]]}}},
            "search.hidden_units.options: must be strings, numbers, booleans or null (a list of widths per layer",
        ),
        ({"name": "x", "heartbeat": 100}, "grace (60 s) must be longer than heartbeat (100 s)"),
        ({"name": "x", "train": {"batch_size": "abc"}}, "train.batch_size: The 'batch_size' hyperparameter must be"),
        (
            {"name": "x", "search": {"optimizer": {"type": "choice", "options": ["adam", "nadam"]}}},
            "search.optimizer: a trial could draw 'nadam', which the trainer refuses: The 'optimizer' hyperparameter",
        ),
        (
            {"name": "x", "search": {"dropout": {"type": "float", "low": 0.5, "high": 1.0}}},
            "search.dropout: a trial could draw 1.0, which the trainer refuses",
        ),
        (
            {"name": "x", "search": {"batch_size": {"type": "float", "low": 16, "high": 64}}},
            "search.batch_size: a trial could draw 16.0, which the trainer refuses",
        ),
        (
            {"name": "x", "train": {"learning_rate": 0.5}},
            "train.learning_rate: the course's search space searches (or fixes) it too",
        ),
        (
            {
                "name": "x",
                "search": {"learning_rate": LR},
                "sampler": {"type": "grid", "n_points": 100, "max_size": 10},
            },
            "sampler.max_size: the grid has 100 points, more than max_size 10;",
        ),
        (
            {"name": "x", "search": {"learning_rate": LR}, "sampler": {"type": "grid", "n_points": {"lr": 3}}},
            "sampler.n_points: GridSampler got n_points for 'lr', which is not a parameter of the space",
        ),
        ({"name": "x", "heartbeat": float("nan")}, "heartbeat: Input should be a finite number; got nan."),
        ({"name": "x", "timeout": float("inf")}, "timeout: Input should be less than or equal to 9223372036; got inf."),
        (
            {"name": "x", "runner": {"type": "processes", "engine": "jit"}},
            "runner.engine: Input should be 'fused' or 'ordinary'; got 'jit'.",
        ),
    ],
)
def test_errors_name_path_value_and_what_is_valid(raw: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigError, match=re.escape("the study file has 2 problems:")):
        parse_config({"name": "x", "trials": 0, "seed": -1})


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="it is not valid YAML at line 2, column 1: expected ',' or ']'"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "twice.yaml").write_text("name: x\ntrials: 2\ntrials: 1\n")  # PyYAML lets the last one win
    with pytest.raises(ConfigError, match="line 3, column 1: the key 'trials' appears twice in one mapping"):
        load_config(tmp_path / "twice.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=re.escape("it is not UTF-8 text (byte 9: b'\\xe9')")):
        load_config(tmp_path / "latin1.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a study file"):
        load_config(tmp_path)
    (tmp_path / "key.yaml").write_text("name: x\n? [a, b]\n: 1\n")  # a complex key: PyYAML's own error
    with pytest.raises(ConfigError, match="found unhashable key"):
        load_config(tmp_path / "key.yaml")


def test_yaml_merges_and_exponent_floats_load(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: m\ntrain: {learning_rate: 1e-4, l2: 5E-3}\nsearch:\n"
        "  momentum: &b {type: float, low: 0.9, high: 0.99, scale: reverse_log}\n"
        "  adam_beta2: {<<: *b, high: 0.9999}\n"  # a merged key overridden, as merging intends
    )
    config = load_config(tmp_path / "s.yaml")
    assert config.train == {"learning_rate": 1e-4, "l2": 5e-3}  # numbers, not the strings YAML 1.1 reads
    assert config.space()["adam_beta2"] == Float(0.9, 0.9999, scale="reverse_log")


def test_problems_are_headed_by_the_study_file(tmp_path: Path) -> None:
    (tmp_path / "hdr.yaml").write_text("name: h\ndata: {source: 'sklearn:iris'}\ntrain: {optimzer: adam}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'hdr.yaml'} has 1 problem")):
        load_config(tmp_path / "hdr.yaml")


def test_the_workers_config_keeps_infinity(tmp_path: Path) -> None:
    # JSON mode wrote diverge_factor: inf as None, and every process worker refused its config
    from hyperlab.runners import ProcessRunner
    from hyperlab.tune import TuneJob

    raw = {"name": "x", "data": {"source": "sklearn:iris"}, "train": {"epochs": 1, "diverge_factor": math.inf}}
    factory = TuneJob(parse_config(raw)).objective_factory(ProcessRunner(1))
    assert parse_config(pickle.loads(pickle.dumps(factory)).args[0]).train["diverge_factor"] == math.inf
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.parametrize(("engine", "refused"), [("ordinary", "train_alone"), ("fused", "train")])
def test_the_runners_engine_reaches_the_objective(monkeypatch: pytest.MonkeyPatch, engine: str, refused: str) -> None:
    import hyperlab.train.fused
    import hyperlab.train.objective
    from hyperlab import Study
    from hyperlab.tune import objective_from_config

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{refused} ran")

    module = hyperlab.train.fused if refused == "train_alone" else hyperlab.train.objective
    monkeypatch.setattr(module, refused, refuse)
    raw = {
        "name": "x",
        "data": {"source": "sklearn:iris"},
        "train": {"epochs": 2, "hidden_units": 8},  # under search: course, the trial's width would override it
        "search": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.1, "scale": "log"}},
        "runner": {"type": "processes", "engine": engine},
    }
    study = Study("x", parse_config(raw).space(), storage="memory", seed=0, metric="dev_error")
    study.optimize(objective_from_config(raw), n_trials=1)
    assert study.trials[0].state.value == "complete" and len(study.trials[0].curve) == 2
