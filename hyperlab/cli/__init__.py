"""The ``hyperlab`` command: tune, demo, list, show, export, best, init.

One boundary: :func:`main` turns every :class:`~hyperlab.errors.HyperlabError` into a
one-line message and exit code 2 (usage errors too); tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperlab.errors import HyperlabError, InvalidArgumentError
from hyperlab.storage import DEFAULT_STORAGE
from hyperlab.trial import TRIAL_TEST_ATTR

app = typer.Typer(
    name="hyperlab",
    help="Tune the hyperparameters of deep networks the course's way: right scales, random and "
    "coarse-to-fine search, every learning curve stored.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

StorageOpt = Annotated[
    str, typer.Option("--storage", "-s", help="Where studies are stored: a database URL, or 'memory'.")
]

_state: dict[str, bool] = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


# -- tune / demo ----------------------------------------------------------------------------------
def _yaml(data: dict[str, Any]) -> str:
    import yaml

    def clean(v: Any) -> Any:
        return float(f"{v:.6g}") if isinstance(v, float) else v

    return yaml.safe_dump({k: clean(v) for k, v in data.items()}, sort_keys=False).rstrip()


def _run_job(config: Any, *, trials: int | None, timeout: float | None, png: Path | None) -> None:
    from rich.live import Live

    from hyperlab._signals import stop_on_sigterm
    from hyperlab.cli._live import LiveView
    from hyperlab.runners import FusedRunner, InlineRunner
    from hyperlab.tune import TuneJob

    job = TuneJob(config)
    data = job.data  # checked before the study is opened: a bad file leaves nothing behind
    runner = config.runner_object()
    if isinstance(runner, FusedRunner):
        runner.check_device()  # likewise
    study = job.study
    total = trials or config.trials
    before = study.storage.get_study(study.name).n_budgeted
    console.print(f"[bold]study[/] {escape(config.name)}  [dim]({escape(config.storage)})[/]")
    console.print(f"[bold]data[/]  {escape(data.describe())}")
    console.print(
        f"[bold]goal[/]  {config.direction} {config.metric}; {total} trials, {before} started before; "
        f"{runner.describe()}" + (f", {study.scheduler.describe()}" if study.scheduler else "")
    )
    view = LiveView(study, total, config.metric, job.maximize)
    factory = job.objective_factory(runner)
    if isinstance(runner, InlineRunner):  # one process: the view can follow every epoch
        objective = factory()

        def watched(trial: Any) -> Any:
            plain = trial.report

            def report(step: int, **metrics: float) -> None:
                plain(step, **metrics)
                view.on_report(trial, step, metrics)

            trial.report = report
            return objective(trial)

        factory = lambda: watched  # noqa: E731

    started = time.monotonic()
    try:
        with stop_on_sigterm(), Live(view, console=console, refresh_per_second=4, transient=False):
            runner.run(study, factory, job.policy(trials=trials, timeout=timeout), on_poll=view.poll)
            view.poll(study, force=True)  # the last frame shows the end, whenever the last poll was
    except KeyboardInterrupt as e:
        record = study.storage.get_study(study.name)
        _stopped(
            e,
            f"{record.n_budgeted} of {total} trials were started and are stored; the running ones are marked failed "
            "(interrupted). Run the same command again to resume: they are run again.",
        )
    console.print(f"\n[dim]ran for {time.monotonic() - started:.1f} s[/]")
    try:
        with stop_on_sigterm():  # the report (test metric, PNG) stops as cleanly as the run
            _report(job, png)
    except KeyboardInterrupt as e:
        _stopped(
            e,
            f"Every trial is stored: hyperlab show {config.name} and hyperlab best {config.name} give the results; "
            "running the same command again reports them.",
            " while reporting",
        )


def _report(job: Any, png: Path | None) -> None:
    from hyperlab.analysis.plots import plot_curves
    from hyperlab.errors import NoCompletedTrialError

    study, config = job.study, job.config
    trials = study.trials
    try:
        best = job.best_trial()
    except NoCompletedTrialError:
        err_console.print("[red]No trial completed[/]: every trial diverged or failed; see hyperlab show.")
        raise typer.Exit(1) from None
    _trials_table(
        trials, config.metric, job.maximize, sort="value", limit=10, title="top trials", hide=_fixed_names(study.space)
    )
    console.print(f"\n[bold]best configuration[/] (trial {best.id}, {config.metric} {best.value:.4g})")
    console.print(
        "# paste under train: in a study file\n" + _yaml(job.best_config()),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    test = job.test_metrics()
    shown = ", ".join(f"{k} {v:.4g}" for k, v in test.items() if k.startswith("test_"))
    console.print(f"\n[bold]test split[/] (looked at once, for the best configuration): {shown}")
    measured_on = _measured_on(test, best)
    if measured_on:
        console.print("  " + measured_on)
    path = png or Path(_file_name(config.name) + "-curves.png")
    plot_curves(trials, config.metric, job.maximize, path, title=f"{config.name}: {config.metric}")
    console.print(f"[bold]curves[/] {escape(str(path))}")


def _measured_on(test: dict[str, Any], best: Any) -> str | None:
    """Which weights the test measured: the trial's own at its best epoch (the fused
    runner keeps them), or the best configuration retrained, its weights at its best dev
    error, whose dev metric is put next to the trial's (they match unless the trial
    trained otherwise: with dropout masks drawn among other members)."""
    name = "dev_accuracy" if "dev_accuracy" in test else "dev_error"
    if name not in test:  # measured before this was recorded
        return None
    if test.get("weights") == "trial":
        return f"on the trial's own weights at its best epoch, {int(test['best_epoch'])} ({name} {test[name]:.4g})"
    curve = [(v, s) for s, v in best.metric(name) if math.isfinite(v)]
    if not curve:
        return None
    value, epoch = (max if name == "dev_accuracy" else min)(curve, key=lambda vs: vs[0])
    return (
        f"on its retrained weights at epoch {int(test['best_epoch'])}, {name} {test[name]:.4g} "
        f"(the trial: {value:.4g} at epoch {epoch})"
    )


@app.command()
def tune(
    study_file: Annotated[Path, typer.Argument(help="The study file (hyperlab init writes an example).")],
    trials: Annotated[int | None, typer.Option(help="Override the file's trial budget.", min=1)] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after this many seconds.", min=0.001)
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.", min=1)] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (overrides runner.parallel, or runner.workers of the fused runner).", min=1
        ),
    ] = None,
    png: Annotated[Path | None, typer.Option(help="Where to write the curves PNG (default NAME-curves.png).")] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", "-s", help="Override the file's storage: a database URL, or 'memory'.")
    ] = None,
) -> None:
    """Run the study a YAML file describes; re-running it resumes the study."""
    from hyperlab.config import FusedSpec, InlineSpec, load_config

    config = load_config(study_file)
    if timeout is not None and not (math.isfinite(timeout) and timeout <= threading.TIMEOUT_MAX):
        raise InvalidArgumentError(f"--timeout {timeout}: give a finite number of seconds, or leave it out.")
    _set_epochs(config, epochs)
    if parallel is not None:
        if isinstance(config.runner, InlineSpec):
            raise InvalidArgumentError(
                f"--parallel {parallel}: the study's runner is inline, one trial at a time in this process; "
                "set runner: processes (or fused, ray) in the study file to run trials in parallel."
            )
        field = "workers" if isinstance(config.runner, FusedSpec) else "parallel"
        config.runner = config.runner.model_copy(update={field: parallel})
    if storage is not None:
        config.storage = storage
    if png is not None:
        _check_writable(png, "--png")
    _run_job(config, trials=trials, timeout=timeout, png=png)


def _stopped(e: KeyboardInterrupt, message: str, when: str = "") -> NoReturn:
    """A Ctrl-C (exit 130) or SIGTERM (exit 143) stopped a command: say what is kept."""
    from hyperlab._signals import Terminated

    terminated = isinstance(e, Terminated)
    err_console.print(f"\n[yellow]Stopped{' (SIGTERM)' if terminated else ''}{when}.[/] {escape(message)}")
    raise typer.Exit(143 if terminated else 130) from None


def _set_epochs(config: Any, epochs: int | None) -> None:
    """--epochs: train.epochs, refused when the study searches epochs."""
    if epochs is None:
        return
    if "epochs" in config.space():
        raise InvalidArgumentError(
            f"--epochs {epochs}: this study searches epochs (under search:); drop --epochs, or fix epochs "
            "under train: instead of searching it."
        )
    config.train["epochs"] = epochs


def _file_name(name: str) -> str:
    """A study name as a file name in the working directory (a name may hold '/')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "study"


