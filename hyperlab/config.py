"""study.yaml -> validated objects. Every error names its field path, value and what is valid.

The file (``hyperlab init`` writes a commented one)::

    name: digits-mlp
    storage: sqlite:///hyperlab.db
    seed: 0
    data: {source: sklearn:digits, split: {train: 0.6, dev: 0.2, test: 0.2}}
    metric: dev_error            # dev_error | dev_cost | dev_accuracy
    trials: 30
    sampler: {type: random}      # random | grid | sobol | coarse_to_fine | tpe
    train: {epochs: 20}          # hyperparameters held fixed
    search:                      # hyperparameters searched, or: search: course
      learning_rate: {type: float, low: 1.0e-4, high: 1.0, scale: log, tier: 1}
"""

from __future__ import annotations

import re
import threading
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from hyperlab.errors import HyperlabError
from hyperlab.space import Choice, Fixed, Float, Int, Param, Space, course_space
from hyperlab.train.hparams import Engine, hyperparameter_names

__all__ = ["ConfigError", "StudyConfig", "load_config", "parse_config", "TRAINER_PARAMS"]

Scalar = str | int | float | bool | None


def _not_a_bool(value: Any) -> Any:
    """YAML's true/false are not the numbers 1 and 0 here (pydantic would take them so)."""
    if isinstance(value, bool):
        raise ValueError("needs a number, not true/false")
    return value


Count = Annotated[int, BeforeValidator(_not_a_bool)]
Num = Annotated[float, BeforeValidator(_not_a_bool)]


TRAINER_PARAMS: list[str] = hyperparameter_names()
_SECONDS_MAX = threading.TIMEOUT_MAX  # the longest a thread can wait: timeout, heartbeat, grace


class ConfigError(HyperlabError, ValueError):
    """A study file that cannot be used; the message lists every problem with its path."""

    def __init__(self, problems: list[str], source: str = "the study file") -> None:
        self.problems = problems
        head = f"{source} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitSpec(_Strict):
    """Shares (summing to 1) or row counts (whole numbers) of the three splits."""

    train: Num = Field(0.6, gt=0)
    dev: Num = Field(0.2, gt=0)
    test: Num = Field(0.2, gt=0)

    @model_validator(mode="after")
    def _sums(self) -> SplitSpec:
        values = (self.train, self.dev, self.test)
        counts = all(float(v).is_integer() and v >= 1 for v in values)
        if not counts and abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(
                f"shares must sum to 1 (or all be row counts); got train={self.train}, dev={self.dev}, "
                f"test={self.test}, summing to {sum(values):g}"
            )
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.train, self.dev, self.test)


class DataSpec(_Strict):
    source: str = "sklearn:digits"
    target: str | None = None
    split: SplitSpec = Field(default_factory=SplitSpec)
    one_hot: bool = False
    nan: Literal["error", "drop"] = "error"
    task: Literal["auto", "multiclass", "binary", "regression"] = "auto"


class _ParamSpec(_Strict):
    tier: Count | None = Field(None, ge=1, le=4)
    when: dict[str, Scalar | list[Scalar]] | None = None
    default: Scalar = None


class FloatSpec(_ParamSpec):
    type: Literal["float"]
    low: Num
    high: Num
    scale: Literal["linear", "log", "reverse_log"] = "linear"

    def build(self) -> Param:
        return Float(self.low, self.high, scale=self.scale, tier=self.tier, when=self.when, default=self.default)


class IntSpec(_ParamSpec):
    type: Literal["int"]
    low: Count
    high: Count
    scale: Literal["linear", "log"] = "linear"
    step: Count = 1

    def build(self) -> Param:
        return Int(
            self.low, self.high, scale=self.scale, step=self.step, tier=self.tier, when=self.when, default=self.default
        )


def _scalars(value: Any, fixed: bool = False) -> Any:
    """Options and fixed values are strings, numbers, booleans or null: say so in one
    line, instead of pydantic's attempt at each member of the union."""
    for v in value if isinstance(value, list) and not fixed else [value]:
        if not (v is None or isinstance(v, str | int | float | bool)):
            raise ValueError(
                "must be strings, numbers, booleans or null (a list of widths per layer cannot be searched: "
                "search n_layers and hidden_units, or fix the list under train:)"
                if isinstance(v, list)
                else "must be strings, numbers, booleans or null"
            )
    return value


class ChoiceSpec(_ParamSpec):
    type: Literal["choice"]
    options: Annotated[list[Any], BeforeValidator(_scalars)]

    def build(self) -> Param:
        return Choice(self.options, tier=self.tier, when=self.when, default=self.default)


