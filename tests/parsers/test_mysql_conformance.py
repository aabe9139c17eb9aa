"""Our MySQL parser against pt-query-digest on Percona Toolkit's sample slow logs (bench/mysql_conformance.py).

Event counts and the sums of Query_time, Lock_time, Rows_sent and Rows_examined must be equal on every file,
except the differences named in ``EXPECTED_DIFFERENCES`` — each with its reason, and each checked to be
exactly that difference (if pt or we change, the test fails and the exception must be revisited).
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
    path = ROOT / "bench" / "mysql_conformance.py"
    spec = importlib.util.spec_from_file_location("mysql_conformance", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mysql_conformance", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def results(percona_corpus: Path) -> dict[str, tuple[object, object, str]]:
    exe = require_tool("pt-query-digest")
    bench = _bench()
    files = bench.corpus_files(percona_corpus)
    rows = bench.run_all(files, jobs=3, pt_exe=exe)
    bench.print_table(rows)  # shown with -s / on failure
    return {pt.name: (pt, ours, verdict) for pt, ours, verdict in rows}


def test_corpus_is_complete(results: dict[str, tuple[object, object, str]]) -> None:
    assert len(results) >= 70 and "slow009.txt" in results and "slow039.txt.gz" in results


def test_every_file_equals_pt_query_digest_or_is_a_named_exception(
    results: dict[str, tuple[object, object, str]],
) -> None:
    unexplained = {name: verdict for name, (_, _, verdict) in results.items() if verdict.startswith("DIFF")}
    assert unexplained == {}


def test_named_exceptions_are_still_needed(results: dict[str, tuple[object, object, str]]) -> None:
    bench = _bench()
    for name in bench.EXPECTED_DIFFERENCES:
        assert name in results, f"{name}: exception for a file that is not in the corpus"
        assert results[name][2].startswith("expected: "), results[name][2]


def test_counts_are_not_trivially_equal(results: dict[str, tuple[object, object, str]]) -> None:
    # the comparison is only meaningful if pt actually found events
    pt_total = sum(pt.count for pt, _, _ in results.values())  # type: ignore[attr-defined]
    ours_total = sum(ours.count for _, ours, _ in results.values())  # type: ignore[attr-defined]
    assert pt_total > 2500 and ours_total == pt_total + 1  # +1: slow017, see EXPECTED_DIFFERENCES


def test_slow017_entry_is_kept_and_flagged(percona_corpus: Path) -> None:
    from rds_slowlog.parsers.mysql import MySQLSlowLogParser

    with open(percona_corpus / "slow017.txt", "rb") as fh:
        [e] = list(MySQLSlowLogParser("slow017.txt").parse(fh))
    assert e.duration is None and "bad_query_time" in e.flags and e.query == "SELECT * FROM mytbl"
    assert e.db == "mydb"
