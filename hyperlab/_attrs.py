"""Study attributes as a mapping: written through to the store, or buffered."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from hyperlab.errors import InvalidArgumentError
from hyperlab.storage import Storage

__all__ = ["StudyAttrs", "OverlayAttrs"]


class StudyAttrs(MutableMapping[str, Any]):
    """The study's attributes; each assignment is written to the store at once."""

    def __init__(self, storage: Storage, study_id: int) -> None:
        self._storage, self._id = storage, study_id
        self._data = storage.get_study_attrs(study_id)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._storage.set_study_attr(self._id, key, value)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        raise InvalidArgumentError("Study attributes cannot be deleted; overwrite the key instead.")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class OverlayAttrs(MutableMapping[str, Any]):
    """Reads through to the study's attributes; writes land in ``pending``."""

    def __init__(self, base: Mapping[str, Any], pending: dict[str, Any]) -> None:
        self._base, self._pending = base, pending

    def __getitem__(self, key: str) -> Any:
        return self._pending[key] if key in self._pending else self._base[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def __delitem__(self, key: str) -> None:
        raise InvalidArgumentError("Study attributes cannot be deleted; overwrite the key instead.")

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._base), **dict.fromkeys(self._pending)})

    def __len__(self) -> int:
        return len({*self._base, *self._pending})
