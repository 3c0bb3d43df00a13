"""Test-session settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_blas_thread():
    # Small matrices gain nothing from BLAS threads, and on a shared 2-core machine the
    # threads' spinning made tiny matmuls 100x slower. Results are identical either way.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
