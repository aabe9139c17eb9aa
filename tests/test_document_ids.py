"""Every entry gets its own ``_id``, the same on every read of its window, however the files are grouped.

The cases are the ones that lost documents: MariaDB's ``# Time:`` going back and forth between adjacent
seconds under concurrency (the repeat counter used to restart whenever the write time changed), and the
pings of one second straddling an hourly rotation (one builder per file numbered both files from zero).
"""
from __future__ import annotations

import io
import random
from pathlib import Path

import orjson

from rds_slowlog.documents import OCCURRENCE_HORIZON, DocumentBuilder
from rds_slowlog.entry import Entry
from rds_slowlog.stage import StageInput, stage_window
from rds_slowlog.staging import chunk_urls, read_chunk


def _entry(t: float, query: str = "BEGIN", thread: int = 7, duration: float = 2e-06) -> Entry:
    return Entry("mysql", query, duration, t, t - duration, thread_id=thread)


def _mariadb(times_and_queries: list[tuple[str | None, str]]) -> bytes:
    """A MariaDB-style log: a ``# Time:`` line only where given, one thread, identical 2 µs entries."""
    out = []
    for t, q in times_and_queries:
        if t is not None:
            out.append(f"# Time: {t}\n")
        out.append("# User@Host: sb[sb] @ localhost []\n# Thread_id: 7  Schema: sbtest  QC_hit: No\n"
                   "# Query_time: 0.000002  Lock_time: 0.000000  Rows_sent: 0  Rows_examined: 0\n"
                   f"SET timestamp=1795788466;\n{q};\n")
    return "".join(out).encode()


def _staged_ids(tmp_path: Path, files: list[bytes], name: str = "s") -> list[str]:
    base = str(tmp_path / name)
    inputs = [StageInput(f"f{k}.log", io.BufferedReader(io.BytesIO(d)), "mysql") for k, d in enumerate(files)]
    stage_window(inputs, base, instance="db-1")
    return [orjson.loads(line)["_id"] for url in chunk_urls(base) for line in read_chunk(url)]


def test_write_time_going_back_and_forth_keeps_every_entry(tmp_path: Path) -> None:
    # seen on a real MariaDB with 4 sysbench threads: 21:37:47, then 21:37:46, then 21:37:47 again
    log = _mariadb([("261127 21:37:47", "BEGIN"), ("261127 21:37:46", "COMMIT"), ("261127 21:37:47", "BEGIN")])
    ids = _staged_ids(tmp_path, [log])
    assert len(ids) == 3 and len(set(ids)) == 3


def test_ids_do_not_depend_on_how_a_windows_files_are_grouped(tmp_path: Path) -> None:
    # RDS rotates a little after the hour: the pings of one second end one file and start the next
    a = _mariadb([("261127 21:59:59", "SELECT 1"), ("261127 22:00:00", "SELECT 1")])
    b = _mariadb([(None, "SELECT 1"), (None, "SELECT 1")])
    together = _staged_ids(tmp_path, [a, b], "two")
    assert len(together) == 4 and len(set(together)) == 4
    assert together == _staged_ids(tmp_path, [a + b], "one")       # one file or two: the same ids
    again = _staged_ids(tmp_path, [a, b], "again")
    assert again == together                                        # and on every re-read


def test_identical_entries_are_numbered_however_they_are_ordered() -> None:
    rng = random.Random(5)
    entries = [_entry(1795788466.0 + rng.choice((0, 1)), rng.choice(("BEGIN", "COMMIT"))) for _ in range(400)]
    ids = [DocumentBuilder("db-1").doc_id(e) for e in [entries[0]]]
    b = DocumentBuilder("db-1")
    ids = [b.doc_id(e) for e in entries]
    assert len(set(ids)) == len(entries)
    shuffled = entries[:]
    rng.shuffle(shuffled)
    b2 = DocumentBuilder("db-1")
    assert sorted(b2.doc_id(e) for e in shuffled) == sorted(ids)   # identical entries are interchangeable


def test_an_entry_far_behind_the_newest_never_takes_an_earlier_id() -> None:
    b = DocumentBuilder("db-1")
    first = b.doc_id(_entry(1000.0))
    b.doc_id(_entry(1000.0 + OCCURRENCE_HORIZON + 10))      # the counter for t=1000 is forgotten now
    late = b.doc_id(_entry(1000.0))                         # a clock that jumped back: numbered apart
    late2 = b.doc_id(_entry(1000.0))
    assert len({first, late, late2}) == 3


def test_memory_is_bounded_by_the_horizon() -> None:
    b = DocumentBuilder("db-1")
    for k in range(20000):
        b.doc_id(_entry(1000.0 + k * 0.1, f"SELECT {k}"))
    assert len(b._series[0].counts) <= (OCCURRENCE_HORIZON + 2) / 0.1


def test_late_entries_are_bounded_too_and_stay_distinct() -> None:
    """A clock that jumped back an hour: the late series numbers (and forgets) like the main one."""
    b = DocumentBuilder("db-1")
    ids = [b.doc_id(_entry(5000.0 + k * 0.1)) for k in range(100)]
    ids += [b.doc_id(_entry(1000.0 + k * 0.01)) for k in range(20000)]          # an hour back, then onwards
    ids += [b.doc_id(_entry(1000.0 + k * 0.01)) for k in range(50)]             # and again, identical
    assert len(set(ids)) == len(ids)
    assert max(len(x.counts) for x in b._series[1:]) <= (OCCURRENCE_HORIZON + 2) / 0.01
