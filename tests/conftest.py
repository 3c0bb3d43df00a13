"""Test-session settings."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same Hypothesis examples every time (a failure there is reproducible and
# never a lucky draw); local runs keep drawing new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _single_blas_thread():
    # Small matrices gain nothing from BLAS threads, and on a shared 2-core machine the
    # threads' spinning made tiny matmuls 100x slower. Results are identical either way.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