def _check_writable(path: Path, option: str) -> None:
    """Refuse an output path in a missing folder or on a folder, before any work."""
    if path.is_dir():
        raise InvalidArgumentError(f"{option} {path}: it is a folder; give a file name.")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"{option} {path}: the folder {path.parent} does not exist.")


def demo_config(trials: int, epochs: int, storage: str) -> Any:
    from hyperlab.config import parse_config

    return parse_config(
        {
            "name": f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
            "storage": storage,
            "seed": 0,
            "data": {"source": "sklearn:digits"},
            "metric": "dev_accuracy",
            "trials": trials,
            "sampler": "random",
            "train": {"epochs": epochs, "patience": 10},
            "search": "course",
        },
        "the demo",
    )


@app.command()
def demo(
    trials: Annotated[int, typer.Option(help="Trials to run.", min=1)] = 60,
    epochs: Annotated[int, typer.Option(help="Epochs per trial (early stopping may end a trial sooner).", min=1)] = 40,
    storage: StorageOpt = DEFAULT_STORAGE,
) -> None:
    """Tune the built-in MLP on scikit-learn's digits with the course's search space (random search)."""
    _run_job(demo_config(trials, epochs, storage), trials=None, timeout=None, png=None)


# -- looking at studies ------------------------------------------------------------------------------
def _fixed_names(space: Any) -> frozenset[str]:
    from hyperlab.space import Fixed

    return frozenset(n for n, p in space.items() if isinstance(p, Fixed))


