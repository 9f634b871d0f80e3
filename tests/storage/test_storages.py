"""The storage contract over every backend, and what only SQL stores do."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from hyperlab import Float, Space, Study
from hyperlab.errors import InvalidArgumentError, SchemaVersionError, StorageError
from hyperlab.storage import MemoryStorage, SQLStorage, get_storage
from hyperlab.storage._sql import SCHEMA_VERSION
from hyperlab.testing import StorageContract
from hyperlab.trial import TrialState
from tests.helpers import PYTHON, python_env, wait_for_trials

POSTGRES_URL = os.environ.get("HYPERLAB_TEST_POSTGRES")


def _fresh_postgres(url: str) -> SQLStorage:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return SQLStorage(url)


class TestMemory(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestSQLite(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> SQLStorage:
        return SQLStorage(f"sqlite:///{tmp_path / 'h.db'}")


@pytest.mark.skipif(not POSTGRES_URL, reason="set HYPERLAB_TEST_POSTGRES to a PostgreSQL URL to run these")
class TestPostgres(StorageContract):
    @pytest.fixture
    def storage(self) -> SQLStorage:
        assert POSTGRES_URL
        return _fresh_postgres(POSTGRES_URL)


def test_ci_runs_postgres() -> None:
    if os.environ.get("CI") and not POSTGRES_URL:
        pytest.fail("CI must set HYPERLAB_TEST_POSTGRES so that the PostgreSQL store is tested")


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    SQLStorage(f"sqlite:///{tmp_path / 'w.db'}")
    import sqlite3

    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_storage_is_sqlite_in_working_directory(in_tmp: Path) -> None:
    study = Study("d", Space(x=Float(0.0, 1.0)))
    study.optimize(lambda t: t.params["x"], n_trials=2)
    assert (in_tmp / "hyperlab.db").exists()
    assert len(Study("d", storage="sqlite:///hyperlab.db").trials) == 2


def test_newer_schema_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    storage = SQLStorage(url)
    sid = storage.get_or_create_study("s", space={}, direction="minimize", metric=None, seed=1, created=0.0)[0].id
    storage.create_trial(sid, lambda n: {}, started=0.0)
    storage.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE hyperlab_meta SET value='99' WHERE key='schema_version'")
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=f"schema version 99, newer than the version {SCHEMA_VERSION}"):
        SQLStorage(url)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM trials").scalar() == 1


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (42, "The 'storage' parameter must be None, 'memory', a database URL or a Storage. Got 42"),
        ("hyperlab.db", "must be 'memory' or a database URL such as 'sqlite:///hyperlab.db'"),
        ("mysql://u@h/db", "hyperlab does not store studies in mysql. Got 'mysql://u@h/db'."),  # not "no MySQLdb"
    ],
)
def test_bad_storage_spec(spec: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        get_storage(spec)  # type: ignore[arg-type]


def test_another_applications_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)")
    with pytest.raises(StorageError, match="already has tables named studies that hyperlab did not make"):
        SQLStorage(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:  # hyperlab's tables were not added beside it
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["studies"]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        SQLStorage(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")


KILLED_STUDY = textwrap.dedent(
    """
    import sys, time
    from hyperlab import Study, Space, Float
    study = Study("killed", Space(x=Float(0.0, 1.0)), storage=sys.argv[1], seed=3, metric="loss")
    def objective(trial):
        for step in range(5):
            trial.report(step, loss=trial.params["x"] / (step + 1))
            time.sleep(0.002)
        return trial.params["x"]
    study.optimize(objective, n_trials=100000)
    """
)


def test_sigkill_mid_study_loses_no_completed_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    proc = subprocess.Popen([PYTHON, "-c", KILLED_STUDY, url], env=python_env())
    try:
        wait_for_trials("killed", url, lambda ts: sum(t.state is TrialState.COMPLETE for t in ts) >= 20, timeout=60)
        assert proc.poll() is None, "the study ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    study = Study("killed", storage=url)
    trials = study.trials
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) >= 20
    assert [t.id for t in trials] == list(range(len(trials)))
    assert all(t.state in (TrialState.COMPLETE, TrialState.RUNNING) for t in trials)
    assert sum(t.state is TrialState.RUNNING for t in trials) <= 1
    for t in complete:
        assert list(t.curve) == [0, 1, 2, 3, 4]
        assert t.value == t.params["x"]
        assert t.curve[4]["loss"] == pytest.approx(t.params["x"] / 5)
    # The interrupted trial kept the reports that returned before the kill.
    for t in trials:
        if t.state is TrialState.RUNNING:
            assert list(t.curve) == list(range(len(t.curve)))
    # And the study goes on from there.
    study.optimize(lambda t: t.params["x"], n_trials=3)
    assert len(study.trials) == len(trials) + 3


# The schema as hyperlab 0.1 (schema version 1) wrote it, with one finished trial.
V1_SCHEMA = """
CREATE TABLE hyperlab_meta (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(512) NOT NULL UNIQUE, space TEXT NOT NULL,
  direction VARCHAR(16) NOT NULL, metric VARCHAR(256), seed BIGINT NOT NULL, created FLOAT NOT NULL,
  next_number INTEGER DEFAULT '0' NOT NULL);
