"""The storage contract as a pytest suite: subclass it and give a ``storage`` fixture.

Example:
    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self):
            return MyStorage(...)
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from hyperlab.errors import InvalidReportError, TrialFinishedError, UnknownStudyError, UnknownTrialError
from hyperlab.storage import Storage
from hyperlab.trial import TrialState

SPACE = {"lr": {"kind": "float", "low": 1e-4, "high": 1.0, "scale": "log", "tier": 1}}


def _study(storage: Storage, name: str = "s") -> int:
    record, _ = storage.get_or_create_study(
        name, space=SPACE, direction="minimize", metric="dev_error", seed=7, created=1000.0
    )
    return record.id


def _trial(storage: Storage, study_id: int, params: dict[str, Any] | None = None, **kw: Any) -> int:
    created = storage.create_trial(study_id, lambda n: params or {"lr": 0.01 * (n + 1)}, started=1001.0, **kw)
    assert created is not None
    return created[0]


class StorageContract:
    """Behaviour every :class:`~hyperlab.storage.Storage` must show."""

    def test_study_created_once_and_reopened(self, storage: Storage) -> None:
        first, created = storage.get_or_create_study(
            "s", space=SPACE, direction="maximize", metric="acc", seed=5, created=1.5
        )
        again, created_again = storage.get_or_create_study(
            "s", space={}, direction="minimize", metric=None, seed=6, created=2.0
        )
        assert created and not created_again
        assert again.id == first.id
        assert (again.space, again.direction, again.metric, again.seed, again.created) == (
            SPACE,
            "maximize",
            "acc",
            5,
            1.5,
        )
        assert [r.name for r in storage.list_studies()] == ["s"]

    def test_unknown_study(self, storage: Storage) -> None:
        with pytest.raises(UnknownStudyError, match="no study named 'nope'"):
            storage.get_study("nope")

    def test_round_trip_of_every_trial_field(self, storage: Storage) -> None:
        sid = _study(storage)
        params = {"lr": 0.003, "optimizer": "adam", "units": 128, "bn": True, "none": None}
        number = _trial(storage, sid, params, parent_id=None)
        child = _trial(storage, sid, {"lr": 0.5}, parent_id=number)
        storage.report(sid, number, 0, {"train_cost": 2.5, "dev_error": 0.75})
        storage.report(sid, number, 3, {"train_cost": math.inf, "dev_error": math.nan})
        storage.set_user_attrs(sid, number, {"note": "first", "nested": {"a": [1, 2]}})
        storage.finish_trial(sid, number, state=TrialState.COMPLETE, value=0.125, reason="why not", ended=1010.25)
        t = storage.get_trial(sid, number)
        assert t.id == number == 0
        assert t.params == params
        assert t.state is TrialState.COMPLETE
        assert t.value == 0.125
        assert t.curve[0] == {"train_cost": 2.5, "dev_error": 0.75}
        assert list(t.curve) == [0, 3]
        assert t.curve[3]["train_cost"] == math.inf and math.isnan(t.curve[3]["dev_error"])
        assert t.started == 1001.0 and t.ended == 1010.25 and t.duration == 9.25
        assert t.user_attrs == {"note": "first", "nested": {"a": [1, 2]}}
        assert t.reason == "why not"
        assert t.parent_id is None
        assert storage.get_trial(sid, child).parent_id == number
        assert storage.get_trials(sid) == [t, storage.get_trial(sid, child)]

    def test_numbers_are_sequential_per_study(self, storage: Storage) -> None:
        a, b = _study(storage, "a"), _study(storage, "b")
        assert [_trial(storage, a) for _ in range(3)] == [0, 1, 2]
        assert _trial(storage, b) == 0
        assert storage.get_study("a").n_trials == 3

    def test_make_params_gets_the_reserved_number(self, storage: Storage) -> None:
        sid = _study(storage)
        _trial(storage, sid)
        assert storage.create_trial(sid, lambda n: {"lr": float(n)}, started=0.0) == (1, {"lr": 1.0})
        assert storage.get_trial(sid, 1).params == {"lr": 1.0}

    def test_failed_make_params_stores_nothing(self, storage: Storage) -> None:
        sid = _study(storage)

        def boom(n: int) -> dict[str, Any]:
            raise LookupError("no point")

        with pytest.raises(LookupError):
            storage.create_trial(sid, boom, started=0.0)
        assert storage.get_trials(sid) == []
        assert _trial(storage, sid) == 0

    def test_states_filter(self, storage: Storage) -> None:
        sid = _study(storage)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED):
            n = _trial(storage, sid)
            storage.finish_trial(
                sid, n, state=state, value=1.0 if state is TrialState.COMPLETE else None, reason=None, ended=2.0
            )
        _trial(storage, sid)
        assert [t.id for t in storage.get_trials(sid, (TrialState.PRUNED, TrialState.RUNNING))] == [1, 3]

    def test_rejected_calls_change_nothing(self, storage: Storage) -> None:
        sid = _study(storage)
        n = _trial(storage, sid)
        storage.report(sid, n, 1, {"dev_error": 0.5})
        with pytest.raises(InvalidReportError, match="already has a report at step 1"):
            storage.report(sid, n, 1, {"dev_error": 0.1})
        storage.finish_trial(sid, n, state=TrialState.COMPLETE, value=0.5, reason=None, ended=3.0)
        before = storage.get_trial(sid, n)
        with pytest.raises(TrialFinishedError, match="trial 0: it is already complete"):
            storage.finish_trial(sid, n, state=TrialState.FAILED, value=None, reason="x", ended=4.0)
        with pytest.raises(TrialFinishedError, match="already complete"):
            storage.report(sid, n, 2, {"dev_error": 0.1})
        with pytest.raises(TrialFinishedError, match="already complete"):
            storage.set_user_attrs(sid, n, {"a": 1})
        with pytest.raises(UnknownTrialError, match="no trial 9"):
            storage.finish_trial(sid, 9, state=TrialState.COMPLETE, value=1.0, reason=None, ended=4.0)
        with pytest.raises(UnknownTrialError, match="no trial 9"):
            storage.report(sid, 9, 0, {"dev_error": 1.0})
        with pytest.raises(UnknownTrialError):
            storage.get_trial(sid, 9)
        assert storage.get_trial(sid, n) == before

    def test_snapshots_are_copies(self, storage: Storage) -> None:
        sid = _study(storage)
        n = _trial(storage, sid)
        t = storage.get_trial(sid, n)
        t.params["lr"] = -1.0
        t.curve[5] = {"x": 1.0}
        assert storage.get_trial(sid, n).params["lr"] != -1.0
        assert storage.get_trial(sid, n).curve == {}

    def test_study_attrs(self, storage: Storage) -> None:
        sid = _study(storage)
        storage.set_study_attr(sid, "boxes", [{"low": [0.0], "high": [1.0]}])
        storage.set_study_attr(sid, "boxes", [{"low": [0.25], "high": [0.5]}])
        storage.set_study_attr(sid, "other", 3)
        assert storage.get_study_attrs(sid) == {"boxes": [{"low": [0.25], "high": [0.5]}], "other": 3}

    def test_delete_study(self, storage: Storage) -> None:
        sid = _study(storage, "gone")
        _trial(storage, sid)
        keep = _study(storage, "kept")
        _trial(storage, keep)
        storage.delete_study("gone")
        assert [r.name for r in storage.list_studies()] == ["kept"]
        assert len(storage.get_trials(keep)) == 1

    def test_budget_is_atomic_and_retries_do_not_count(self, storage: Storage) -> None:
        sid = _study(storage)
        assert [_trial(storage, sid, max_trials=2) for _ in range(2)] == [0, 1]
        assert storage.create_trial(sid, lambda n: {"lr": 0.1}, started=0.0, max_trials=2) is None
        assert storage.get_study("s").n_trials == 2  # a refused call stores nothing
        storage.finish_trial(sid, 1, state=TrialState.FAILED, value=None, reason="worker lost", ended=5.0)
        retry = storage.create_trial(sid, lambda n: {"lr": 0.02}, started=6.0, retry_of=1, max_trials=2)
        assert retry == (2, {"lr": 0.02})
        assert storage.create_trial(sid, lambda n: {"lr": 0.02}, started=6.0, retry_of=1) is None  # claimed once
        assert storage.get_retries(sid) == {1: 2}
        record = storage.get_study("s")
        assert (record.n_trials, record.n_budgeted) == (3, 2)
        assert storage.get_trial(sid, 2).retry_of == 1

    def test_heartbeats_and_stale_trials(self, storage: Storage) -> None:
        sid = _study(storage)
        a, b, c = _trial(storage, sid), _trial(storage, sid), _trial(storage, sid)  # started (and beat) at 1001
        storage.finish_trial(sid, c, state=TrialState.COMPLETE, value=1.0, reason=None, ended=1002.0)
        storage.touch(sid, [b], 1050.0)
        assert storage.get_trial(sid, b).heartbeat == 1050.0
        lost = storage.fail_stale(sid, deadline=1040.0, now=1060.0, reason="worker lost: test")
        assert lost == [a]
        t = storage.get_trial(sid, a)
        assert (t.state, t.reason, t.ended) == (TrialState.FAILED, "worker lost: test", 1060.0)
        assert storage.get_trial(sid, b).state is TrialState.RUNNING
        assert storage.get_trial(sid, c).state is TrialState.COMPLETE
        assert storage.fail_stale(sid, deadline=1040.0, now=1061.0, reason="again") == []

    def test_system_attrs_and_from_number(self, storage: Storage) -> None:
        sid = _study(storage)
        for _ in range(3):
            _trial(storage, sid)
        worker = {"worker": "host:1", "worker_process": {"host": "host", "boot": "b", "namespaces": [4], "pid": 1}}
        assert storage.create_trial(sid, lambda n: {"lr": 0.5}, started=0.0, system_attrs=worker) == (3, {"lr": 0.5})
        assert storage.get_trial(sid, 3).system_attrs == worker  # stored with the trial, in one step
        storage.finish_trial(sid, 3, state=TrialState.FAILED, value=None, reason="gone", ended=1.0)
        storage.set_system_attrs(sid, 1, {"asha": {"rungs": {"0": 0.5}}})
        assert storage.get_system_attrs(sid) == {0: {}, 1: {"asha": {"rungs": {"0": 0.5}}}, 2: {}, 3: worker}
        assert storage.get_trial(sid, 1).system_attrs == {"asha": {"rungs": {"0": 0.5}}}
        assert [t.id for t in storage.get_trials(sid, from_number=1)] == [1, 2, 3]
        storage.finish_trial(sid, 1, state=TrialState.PRUNED, value=None, reason="rung 0", ended=9.0)
        with pytest.raises(TrialFinishedError):
            storage.set_system_attrs(sid, 1, {})