def _existing(storage: str) -> None:
    """Looking at a store must not create one: a mistyped SQLite path is an error, not
    a new, empty database."""
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(storage)
    except Exception:  # not a URL: get_storage says what is wrong with it
        return
    uri = (url.database is not None and url.database.startswith("file:")) or url.query.get("uri") == "true"
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") and not uri:
        path = Path(url.database)
        if not path.exists():
            raise InvalidArgumentError(
                f"There is no database at {path} (--storage {storage}); hyperlab tune creates one."
            )


def _open(name: str, storage: str) -> Any:
    from hyperlab.errors import UnknownStudyError
    from hyperlab.study import Study

    _existing(storage)
    try:
        return Study(name, storage=storage)
    except UnknownStudyError:
        raise UnknownStudyError(
            f"There is no study named '{name}' in {storage}; 'hyperlab list --storage {storage}' lists them."
        ) from None


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return "nan" if math.isnan(v) else f"{v:.4g}"


def _trials_table(
    trials: list[Any],
    metric: str | None,
    maximize: bool,
    *,
    sort: str,
    limit: int | None,
    title: str,
    hide: frozenset[str] = frozenset(),
) -> None:
    from hyperlab.analysis.curves import curve_summary
    from hyperlab.trial import TrialState

    def key(t: Any) -> Any:
        if sort == "value":
            missing = t.value is None or t.state is not TrialState.COMPLETE
            return (missing, -(t.value or 0.0) if maximize else (t.value or 0.0), t.id)
        if sort == "duration":
            return (t.duration is None, t.duration or 0.0)
        return t.id

    rows = sorted(trials, key=key)[:limit] if limit else sorted(trials, key=key)
    table = Table(title=escape(title))  # a study's name and the params are the user's text, not markup
    for col in ("id", "state", "value", "epochs", "seconds"):
        table.add_column(col, justify="right" if col != "state" else "left")
    if metric:
        table.add_column(f"{metric}: first -> best@epoch")
    table.add_column("params", ratio=3, overflow="fold")
    if any(t.reason for t in rows):
        table.add_column("reason", ratio=1)
    colors = {"complete": "green", "pruned": "grey50", "diverged": "red", "failed": "orange1", "running": "cyan"}
    for t in rows:
        params = " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items() if k not in hide
        )
        reason = (t.reason or "").strip().splitlines()
        cells = [
            str(t.id),
            f"[{colors[t.state.value]}]{t.state.value}[/]",
            _fmt(t.value),
            str(len(t.curve)),
            _fmt(t.duration),
        ]
        if metric:
            cells.append(curve_summary(t, metric, maximize))
        cells.append(escape(params))
        if any(t.reason for t in rows):
            cells.append(escape(reason[-1][:60]) if reason else "")
        table.add_row(*cells)
    console.print(table)


