"""Where studies are remembered: in memory, or in SQL (SQLite embedded, PostgreSQL shared).

``get_storage`` turns what a user writes into a store:

* ``None``: the embedded default, ``sqlite:///hyperlab.db`` in the working directory;
* ``"memory"``: a :class:`MemoryStorage` (gone with the process);
* an SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``): an
  :class:`SQLStorage`;
* a :class:`Storage` instance: itself.

SQLAlchemy is imported only when an SQL store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperlab.errors import InvalidArgumentError
from hyperlab.storage._base import Storage, StudyRecord
from hyperlab.storage._memory import MemoryStorage

if TYPE_CHECKING:
    from hyperlab.storage._sql import SQLStorage

__all__ = ["Storage", "StudyRecord", "MemoryStorage", "SQLStorage", "get_storage", "DEFAULT_STORAGE"]

DEFAULT_STORAGE = "sqlite:///hyperlab.db"


def __getattr__(name: str) -> Any:
    if name == "SQLStorage":
        from hyperlab.storage._sql import SQLStorage

        return SQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_storage(spec: Storage | str | None) -> Storage:
    """The store that ``spec`` names (see the module docstring)."""
    if isinstance(spec, Storage):
        return spec
    if spec is None:
        spec = DEFAULT_STORAGE
    if not isinstance(spec, str):
        raise InvalidArgumentError(
            f"The 'storage' parameter must be None, 'memory', a database URL or a Storage. Got {spec!r} instead."
        )
    if spec in ("memory", ":memory:"):
        return MemoryStorage()
    if "://" not in spec:
        raise InvalidArgumentError(
            f"The 'storage' parameter must be 'memory' or a database URL such as 'sqlite:///hyperlab.db' "
            f"or 'postgresql+psycopg://user@host/db'. Got {spec!r} instead."
        )
    backend = spec.split("://", 1)[0].split("+", 1)[0].lower()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidArgumentError(
            f"The 'storage' parameter must be a SQLite or PostgreSQL URL (sqlite:///hyperlab.db, "
            f"postgresql+psycopg://user@host/db) or 'memory'; hyperlab does not store studies in {backend}. "
            f"Got {spec!r}."
        )
    from hyperlab.storage._sql import SQLStorage

    return SQLStorage(spec)