CREATE TABLE study_attrs (study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
  key VARCHAR(256) NOT NULL, value TEXT NOT NULL, PRIMARY KEY (study_id, key));
CREATE TABLE trials (study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE, number INTEGER NOT NULL,
  state VARCHAR(16) NOT NULL, params TEXT NOT NULL, value FLOAT, reason TEXT, started FLOAT NOT NULL, ended FLOAT,
  user_attrs TEXT DEFAULT '{}' NOT NULL, parent_id INTEGER, PRIMARY KEY (study_id, number));
CREATE TABLE reports (study_id INTEGER NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL,
  PRIMARY KEY (study_id, number, step),
  FOREIGN KEY(study_id, number) REFERENCES trials (study_id, number) ON DELETE CASCADE);
INSERT INTO hyperlab_meta VALUES ('schema_version', '1');
INSERT INTO studies VALUES (1, 'old', '{"x": {"kind": "float", "low": 0.0, "high": 1.0, "scale": "linear"}}',
  'minimize', 'loss', 7, 1000.0, 2);
INSERT INTO trials VALUES (1, 0, 'complete', '{"x": 0.25}', 0.5, NULL, 1001.0, 1002.0, '{"a": 1}', NULL);
INSERT INTO trials VALUES (1, 1, 'running', '{"x": 0.75}', NULL, NULL, 1003.0, NULL, '{}', NULL);
INSERT INTO reports VALUES (1, 0, 0, '{"loss": 0.5}');
"""


def test_a_database_of_schema_version_1_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.commit()
    conn.close()
    study = Study("old", storage=f"sqlite:///{path}")
    trials = study.trials
    assert [t.params for t in trials] == [{"x": 0.25}, {"x": 0.75}]
    assert trials[0].curve == {0: {"loss": 0.5}} and trials[0].user_attrs == {"a": 1} and trials[0].value == 0.5
    assert trials[1].system_attrs == {} and trials[1].retry_of is None
    assert study.storage.get_study("old").n_budgeted == 2
    study.optimize(lambda t: t.params["x"], n_trials=1)
    assert len(study.trials) == 3
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT value FROM hyperlab_meta WHERE key='schema_version'").fetchone()[0] == str(
            SCHEMA_VERSION
        )


@pytest.mark.parametrize("backend", ["sqlite", "sqlite-memory", "postgresql"])
@pytest.mark.parametrize("statement", ["_NEXT_NUMBER", "_INSERT_REPORT", "_FINISH_TRIAL"])
@pytest.mark.parametrize("where", ["after", "before_cursor_execute", "after_cursor_execute"])
def test_an_interrupt_in_or_after_a_statement_leaves_the_store_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, statement: str, where: str
) -> None:
    # "after": Ctrl-C can land after a statement ran but before its rows were read.
    # SQLite then counted the statement as running and refused every later commit on
    # that connection, the one that marks the interrupted trials among them (CI caught
    # it: `hyperlab tune` exited 2 with "cannot commit transaction - SQL statements in
    # progress").
    # The events: it can land while SQLAlchemy runs the statement, before or after the
    # driver's call (a writer waiting for SQLite's lock is in there for a while).
    # SQLAlchemy then counted the connection as lost and closed it: on SQLite the write
    # lock stayed held (the next write waited out its 60 s timeout), and on both
    # backends the interrupt came out as a StorageError, which failed the trial while
    # `hyperlab tune` went on training.
    from hyperlab.storage import _sql

    if backend == "sqlite":
        storage = SQLStorage(f"sqlite:///{tmp_path / 'i.db'}")
    elif backend == "sqlite-memory":  # one connection, which cannot be replaced
        storage = SQLStorage("sqlite:///:memory:")
    elif POSTGRES_URL:
        storage = _fresh_postgres(POSTGRES_URL)
    else:
        pytest.skip("set HYPERLAB_TEST_POSTGRES to a PostgreSQL URL to run this")
    record, _ = storage.get_or_create_study("i", space={}, direction="minimize", metric=None, seed=0, created=0.0)
    created = storage.create_trial(record.id, lambda n: {"n": n}, started=1.0)
    assert created is not None
    number = created[0]
    target = getattr(_sql, statement)
    run = _sql._Prepared.__call__

    def interrupted(self: object, conn: object, **params: object) -> object:
        result = run(self, conn, **params)  # type: ignore[arg-type]
        if self is target:
            raise KeyboardInterrupt  # the result, its cursor unread, lives on in the traceback
        return result

    target_sql = str(target._stmt.compile(dialect=storage._engine.dialect))

    def inside(conn: object, cursor: object, sql: str, *_: object) -> None:
        if sql == target_sql:
            raise KeyboardInterrupt  # as a signal inside the driver's call looks to SQLAlchemy

    if where == "after":
        monkeypatch.setattr(_sql._Prepared, "__call__", interrupted)
    else:
        sa.event.listen(storage._engine, where, inside)
    with pytest.raises(KeyboardInterrupt) as caught:
        if statement == "_NEXT_NUMBER":
            storage.create_trial(record.id, lambda n: {"n": n}, started=2.0)
        elif statement == "_INSERT_REPORT":
            storage.report(record.id, number, 0, {"loss": 1.0})
        else:
            storage.finish_trial(record.id, number, state=TrialState.COMPLETE, value=1.0, reason=None, ended=3.0)
    monkeypatch.setattr(_sql._Prepared, "__call__", run)
    if where != "after":
        sa.event.remove(storage._engine, where, inside)
    assert caught.value.__traceback__ is not None  # holds the unread cursor, as the CLI's handler does
    # Nothing of the interrupted call was stored, and every write still commits.
    assert [t.id for t in storage.get_trials(record.id)] == [number]
    assert storage.get_trial(record.id, number).curve == {}
    storage.report(record.id, number, 0, {"loss": 0.5})
    storage.finish_trial(record.id, number, state=TrialState.FAILED, value=None, reason="interrupted", ended=4.0)
    trial = storage.get_trial(record.id, number)
    assert trial.state is TrialState.FAILED and trial.curve == {0: {"loss": 0.5}}
    assert storage.create_trial(record.id, lambda n: {"n": n}, started=5.0) == (number + 1, {"n": number + 1})
    if backend == "sqlite-memory":
        return
    # No lock is left behind for another process's writer.
    other = SQLStorage(storage.url, **({"connect_args": {"timeout": 2.0}} if backend == "sqlite" else {}))
    other.set_study_attr(record.id, "k", 1)
    assert storage.get_study_attrs(record.id) == {"k": 1}
    other.close()
    storage.close()


def test_an_error_while_ending_an_interrupted_transaction_does_not_replace_the_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runners mark trials interrupted and stop on KeyboardInterrupt; a StorageError
    # in its place fails one trial and the study trains on, deaf to Ctrl-C. So whatever
    # the database layer raises while it cleans up after an interrupt, the interrupt wins.
    from hyperlab.storage import _sql

    storage = SQLStorage(f"sqlite:///{tmp_path / 'e.db'}")
    record, _ = storage.get_or_create_study("e", space={}, direction="minimize", metric=None, seed=0, created=0.0)
    created = storage.create_trial(record.id, lambda n: {"n": n}, started=1.0)
    assert created is not None

    def broken_cleanup(conn: object, *, close: bool) -> None:
        raise sa.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back")

    def interrupted(self: object, conn: object, **params: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(_sql, "_discard", broken_cleanup)
    monkeypatch.setattr(_sql._Prepared, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        storage.report(record.id, created[0], 0, {"loss": 1.0})

    # A database error with no interrupt behind it is still a StorageError.
    def failing(self: object, conn: object, **params: object) -> object:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(_sql._Prepared, "__call__", failing)
    with pytest.raises(StorageError, match="disk I/O error"):
        storage.report(record.id, created[0], 0, {"loss": 1.0})
    storage.close()
