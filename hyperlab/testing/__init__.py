"""Conformance suites for hyperlab's extension points (used by its tests; needs pytest)."""

from hyperlab.testing.storage import StorageContract

__all__ = ["StorageContract"]
