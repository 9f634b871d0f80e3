"""The hyperlab command, end to end on digits with tiny budgets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import hyperlab
from hyperlab import Study, Trial, TrialState
from hyperlab.cli import main
from tests.helpers import PYTHON, python_env, wait_for_trials

TINY = ["--trials", "2", "--epochs", "2", "--parallel", "2"]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are checked for their text; a wide console keeps cells on one line."""
    from hyperlab import cli

    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_tune_and_inspect(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and (in_tmp / "study.yaml").exists()
    code, _, err = run(capsys, "init")
    assert code == 2 and "study.yaml exists; pass --force to overwrite it." in err
    code, out, err = run(capsys, "tune", "study.yaml", *TINY)
    assert code == 0, err
    assert "best configuration" in out and "test split" in out and "test_accuracy" in out
    # the fused runner measured the test split on the best trial's own weights, at its best epoch
    said = re.search(r"on the trial's own weights at its best epoch, (\d) \(dev_accuracy ([\d.]+)\)", out)
    assert said is not None
    assert (in_tmp / "digits-mlp-curves.png").stat().st_size > 10_000
    # The best configuration is YAML ready to paste under train:
    block = out.split("# paste under train: in a study file\n")[1].split("\ntest split")[0]
    best = yaml.safe_load(block)
    assert best["epochs"] == 2 and "learning_rate" in best

    study = Study("digits-mlp", storage="sqlite:///hyperlab.db")
    assert len(study.trials) == 2
    assert study.attrs["test_metrics"]["trial"] == study.best_trial.id
    accuracy = dict(study.best_trial.metric("dev_accuracy"))
    assert accuracy[int(said.group(1))] == max(accuracy.values()) and said.group(2) == f"{max(accuracy.values()):.4g}"

    code, out, _ = run(capsys, "list")
    assert code == 0 and "digits-mlp" in out
    code, out, _ = run(capsys, "show", "digits-mlp", "--sort", "value")
    assert code == 0 and "complete" in out and "first -> best@epoch" in out
    code, out, _ = run(capsys, "show", "digits-mlp", "--trial", "0")
    assert code == 0 and "trial 0" in out and "train_cost" in out
    assert "scheduler and worker" in out and "[bold]" not in out  # the markup was printed as text
    assert "test_metrics" not in out and "test_error" not in out  # the test split is shown for the best trial only
    code, out, _ = run(capsys, "export", "digits-mlp", "--format", "json")
    exported = json.loads(out)
    assert [t["id"] for t in exported["trials"]] == [0, 1] and exported["trials"][0]["curve"]["0"]["dev_error"] >= 0
    code, out, _ = run(capsys, "export", "digits-mlp", "--format", "csv", "--output", "t.csv")
    assert code == 0 and (in_tmp / "t.csv").read_text().startswith("id,state,value")
    code, out, _ = run(capsys, "best", "digits-mlp")
    assert code == 0 and "learning_rate:" in out and "# test: test_cost" in out
    assert "# on the trial's own weights at its best epoch" in out

    # Re-running resumes: the budget is met, so no new trial runs.
    code, out, _ = run(capsys, "tune", "study.yaml", *TINY)
    assert code == 0 and "2 trials, 2 started before" in out
    assert len(Study("digits-mlp", storage="sqlite:///hyperlab.db").trials) == 2


def test_demo_tiny(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--trials", "2", "--epochs", "1")
    assert code == 0, err
    assert "sklearn:digits" in out and "best configuration" in out
    assert "2/2" in out and "running 0" in out  # the live view's last frame shows the end
    assert (in_tmp / "hyperlab.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "nothere.yaml"], "the file 'nothere.yaml' does not exist"),
        # looking creates nothing: a mistyped path used to become a new, empty database
        (["show", "ghost"], "There is no database at hyperlab.db (--storage sqlite:///hyperlab.db); hyperlab tune"),
        (["list", "--storage", "sqlite:///hyperlab.bd"], "There is no database at hyperlab.bd"),
        (["show", "ghost", "--sort", "speed"], "--sort must be one of id, value, duration. Got 'speed' instead."),
        (["export", "ghost", "--format", "xml"], "--format must be csv or json. Got 'xml' instead."),
        (["show", "ghost", "--storage", "nowhere"], "The 'storage' parameter must be 'memory' or a database URL"),
    ],
)
def test_errors_exit_2_without_traceback(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err + out
    assert not list(in_tmp.iterdir())


def test_bad_yaml_exits_2_naming_the_field(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "bad.yaml").write_text(
        "name: bad\nsearch:\n  learning_rate: {type: float, low: 0, high: 1, scale: log}\n  lerning: {type: fixed, value: 1}\n"
    )
    code, _, err = run(capsys, "tune", "bad.yaml")
    flat = " ".join(err.split())
    assert code == 2
    assert "search.learning_rate.low: scale='log' needs low > 0; got low=0.0." in flat
    assert "search.lerning: not a hyperparameter of the built-in trainer. Did you mean 'learning_rate'?" in flat
    assert not (in_tmp / "hyperlab.db").exists()  # nothing was created for a bad file


def test_bad_data_exits_2(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "s.yaml").write_text("name: d\ndata: {source: missing.csv, target: y}\ntrials: 1\n")
    code, _, err = run(capsys, "tune", "s.yaml")
    assert code == 2 and "data.source: the file 'missing.csv' does not exist." in " ".join(err.split())
    assert not (in_tmp / "hyperlab.db").exists()


def test_usage_errors_exit_2_and_help_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "tune")[0] == 2  # missing argument
    for command in ("tune", "demo", "list", "show", "export", "best", "init"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "Usage" in out


def _children(pid: int) -> dict[int, str]:
    """A process's children: pid -> command line."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return {}
    found = {}
    for child in pids:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                found[child] = f.read().replace(b"\0", b" ").decode()
        except OSError:
            pass
    return found


def _catches_sigint(pid: int) -> bool:
    """Whether a process has a handler for SIGINT (its SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(caught & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads a process's children from /proc")
@pytest.mark.parametrize("runner", ["{type: processes, parallel: 2}", "{type: fused, population: 4}"])
def test_a_ctrl_c_as_workers_start_stops_the_job_cleanly(in_tmp: Path, runner: str) -> None:
    # A Ctrl-C in a terminal reaches every process of the job. A worker still starting
    # died of it, silently (Python not yet up) or with a KeyboardInterrupt traceback
    # (importing, before any code of ours ran), one per worker; and a tuner that got it
    # while it ignored SIGINT to start a worker lost it and ran on. Now the workers start
    # with SIGINT held and take it once ready; the tuner records it meanwhile.
    (in_tmp / "s.yaml").write_text(
        f"name: early\ntrials: 4\nrunner: {runner}\ntrain: {{epochs: 3000, hidden_units: 64, n_layers: 1}}\n"
        "search:\n  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, scale: log}\n"
    )
    proc = subprocess.Popen(
        [PYTHON, "-m", "hyperlab", "tune", "s.yaml"],
        env={**python_env(), "COLUMNS": "120"},
        cwd=in_tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        # a worker that is up (Python has its SIGINT handler) and still importing
        while not any(_catches_sigint(pid) for pid, line in _children(proc.pid).items() if "spawn_main" in line):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process of the job
        sent = time.monotonic()
        _, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in " ".join(err.split())
    # the workers stop on the signal, not after the tuner's 15 s wait and a SIGKILL
    # (a worker started with SIGINT blocked that never unblocked it took 30 s)
    assert stopped_in < 12, stopped_in


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "sigterm-job", "sigkill-job"])
@pytest.mark.parametrize("runner", ["inline", "{type: processes, parallel: 2}", "{type: fused, population: 4}"])
def test_ctrl_c_or_sigterm_leaves_a_resumable_study(in_tmp: Path, runner: str, stop: str) -> None:
    # SIGTERM is handled as Ctrl-C, with its own exit code, 128 + 15: sent to the tuner
    # alone (kill PID), or to every process of the job, its workers too (Slurm does so).
    # SIGKILL (the out-of-memory killer, a scheduler past its grace) stops every process
    # of the job at once: the trials are left running, and the next run finds that
    # their workers have exited and re-runs them at once, without waiting out the grace.
    (in_tmp / "s.yaml").write_text(
        f"name: sigint\nseed: 1\ntrials: 200\nrunner: {runner}\ntrain: {{epochs: 600, hidden_units: 64, n_layers: 1}}\n"
        "search:\n  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, scale: log}\n"
    )
    env = {**python_env(), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [PYTHON, "-m", "hyperlab", "tune", "s.yaml"],
        env=env,
        cwd=in_tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=stop.endswith("-job"),
        # Ctrl-C reaches a foreground command; one started in the background by a
        # non-interactive shell (as pytest may be) inherits SIGINT ignored, and ignores it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Ctrl-C while a trial is in the first third of its epochs, so one is surely
        # interrupted: a signal that lands between two trials interrupts none (CI once
        # caught that window). Trials are long enough (600 epochs) that the window spans
        # several polls even for the fused runner, whose 30-epoch populations of this net
        # once came and went between two polls, so the signal reached a finished run.
        def mid_run(ts: list[Trial]) -> bool:
            return any(t.state is TrialState.COMPLETE for t in ts) and any(
                t.state is TrialState.RUNNING and 1 <= len(t.curve) <= 200 for t in ts
            )

        # Up to 300 s: on a loaded machine (another process spinning on one of 2 cores) a
        # 600-epoch trial once took over 120 s, the default.
        wait_for_trials("sigint", "sqlite:///hyperlab.db", mid_run, timeout=300)
        if stop.endswith("-job"):
            os.killpg(proc.pid, signal.SIGKILL if stop == "sigkill-job" else signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM if stop == "sigterm" else signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    trials = Study("sigint", storage="sqlite:///hyperlab.db").trials
    if stop == "sigkill-job":
        assert proc.returncode == -signal.SIGKILL
        interrupted = [t for t in trials if t.state is TrialState.RUNNING]
        assert interrupted and all(t.state in (TrialState.COMPLETE, TrialState.RUNNING) for t in trials)
    else:
        terminated = stop.startswith("sigterm")
        assert proc.returncode == (143 if terminated else 130), err
        said = " ".join(err.split())
        assert "Run the same command again to resume" in said
        assert ("Stopped (SIGTERM)." in said) == terminated
        interrupted = [t for t in trials if t.state is TrialState.FAILED]
        # A process worker marks its own trial, interrupted by the parent's SIGINT (and, for
        # the job, by its own SIGTERM if that came first); the parent marks the others'.
        if "processes" in runner:
            reasons = {"interrupted (KeyboardInterrupt)"} | ({"interrupted (Terminated)"} if terminated else set())
        else:
            reasons = {f"interrupted ({'Terminated' if terminated else 'KeyboardInterrupt'})"}
        assert interrupted and {t.reason for t in interrupted} <= reasons, [t.reason for t in interrupted]
        assert interrupted and all(t.state in (TrialState.COMPLETE, TrialState.FAILED) for t in trials)
        # each worker stops on the signal, not after the tuner's 15 s wait and a SIGKILL
        assert stopped_in < 12, stopped_in
    started = len(trials)
    # Re-running resumes the same study: the interrupted trial runs again with its params
    # (a retry, which the budget does not count), nothing else starts. With the same
    # epochs: other fixed hyperparameters than the stored ones are refused.
    out = subprocess.run(
        [PYTHON, "-m", "hyperlab", "tune", "s.yaml", "--trials", str(started)],
        env=env,
        cwd=in_tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"{started} trials, {started} started before" in out.stdout
    after = Study("sigint", storage="sqlite:///hyperlab.db").trials
    assert len(after) == started + len(interrupted)
    for lost in interrupted:
        if stop == "sigkill-job":  # not after the grace (60 s): "no heartbeat for 60 s" would say so
            worker = lost.system_attrs["worker"]
            assert after[lost.id].reason == f"worker lost: its process ({worker}) has exited"
        retry = next(t for t in after if t.retry_of == lost.id)
        assert retry.state is TrialState.COMPLETE and retry.params == lost.params


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX entry point")
def test_console_script_is_installed() -> None:
    out = subprocess.run(
        ["hyperlab", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(Path(PYTHON).parent) + os.pathsep + os.environ["PATH"]},
    )
    assert out.returncode == 0 and "tune" in out.stdout


def test_fewer_rows_than_a_batch_exits_2(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=30), "y": [0, 1, 2] * 10}).to_csv(in_tmp / "small.csv", index=False)
    (in_tmp / "s.yaml").write_text(
        "name: small\ndata: {source: small.csv, target: y}\ntrials: 1\n"
        "search:\n  batch_size: {type: choice, options: [32, 64]}\n"
    )
    code, _, err = run(capsys, "tune", "s.yaml")
    assert code == 2
    assert (
        "The training split has 18 rows, fewer than the smallest mini-batch the study uses (batch_size 32)."
        in " ".join(err.split())
    )
    assert not (in_tmp / "hyperlab.db").exists()


def test_cli_inspection_does_not_import_torch() -> None:
    code = "import sys, hyperlab.cli, hyperlab.config; print('torch' in sys.modules)"
    out = subprocess.run([PYTHON, "-c", code], env=python_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_resuming_with_other_data_or_fixed_hyperparameters_is_refused(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = "runner: inline\ntrials: 2\nsearch: {learning_rate: {type: float, low: 0.001, high: 0.1, scale: log}}\n"
    (in_tmp / "a.yaml").write_text("name: a/b\ndata: {source: 'sklearn:iris'}\ntrain: {epochs: 2}\n" + head)
    code, out, err = run(capsys, "tune", "a.yaml", "--storage", "sqlite:///other.db")
    assert code == 0, err
    assert (in_tmp / "a_b-curves.png").exists()  # a '/' in the name does not make a missing folder
    before = run(capsys, "export", "a/b", "--format", "json", "--storage", "sqlite:///other.db")[1]
    changes = [
        ("data: {source: 'sklearn:wine'}\ntrain: {epochs: 2}\n", "data.source was 'sklearn:iris', now 'sklearn:wine'"),
        (
            "data: {source: 'sklearn:iris'}\ntrain: {epochs: 2, n_layers: 1}\n",
            "train.n_layers was unset (the default), now 1",
        ),
    ]
    for change, said in changes:
        (in_tmp / "b.yaml").write_text("name: a/b\n" + change + head)
        code, _, err = run(capsys, "tune", "b.yaml", "--trials", "4", "--storage", "sqlite:///other.db")
        assert code == 2 and said in " ".join(err.split()), err
    code, _, err = run(capsys, "tune", "a.yaml", "--epochs", "3", "--trials", "4", "--storage", "sqlite:///other.db")
    assert code == 2 and "train.epochs was 2, now 3" in " ".join(err.split())
    # nothing was added to the study, and the same file still resumes it
    assert run(capsys, "export", "a/b", "--format", "json", "--storage", "sqlite:///other.db")[1] == before
    code, out, err = run(capsys, "tune", "a.yaml", "--trials", "3", "--storage", "sqlite:///other.db")
    assert code == 0 and "3 trials, 2 started before" in out, err
    assert not (in_tmp / "hyperlab.db").exists()  # --storage overrode the file's store


@pytest.mark.parametrize(
    ("extra", "args", "message"),
    [
        ("", ["--parallel", "2"], "--parallel 2: the study's runner is inline, one trial at a time"),
        ("search: {epochs: {type: int, low: 1, high: 3}}\n", ["--epochs", "2"], "--epochs 2: this study searches"),
        ("", ["--timeout", "inf"], "--timeout inf: give a finite number of seconds, or leave it out."),
        ("", ["--png", "no/such/dir/c.png"], "--png no/such/dir/c.png: the folder no/such/dir does not exist."),
        (
            "metric: dev_accuracy\ndata: {source: 'sklearn:diabetes'}\n",
            [],
            "metric: dev_accuracy needs a classification",
        ),
    ],
)
def test_tune_arguments_that_cannot_work_exit_2_before_the_study_exists(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], extra: str, args: list[str], message: str
) -> None:
    text = "name: t\nrunner: inline\ntrials: 1\n" + extra + ("" if "epochs" in extra else "train: {epochs: 1}\n")
    if "data:" not in extra:
        text += "data: {source: 'sklearn:iris'}\n"
    (in_tmp / "t.yaml").write_text(text)
    code, _, err = run(capsys, "tune", "t.yaml", *args)
    assert code == 2 and message in " ".join(err.split()), err
    assert not (in_tmp / "hyperlab.db").exists()


def test_output_paths_in_missing_folders_exit_2(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "no/such/study.yaml")
    assert code == 2 and "init no/such/study.yaml: the folder no/such does not exist." in err
    code, _, err = run(capsys, "init", ".", "--force")
    assert code == 2 and "init .: it is a folder; give a file name." in err
    code, _, err = run(capsys, "export", "any", "-o", "no/such/t.csv")
    assert code == 2 and "--output no/such/t.csv: the folder no/such does not exist." in " ".join(err.split())


def test_a_stop_while_reporting_exits_130_and_says_the_trials_are_stored(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM during the test measurement or the PNG used to kill the process without a word
    from hyperlab import cli

    def stopped(job: object, png: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_report", stopped)
    (in_tmp / "r.yaml").write_text(
        "name: r\nrunner: inline\ntrials: 1\ntrain: {epochs: 1}\ndata: {source: 'sklearn:iris'}\n"
    )
    code, _, err = run(capsys, "tune", "r.yaml")
    assert code == 130
    assert "Stopped while reporting. Every trial is stored: hyperlab show r and hyperlab best r" in " ".join(
        err.split()
    )
    assert len(Study("r", storage="sqlite:///hyperlab.db").trials) == 1


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        ("{type: fused, population: 8}", {"type": "fused", "population": 8, "workers": 3}),
        ("{type: processes, engine: ordinary}", {"type": "processes", "parallel": 3, "engine": "ordinary"}),
    ],
)
def test_parallel_sets_the_runners_worker_processes_and_keeps_the_rest(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, runner: str, expected: dict
) -> None:
    # it used to replace a fused or ordinary-engine runner by a plain process runner
    from hyperlab import cli

    seen = []
    monkeypatch.setattr(cli, "_run_job", lambda config, **kw: seen.append(config.runner.model_dump()))
    (in_tmp / "p.yaml").write_text(f"name: p\nrunner: {runner}\n")
    assert run(capsys, "tune", "p.yaml", "--parallel", "3")[0] == 0
    assert expected.items() <= seen[0].items()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_gpu_that_is_not_there_exits_2_before_the_study_exists(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "g.yaml").write_text("name: g\nrunner: {type: fused, device: cuda}\ndata: {source: 'sklearn:iris'}\n")
    code, _, err = run(capsys, "tune", "g.yaml")
    assert code == 2 and "asked for device 'cuda', but torch sees no CUDA GPU" in " ".join(err.split())
    assert not (in_tmp / "hyperlab.db").exists()


def test_a_sqlite_uri_url_is_not_taken_for_a_missing_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hyperlab import Float, Space

    study = Study("u", Space(x=Float(0, 1)), storage="sqlite:///h.db")
    study.tell(study.ask(), 0.5)
    code, out, err = run(capsys, "show", "u", "--storage", "sqlite:///file:h.db?mode=ro&uri=true")
    assert code == 0 and "complete" in out, err


RETEST = (
    "name: rt\ndata: {source: 'sklearn:digits'}\ntrials: 3\nrunner: {type: processes, parallel: 2}\n"
    "train: {epochs: 2}\nsearch: {learning_rate: {type: float, low: 0.003, high: 0.3, scale: log}}\n"
)


def test_retest_reruns_the_best_configurations_and_show_lists_it(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "rt.yaml").write_text(RETEST)
    assert run(capsys, "tune", "rt.yaml")[0] == 0
    code, out, err = run(capsys, "retest", "rt.yaml", "--top", "2", "--seeds", "2")
    assert code == 0, err
    assert "its 2 best configurations by dev_error, each trained at seeds 0, 1 (seed 0 is the one its trials" in out
    assert "nothing changed in data or train: since the study ran" in out
    rows = re.findall(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.M)
    study = Study("rt", storage="sqlite:///hyperlab.db")
    best = study.best_trial
    assert len(rows) == 2 and int(rows[0][0]) == best.id
    for trial, stored, seed0, *_ in rows:
        # trained in worker processes, re-run here: the same run at the trials' seed
        assert stored == seed0 == f"{study.trial(int(trial)).value:.4g}"
    assert re.search(r"^trial \d+ (still holds|is now the best|has the best mean)", out, re.M)
    code, out, _ = run(capsys, "show", "rt")
    assert code == 0 and "re-test 20" in out and "2 configurations x 2 seeds, same data and train settings" in out
    assert re.search(r"trial \d+ (still holds|is now the best|has the best mean)", out)

    # --epochs as tune's; a changed setting is named, and the re-test still runs
    code, out, err = run(capsys, "retest", "rt.yaml", "--top", "1", "--seeds", "1", "--epochs", "3")
    assert code == 0 and "changed since the study ran: train.epochs was 2, now 3" in out, err
    assert len([k for k in Study("rt", storage="sqlite:///hyperlab.db").attrs if k.startswith("retest ")]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "0"], "Invalid value for '--top'"),
        (["--seeds", "0"], "Invalid value for '--seeds'"),
        (["--storage", "sqlite:///other.db"], "There is no database at other.db"),
        (["--epochs", "2", "--storage", "sqlite:///e.db"], "--epochs 2: study 'rt' searched epochs, so each trial"),
        (["--storage", "sqlite:///empty.db"], "There is no study named 'rt' in sqlite:///empty.db"),
        (["--storage", "sqlite:///notrials.db"], "Study 'rt' has no complete trial to re-test yet"),
        (["--storage", "sqlite:///e.db"], "metric: the file says dev_error, but study 'rt' was tuned on dev_accuracy"),
    ],
)
def test_retest_errors_exit_2_and_store_nothing(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    if "e.db" in args[-1]:  # a study that searched epochs, on another metric
        (in_tmp / "rt.yaml").write_text(
            RETEST.replace("train: {epochs: 2}\n", "metric: dev_accuracy\n").replace(
                "search: {", "search: {epochs: {type: int, low: 1, high: 2}, "
            )
        )
        assert run(capsys, "tune", "rt.yaml", "--trials", "1", "--storage", "sqlite:///e.db")[0] == 0
        if "--epochs" not in args:
            (in_tmp / "rt.yaml").write_text(RETEST)
    else:
        (in_tmp / "rt.yaml").write_text(RETEST)
    Study("other", hyperlab.Space(x=hyperlab.Float(0, 1)), storage="sqlite:///empty.db")
    Study("rt", hyperlab.Space(x=hyperlab.Float(0, 1)), storage="sqlite:///notrials.db")
    before = _dumps(in_tmp)
    code, out, err = run(capsys, "retest", "rt.yaml", *args)
    assert code == 2 and message in " ".join(err.split()), err
    assert "re-test of" not in out  # refused before anything is printed
    assert _dumps(in_tmp) == before


def _dumps(folder: Path) -> dict[str, list[str]]:
    """Every SQLite store in ``folder``, as SQL."""
    import sqlite3

    out = {}
    for path in sorted(folder.glob("*.db")):
        with sqlite3.connect(path) as db:
            out[path.name] = list(db.iterdump())
    return out


def test_retest_of_fewer_trials_than_asked_and_what_show_makes_of_re_tests(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hyperlab.config import load_config
    from hyperlab.tune import TuneJob

    name = "r[/]t [bold]"  # rich markup in a name is text
    (in_tmp / "r.yaml").write_text(RETEST.replace("name: rt", f"name: '{name}'").replace("trials: 3", "trials: 2"))
    assert run(capsys, "tune", "r.yaml")[0] == 0
    code, out, err = run(capsys, "retest", "r.yaml", "--top", "5", "--seeds", "1")
    assert code == 0, err
    assert f"re-test of study {name}" in out and "all 2 complete trials (fewer than --top 5) by dev_error" in out
    assert "each trained at seed 0 (seed 0 is" in out

    def stop(result: dict[str, object]) -> None:
        raise KeyboardInterrupt

    job = TuneJob(load_config(in_tmp / "r.yaml"))
    with pytest.raises(KeyboardInterrupt):
        job.retest(job.plan_retest(top=2, seeds=1), on_result=stop)
    job.stored_study().attrs["retest notes"] = "a user's own attribute, not a re-test"
    code, out, err = run(capsys, "list")
    assert code == 0 and name in out, err
    code, out, err = run(capsys, "show", name)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("re-test ")]
    assert len(lines) == 2 and "2 configurations x 1 seed, same data" in lines[0]
    assert "1 configuration x 1 seed, interrupted after 1 of 2, same data" in lines[1]
    assert re.search(r"trial \d+: [\d.]+ over 1 seed \(stored [\d.]+\)$", lines[1])


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (([0.8, 0.81, 0.8], [0.9, 0.91, 0.9]), "trial 1 is now the best on its mean, 0.9033 over 3 seeds (stored 0.5)"),
        (([0.8], [0.9]), "cannot tell a better configuration from a luckier run: re-test with more --seeds"),
        (([0.9, 0.8], [0.85, 0.86]), "the lead is within twice its standard error, so the two are as good as each"),
        (([0.9, 0.8], [0.8, 0.9]), "trial 0 still holds: the best on its mean, 0.85 over 2 seeds (stored 0.5)"),
        (([None, 0.5], [None, None]), "trial 0: 0.5 over 1 of 2 seeds, 1 diverged"),
        (([None], [None]), "every re-run diverged: these configurations do not hold"),
    ],
)
def test_the_retest_verdict_says_whether_a_lead_is_more_than_noise(values: Any, says: str) -> None:
    from hyperlab.cli import _retest_verdict

    record = {"seeds": list(range(len(values[0]))), "results": []}
    for i, v in enumerate(values):
        if i == 1 and v == [None, None]:
            break  # a re-test stopped after its first configuration
        record["results"].append({"trial": i, "stored": 0.5, "values": v})
    assert says in _retest_verdict(record, True, "s")