@app.command("list")
def list_studies(storage: StorageOpt = DEFAULT_STORAGE) -> None:
    """List the studies in a store."""
    from hyperlab.storage import get_storage
    from hyperlab.trial import TrialState

    _existing(storage)
    store = get_storage(storage)
    records = store.list_studies()
    if not records:
        console.print(f"No studies in {escape(storage)}.")
        return
    table = Table(title=escape(f"studies in {storage}"))
    for col in ("name", "trials", "complete", "best", "metric", "direction", "created"):
        table.add_column(col)
    for r in records:
        trials = store.get_trials(r.id)
        values = [t.value for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
        best = (max if r.direction == "maximize" else min)(values) if values else None
        table.add_row(
            escape(r.name),
            str(len(trials)),
            str(len(values)),
            _fmt(best),
            r.metric or "-",
            r.direction,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
        )
    console.print(table)


SORTS = ("id", "value", "duration")


@app.command()
def show(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    storage: StorageOpt = DEFAULT_STORAGE,
    sort: Annotated[str, typer.Option(help="Sort by id, value or duration.")] = "id",
    state: Annotated[list[str] | None, typer.Option(help="Only trials in this state (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option(help="Show at most this many trials.", min=1)] = None,
    trial: Annotated[int | None, typer.Option("--trial", help="Show one trial in full: params, reason, curve.")] = None,
) -> None:
    """Show a study's trials: states, values, curve summaries, reasons."""
    from hyperlab.trial import TrialState

    if sort not in SORTS:
        raise InvalidArgumentError(f"--sort must be one of {', '.join(SORTS)}. Got {sort!r} instead.")
    s = _open(study, storage)
    maximize = s.direction == "maximize"
    if trial is not None:
        _show_trial(s.trial(trial))
        return
    states = tuple(TrialState.parse(x) for x in state) if state else None
    trials = s.get_trials(states)
    console.print(f"[bold]{escape(s.name)}[/]: {len(trials)} trials, {s.direction} {s.metric or 'value'}")
    _trials_table(trials, s.metric, maximize, sort=sort, limit=limit, title=s.name, hide=_fixed_names(s.space))
    _show_retests(s, maximize)


def _show_retests(s: Any, maximize: bool) -> None:
    """A line per re-test stored in the study."""
    from hyperlab.analysis.retest import is_retest

    for _, record in sorted(((k, v) for k, v in s.attrs.items() if is_retest(k, v)), key=lambda kv: kv[0]):
        changed = record.get("changed")
        what = (
            "settings unknown"
            if changed is None
            else ("; ".join(changed) if changed else "same data and train settings")
        )
        done, planned = len(record["results"]), len(record.get("planned", record["results"]))
        stopped = "" if done == planned else f", interrupted after {done} of {planned}"
        console.print("[bold]re-test[/] ", end="")
        console.print(  # the host and the changed values are not markup
            f"{record['at']} on {record['host']} (torch {record['torch']}), {_count(done, 'configuration')} x "
            f"{_count(len(record['seeds']), 'seed')}{stopped}, {what}: " + _retest_verdict(record, maximize, s.name),
            markup=False,
            highlight=False,
        )


def _show_trial(t: Any) -> None:
    console.print(
        f"[bold]trial {t.id}[/]: {t.state.value}, value {_fmt(t.value)}, {len(t.curve)} steps, {_fmt(t.duration)} s"
    )
    console.print(_yaml(t.params), markup=False, highlight=False, soft_wrap=True)
    # the texts are the user's and the workers': printed as they are, not read as markup
    if t.reason:
        console.print("[bold]reason[/]")
        console.print(t.reason, markup=False, highlight=False)
    if t.user_attrs:
        console.print("[bold]user attributes[/] ", end="")
        console.print(json.dumps(t.user_attrs), markup=False, highlight=False)
    notes = {k: v for k, v in t.system_attrs.items() if k != TRIAL_TEST_ATTR}  # the test is seen once, for the best
    if notes:
        console.print("[bold]scheduler and worker[/] ", end="")
        console.print(json.dumps(notes), markup=False, highlight=False)
    if t.retry_of is not None:
        console.print(f"[bold]retry of[/] trial {t.retry_of}")
    if t.curve:
        names = list(dict.fromkeys(k for m in t.curve.values() for k in m))
        table = Table(title="curve")
        table.add_column("step", justify="right")
        for n in names:
            table.add_column(n, justify="right")
        for step, m in t.curve.items():
            table.add_row(str(step), *(_fmt(m.get(n)) for n in names))
        console.print(table)


FORMATS = ("csv", "json")


@app.command()
def export(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="csv (one row per trial) or json (with curves).")
    ] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    storage: StorageOpt = DEFAULT_STORAGE,
) -> None:
    """Export a study's trials as CSV or JSON."""
    if format not in FORMATS:
        raise InvalidArgumentError(f"--format must be csv or json. Got {format!r} instead.")
    if output is not None:
        _check_writable(output, "--output")
    s = _open(study, storage)
    if format == "csv":
        text = s.to_dataframe().to_csv(index=False)
    else:
        text = json.dumps(
            {
                "study": s.name,
                "direction": s.direction,
                "metric": s.metric,
                "seed": s.seed,
                "space": s.space.to_dict(),
                "trials": [
                    {
                        "id": t.id,
                        "state": t.state.value,
                        "value": t.value,
                        "params": t.params,
                        "curve": {str(k): v for k, v in t.curve.items()},
                        "started": t.started,
                        "ended": t.ended,
                        "reason": t.reason,
                        "user_attrs": t.user_attrs,
                        "parent_id": t.parent_id,
                    }
                    for t in s.trials
                ],
            },
            indent=1,
        )
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text)
        err_console.print(f"wrote {len(s.trials)} trials to {escape(str(output))}")


