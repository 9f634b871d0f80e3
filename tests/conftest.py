from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in an empty working directory (the default store lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test (restored after). Tests that compare two fused runs
    bit for bit, where one member's products are batched differently in each (alone vs
    among others, compacted at another time, a worker's one thread vs this process's
    two), need it: a product of one matrix on several threads may have its sum split
    among them by MKL (seen on an AMD EPYC, MKL 2024.2: 10 x 128 by 128 x 64), and round
    differently from the same product inside a batch, where each matrix runs on one
    thread. On one thread the two are the same ops."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
