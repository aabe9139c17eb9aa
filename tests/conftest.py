"""Shared fixtures: where the conformance corpora are and whether the reference tools are installed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SAMPLE_LOGS = ROOT / "include" / "sample_logs"


@pytest.fixture(scope="session")
def percona_corpus() -> Path:
    path = CONFORMANCE / "percona-slowlogs"
    if not path.is_dir():
        pytest.skip("../shared/conformance/percona-slowlogs is absent (a user's clone has no ../shared)")
    return path


@pytest.fixture(scope="session")
def pgbadger_corpus() -> Path:
    path = CONFORMANCE / "pgbadger-fixtures"
    if not path.is_dir():
        pytest.skip("../shared/conformance/pgbadger-fixtures is absent (a user's clone has no ../shared)")
    return path


def require_tool(name: str) -> str:
    """Path of a reference tool; skip when it is not installed (``make test`` installs it via .ci/run)."""
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (apt-get install percona-toolkit pgbadger)")
    return exe


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The load test runs only when asked for (``make test-load`` = ``pytest -m load tests/load``).

    Why a collection hook and not ``addopts = -m "not load"``: a ``-m`` given on the command line replaces the
    one in ``addopts``, so ``pytest -m slow`` would silently pull a ~25-minute run into a suite that must stay
    within the CI budget. Here a ``load`` test is deselected unless the marker expression names ``load``. (It
    lives here, not in a ``tests/load/conftest.py``: test modules import this one as ``conftest``, and a second
    module of that name would shadow it.)
    """
    if "load" in (config.getoption("markexpr") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("load") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("load") is not None])
        items[:] = keep