class FixedSpec(_ParamSpec):
    type: Literal["fixed"]
    value: Annotated[Any, BeforeValidator(lambda v: _scalars(v, fixed=True))]

    def build(self) -> Param:
        return Fixed(self.value, tier=self.tier, when=self.when, default=self.default)


ParamSpec = Annotated[FloatSpec | IntSpec | ChoiceSpec | FixedSpec, Field(discriminator="type")]


class CourseSearch(_Strict):
    """The course's search space (``search: course``), optionally opening tier 4."""

    preset: Literal["course"]
    max_tier: Count = Field(3, ge=1, le=4)


class RandomSpec(_Strict):
    type: Literal["random"]


class SobolSpec(_Strict):
    type: Literal["sobol"]


class GridSpec(_Strict):
    type: Literal["grid"]
    n_points: Count | dict[str, Count] = 5
    max_size: Count = Field(10_000, ge=1)
    shuffle: bool = True


class CoarseToFineSpec(_Strict):
    type: Literal["coarse_to_fine"]
    n_per_round: Count = Field(20, ge=1)
    top_k: Count = Field(5, ge=1)
    shrink: Num = Field(0.5, gt=0, lt=1)
    n_rounds: Count | None = Field(None, ge=1)


class TPESpec(_Strict):
    type: Literal["tpe"]
    n_startup: Count = Field(10, ge=1)
    n_candidates: Count = Field(24, ge=1)
    gamma: Num = Field(0.15, gt=0, lt=1)
    max_good: Count = Field(25, ge=1)
    multivariate: bool = True


SamplerSpec = Annotated[RandomSpec | SobolSpec | GridSpec | CoarseToFineSpec | TPESpec, Field(discriminator="type")]


class InlineSpec(_Strict):
    type: Literal["inline"]
    engine: Engine = "fused"


class ProcessesSpec(_Strict):
    type: Literal["processes"]
    parallel: Count | None = Field(None, ge=1)  # default: the number of CPU cores
    engine: Engine = "fused"


class RaySpec(_Strict):
    type: Literal["ray"]
    address: str | None = None  # None: start a local Ray instance; "auto" or "ray://host:10001"
    parallel: Count | None = Field(None, ge=1)
    num_cpus: Count | None = Field(None, ge=1)
    cpus_per_worker: Count = Field(1, ge=1)
    engine: Engine = "fused"


class FusedSpec(_Strict):
    type: Literal["fused"]
    population: Count | None = Field(None, ge=1)  # trials trained together; default: see FusedRunner
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    max_memory: Count | str | None = None  # bytes or "4GiB"; default: half the free RAM / GPU memory
    workers: Count | None = Field(None, ge=1)  # CPU processes for sub-populations; default: one per core
    refill: bool = True  # new trials join as members leave; false: one whole population after another

    @field_validator("max_memory")
    @classmethod
    def _size(cls, v: int | str | None) -> int | str | None:
        if v is None:
            return v
        from hyperlab.train._plan import parse_memory

        try:
            parse_memory(v)
        except HyperlabError:
            raise ValueError("must be a positive size such as '4GiB', '500MB' or a number of bytes") from None
        return v


RunnerSpec = Annotated[InlineSpec | FusedSpec | ProcessesSpec | RaySpec, Field(discriminator="type")]


class NoScheduler(_Strict):
    type: Literal["none"]


class ASHASpec(_Strict):
    type: Literal["asha"]
    reduction_factor: Count = Field(3, ge=2)
    min_resource: Count = Field(1, ge=1)
    max_resource: Count | None = Field(None, ge=1)  # default: train.epochs


class HyperbandSpec(_Strict):
    type: Literal["hyperband"]
    reduction_factor: Count = Field(3, ge=2)
    min_resource: Count = Field(1, ge=1)
    max_resource: Count | None = Field(None, ge=1)  # default: train.epochs


class MedianSpec(_Strict):
    type: Literal["median"]
    n_startup_trials: Count = Field(5, ge=1)
    n_warmup_steps: Count = Field(0, ge=0)


SchedulerSpec = Annotated[NoScheduler | ASHASpec | HyperbandSpec | MedianSpec, Field(discriminator="type")]


