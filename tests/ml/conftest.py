"""Fixtures for the `ml` tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The networks here are small: intra-op threads gain nothing on them, and on a busy
    2-core machine they only wait for each other (several times slower), so every `ml` test
    uses one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
