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
