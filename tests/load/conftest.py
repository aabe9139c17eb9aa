"""The load test runs only when asked for (``make test-load`` = ``pytest -m load tests/load``).

Why a collection hook and not ``addopts = -m "not load"``: a ``-m`` given on the command line replaces the one
in ``addopts``, so ``pytest -m slow`` would silently pull a ~40-minute run into a suite that must stay within
the CI budget. Here a ``load`` test is deselected unless the marker expression names ``load``.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "load" in (config.getoption("markexpr") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("load") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("load") is not None])
        items[:] = keep
