"""Study: ask/tell, the optimize loop, resuming, and refusing bad calls."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from hyperlab import Choice, Float, Int, Space, Study, Trial, TrialPruned, TrialState
from hyperlab.errors import (
    InvalidArgumentError,
    InvalidParamsError,
    InvalidReportError,
    InvalidSpaceError,
    NoCompletedTrialError,
    StudyMismatchError,
    TrialFinishedError,
    UnknownStudyError,
    UnknownTrialError,
)
from hyperlab.study import BudgetSpent
from tests.helpers import PYTHON, python_env

SPACE = Space(lr=Float(1e-4, 1.0, scale="log", tier=1), units=Int(16, 512, scale="log"), act=Choice(["relu", "tanh"]))


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"


def test_ask_report_tell(storage: str) -> None:
    study = Study("s", SPACE, storage=storage, metric="dev_error", seed=1)
    trial = study.ask()
    assert trial.id == 0 and trial.state is TrialState.RUNNING
    SPACE.validate(trial.params)
    trial.report(0, train_cost=1.5, dev_error=0.5)
    trial.report(2, train_cost=1.0, dev_error=0.25)
    trial.set_user_attr("gpu", "none")
    done = study.tell(trial, 0.25)
    assert done is trial and trial.state is TrialState.COMPLETE and trial.value == 0.25
    stored = study.trial(0)
    assert stored == trial
    assert stored.curve == {0: {"train_cost": 1.5, "dev_error": 0.5}, 2: {"train_cost": 1.0, "dev_error": 0.25}}
    assert stored.metric("dev_error") == [(0, 0.5), (2, 0.25)]
    assert stored.user_attrs == {"gpu": "none"}
    assert stored.ended is not None and stored.ended >= stored.started


def test_tell_by_id_and_other_states(storage: str) -> None:
    study = Study("s", SPACE, storage=storage)
    a, b, c = study.ask(), study.ask(), study.ask()
    assert study.tell(a.id, state="pruned", reason="rung 1").state is TrialState.PRUNED
    assert study.tell(b, math.nan).state is TrialState.DIVERGED
    assert study.trial(b.id).reason == "the objective value is nan"
    assert study.tell(c, math.inf).state is TrialState.DIVERGED
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.DIVERGED, TrialState.DIVERGED]


def test_rejected_tells_and_reports_change_nothing(storage: str) -> None:
    study = Study("rej", SPACE, storage=storage)
    trial = study.ask()
    trial.report(3, dev_error=0.5)
    with pytest.raises(
        InvalidReportError,
        match=re.escape("Trial 0 was already reported at step 3; a new report needs a step greater than 3. Got 2."),
    ):
        trial.report(2, dev_error=0.4)
    with pytest.raises(
        InvalidReportError,
        match=re.escape("Metric 'dev_error' reported on trial 0 at step 4 must be a number. Got 'low' instead."),
    ):
        trial.report(4, dev_error="low")
    with pytest.raises(InvalidReportError, match="must be a non-negative integer. Got -1"):
        trial.report(-1, dev_error=0.1)
    with pytest.raises(InvalidReportError, match=re.escape(f"must be below 2**63 (a 64-bit integer). Got {2**63}.")):
        trial.report(2**63, dev_error=0.1)
    for not_a_number in ("0.5", True, 10**400):  # a string, a bool, an int beyond any float
        with pytest.raises(InvalidReportError, match=f"must be a number. Got {not_a_number!r} instead"):
            trial.report(4, dev_error=not_a_number)
    study.tell(trial, 0.5)
    snapshot = study.trial(0)
    with pytest.raises(TrialFinishedError, match=re.escape("Cannot finish trial 0: it is already complete")):
        study.tell(0, 0.1)
    with pytest.raises(TrialFinishedError, match="Trial 0 is already complete"):
        trial.report(5, dev_error=0.1)
    with pytest.raises(UnknownTrialError, match="Study 'rej' has no trial 7."):
        study.tell(7, 0.1)
    with pytest.raises(InvalidArgumentError, match="must be a number. Got 'x' instead"):
        study.tell(study.ask(), "x")  # type: ignore[arg-type]
    for not_a_number in (True, 10**400):
        with pytest.raises(InvalidArgumentError, match=f"must be a number. Got {not_a_number!r} instead"):
            study.tell(1, not_a_number)
    with pytest.raises(InvalidArgumentError, match="needs a value or a final state"):
        study.tell(1)
    with pytest.raises(
        InvalidArgumentError, match="Trial state must be one of running, complete, pruned, diverged, failed. Got 'done'"
    ):
        study.tell(1, state="done")
    assert study.trial(0) == snapshot
    assert study.trial(1).state is TrialState.RUNNING
    # A trial of another study in the same store, numbered as one of this study's
    # running trials, is refused: it would have finished the wrong trial.
    other, mine = Study("rej-other", SPACE, storage=study.storage), Study("rej-2", SPACE, storage=study.storage)
    foreign, own = other.ask(), mine.ask()
    assert foreign.id == own.id == 0
    with pytest.raises(InvalidArgumentError, match="Trial 0 belongs to study 'rej-other', not to study 'rej-2'"):
        mine.tell(foreign, 0.1)
    assert mine.trial(0).state is other.trial(0).state is TrialState.RUNNING
    live = study.ask()  # another handle on the same study may tell it
    assert Study("rej", storage=study.storage).tell(live, 0.2).value == 0.2


def test_optimize_marks_each_outcome_and_goes_on(storage: str) -> None:
    study = Study("o", SPACE, storage=storage, metric="dev_error", seed=2)
    outcomes = iter(["ok", "nan", "raise", "prune", "none_reported", "huge", "ok"])

    def objective(trial):  # type: ignore[no-untyped-def]
        what = next(outcomes)
        trial.report(0, dev_error=0.3)
        if what == "nan":
            return math.nan
        if what == "raise":
            raise ValueError("bad batch")
        if what == "prune":
            raise TrialPruned("worse than the median at epoch 0")
        if what == "none_reported":
            trial.report(1, dev_error=0.2)
            return None
        if what == "huge":
            return 10**400  # no float holds it: the trial failed, not left running
        return 0.1

    study.optimize(objective, n_trials=7)
    trials = study.trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.DIVERGED,
        TrialState.FAILED,
        TrialState.PRUNED,
        TrialState.COMPLETE,
        TrialState.FAILED,
        TrialState.COMPLETE,
    ]
    assert trials[5].reason == f"The value told for trial 5 must be a number. Got {10**400!r} instead."
    assert "ValueError: bad batch" in trials[2].reason and "Traceback" in trials[2].reason  # type: ignore[operator]
    assert trials[3].reason == "worse than the median at epoch 0" and trials[3].curve == {0: {"dev_error": 0.3}}
    assert trials[4].value == 0.2  # None returned: the last reported dev_error
    assert study.best_trial.id == 0 and study.best_value == 0.1


def test_returning_none_without_metric_fails_the_trial() -> None:
    study = Study("n", SPACE, storage="memory")
    study.optimize(lambda t: None, n_trials=1)
    assert study.trials[0].state is TrialState.FAILED
    assert study.trials[0].reason == "the objective returned None and the study has no metric"


def test_keyboard_interrupt_marks_trial_and_propagates() -> None:
    study = Study("k", SPACE, storage="memory")

    def objective(trial):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=5)
    assert [(t.state, t.reason) for t in study.trials] == [(TrialState.FAILED, "interrupted (KeyboardInterrupt)")]


def test_a_trial_ended_elsewhere_mid_run_is_dropped_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another tuner may fail a running trial as lost (its heartbeat stalled past the
    grace): its reports and tell are then refused, and the loop goes on."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    study = Study("e", Space(x=Float(0.0, 1.0)), storage=url, metric="loss", seed=0)
    other = Study("e", storage=url)

    def objective(trial: Trial) -> float:
        if trial.id == 0:
            other.tell(trial.id, state=TrialState.FAILED, reason="worker lost: found by another tuner")
        trial.report(0, loss=trial.params["x"])
        return trial.params["x"]

    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert first.state is TrialState.FAILED and first.reason == "worker lost: found by another tuner"
    assert second.state is TrialState.COMPLETE and second.value == second.params["x"]
    assert "Trial 0 was ended by another process; its result is dropped" in caplog.text

    def interrupted(trial: Trial) -> float:
        other.tell(trial.id, state=TrialState.FAILED, reason="worker lost: found by another tuner")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the interrupt is not lost to the refused tell
        study.optimize(interrupted, n_trials=1)


def test_best_trial_maximize_and_empty() -> None:
    study = Study("m", SPACE, storage="memory", direction="maximize")
    with pytest.raises(NoCompletedTrialError, match="Study 'm' has no complete trial yet."):
        _ = study.best_trial
    for v in (0.2, 0.9, 0.5):
        study.tell(study.ask(), v)
    assert study.best_trial.id == 1
    study.ask()
    assert [t.id for t in study.get_trials("running")] == [3]  # one state, not its letters
    assert [t.id for t in study.get_trials(("complete", TrialState.RUNNING))] == [0, 1, 2, 3]
    with pytest.raises(UnknownTrialError, match="Study 'm' has no trial '0': a trial id is an int."):
        study.trial("0")  # type: ignore[arg-type]


def test_resume_by_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = Study("resume", SPACE, storage=url, seed=11, direction="maximize", metric="acc")
    first.optimize(lambda t: t.params["lr"], n_trials=4)
    again = Study("resume", storage=url)  # no space: the stored one
    assert again.space == SPACE and again.seed == 11 and again.direction == "maximize" and again.metric == "acc"
    again.optimize(lambda t: t.params["lr"], n_trials=3)
    assert [t.id for t in again.trials] == list(range(7))
    # Trial n gets the same params whether the study ran in one go or was resumed.
    straight = Study("straight", SPACE, storage="memory", seed=11)
    straight.optimize(lambda t: 0.0, n_trials=7)
    assert [t.params for t in straight.trials] == [t.params for t in again.trials]


def test_opening_with_a_different_space_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Study("x", SPACE, storage=url, seed=1).optimize(lambda t: 0.0, n_trials=2)
    other = Space(lr=Float(1e-5, 1.0, scale="log", tier=1), units=SPACE["units"], act=SPACE["act"])
    with pytest.raises(
        StudyMismatchError,
        match=re.escape(
            "Study 'x' is stored with a different space: parameter 'lr' is Float(low=0.0001, high=1.0, scale='log', "
            "tier=1) in the store but Float(low=1e-05, high=1.0, scale='log', tier=1) here."
        ),
    ):
        Study("x", other, storage=url)
    with pytest.raises(StudyMismatchError, match="parameter 'extra' is absent in the store but"):
        Study("x", Space({**SPACE, "extra": Float(0, 1)}), storage=url)
    with pytest.raises(
        StudyMismatchError, match="stored with direction='minimize', but was opened with direction='maximize'"
    ):
        Study("x", SPACE, storage=url, direction="maximize")
    with pytest.raises(StudyMismatchError, match="stored with seed=1, but was opened with seed=2"):
        Study("x", storage=url, seed=2)
    # The same parameters in another order: samplers read a point by position, so the
    # two handles would disagree on what a point means.
    with pytest.raises(
        StudyMismatchError,
        match=re.escape(
            "Study 'x' is stored with its parameters in another order: lr, units, act in the store, but act, lr, "
            "units here"
        ),
    ):
        Study("x", Space(act=SPACE["act"], lr=SPACE["lr"], units=SPACE["units"]), storage=url)
    assert len(Study("x", storage=url).trials) == 2


def test_unknown_study_without_space() -> None:
    with pytest.raises(
        UnknownStudyError, match="There is no study named 'ghost' in the store; give a space to create it."
    ):
        Study("ghost", storage="memory")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "The 'name' parameter of Study must be a non-empty string. Got ''"),
        ({"direction": "max"}, "The 'direction' parameter of Study must be 'minimize' or 'maximize'. Got 'max'"),
        ({"seed": -1}, "The 'seed' parameter of Study must be an integer in [0, 2**62). Got -1"),
        ({"space": {"lr": 1}}, "The 'space' parameter of Study must be a Space."),
        ({"sampler": "random"}, "The 'sampler' parameter of Study must be a Sampler. Got 'random'"),
        ({"metric": 5}, "The 'metric' parameter of Study must be a reported metric's name (a non-empty string)"),
    ],
)
def test_bad_study_arguments(kwargs: dict, message: str) -> None:
    args = {"name": "s", "space": SPACE, "storage": "memory", **kwargs}
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        Study(**args)


def test_bad_optimize_arguments() -> None:
    study = Study("s", SPACE, storage="memory")
    with pytest.raises(InvalidArgumentError, match="needs n_trials, max_trials or timeout"):
        study.optimize(lambda t: 0.0)
    with pytest.raises(InvalidArgumentError, match="'n_trials' parameter must be a non-negative integer. Got 2.5"):
        study.optimize(lambda t: 0.0, n_trials=2.5)  # type: ignore[arg-type]
    message = "'{}' parameter of optimize() must be a positive, finite number of seconds{}. Got {} instead."
    for value in (0, math.nan, math.inf, 1e300):
        with pytest.raises(
            InvalidArgumentError, match=re.escape(message.format("timeout", " (None for no limit)", value))
        ):
            study.optimize(lambda t: 0.0, timeout=value)
    for name in ("heartbeat", "grace"):  # NaN made the heartbeat spin and turned recovery off; inf killed the thread
        for value in (math.nan, math.inf):
            with pytest.raises(InvalidArgumentError, match=re.escape(message.format(name, "", value))):
                study.optimize(lambda t: 0.0, n_trials=1, **{name: value})
    with pytest.raises(
        InvalidArgumentError, match="The 'objective' of optimize\\(\\) must be a callable taking a Trial"
    ):
        study.optimize(None, n_trials=3)  # type: ignore[arg-type]
    for callbacks in (print, [1]):
        with pytest.raises(InvalidArgumentError, match="The 'callbacks' parameter of optimize\\(\\) must be a list"):
            study.optimize(lambda t: 0.0, n_trials=1, callbacks=callbacks)  # type: ignore[arg-type]
    assert study.trials == []


def test_timeout_stops_starting_trials() -> None:
    import time

    study = Study("t", SPACE, storage="memory")
    study.optimize(lambda t: time.sleep(0.05) or 0.0, timeout=0.3)  # type: ignore[func-returns-value]
    assert 3 <= len(study.trials) <= 8


def test_ask_with_given_params() -> None:
    study = Study("p", SPACE, storage="memory")
    trial = study.ask({"lr": 0.01, "units": 64, "act": "tanh"})
    assert trial.params == {"lr": 0.01, "units": 64, "act": "tanh"}
    with pytest.raises(
        InvalidParamsError, match=re.escape("Parameter 'units' got 1000; valid values are [16, 512] log (int).")
    ):
        study.ask({"lr": 0.01, "units": 1000, "act": "tanh"})
    assert len(study.trials) == 1


def test_given_params_are_stored_as_the_spaces_own_values(storage: str) -> None:
    # a NumPy scalar for a choice was stored as is: SQLite refused it with a raw TypeError
    import numpy as np

    study = Study("np", Space(n=Choice([16, 32]), lr=Float(0.0, 1.0)), storage=storage)
    trial = study.ask({"n": np.int64(32), "lr": np.float64(0.5)})
    assert study.trial(trial.id).params == {"n": 32, "lr": 0.5}
    assert type(study.trial(trial.id).params["n"]) is int


def test_ask_to_retry_reruns_a_failed_trials_params_once(storage: str) -> None:
    study = Study("r", SPACE, storage=storage, seed=3)
    failed = study.ask()
    study.tell(failed, state="failed", reason="worker lost")
    study.tell(study.ask(), 0.5)
    retry = study.ask(retry_of=failed.id)
    assert retry.params == failed.params and retry.retry_of == failed.id  # the same point, not a new draw
    with pytest.raises(BudgetSpent, match="Trial 0 of study 'r' is already being retried."):
        study.ask(retry_of=failed.id)
    with pytest.raises(
        InvalidArgumentError, match="Only a failed trial can be retried; trial 1 of study 'r' is complete."
    ):
        study.ask(retry_of=1)
    with pytest.raises(UnknownTrialError, match="Study 'r' has no trial 99 to retry."):
        study.ask(retry_of=99)
    with pytest.raises(
        InvalidArgumentError, match="'retry_of' parameter of ask\\(\\) must be a trial id \\(int\\). Got 'x'"
    ):
        study.ask(retry_of="x")  # type: ignore[arg-type]
    for bad in (-1, 1.5, "3"):
        with pytest.raises(
            InvalidArgumentError,
            match=f"'max_trials' parameter of ask\\(\\) must be a non-negative integer. Got {bad!r}",
        ):
            study.ask(max_trials=bad)  # type: ignore[arg-type]
    assert len(study.trials) == 3


def test_same_seed_same_params_in_another_process(tmp_path: Path) -> None:
    code = (
        "import json, sys; from hyperlab import Study; from tests.test_study import SPACE; "
        "s = Study('p', SPACE, storage='memory', seed=5); s.optimize(lambda t: 0.0, n_trials=5); "
        "print(json.dumps([t.params for t in s.trials]))"
    )
    out = subprocess.run([PYTHON, "-c", code], env=python_env(), capture_output=True, text=True, check=True)
    here = Study("p", SPACE, storage="memory", seed=5)
    here.optimize(lambda t: 0.0, n_trials=5)
    assert json.loads(out.stdout) == [t.params for t in here.trials]
    other = Study("p", SPACE, storage="memory", seed=6)
    other.optimize(lambda t: 0.0, n_trials=5)
    assert [t.params for t in other.trials] != [t.params for t in here.trials]


def test_to_dataframe() -> None:
    study = Study("df", SPACE, storage="memory", seed=0)
    study.optimize(lambda t: t.params["lr"], n_trials=3)
    df = study.to_dataframe()
    assert list(df["id"]) == [0, 1, 2]
    assert set(df["state"]) == {"complete"}
    assert list(df["value"]) == list(df["params_lr"])
    assert {"params_units", "params_act", "started", "ended", "duration_s"} <= set(df.columns)


def test_import_is_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import hyperlab; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('numpy', 'scipy', 'sqlalchemy', 'torch', 'ray', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([PYTHON, "-c", code], env=python_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fresh_trials_match_trials_and_reread_only_unfinished(tmp_path: Path) -> None:
    study = Study("fresh", SPACE, storage=f"sqlite:///{tmp_path / 'f.db'}", seed=0)
    done = study.ask()
    study.tell(done, 1.0)
    running = study.ask()
    assert study.fresh_trials() == study.trials
    running.report(0, loss=0.5)
    study.tell(running, 0.5)
    assert study.fresh_trials() == study.trials  # the running one was read again
    calls = []
    plain = study.storage.get_trials
    study.storage.get_trials = lambda sid, states=None, *, from_number=0: (
        calls.append(from_number)
        or plain(  # type: ignore[method-assign]
            sid, states, from_number=from_number
        )
    )
    study.fresh_trials()
    assert calls == [2]  # both trials are finished and cached


@pytest.mark.parametrize(
    ("misuse", "error", "message"),
    [
        (
            lambda s, t: t.set_user_attr("o", object()),
            InvalidArgumentError,
            "User attribute 'o' of trial 0 must be JSON-able",
        ),
        (lambda s, t: t.set_user_attr(1, "v"), InvalidArgumentError, "A user attribute's key must be a string. Got 1"),
        (
            lambda s, t: s.tell(t, state="failed", reason=123),
            InvalidArgumentError,
            "The reason told for trial 0 must be a string",
        ),
        (lambda s, t: Space("lr"), InvalidSpaceError, "Space takes a mapping of names to parameters"),
        (lambda s, t: Space(x=Float(0, 1, when={"act": []})), InvalidSpaceError, "'when' on 'act' lists no value"),
    ],
)
def test_small_misuse_is_refused_the_same_on_every_store(storage: str, misuse, error, message) -> None:  # type: ignore[no-untyped-def]
    # (memory took a non-JSON attribute that SQLite refused with a raw TypeError; an int key became a string)
    study = Study("small", SPACE, storage=storage)
    trial = study.ask()
    with pytest.raises(error, match=re.escape(message)):
        misuse(study, trial)
    assert study.trial(0).user_attrs == {} and study.trial(0).state is TrialState.RUNNING


def test_interrupts_do_not_use_up_retries_but_lost_workers_do(storage: str) -> None:
    # A fused population interrupted 4 times with retries 3 lost its trials for good,
    # and the next run did not run them again (found by a kill-and-resume stress test).
    from hyperlab.study import WORKER_LOST, interrupted

    study = Study("retry", SPACE, storage=storage, seed=1)
    chains = {}
    for kind in ("interrupted", "lost"):
        trial = study.ask()
        first = trial
        for _ in range(4):
            reason = interrupted(KeyboardInterrupt()) if kind == "interrupted" else f"{WORKER_LOST}: it died"
            study.tell(trial, state="failed", reason=reason)
            if _ < 3:
                trial = study.ask(retry_of=trial.id)
        chains[kind] = (first, trial)
    candidates = [t.id for t in study.retry_candidates(1)]
    assert candidates == [chains["interrupted"][1].id]  # the lost one was lost 4 times, more than 1
    assert chains["interrupted"][1].params == chains["interrupted"][0].params
    assert [t.id for t in study.retry_candidates(4)] == [chains["interrupted"][1].id, chains["lost"][1].id]
    assert [t.id for t in study.retry_candidates(0)] == [chains["interrupted"][1].id]