class StudyConfig(_Strict):
    """A whole study file."""

    name: str = Field(min_length=1)
    storage: str = "sqlite:///hyperlab.db"
    seed: Count = Field(0, ge=0, le=2**32 - 1)  # what NumPy and scikit-learn take as a seed
    data: DataSpec = Field(default_factory=DataSpec)
    metric: Literal["dev_error", "dev_cost", "dev_accuracy"] = "dev_error"
    trials: Count = Field(30, ge=1)
    timeout: Num | None = Field(None, gt=0, le=_SECONDS_MAX, allow_inf_nan=False)
    sampler: SamplerSpec = Field(default_factory=lambda: RandomSpec(type="random"))
    runner: RunnerSpec = Field(default_factory=lambda: FusedSpec(type="fused"))
    scheduler: SchedulerSpec = Field(default_factory=lambda: NoScheduler(type="none"))
    retries: Count = Field(1, ge=0)  # re-runs of a trial whose worker was lost (interrupts: always)
    # seconds between heartbeats of a running trial
    heartbeat: Num = Field(5.0, gt=0, le=_SECONDS_MAX, allow_inf_nan=False)
    # a trial silent this long is failed as lost
    grace: Num = Field(60.0, gt=0, le=_SECONDS_MAX, allow_inf_nan=False)
    train: dict[str, Any] = Field(default_factory=dict)
    search: CourseSearch | dict[str, ParamSpec] = Field(default_factory=lambda: CourseSearch(preset="course"))

    @field_validator("search", mode="before")
    @classmethod
    def _course_shorthand(cls, v: Any) -> Any:
        return {"preset": "course"} if v == "course" else v

    @field_validator("sampler", "runner", "scheduler", mode="before")
    @classmethod
    def _type_shorthand(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> StudyConfig:  # also when grace is left at its default
        if self.grace <= self.heartbeat:
            raise ValueError(
                f"grace ({self.grace:g} s) must be longer than heartbeat ({self.heartbeat:g} s), or live trials "
                "would be failed as lost"
            )
        return self

    @property
    def epochs(self) -> int:
        from hyperlab.train.hparams import TrainConfig

        return int(self.train.get("epochs", TrainConfig.epochs))

    def scheduler_object(self) -> Any:
        from hyperlab import schedulers

        s = self.scheduler
        if isinstance(s, ASHASpec):
            return schedulers.ASHAScheduler(s.reduction_factor, s.min_resource, s.max_resource or self.epochs)
        if isinstance(s, HyperbandSpec):
            return schedulers.HyperbandScheduler(s.reduction_factor, s.min_resource, s.max_resource or self.epochs)
        if isinstance(s, MedianSpec):
            return schedulers.MedianScheduler(s.n_startup_trials, s.n_warmup_steps)
        return None

    def runner_object(self) -> Any:
        from hyperlab import runners

        r = self.runner
        if isinstance(r, InlineSpec):
            return runners.InlineRunner()
        if isinstance(r, FusedSpec):
            from hyperlab.train._plan import parse_memory

            memory = None if r.max_memory is None else parse_memory(r.max_memory)
            return runners.FusedRunner(
                r.population, device=r.device, max_memory=memory, workers=r.workers, refill=r.refill
            )
        if isinstance(r, RaySpec):
            return runners.RayRunner(
                r.address, parallel=r.parallel, num_cpus=r.num_cpus, cpus_per_worker=r.cpus_per_worker
            )
        return runners.ProcessRunner(r.parallel)

    @property
    def direction(self) -> str:
        return "maximize" if self.metric == "dev_accuracy" else "minimize"

    def space(self) -> Space:
        if isinstance(self.search, CourseSearch):
            return course_space(max_tier=self.search.max_tier)
        return Space({name: spec.build() for name, spec in self.search.items()})

    def sampler_object(self) -> Any:
        from hyperlab import samplers

        s = self.sampler
        if isinstance(s, GridSpec):
            return samplers.GridSampler(s.n_points, max_size=s.max_size, shuffle=s.shuffle)
        if isinstance(s, CoarseToFineSpec):
            return samplers.CoarseToFineSampler(s.n_per_round, top_k=s.top_k, shrink=s.shrink, n_rounds=s.n_rounds)
        if isinstance(s, SobolSpec):
            return samplers.SobolSampler()
        if isinstance(s, TPESpec):
            return samplers.TPESampler(
                s.n_startup,
                n_candidates=s.n_candidates,
                gamma=s.gamma,
                max_good=s.max_good,
                multivariate=s.multivariate,
            )
        return samplers.RandomSampler()


# -- error messages ----------------------------------------------------------------------------
def _path(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's union-member tags ("float", "CourseSearch", "dict[str,...]") from the path.
    parts = []
    for p in loc:
        if isinstance(p, str) and (p in _TAGS or "[" in p or p[:1].isupper()):
            continue
        parts.append(str(p))
    return ".".join(parts)


_TAGS: dict[str, type[BaseModel]] = {
    "float": FloatSpec,
    "int": IntSpec,
    "choice": ChoiceSpec,
    "fixed": FixedSpec,
    "random": RandomSpec,
    "sobol": SobolSpec,
    "grid": GridSpec,
    "coarse_to_fine": CoarseToFineSpec,
    "tpe": TPESpec,
    "CourseSearch": CourseSearch,
    "inline": InlineSpec,
    "fused": FusedSpec,
    "processes": ProcessesSpec,
    "ray": RaySpec,
    "none": NoScheduler,
    "asha": ASHASpec,
    "hyperband": HyperbandSpec,
    "median": MedianSpec,
}


# The types each tagged mapping takes (a missing type: key gets no list from pydantic).
_UNION_TAGS: dict[str, tuple[str, ...]] = {
    key: tuple(get_args(m.model_fields["type"].annotation)[0] for m in get_args(get_args(union)[0]))
    for key, union in (
        ("search", ParamSpec),
        ("sampler", SamplerSpec),
        ("runner", RunnerSpec),
        ("scheduler", SchedulerSpec),
    )
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model whose keys apply at ``loc`` (for name suggestions)."""
    model: type[BaseModel] | None = StudyConfig
    for p in loc:
        if p in _TAGS:
            model = _TAGS[p]
            continue
        field = model.model_fields.get(p) if model is not None else None
        if field is None:
            model = None  # a dict key (a searched parameter's name) or a union member label
            continue
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _suggest(word: str, options: list[str]) -> str:
    near = get_close_matches(word, options, n=1, cutoff=0.6)
    return f" Did you mean '{near[0]}'?" if near else ""


def _describe_error(err: dict[str, Any]) -> str | None:
    loc = tuple(err["loc"])
    path = _path(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        options = list(model.model_fields) if model else []
        key = str(loc[-1])
        valid = f" Valid keys here: {', '.join(options)}." if options else ""
        return f"{path}: unknown key '{key}'.{_suggest(key, options)}{valid}"
    if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
        ctx = err.get("ctx", {})
        valid = ctx.get("expected_tags") or ", ".join(repr(t) for t in _UNION_TAGS.get(str(loc[0]), ()))
        return f"{path}.type: got {err.get('input', {}).get('type')!r}; valid: {valid}."
    value = err.get("input")
    shown = f"; got {value!r}" if not isinstance(value, dict) else ""
    msg = err["msg"].removeprefix("Value error, ")
    if not path:  # a check across keys: its message names them
        return f"{msg}."
    return f"{path}: {msg}{shown}."


def parse_config(raw: Any, source: str = "the study file") -> StudyConfig:
    """Validate a loaded YAML document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError([f"the top level must be a mapping of keys such as name, data, search; got {raw!r}"], source)
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as e:
        problems: list[str] = []
        errors = e.errors()
        # search is a union (the course preset or a mapping of parameters): keep the
        # errors of the form the user wrote, not pydantic's attempt at the other one.
        raw_search = raw.get("search")
        course_form = raw_search == "course" or (isinstance(raw_search, dict) and "preset" in raw_search)

        def other_form(x: Any) -> bool:
            loc = x["loc"]
            if len(loc) < 2 or loc[0] != "search" or not isinstance(loc[1], str):
                return False
            return loc[1].startswith("dict[") if course_form else loc[1] == "CourseSearch"

        errors = [x for x in errors if not other_form(x)]
        for err in errors:
            text = _describe_error(dict(err))
            if text and text not in problems:
                problems.append(text)
        raise ConfigError(problems, source) from None
    _check_semantics(config, raw, source)
    return config


def _check_semantics(config: StudyConfig, raw: dict[str, Any], source: str) -> None:
    problems: list[str] = []
    names = TRAINER_PARAMS
    for key in config.train:
        if key not in names:
            problems.append(f"train.{key}: not a hyperparameter of the built-in trainer.{_suggest(key, names)}")
    if isinstance(config.search, dict):
        for key, spec in config.search.items():
            if key not in names:
                problems.append(f"search.{key}: not a hyperparameter of the built-in trainer.{_suggest(key, names)}")
                continue
            for field, message in spec.build().problems():
                problems.append(f"search.{key}.{field}: {message}.")
            if key in config.train:
                problems.append(f"search.{key}: also given in train; a hyperparameter is either fixed or searched.")
    problems += _trainer_values(config)
    data_source = config.data.source
    if config.data.target is not None and (data_source.startswith("sklearn:") or data_source == "mnist1d"):
        problems.append(
            f"data.target: {data_source} brings its own labels; data.target names the label column of a CSV or Parquet "
            "file (or the label array of an NPZ file). Drop it."
        )
    widths = config.train.get("hidden_units")
    if isinstance(widths, list) and "n_layers" in config.train and config.train["n_layers"] != len(widths):
        problems.append(
            f"train.n_layers: {config.train['n_layers']!r}, but hidden_units lists {len(widths)} widths (one per "
            "layer, so they set the depth); drop n_layers or make them agree."
        )
    if isinstance(widths, list) and isinstance(config.search, dict) and "n_layers" in config.search:
        problems.append(
            "search.n_layers: train.hidden_units lists the widths of every layer, so it sets the depth and a "
            "searched n_layers would change nothing; search hidden_units as one width, or drop n_layers."
        )
    if not problems:
        try:
            space = config.space()
        except HyperlabError as e:
            problems.append(f"search: {e}")
        else:
            problems += _search_problems(config, space)
    if problems:
        raise ConfigError(problems, source)


def _trainer_values(config: StudyConfig) -> list[str]:
    """train: values the trainer refuses, each with its key (checked here, before a
    study is made, not in every trial)."""
    from hyperlab.train.hparams import TrainConfig

    problems = []
    for key, value in config.train.items():
        if key in TRAINER_PARAMS:
            try:
                TrainConfig.from_params({key: value})
            except HyperlabError as e:
                problems.append(f"train.{key}: {e}")
    return problems


def _search_problems(config: StudyConfig, space: Space) -> list[str]:
    """Searched values the trainer would refuse (each trial drawing one would fail),
    a course preset that would override train:, and a grid that cannot be made."""
    from hyperlab.train.hparams import TrainConfig

    problems = []
    if isinstance(config.search, CourseSearch):
        for key in config.train:
            if key in space:
                problems.append(
                    f"train.{key}: the course's search space searches (or fixes) it too, and a trial's value "
                    "would override this one; drop it from train:, or list search: parameters one by one."
                )
    else:
        for name in space.names:
            p = space[name]
            if isinstance(p, Choice):
                values = list(p.options)
            elif isinstance(p, Fixed):
                values = [p.value]
            else:  # the ends and the middle: a float drawn for an integer is caught there
                values = [p.from_unit(0.0), p.from_unit(0.5), p.from_unit(1.0)]
            for value in values:
                try:
                    TrainConfig.from_params({**config.train, name: value})
                except HyperlabError as e:
                    problems.append(f"search.{name}: a trial could draw {value!r}, which the trainer refuses: {e}")
                    break
    if isinstance(config.sampler, GridSpec):
        try:
            size = config.sampler_object().size(space)
        except HyperlabError as e:
            problems.append(f"sampler.n_points: {e}")
        else:
            if size > config.sampler.max_size:
                problems.append(
                    f"sampler.max_size: the grid has {size:,} points, more than max_size {config.sampler.max_size:,}; "
                    f"use fewer n_points, fix some parameters, or raise sampler.max_size to {size}."
                )
    return problems


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study file."""
    import yaml

    p = Path(path)
    if p.is_dir():
        raise ConfigError([f"{str(p)!r} is a folder, not a study file (hyperlab init writes an example)"], str(p))
    if not p.is_file():
        raise ConfigError([f"the file {str(p)!r} does not exist (hyperlab init writes an example)"], str(p))
    try:
        raw = yaml.load(p.read_text(encoding="utf-8"), Loader=_loader())  # a SafeLoader
    except UnicodeDecodeError as e:
        raise ConfigError(
            [f"it is not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r})"], str(p)
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError([f"it is not valid YAML{where}: {what}"], str(p)) from None
    return parse_config(raw, str(p))


def _unique_keys(loader: Any, node: Any, deep: bool = False) -> Any:
    """A YAML mapping whose own keys are unique: PyYAML lets the last of two equal keys
    win. Keys merged in (``<<: *anchor``) may be overridden, as merging intends."""
    import yaml

    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue  # merges are expanded by construct_mapping; complex keys get its error
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as text: 1e-4, 5E3, -2e+2 (no dot)
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


def _loader() -> Any:
    import yaml

    class StudyLoader(yaml.SafeLoader):
        pass

    StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)
    # a learning rate written 1e-4 is a number, not the string '1e-4'
    StudyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return StudyLoader
