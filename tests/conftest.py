"""Shared fixtures: the namespace lab (root only; under CI a missing root is a failure)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from lab.netlab import Lab

# Property tests judge results, not speed: a loaded 2-core CI machine must not fail them on
# time (a per-example deadline made them flaky).
settings.register_profile("nsproxy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("nsproxy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.soak` tests run only with NSPROXY_SOAK=1 (run them yourself)."""
    if os.environ.get("NSPROXY_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak: set NSPROXY_SOAK=1 to run")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


def _need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root and real network namespaces")
        pytest.skip("needs root")


@pytest.fixture
def lab() -> Iterator[Lab]:
    _need_root()
    lb = Lab()
    try:
        yield lb
    finally:
        lb.close()
