"""The whole-entry fast path of the MySQL parser never changes a result (entries and counters)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.mysql import MySQLSlowLogParser


def _both(data: bytes, block_bytes: int | None = None, **kw):
    out = []
    for fast in (True, False):
        p = MySQLSlowLogParser("src", **kw)
        p.fast_path = fast
        if block_bytes:
            p.block_bytes = block_bytes
        out.append(([e.as_dict() for e in p.parse(io.BytesIO(data))], p.stats.as_dict()))
    return out


def test_fast_path_equals_state_machine_on_corpus(percona_corpus: Path) -> None:
    for f in sorted(percona_corpus.iterdir()):
        if f.is_file():
            with open_log(f) as fh:
                data = fh.read()
            for bb in (None, 7, 333):
                fast, slow = _both(data, bb)
                assert fast == slow, f.name
            fast, slow = _both(data, 50, max_line_bytes=80, max_query_bytes=60)
            assert fast == slow, f.name


_ENTRY = st.tuples(
    st.sampled_from([b"", b"# Time: 261127 15:32:41\n", b"# Time: 2026-11-27T15:00:00.5Z\n", b"# Time: bogus\n"]),
    st.sampled_from([b"# User@Host: a[a] @ h [1.1.1.1]  Id: 5\n", b"# User@Host: root[root] @ localhost []\n",
                     b"# User@Host: broken\n", b""]),
    st.lists(st.sampled_from([b"# Thread_id: 1  Schema: s  QC_hit: No\n", b"# Query_time: 0.1  Lock_time: 0\n",
                              b"# Query_time: x\n", b"# No InnoDB statistics available for this query\n",
                              b"# Start: 2026-11-27T15:00:00.1Z\n", b"#\n", b"# note\n"]), max_size=4),
    st.lists(st.sampled_from([b"use db;\n", b"use `x`;\n", b"SET timestamp=100;\n", b"SET insert_id=3;\n",
                              b"SET NAMES x;\n", b"\n"]), max_size=3),
    st.lists(st.sampled_from([b"SELECT 1;\n", b"SELECT\n", b"  2\n", b"\n", b"FROM t;\n", b"SELECT '\xe9';\n",
                              b"# administrator command: Quit;\n", b"x started with:\n", b"# c: 1\n",
                              b"q [Your log message was truncated]\n", b"r;\r\n"]), max_size=3),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_ENTRY, max_size=12), st.sampled_from([None, 1, 30, 250]))
def test_fast_path_equals_state_machine_on_log_shaped_input(parts, block_bytes) -> None:
    data = b"".join(b"".join([a, b, b"".join(c), b"".join(d), b"".join(e)]) for a, b, c, d, e in parts)
    fast, slow = _both(data, block_bytes)
    assert fast == slow
