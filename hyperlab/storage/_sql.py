"""A store in an SQL database through SQLAlchemy 2.x: SQLite embedded, PostgreSQL shared.

Layout (schema version 2; version 1 databases are migrated when opened):

* ``hyperlab_meta``: key/value pairs, among them ``schema_version``.
* ``studies``: one row per study, with its space as JSON, ``next_number``, the
  counter that hands out trial numbers (an ``UPDATE ... RETURNING`` takes a row lock
  on PostgreSQL and the write lock on SQLite, so numbers are unique across processes),
  and ``n_budgeted``, the trials that count toward a budget (retries do not).
* ``trials``: keyed by (study_id, number); params, user and system attributes as JSON
  text; ``heartbeat`` (when the worker last showed it was alive); ``retry_of`` (the
  failed trial this one re-runs; unique, so a trial is retried once by one worker).
* ``reports``: keyed by (study_id, number, step); one row per report, the metrics as
  JSON text. JSON text rather than a JSON column because a diverging curve holds NaN
  and inf, which Python's json writes and reads back but PostgreSQL's json type
  refuses; a REAL column would not do either, SQLite stores NaN as NULL.

Only portable SQL is used (no SQLite-only statements outside the SQLite set-up).
Every write runs in one transaction that commits before the method returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hyperlab.errors import SchemaVersionError, StorageError, UnknownStudyError
from hyperlab.storage._base import Storage, StudyRecord, repeated_step, trial_finished, unknown_trial
from hyperlab.trial import Trial, TrialState

__all__ = ["SQLStorage", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2

_meta = sa.MetaData()

meta_table = sa.Table(
    "hyperlab_meta",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

studies_table = sa.Table(
    "studies",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("space", sa.Text, nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("metric", sa.String(256)),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("next_number", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_budgeted", sa.Integer, nullable=False, server_default="0"),
)

study_attrs_table = sa.Table(
    "study_attrs",
    _meta,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

trials_table = sa.Table(
    "trials",
    _meta,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("value", sa.Float(precision=53)),
    sa.Column("reason", sa.Text),
    sa.Column("started", sa.Float(precision=53), nullable=False),
    sa.Column("ended", sa.Float(precision=53)),
    sa.Column("user_attrs", sa.Text, nullable=False, server_default="{}"),
    sa.Column("parent_id", sa.Integer),
    sa.Column("heartbeat", sa.Float(precision=53)),
    sa.Column("system_attrs", sa.Text, nullable=False, server_default="{}"),
    sa.Column("retry_of", sa.Integer),
    sa.Index("ix_trials_retry_of", "study_id", "retry_of", unique=True),
    sa.Index("ix_trials_state", "study_id", "state"),
)

reports_table = sa.Table(
    "reports",
    _meta,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("step", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["study_id", "number"], ["trials.study_id", "trials.number"], ondelete="CASCADE"),
)

_RUNNING = TrialState.RUNNING.value

# Schema migrations: MIGRATIONS[v] takes a database from version v to v + 1. Plain
# ALTER TABLE / CREATE INDEX that SQLite and PostgreSQL both accept.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "ALTER TABLE studies ADD COLUMN n_budgeted INTEGER NOT NULL DEFAULT 0",
        "UPDATE studies SET n_budgeted = next_number",
        "ALTER TABLE trials ADD COLUMN heartbeat FLOAT",
        "ALTER TABLE trials ADD COLUMN system_attrs TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE trials ADD COLUMN retry_of INTEGER",
        "CREATE UNIQUE INDEX ix_trials_retry_of ON trials (study_id, retry_of)",
        "CREATE INDEX ix_trials_state ON trials (study_id, state)",
    ],
}


class _Prepared:
    """A statement compiled once per dialect and run as driver SQL.

    The hot path (ask / report / tell) runs a handful of fixed statements. Building a
    Core statement and computing its cache key on every call cost about 1 ms per
    trial on SQLite, three quarters of the total (bench/overhead.py, profiled); the
    compiled SQL text and its parameter order are the same every time.
    """

    def __init__(self, stmt: Any) -> None:
        self._stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def __call__(self, conn: Connection, **params: Any) -> Any:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._stmt.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if compiled.positional else None
            # Binds with a value in the statement (state == 'running') keep that value.
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            found = self._compiled[dialect.name] = (str(compiled), order, defaults)
        sql, order, defaults = found
        params = {**defaults, **params}
        return conn.exec_driver_sql(sql, tuple(params[n] for n in order) if order is not None else params)


def _bp(name: str, type_: Any = None) -> Any:
    return sa.bindparam(name, type_=type_)


_NEXT_NUMBER = _Prepared(
    sa.update(studies_table)
    .where(studies_table.c.id == _bp("study_id"), studies_table.c.n_budgeted < _bp("limit"))
    .values(next_number=studies_table.c.next_number + 1, n_budgeted=studies_table.c.n_budgeted + 1)
    .returning(studies_table.c.next_number)
)
_NEXT_RETRY_NUMBER = _Prepared(
    sa.update(studies_table)
    .where(studies_table.c.id == _bp("study_id"))
    .values(next_number=studies_table.c.next_number + 1)
    .returning(studies_table.c.next_number)
)
_INSERT_TRIAL = _Prepared(
    sa.insert(trials_table).values(
        study_id=_bp("study_id"),
        number=_bp("number"),
        state=_bp("state"),
        params=_bp("params"),
        started=_bp("started"),
        parent_id=_bp("parent_id"),
        user_attrs=_bp("user_attrs"),
        heartbeat=_bp("heartbeat"),
        system_attrs=_bp("system_attrs"),
        retry_of=_bp("retry_of"),
    )
)
_THIS_RUNNING_TRIAL = sa.and_(
    trials_table.c.study_id == _bp("study_id"),
    trials_table.c.number == _bp("number"),
    trials_table.c.state == _RUNNING,
)
# One statement checks that the trial is running and appends the report. RETURNING
# counts the rows: psycopg reports rowcount -1 for INSERT ... SELECT.
_INSERT_REPORT = _Prepared(
    sa.insert(reports_table)
    .from_select(
        ["study_id", "number", "step", "metrics"],
        sa.select(
            _bp("r_study_id", sa.Integer),
            _bp("r_number", sa.Integer),
            _bp("step", sa.Integer),
            _bp("metrics", sa.Text),
        ).where(_THIS_RUNNING_TRIAL),
    )
    .returning(reports_table.c.step)
)
_FINISH_TRIAL = _Prepared(
    sa.update(trials_table)
    .where(_THIS_RUNNING_TRIAL)
    .values(state=_bp("new_state"), value=_bp("value"), reason=_bp("reason"), ended=_bp("ended"))
)
_SET_SYSTEM_ATTRS = _Prepared(sa.update(trials_table).where(_THIS_RUNNING_TRIAL).values(system_attrs=_bp("attrs")))
_SET_USER_ATTRS = _Prepared(sa.update(trials_table).where(_THIS_RUNNING_TRIAL).values(user_attrs=_bp("attrs")))


def _dumps(value: Any) -> str:
    # allow_nan (the default) writes NaN/Infinity tokens that json.loads reads back.
    return json.dumps(value, separators=(",", ":"))


def _float_or_none(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else v


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # implicit transactions would defer the write lock and fail with "database is
        # locked" instead of waiting when two processes write at once).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer, and a commit is one append to the log.
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL under WAL: a commit survives the process being killed (SIGKILL); only
        # a power cut may lose the last commits. FULL would fsync on every report.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        # A Ctrl-C (or SystemExit) inside a statement: SQLAlchemy counts it as a lost
        # connection and closes the driver's. SQLite's connection is in this process and
        # intact, so keep it: closed with a statement unfinished, it would keep its
        # transaction's write lock (and an in-memory database would be gone), and the
        # Connection left invalid would turn the interrupt into an error at the end of
        # the transaction. _discard then rolls it back and closes it.
        if not isinstance(ctx.original_exception, Exception):
            ctx.is_disconnect = False

    if in_memory:  # only there: the event costs ~6 us per statement (a report is ~95 us)

        @event.listens_for(engine, "after_cursor_execute")
        def _track(conn: Connection, cursor: Any, *_: Any) -> None:
            # The driver cursors a Ctrl-C may leave unread; see _discard. Weak: a cursor
            # read to its end and dropped leaves the set by itself.
            conn.info.setdefault(_CURSORS, weakref.WeakSet()).add(cursor)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so concurrent writers queue on
        # busy_timeout instead of deadlocking on a read-to-write upgrade.
        if conn.get_execution_options().get("hyperlab_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


_CURSORS = "hyperlab_cursors"


def _discard(conn: Connection, *, close: bool) -> None:
    """Close the cursors of, roll back and close a connection that a KeyboardInterrupt
    or SystemExit left mid-call.

    The signal may land between a statement's execution and the reading of its rows.
    The driver's cursor then lives on in the exception's traceback, and SQLite counts
    the statement as still running: every later commit on that connection fails with
    "cannot commit transaction - SQL statements in progress", a rollback does not clear
    it, and the commits that mark the interrupted trials are among them. So the
    connection goes back to the driver, not to the pool; the next transaction opens a
    fresh one. Not so for an in-memory SQLite database, which lives only as long as its
    one connection: there the cursors it ran are tracked, and closing them is what
    keeps it usable.

    A connection SQLAlchemy has already invalidated (a signal inside a PostgreSQL
    statement: the server's side of it is unknown) has no driver connection left to
    clean; the transaction's end forgets it. Touching it would raise an error in place
    of the interrupt.
    """
    if conn.invalidated:
        return
    try:
        for cursor in list(conn.info.get(_CURSORS, ())):
            with contextlib.suppress(Exception):
                cursor.close()
        with contextlib.suppress(Exception):  # the connection is discarded either way
            conn.rollback()  # releases the write lock
    finally:  # even if a second Ctrl-C lands here
        if close:
            conn.invalidate()


class SQLStorage(Storage):
    """A store in any database SQLAlchemy reaches; tested on SQLite and PostgreSQL.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///hyperlab.db`` or
            ``postgresql+psycopg://user@127.0.0.1/db``.
        engine_kwargs: passed to :func:`sqlalchemy.create_engine`.

    Example:
        >>> storage = SQLStorage("sqlite:///:memory:")  # doctest: +SKIP
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        try:
            sa_url = sa.engine.make_url(url)
        except SQLAlchemyError as e:
            raise StorageError(f"The storage URL {url!r} is not a valid database URL: {e}") from e
        self._sqlite = sa_url.get_backend_name() == "sqlite"
        self._in_memory = self._sqlite and (
            sa_url.database in (None, "", ":memory:") or sa_url.query.get("mode") == "memory"
        )
        if self._sqlite:
            # Wait up to 60 s for another process's write lock instead of failing at once.
            engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", 60.0)
            if sa_url.database and not self._in_memory:
                folder = os.path.dirname(os.path.abspath(sa_url.database))
                if not os.path.isdir(folder):
                    raise StorageError(f"Cannot open {url!r}: the folder {folder!r} does not exist.")
        else:
            engine_kwargs.setdefault("pool_pre_ping", True)
        try:
            self._engine = sa.create_engine(sa_url, **engine_kwargs)
        except (SQLAlchemyError, ImportError) as e:
            raise StorageError(f"Cannot open storage {url!r}: {e}") from e
        if self._sqlite:
            _configure_sqlite(self._engine, in_memory=self._in_memory)
        self._writer = self._engine.execution_options(hyperlab_write=True)
        self._init_schema()

    # -- plumbing ----------------------------------------------------------------------
    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Connection]:
        """One transaction: commits on success, rolls back and raises StorageError on failure."""
        engine = self._writer if write else self._engine
        interrupt: BaseException | None = None
        try:
            with engine.begin() as conn:
                try:
                    yield conn
                except BaseException as e:
                    if not isinstance(e, Exception):
                        interrupt = e
                        _discard(conn, close=not self._in_memory)
                    raise
        except IntegrityError:
            raise  # callers turn constraint violations into specific errors
        except SQLAlchemyError as e:
            # An error from ending a transaction that Ctrl-C cut short must not take the
            # interrupt's place: the runners mark trials interrupted and stop on it, while
            # a StorageError would fail one trial and the study would train on.
            if interrupt is not None:
                raise interrupt from None
            raise StorageError(f"Storage {self._safe_url()} failed; nothing was changed: {e}") from e

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def _init_schema(self) -> None:
        with self._tx() as conn:
            inspector = sa.inspect(conn)
            fresh = not inspector.has_table("hyperlab_meta")
            if fresh:
                taken = [name for name in _meta.tables if inspector.has_table(name)]
                if taken:  # another tuner may have just made them (a shared, new PostgreSQL database)
                    inspector.clear_cache()
                    fresh = not inspector.has_table("hyperlab_meta")
            if fresh:
                if taken:  # another application's tables: neither read nor add to them
                    raise StorageError(
                        f"The database {self._safe_url()} already has tables named {', '.join(taken)} that "
                        "hyperlab did not make (it has no hyperlab_meta table): it belongs to another "
                        "application. Give hyperlab a database or file of its own; this one was left unchanged."
                    )
                _meta.create_all(conn, checkfirst=True)
                conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(
                conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar_one()
            )
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"The database {self._safe_url()} has hyperlab schema version {version}, newer than the "
                    f"version {SCHEMA_VERSION} this hyperlab reads. Upgrade hyperlab (pip install -U hyperlab) "
                    "to open it; it was left unchanged."
                )
            # Older databases are migrated one version at a time, in this one transaction:
            # a failed migration leaves the database as it was.
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.exec_driver_sql(statement)
                version += 1
                conn.execute(
                    sa.update(meta_table).where(meta_table.c.key == "schema_version").values(value=str(version))
                )

    def close(self) -> None:
        self._engine.dispose()

    # -- studies -------------------------------------------------------------------------
    def _record(self, row: Any, n_trials: int = 0) -> StudyRecord:
        return StudyRecord(
            id=row.id,
            name=row.name,
            space=json.loads(row.space),
            direction=row.direction,
            metric=row.metric,
            seed=row.seed,
            created=row.created,
            n_trials=n_trials,
            n_budgeted=row.n_budgeted,
        )

    def get_or_create_study(
        self, name: str, *, space: dict[str, Any], direction: str, metric: str | None, seed: int, created: float
    ) -> tuple[StudyRecord, bool]:
        try:
            with self._tx() as conn:
                row = conn.execute(sa.select(studies_table).where(studies_table.c.name == name)).first()
                if row is not None:
                    return self._record(row, row.next_number), False
                conn.execute(
                    sa.insert(studies_table).values(
                        name=name, space=_dumps(space), direction=direction, metric=metric, seed=seed, created=created
                    )
                )
        except IntegrityError:
            pass  # another process created it between our read and our insert
        else:
            return self.get_study(name), True
        return self.get_study(name), False

    def get_study(self, name: str) -> StudyRecord:
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(studies_table).where(studies_table.c.name == name)).first()
        if row is None:
            raise UnknownStudyError(f"There is no study named '{name}' in {self._safe_url()}.")
        return self._record(row, row.next_number)

    def list_studies(self) -> list[StudyRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(studies_table).order_by(studies_table.c.id)).all()
        return [self._record(r, r.next_number) for r in rows]

    def delete_study(self, name: str) -> None:
        study_id = self.get_study(name).id
        with self._tx() as conn:
            for table in (reports_table, trials_table, study_attrs_table):
                conn.execute(sa.delete(table).where(table.c.study_id == study_id))
            conn.execute(sa.delete(studies_table).where(studies_table.c.id == study_id))

    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        t = study_attrs_table
        with self._tx() as conn:
            updated = conn.execute(
                sa.update(t).where(t.c.study_id == study_id, t.c.key == key).values(value=_dumps(value))
            ).rowcount
            if not updated:
                conn.execute(sa.insert(t).values(study_id=study_id, key=key, value=_dumps(value)))

    def get_study_attrs(self, study_id: int) -> dict[str, Any]:
        t = study_attrs_table
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(t.c.key, t.c.value).where(t.c.study_id == study_id)).all()
        return {k: json.loads(v) for k, v in rows}

    # -- trials ----------------------------------------------------------------------------
    def create_trial(
        self,
        study_id: int,
        make_params: Callable[[int], dict[str, Any]],
        *,
        started: float,
        parent_id: int | None = None,
        retry_of: int | None = None,
        max_trials: int | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]] | None:
        try:
            with self._tx() as conn:
                if retry_of is None:
                    limit = max_trials if max_trials is not None else 2**31 - 1  # INTEGER column
                    next_number = _NEXT_NUMBER(conn, study_id=study_id, limit=limit).scalar_one_or_none()
                    if next_number is None:  # the budget is spent; the transaction changed nothing
                        return None
                else:
                    next_number = _NEXT_RETRY_NUMBER(conn, study_id=study_id).scalar_one()
                number = next_number - 1
                params = make_params(number)
                _INSERT_TRIAL(
                    conn,
                    study_id=study_id,
                    number=number,
                    state=_RUNNING,
                    params=_dumps(params),
                    started=started,
                    parent_id=parent_id,
                    user_attrs="{}",
                    heartbeat=started,
                    system_attrs=_dumps(dict(system_attrs or {})),
                    retry_of=retry_of,
                )
        except IntegrityError:
            if retry_of is not None:
                return None  # another worker claimed this retry first
            raise
        return number, params

    def touch(self, study_id: int, numbers: Sequence[int], now: float) -> None:
        if not numbers:
            return
        t = trials_table
        with self._tx() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.study_id == study_id, t.c.number.in_(list(numbers)), t.c.state == _RUNNING)
                .values(heartbeat=now)
            )

    def fail_stale(self, study_id: int, *, deadline: float, now: float, reason: str) -> list[int]:
        t = trials_table
        beat = sa.func.coalesce(t.c.heartbeat, t.c.started)
        with self._tx() as conn:
            rows = conn.execute(
                sa.update(t)
                .where(t.c.study_id == study_id, t.c.state == _RUNNING, beat < deadline)
                .values(state=TrialState.FAILED.value, reason=reason, ended=now)
                .returning(t.c.number)
            ).all()
        return sorted(r[0] for r in rows)

    def set_system_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            updated = _SET_SYSTEM_ATTRS(conn, study_id=study_id, number=number, attrs=_dumps(dict(attrs))).rowcount
            if updated != 1:
                raise self._explain_rejection(conn, study_id, number, "annotate")

    def get_retries(self, study_id: int) -> dict[int, int]:
        t = trials_table
        with self._tx(write=False) as conn:
            rows = conn.execute(
                sa.select(t.c.retry_of, t.c.number).where(t.c.study_id == study_id, t.c.retry_of.is_not(None))
            ).all()
        return {r: n for r, n in rows}

    def get_system_attrs(self, study_id: int) -> dict[int, dict[str, Any]]:
        t = trials_table
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(t.c.number, t.c.system_attrs).where(t.c.study_id == study_id)).all()
        return {n: json.loads(a) for n, a in rows}

    def _explain_rejection(self, conn: Connection, study_id: int, number: int, action: str) -> Exception:
        t = trials_table
        state = conn.execute(
            sa.select(t.c.state).where(t.c.study_id == study_id, t.c.number == number)
        ).scalar_one_or_none()
        if state is None:
            return unknown_trial(number)
        return trial_finished(number, state, action)

    def report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None:
        try:
            with self._tx() as conn:
                inserted = _INSERT_REPORT(
                    conn,
                    r_study_id=study_id,
                    r_number=number,
                    step=step,
                    metrics=_dumps(dict(metrics)),
                    study_id=study_id,
                    number=number,
                ).all()
                if len(inserted) != 1:
                    raise self._explain_rejection(conn, study_id, number, "report on")
        except IntegrityError:
            raise repeated_step(number, step) from None

    def finish_trial(
        self, study_id: int, number: int, *, state: TrialState, value: float | None, reason: str | None, ended: float
    ) -> None:
        with self._tx() as conn:
            updated = _FINISH_TRIAL(
                conn,
                study_id=study_id,
                number=number,
                new_state=state.value,
                value=_float_or_none(value),
                reason=reason,
                ended=ended,
            ).rowcount
            if updated != 1:
                raise self._explain_rejection(conn, study_id, number, "finish")

    def set_user_attrs(self, study_id: int, number: int, attrs: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            updated = _SET_USER_ATTRS(conn, study_id=study_id, number=number, attrs=_dumps(dict(attrs))).rowcount
            if updated != 1:
                raise self._explain_rejection(conn, study_id, number, "annotate")

    def _load(self, conn: Connection, where: Any, report_where: Any) -> list[Trial]:
        t, r = trials_table, reports_table
        rows = conn.execute(sa.select(t).where(where).order_by(t.c.number)).all()
        trials = {
            row.number: Trial(
                id=row.number,
                params=json.loads(row.params),
                state=TrialState(row.state),
                value=row.value,
                started=row.started,
                ended=row.ended,
                user_attrs=json.loads(row.user_attrs),
                parent_id=row.parent_id,
                reason=row.reason,
                retry_of=row.retry_of,
                system_attrs=json.loads(row.system_attrs),
                heartbeat=row.heartbeat,
            )
            for row in rows
        }
        if trials:
            for number, step, metrics in conn.execute(
                sa.select(r.c.number, r.c.step, r.c.metrics).where(report_where).order_by(r.c.number, r.c.step)
            ):
                trial = trials.get(number)
                if trial is not None:
                    trial.curve[step] = json.loads(metrics)
        return list(trials.values())

    def get_trial(self, study_id: int, number: int) -> Trial:
        t, r = trials_table, reports_table
        with self._tx(write=False) as conn:
            found = self._load(
                conn,
                sa.and_(t.c.study_id == study_id, t.c.number == number),
                sa.and_(r.c.study_id == study_id, r.c.number == number),
            )
        if not found:
            raise unknown_trial(number)
        return found[0]

    def get_trials(
        self, study_id: int, states: tuple[TrialState, ...] | None = None, *, from_number: int = 0
    ) -> list[Trial]:
        t, r = trials_table, reports_table
        where = sa.and_(t.c.study_id == study_id, t.c.number >= from_number)
        if states is not None:
            where = sa.and_(where, t.c.state.in_([s.value for s in states]))
        with self._tx(write=False) as conn:
            return self._load(conn, where, sa.and_(r.c.study_id == study_id, r.c.number >= from_number))