@app.command()
def best(
    study: Annotated[str, typer.Argument(help="The study's name.")], storage: StorageOpt = DEFAULT_STORAGE
) -> None:
    """Print the best trial's params as YAML (and its test metrics, if measured)."""
    from hyperlab.analysis.curves import best_trial

    s = _open(study, storage)
    b = best_trial(s.trials, s.direction == "maximize") or s.best_trial
    console.print(f"# trial {b.id}: {s.metric or 'value'} {_fmt(b.value)}")
    test = s.attrs.get("test_metrics")
    if test and test.get("trial") == b.id:
        console.print("# test: " + ", ".join(f"{k} {v:.4g}" for k, v in test.items() if k.startswith("test_")))
        measured_on = _measured_on(test, b)
        if measured_on:
            console.print("# " + measured_on)
    console.print(_yaml(b.params), markup=False, highlight=False, soft_wrap=True)


@app.command()
def retest(
    study_file: Annotated[Path, typer.Argument(help="The study file it was tuned with (its data may have changed).")],
    top: Annotated[int, typer.Option(help="How many of the best configurations to re-run.", min=1)] = 3,
    seeds: Annotated[
        int, typer.Option(help="Training seeds per configuration; the first is the trials' own.", min=1)
    ] = 3,
    epochs: Annotated[
        int | None, typer.Option(help="Override train.epochs (as hyperlab tune --epochs).", min=1)
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", "-s", help="Override the file's storage: a database URL.")
    ] = None,
) -> None:
    """Re-run a study's best configurations on today's data and machine, at several seeds: do they still hold?"""

    from hyperlab._signals import stop_on_sigterm
    from hyperlab.analysis.retest import seed_stats
    from hyperlab.config import load_config
    from hyperlab.tune import TuneJob

    config = load_config(study_file)
    if storage is not None:
        config.storage = storage
    _existing(config.storage)
    job = TuneJob(config)
    plan = job.plan_retest(top=top, seeds=seeds, epochs=epochs)  # every check, before anything is printed
    n = len(plan.trials)
    console.print(f"[bold]re-test[/] of study {escape(config.name)}  [dim]({escape(config.storage)})[/]")
    console.print(f"[bold]data[/]  {escape(plan.data.describe())}")
    which = (
        f"its {_count(n, 'best configuration')}"
        if n == top
        else f"all {_count(n, 'complete trial')} (fewer than --top {top})"
    )
    console.print(
        f"{which} by {plan.metric}, each trained at seed{'s' if len(plan.seeds) > 1 else ''} "
        f"{', '.join(map(str, plan.seeds))} (seed {plan.seeds[0]} is the one its trials trained with)",
        markup=False,
        highlight=False,
    )
    if plan.changed is None:
        console.print("[dim]the study stored no settings to compare with (made before they were recorded)[/]")
    elif plan.changed:
        console.print("[yellow]changed since the study ran:[/] ", end="")
        console.print("; ".join(plan.changed), markup=False, highlight=False)  # the user's values, not markup
    else:
        console.print("nothing changed in data or train: since the study ran (code and machine may have)")
    for note in plan.notes:
        console.print("[yellow]note:[/] ", end="")
        console.print(note, markup=False, highlight=False)
    header = f"{'trial':>6} {'stored':>10} " + " ".join(f"{'seed ' + str(s):>10}" for s in plan.seeds)
    console.print(header + f" {'mean':>10} {'sd':>10}", markup=False, highlight=False)

    def row(result: dict[str, Any]) -> None:
        r = seed_stats(result["values"])
        cells = " ".join(f"{'diverged' if v is None else _fmt(v):>10}" for v in result["values"])
        console.print(
            f"{result['trial']:>6} {_fmt(result['stored']):>10} {cells} {_fmt(r['mean']):>10} {_fmt(r['sd']):>10}",
            markup=False,
            highlight=False,
        )

    try:
        with stop_on_sigterm():
            record = job.retest(plan, on_result=row)
    except KeyboardInterrupt as e:
        _stopped(
            e,
            f"The configurations re-tested so far are stored in the study (hyperlab show {config.name} lists "
            "re-tests).",
        )
    console.print(
        _retest_verdict(record, plan.study.direction == "maximize", config.name), markup=False, highlight=False
    )


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _retest_verdict(record: dict[str, Any], maximize: bool, study: str) -> str:
    """One line: which configuration the re-test finds best, against the study's best."""
    from hyperlab.analysis.retest import retest_summary

    summary = retest_summary(record, maximize)
    rows, best, was = summary["rows"], summary["best"], summary["was_best"]
    if best is None:
        return "every re-run diverged: these configurations do not hold"
    runs = len(record["seeds"])

    def on(trial: int) -> str:
        r = rows[trial]
        if r["mean"] is None:
            return f"every run diverged (stored {_fmt(r['stored'])})"
        over = _count(runs, "seed")
        if r["diverged"]:
            over = f"{runs - r['diverged']} of {runs} seeds, {r['diverged']} diverged"
        return f"{_fmt(r['mean'])} over {over} (stored {_fmt(r['stored'])})"

    if len(rows) == 1:
        return f"trial {best}: {on(best)}"
    if best == was:
        return f"trial {best} still holds: the best on its mean, {on(best)}, ahead of the other {len(rows) - 1}"
    ahead = f"{on(best)}, ahead of trial {was}, the study's best: {on(was)}"
    if summary["clear"]:
        return (
            f"trial {best} is now the best on its mean, {ahead}. Use its configuration "
            f"(hyperlab show {study} --trial {best}), or tune again"
        )
    if summary["clear"] is None:
        return (
            f"trial {best} has the best mean, {ahead}; with one run each this cannot tell a better configuration "
            "from a luckier run: re-test with more --seeds"
        )
    return (
        f"trial {best} has the best mean, {ahead}; the lead is within twice its standard error, so the two are "
        "as good as each other at this many seeds (more --seeds would tell them apart)"
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example.")] = Path("study.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example study.yaml that hyperlab tune runs as is."""
    from hyperlab.cli._example import EXAMPLE_YAML

    if path.exists() and not force:
        raise InvalidArgumentError(f"{path} exists; pass --force to overwrite it.")
    _check_writable(path, "init")
    path.write_text(EXAMPLE_YAML)
    console.print(f"wrote {escape(str(path))}; run it with: hyperlab tune {escape(str(path))}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code.

    A :class:`HyperlabError` (bad config, data, arguments, unknown study) prints one
    line and returns 2; usage errors also return 2; tracebacks only with --debug.
    """
    try:
        app(args=argv, prog_name="hyperlab")
    except SystemExit as e:  # typer exits with the command's code
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except HyperlabError as e:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def run() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
