"""Our PostgreSQL parser against pgBadger on pgBadger's own fixtures (bench/postgres_conformance.py).

Query counts, total durations and the parse/bind phase totals must be equal on every fixture, except the
differences named in ``EXPECTED_DIFFERENCES`` (none today) — each with its reason, and each checked to be
exactly that difference.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, require_tool

pytestmark = pytest.mark.conformance


def _bench() -> ModuleType:
    path = ROOT / "bench" / "postgres_conformance.py"
    spec = importlib.util.spec_from_file_location("postgres_conformance", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("postgres_conformance", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def results(pgbadger_corpus: Path) -> dict[str, tuple[object, object, str]]:
    exe = require_tool("pgbadger")
    bench = _bench()
    rows = bench.run_all(bench.corpus_files(pgbadger_corpus), jobs=2, pgbadger_exe=exe)
    bench.print_table(rows)  # shown with -s / on failure
    return {pgb.name: (pgb, ours, verdict) for pgb, ours, verdict in rows}


def test_every_fixture_was_compared(results: dict[str, tuple[object, object, str]]) -> None:
    assert set(results) == set(_bench().FIXTURES)


def test_every_fixture_equals_pgbadger_or_is_a_named_exception(
    results: dict[str, tuple[object, object, str]],
) -> None:
    unexplained = {name: v for name, (_, _, v) in results.items() if v.startswith("DIFF")}
    assert unexplained == {}


def test_named_exceptions_are_still_needed(results: dict[str, tuple[object, object, str]]) -> None:
    for name in _bench().EXPECTED_DIFFERENCES:
        assert name in results, f"{name}: exception for a fixture that is not compared"
        assert results[name][2].startswith("expected: "), results[name][2]


def test_comparison_is_not_trivial(results: dict[str, tuple[object, object, str]]) -> None:
    # pgBadger must really have found queries, phases included, for "equal" to mean something
    rds = results["rds.log.bz2"][0]
    assert rds.count == 114594 and rds.duration_ms > 70000  # type: ignore[attr-defined]
    ml = results["multiline_param.log"][0]
    assert ml.parse_ms > 1 and ml.bind_ms > 0.8  # type: ignore[attr-defined]
    assert sum(p.count for p, _, _ in results.values()) > 115000  # type: ignore[attr-defined]
