"""A log read while it is being written can end anywhere: no cut may invent a document.

For each of the three bundled sample logs (a real MariaDB log, a real PostgreSQL log with the RDS prefix,
the MySQL 8.0 RDS-format sample) the file is cut at many offsets and parsed as a stream that ends there.
Every entry of the cut stream that is *not* flagged ``incomplete`` must be an entry of the whole file:
the same document under the same ``_id``. An entry that is flagged is one the indexing path leaves out of
a file that is still being appended (see ``rds_slowlog.stage``), so it never becomes a phantom document.

Cuts: every byte offset of the MySQL 8.0 sample and of the first 4 KiB of the others, every line boundary
of every file, and every byte of 1,500-byte stretches at 40 % and 75 % of the file (multi-line queries, EXPLAIN blocks,
DETAIL lines). Mid-line cuts must be caught from the format alone (no final line end); line-boundary cuts
of a file still being appended are read with ``growing=True``, which is how a live file is read.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from rds_slowlog.documents import DocumentBuilder
from rds_slowlog.entry import Entry
from rds_slowlog.pipeline import Classifiers, classified, read_stream

SAMPLES = Path(__file__).resolve().parents[2] / "include" / "sample_logs"
FILES = {"mysql80": "mysql80-rds-slowquery.log", "mariadb": "mariadb-slowquery.log", "postgres": "postgresql.log"}
ENGINES = {"mysql80": "mysql", "mariadb": "mysql", "postgres": "postgres"}
CHECKED_TAIL = 3     # entries at the end of each cut whose documents are compared in full
#: One set of classifiers for every cut (their caches change speed, never results): sqlparse once per shape.
CLASSIFIERS = Classifiers()


def _docs(data: bytes, engine: str, growing: bool) -> list[tuple[Entry, str, dict]]:
    """(entry, _id, document) of a stream; documents are built for the last few entries only (the earlier
    ones are those of a longer cut), ids for all (they number repeats in log order)."""
    run = read_stream(io.BufferedReader(io.BytesIO(data)), "cut.log", engine, growing=growing)
    builder = DocumentBuilder("cut", ingest_run_id="fixed")
    pairs = list(classified(run, CLASSIFIERS))
    out = []
    for k, (e, qc) in enumerate(pairs):
        if growing and "incomplete" in e.flags:
            continue  # left out by the indexing path, and not numbered
        doc_id = builder.doc_id(e)
        out.append((e, doc_id, builder.build(e, qc) if k >= len(pairs) - CHECKED_TAIL else {}))
    return out


def _cuts(data: bytes, name: str) -> tuple[list[int], list[int]]:
    """(mid-line cuts, line-boundary cuts)."""
    bounds = [i + 1 for i, b in enumerate(data) if b == 10]
    every = range(1, len(data)) if name == "mysql80" else range(1, min(len(data), 4 * 1024))
    picked = set(every)
    # a few long entries in the middle: between three line boundaries spread over the file
    for frac in (0.4, 0.75):
        lo = bounds[int(len(bounds) * frac)]
        hi = min(len(data), lo + 1500)
        picked.update(range(lo, hi))
    boundary = set(bounds)
    mid = sorted(k for k in picked if k not in boundary and k < len(data))
    return mid, sorted(k for k in boundary if k < len(data))


@pytest.fixture(scope="module", params=sorted(FILES))
def sample(request: pytest.FixtureRequest) -> tuple[str, bytes, dict[str, dict]]:
    name = request.param
    data = (SAMPLES / FILES[name]).read_bytes()
    full = {doc_id: (e, doc) for e, doc_id, doc in _docs_full(data, ENGINES[name])}
    return name, data, full


def _docs_full(data: bytes, engine: str) -> list[tuple[Entry, str, dict]]:
    run = read_stream(io.BufferedReader(io.BytesIO(data)), "cut.log", engine)
    builder = DocumentBuilder("cut", ingest_run_id="fixed")
    return [(e, builder.doc_id(e), builder.build(e, qc)) for e, qc in classified(run, CLASSIFIERS)]


def _phantoms(data: bytes, k: int, engine: str, growing: bool, full: dict) -> list[str]:
    bad = []
    for e, doc_id, doc in _docs(data[:k], engine, growing):
        if "incomplete" in e.flags:
            continue
        if doc_id not in full:
            bad.append(f"cut {k}: {e.query[:60]!r} (offset {e.offset}) is no entry of the whole file")
        elif doc and doc != full[doc_id][1]:
            bad.append(f"cut {k}: entry at offset {e.offset} differs from the whole file's")
    return bad


@pytest.mark.slow
def test_mid_line_cuts_are_flagged_from_the_format_alone(sample) -> None:
    name, data, full = sample
    mid, _ = _cuts(data, name)
    bad: list[str] = []
    for k in mid:
        bad += _phantoms(data, k, ENGINES[name], False, full)
    assert bad == [], f"{len(bad)} phantom(s) in {len(mid)} mid-line cuts of {name}: {bad[:5]}"


@pytest.mark.slow
def test_line_boundary_cuts_of_a_growing_file_invent_nothing(sample) -> None:
    name, data, full = sample
    _, bounds = _cuts(data, name)
    bad: list[str] = []
    for k in bounds:
        bad += _phantoms(data, k, ENGINES[name], True, full)
    assert bad == [], f"{len(bad)} phantom(s) in {len(bounds)} line-boundary cuts of {name}: {bad[:5]}"


def test_the_issue_example_is_flagged() -> None:
    # head -c 4730 of the MySQL 8.0 sample ends in "SELECT * FROM": flagged, so never indexed from a live file
    data = (SAMPLES / FILES["mysql80"]).read_bytes()[:4730]
    run = read_stream(io.BufferedReader(io.BytesIO(data)), "p.log", "mysql")
    last = list(run.entries)[-1]
    assert last.query == "SELECT * FROM" and "incomplete" in last.flags
    assert run.stats.incomplete_entries == 1


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_a_complete_file_has_no_incomplete_entry(engine: str) -> None:
    for name, f in FILES.items():
        if ENGINES[name] != engine:
            continue
        run = read_stream(io.BufferedReader(io.BytesIO((SAMPLES / f).read_bytes())), f, engine)
        assert [e for e in run.entries if "incomplete" in e.flags] == []


def test_growing_flags_the_last_entry_even_when_it_looks_complete() -> None:
    data = (SAMPLES / FILES["mysql80"]).read_bytes()
    run = read_stream(io.BufferedReader(io.BytesIO(data)), "live.log", "mysql", growing=True)
    entries = list(run.entries)
    assert [e.flags.count("incomplete") for e in entries] == [0] * (len(entries) - 1) + [1]
