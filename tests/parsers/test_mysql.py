"""MySQL-family slow-log parser: every supported shape on small inline logs, plus property tests."""
from __future__ import annotations

import calendar
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rds_slowlog.entry import Entry
from rds_slowlog.parsers.base import Quarantined
from rds_slowlog.parsers.mysql import MySQLSlowLogParser, parse_mysql, parse_time


def run(data: bytes, **kw: object) -> tuple[list[Entry], MySQLSlowLogParser]:
    p = MySQLSlowLogParser("t.log", **kw)  # type: ignore[arg-type]
    return list(p.parse(io.BytesIO(data))), p


def accounted(p: MySQLSlowLogParser) -> bool:
    s = p.stats
    return s.lines == s.entry_lines + s.noise_lines + s.quarantined_lines


def utc(*a: int) -> int:
    return calendar.timegm((*a, 0, 0, 0))


MYSQL8 = (
    b"/rdsdbbin/mysql/bin/mysqld, Version: 8.0.35 (Source distribution). started with:\n"
    b"Tcp port: 3306  Unix socket: /tmp/mysql.sock\n"
    b"Time                 Id Command    Argument\n"
    b"# Time: 2026-11-27T15:32:41.123456Z\n"
    b"# User@Host: app[app] @ web-1.internal [10.0.0.7]  Id:    42\n"
    b"# Query_time: 1.500000  Lock_time: 0.000100 Rows_sent: 3  Rows_examined: 1000\n"
    b"use shop;\n"
    b"SET timestamp=1795793559;\n"
    b"SELECT * FROM orders WHERE id > 10;\n"
)


def test_mysql8_entry_fields() -> None:
    [e], p = run(MYSQL8)
    assert e.engine == "mysql"
    assert e.query == "SELECT * FROM orders WHERE id > 10"
    assert e.duration == 1.5
    assert e.end_time == pytest.approx(utc(2026, 11, 27, 15, 32, 41) + 0.123456)
    assert e.start_time == 1795793559.0
    assert (e.user, e.host, e.ip, e.thread_id, e.db) == ("app", "web-1.internal", "10.0.0.7", 42, "shop")
    assert e.attrs == {"Query_time": 1.5, "Lock_time": 0.0001, "Rows_sent": 3, "Rows_examined": 1000}
    assert e.flags == () and not e.truncated
    # the banner is noise and not part of the entry, which starts at its '# Time:' line
    assert e.offset == MYSQL8.index(b"# Time:") and e.line == 4
    assert MYSQL8[e.offset:e.offset + e.length] == MYSQL8[MYSQL8.index(b"# Time:"):]
    assert (p.stats.entries, p.stats.noise_lines, p.stats.entry_lines) == (1, 3, 6)
    assert accounted(p)


def test_log_slow_extra_attributes_are_typed_and_start_is_used() -> None:
    log = (
        b"# Time: 2026-01-02T03:04:05.500000Z\n"
        b"# User@Host: root[root] @ localhost []  Id:     8\n"
        b"# Query_time: 0.250000  Lock_time: 0.000002 Rows_sent: 1  Rows_examined: 1 Thread_id: 8 Errno: 0 "
        b"Killed: 0 Bytes_received: 29 Bytes_sent: 56 Read_first: 0 Read_key: 1 Sort_rows: 0 "
        b"Created_tmp_tables: 0 Start: 2026-01-02T03:04:05.250000Z End: 2026-01-02T03:04:05.500000Z\n"
        b"SET timestamp=1767323045;\n"
        b"select 1;\n"
    )
    [e], _ = run(log)
    assert e.attrs["Errno"] == 0 and e.attrs["Bytes_received"] == 29 and e.attrs["Read_key"] == 1
    assert e.attrs["End"] == "2026-01-02T03:04:05.500000Z"
    assert e.thread_id == 8 and e.host == "localhost" and e.ip is None
    # Start: is exact to the microsecond, SET timestamp= only to the second
    assert e.start_time == pytest.approx(utc(2026, 1, 2, 3, 4, 5) + 0.25)
    assert e.end_time == pytest.approx(utc(2026, 1, 2, 3, 4, 5) + 0.5)


MARIADB = (
    b"# Time: 261127 15:32:41\n"
    b"# User@Host: root[root] @ localhost []\n"
    b"# Thread_id: 42  Schema: db1  QC_hit: No\n"
    b"# Query_time: 0.000100  Lock_time: 0.000012  Rows_sent: 2  Rows_examined: 4\n"
    b"# Rows_affected: 0  Bytes_sent: 69\n"
    b"# Full_scan: No  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No\n"
    b"# Filesort: Yes  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No\n"
    b"#\n"
    b"# explain: id\tselect_type\ttable\ttype\tpossible_keys\tkey\tkey_len\tref\trows\tExtra\n"
    b"# explain: 1\tSIMPLE\tt\trange\tPRIMARY\tPRIMARY\t4\tNULL\t2\tUsing where; Using filesort\n"
    b"#\n"
    b"SET timestamp=1795793561;\n"
    b"SELECT b\nFROM t\nWHERE a > 0 ORDER BY b;\n"
    b"# User@Host: root[root] @ localhost []\n"
    b"# Thread_id: 43  Schema:   QC_hit: Yes\n"
    b"# Query_time: 0.000020  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0\n"
    b"# Rows_affected: 0  Bytes_sent: 68\n"
    b"SET timestamp=1795793561;\n"
    b"SELECT 1;\n"
)


def test_mariadb_verbosity_explain_and_carried_time() -> None:
    (a, b), p = run(MARIADB)
    assert a.query == "SELECT b\nFROM t\nWHERE a > 0 ORDER BY b"
    assert a.db == "db1" and a.thread_id == 42
    assert a.attrs["QC_hit"] is False and a.attrs["Filesort"] is True and a.attrs["Rows_affected"] == 0
    assert a.attrs["explain"] == (
        "id\tselect_type\ttable\ttype\tpossible_keys\tkey\tkey_len\tref\trows\tExtra\n"
        "1\tSIMPLE\tt\trange\tPRIMARY\tPRIMARY\t4\tNULL\t2\tUsing where; Using filesort"
    )
    assert not any(k.startswith(("1", "id")) for k in a.attrs)  # no key/value garbage from explain rows
    # the second entry has no '# Time:': MariaDB writes it once per second, so it carries forward
    assert a.end_time == b.end_time == utc(2026, 11, 27, 15, 32, 41)
    assert b.db is None and b.attrs["Schema"] == "" and b.attrs["QC_hit"] is True
    assert b.offset == MARIADB.index(b"# User@Host: root[root] @ localhost []\n# Thread_id: 43")
    assert accounted(p) and p.stats.entry_lines == p.stats.lines


def test_percona_innodb_headers_and_no_innodb_flag() -> None:
    log = (
        b"# User@Host: [SQL_SLAVE] @  []\n# Thread_id: 10\n"
        b"# Query_time: 0.000512  Lock_time: 0.000077  Rows_sent: 0  Rows_examined: 0\n"
        b"#   InnoDB_IO_r_ops: 1  InnoDB_IO_r_bytes: 2  InnoDB_IO_r_wait: 3.000003\n"
        b"#   InnoDB_pages_distinct: 24\n# InnoDB_trx_id: 1A88583F\n"
        b"INSERT INTO t VALUES (1);\n"
        b"# User@Host: [SQL_SLAVE] @  []\n# Thread_id: 10\n"
        b"# Query_time: 0.000012  Lock_time: 0.000000  Rows_sent: 0  Rows_examined: 0\n"
        b"# No InnoDB statistics available for this query\n"
        b"BEGIN;\n"
    )
    (a, b), _ = run(log)
    assert a.attrs["InnoDB_IO_r_wait"] == 3.000003 and a.attrs["InnoDB_pages_distinct"] == 24
    assert a.attrs["InnoDB_trx_id"] == "1A88583F"
    assert a.user == "SQL_SLAVE" and a.host is None and a.ip is None and a.thread_id == 10
    assert "no_innodb_stats" in b.flags and "no_innodb_stats" not in a.flags
    assert b.query == "BEGIN"


def test_rds_banner_reinserted_on_flush_is_noise_between_entries() -> None:
    entry = b"# Time: 2026-11-27T15:00:00Z\n# Query_time: 1\nSELECT 1;\n"
    banner = (
        b"/rdsdbbin/mysql/bin/mysqld, Version: 8.0.28 (Source distribution). started with:\n"
        b"Tcp port: 3306  Unix socket: /tmp/mysql.sock\n"
        b"Time                 Id Command    Argument\n"
    )
    (a, b), p = run(entry + banner + entry)
    assert a.query == b.query == "SELECT 1"
    assert a.length == len(entry) and b.offset == len(entry) + len(banner)
    assert p.stats.noise_lines == 3 and accounted(p)


def test_use_lines_set_db_and_pt_rules() -> None:
    log = (
        b"# Query_time: 1\n# Thread_id: 6  Schema: db2\nuse db;\nSET NAMES utf8;\n"
        b"# Query_time: 1\nuse `quoted`;\nSELECT 2;\n"
        b"# Query_time: 1\n# Schema: fromschema\nUSE other;\n"
    )
    (a, b, c), _ = run(log)
    assert (a.db, a.query) == ("db", "SET NAMES utf8")  # use wins over Schema (pt does the same)
    assert (b.db, b.query) == ("quoted", "SELECT 2")
    # an uppercase USE is a statement the client ran: it stays the query (as in pt)
    assert (c.db, c.query) == ("fromschema", "USE other")


def test_set_timestamp_insert_id_lines_are_not_query() -> None:
    log = (
        b"# Query_time: 2\nSET insert_id=34484549,timestamp=1197996507;\nINSERT INTO t VALUES (1);\n"
        b"# Query_time: 3\nSET last_insert_id=7;\nSET timestamp=1197996508;\nSELECT 2;\n"
        b"# Query_time: 4\nSET NAMES utf8;\n"
    )
    (a, b, c), _ = run(log)
    assert a.query == "INSERT INTO t VALUES (1)" and a.attrs["insert_id"] == 34484549
    assert a.start_time == 1197996507.0 and a.end_time == 1197996509.0  # no '# Time:': start + duration
    assert b.query == "SELECT 2" and b.attrs["last_insert_id"] == 7 and b.start_time == 1197996508.0
    assert c.query == "SET NAMES utf8" and c.start_time is None and "no_time" in c.flags


def test_use_only_entry_keeps_its_statement_as_the_query() -> None:
    # pt-fingerprint gives "use ?" for it: never an empty query (whose id would be the MD5 of "")
    log = b"# Time: 121123 19:56:06\n# Query_time: 0.000102\nSET timestamp=1353700566;\nuse test_db;\n"
    [e], p = run(log)
    assert e.query == "use test_db" and e.db == "test_db" and "no_query" in e.flags
    assert p.stats.no_query_entries == 1 and e.start_time == 1353700566.0
    from rds_slowlog.fingerprint.mysql import fingerprint
    assert fingerprint(e.query) == "use ?"


def test_set_timestamp_only_entry_keeps_the_set_as_the_query() -> None:
    log = b"# Time: 121123 19:56:06\n# Query_time: 0.000102\nSET timestamp=1353700566;\n"
    [e], _ = run(log)
    assert e.query == "SET timestamp=1353700566" and "no_query" in e.flags
    from rds_slowlog.fingerprint.mysql import fingerprint
    assert fingerprint(e.query) == "set timestamp=?"


def test_administrator_command() -> None:
    log = (
        b"# User@Host: meow[meow] @  [1.2.3.8]\n# Thread_id: 7  Schema: db2\n# Query_time: 0.018799\n"
        b"use db2;\n# administrator command: Quit;\n"
        b"# User@Host: meow[meow] @  [1.2.3.8]\n# Query_time: 0.000002\n# administrator command: Refresh;\n"
    )
    (a, b), _ = run(log)
    assert (a.query, a.db, a.ip, a.host) == ("administrator command: Quit", "db2", "1.2.3.8", None)
    assert b.query == "administrator command: Refresh"


def test_multiline_query_keeps_blank_and_comment_lines() -> None:
    log = (
        b"# Query_time: 1\nSELECT *\n\nFROM foo\n# note: not a header, the line before has no ';'\n"
        b"WHERE bar = 'bar';\n\n"
        b"# Query_time: 2\nSELECT 1;\n# Foo: 1\nSELECT 3;\n"
    )
    (a, b, c), _ = run(log)
    assert a.query == "SELECT *\n\nFROM foo\n# note: not a header, the line before has no ';'\nWHERE bar = 'bar'"
    # after a ';'-terminated line any '# Key: value' line starts the next entry (as in pt)
    assert (b.query, b.duration) == ("SELECT 1", 2.0)
    assert (c.query, c.duration, c.attrs) == ("SELECT 3", None, {"Foo": 1})


def test_comment_only_query() -> None:
    [e], _ = run(b"# Query_time: 1\n/* ping */;\n")
    assert e.query == "/* ping */"


def test_crlf_gives_the_same_entries() -> None:
    (lf, _), (crlf, p) = run(MARIADB + MYSQL8), run((MARIADB + MYSQL8).replace(b"\n", b"\r\n"))
    assert len(lf) == len(crlf) == 3
    for x, y in zip(lf, crlf):
        assert (x.query, x.duration, x.end_time, x.start_time, x.db, x.user, x.attrs) == (
            y.query, y.duration, y.end_time, y.start_time, y.db, y.user, y.attrs)
        assert "\r" not in y.query
    assert p.stats.noise_lines == 3 and accounted(p)


def test_invalid_utf8_is_kept_and_flagged() -> None:
    raw = b"SELECT 'caf\xe9', '\xff\xfe'"
    [e], p = run(b"# Query_time: 1\n" + raw + b";\n")
    assert "invalid_utf8" in e.flags and p.stats.invalid_utf8_entries == 1
    assert e.query_bytes() == raw


def test_rds_truncation_marker_cuts_the_entry() -> None:
    log = (
        b"# Time: 2026-11-27T15:00:00Z\n# Query_time: 1\nSELECT a, b, c FROM t WH"
        b" [Your log message was truncated]\n"
        b"ERE x = 1;\n"  # the next portion: its start was lost, no header
        b"# Time: 2026-11-27T15:00:01Z\n# Query_time: 2\nSELECT 2;\n"
    )
    seen: list[Quarantined] = []
    (a, b), p = run(log, on_quarantine=seen.append)
    assert a.truncated and a.query == "SELECT a, b, c FROM t WH" and "truncated]" not in a.query
    assert not b.truncated and b.query == "SELECT 2"
    assert p.stats.truncated_entries == 1
    assert [(q.reason, q.sample) for q in seen] == [("query_without_header", b"ERE x = 1;\n")]
    assert accounted(p)


def test_truncation_marker_at_end_of_data_without_newline() -> None:
    [e], p = run(b"# Query_time: 1\nSELECT 1 FROM t [Your log message was truncated]")
    assert e.truncated and e.query == "SELECT 1 FROM t" and accounted(p)


def test_oversize_line_and_query_cap() -> None:
    big = b"SELECT '" + b"x" * 5000 + b"';\n"
    [e, nxt], p = run(b"# Query_time: 1\n" + big + b"# Query_time: 2\nSELECT 2;\n", max_line_bytes=1000)
    assert e.truncated and len(e.query) == 1000 and p.stats.oversize_lines == 1
    assert (nxt.query, nxt.truncated) == ("SELECT 2", False)
    [e2, e3], p2 = run(b"# Query_time: 1\n" + big * 3 + b"# Query_time: 2\nSELECT 2;\n", max_query_bytes=6000)
    assert e2.truncated and len(e2.query_bytes()) <= 6000 + len(big) and not e3.truncated
    assert p2.stats.truncated_entries == 1 and accounted(p2)


def test_header_without_query_is_quarantined() -> None:
    log = (
        b"# Time: 2026-11-27T15:00:00Z\n# User@Host: a[a] @ h []\n# Query_time: 3\n"  # lost its query
        b"# Time: 2026-11-27T15:00:01Z\n# User@Host: a[a] @ h []\n# Query_time: 4\nSELECT 5;\n"
        b"# Time: 2026-11-27T15:00:02Z\n# Query_time: 5\n\n"  # trailing, at EOF
    )
    [e], p = run(log)
    assert (e.duration, e.line) == (4.0, 4)
    assert [(s.reason, s.line) for s in p.stats.samples] == [
        ("header_without_query", 1), ("header_without_query", 8)]
    assert p.stats.quarantined_lines == 6 and accounted(p)


def test_query_without_header_is_quarantined() -> None:
    seen: list[Quarantined] = []
    [e], p = run(b"SELECT 1;\nSELECT 2;\n\n# Query_time: 1\nSELECT 3;\n", on_quarantine=seen.append, base_offset=100)
    assert e.query == "SELECT 3" and e.offset == 100 + len(b"SELECT 1;\nSELECT 2;\n\n")
    assert [(q.reason, q.offset, q.line) for q in seen] == [
        ("query_without_header", 100, 1), ("query_without_header", 110, 2)]
    assert p.stats.quarantined_lines == 2 and p.stats.noise_lines == 1 and accounted(p)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"071015 21:43:52", utc(2007, 10, 15, 21, 43, 52)),
        (b"081127  8:51:20", utc(2008, 11, 27, 8, 51, 20)),
        (b"121123 19:56:06.0000001967", utc(2012, 11, 23, 19, 56, 6) + 0.0000001967),
        (b"2016-07-20T18:13:25.698433Z", utc(2016, 7, 20, 18, 13, 25) + 0.698433),
        (b"2016-07-20T18:13:25+02:00", utc(2016, 7, 20, 16, 13, 25)),
        (b"2016-07-20T18:13:25.5-0130", utc(2016, 7, 20, 19, 43, 25) + 0.5),
        (b"2016-07-20T18:13:25", utc(2016, 7, 20, 18, 13, 25)),
        (b"margdl 11:48:27", None),
        (b"2016-13-20T18:13:25Z", None),
        (b"071015 25:43:52", None),
        (b"", None),
    ],
)
def test_parse_time(raw: bytes, expected: float | None) -> None:
    got = parse_time(raw)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_bad_time_and_bad_query_time_are_flagged() -> None:
    log = (
        b"# Time: margdl 11:48:27 # User@Host: user[user] @ host [10.1.65.120]\n"
        b"# Query_time: 18446744073708.796870.000036  Lock_time: 0.000036  Rows_sent: 1\n"
        b"SELECT 1;\n"
    )
    [e], _ = run(log)
    assert e.end_time is None and e.duration is None
    assert {"bad_time", "bad_query_time", "no_time"} <= set(e.flags)
    assert e.attrs["Query_time"] == "18446744073708.796870.000036"
    assert (e.user, e.host, e.ip) == ("user", "host", "10.1.65.120")  # 5.0: User@Host on the Time line


def test_user_host_variants() -> None:
    log = (
        b"# User@Host: foo[foo] @ [host]\n# Query_time: 1\nSELECT 1;\n"
        b"# User@Host: priv[actual] @ h.example [1.2.3.4]  Id: 9\n# Query_time: 1\nSELECT 1;\n"
        b"# User@Host: truncated\n# Query_time: 1\nSELECT 1;\n"
    )
    (a, b, c), _ = run(log)
    assert (a.user, a.host, a.ip) == ("foo", None, "host")
    assert (b.user, b.attrs["current_user"], b.host, b.ip, b.thread_id) == ("priv", "actual", "h.example", "1.2.3.4", 9)
    assert c.user is None and "bad_user_host" in c.flags


def test_typed_values() -> None:
    [e], _ = run(b"# Query_time: 2  A: Yes  B: No  C: -5  D: 1.5e3  E: 0x1F  F: 1_000  G: nan  H: \n x;\n")
    assert e.duration == 2.0 and isinstance(e.attrs["Query_time"], int)
    assert e.attrs == {"Query_time": 2, "A": True, "B": False, "C": -5, "D": 1500.0, "E": "0x1F",
                       "F": "1_000", "G": "nan", "H": ""}


def test_parse_mysql_convenience_and_stats_when_stopped_early() -> None:
    log = b"# Query_time: 1\nSELECT 1;\n" * 5
    it = parse_mysql(io.BytesIO(log), source="s3://x")
    first = next(it)
    assert first.source == "s3://x" and first.query == "SELECT 1"
    assert len(list(it)) == 4


# ---- properties ---------------------------------------------------------------------------------

_LINES = [
    b"# Time: 2026-11-27T15:00:00.5Z", b"# Time: 261127 15:32:41", b"# Time: bogus",
    b"# User@Host: a[b] @ h [1.2.3.4]  Id: 3", b"# User@Host: [x] @  []", b"# User@Host: broken",
    b"# Query_time: 1.5  Lock_time: 0 Rows_sent: 1", b"# Query_time: x.y.z", b"# Thread_id: 4  Schema: d",
    b"# explain: 1\tSIMPLE", b"#", b"# No InnoDB statistics available for this query",
    b"# administrator command: Quit;", b"use db;", b"SET timestamp=5;", b"SET insert_id=1,timestamp=2;",
    b"SELECT 1;", b"SELECT", b"FROM t;", b"", b"  ", b"USE x;", b"# note: hi", b"# Foo: 1",
    b"mysqld, Version: 8.0 (x). started with:", b"Tcp port: 0  Unix socket: s", b"Time  Id Command  Argument",
    b"SELECT 'caf\xe9';", b"SELECT 2 [Your log message was truncated]", b"\xff\xfe\x00#",
]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([b"\n", b"\r\n"]), st.integers(min_value=8, max_value=4096))
def test_arbitrary_bytes_never_raise_and_every_line_is_accounted(data: bytes, eol: bytes, cap: int) -> None:
    entries, p = run(data.replace(b"\n", eol), max_line_bytes=cap, max_query_bytes=cap)
    assert accounted(p)
    assert p.stats.entries == len(entries)
    assert p.stats.bytes == len(data.replace(b"\n", eol))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=60), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_log_shaped_input_never_raises_and_is_accounted(lines: list[bytes], eol: bytes, final_eol: bool) -> None:
    data = eol.join(lines) + (eol if final_eol else b"")
    entries, p = run(data)
    assert accounted(p)
    s = p.stats
    assert s.entries == len(entries) and s.bytes == len(data)
    for e in entries:
        # provenance: every entry points at its own bytes, starting with a '#' header line
        assert data[e.offset:e.offset + e.length].startswith(b"#")
        assert data[: e.offset].count(b"\n") + 1 == e.line
    spans = [(e.offset, e.offset + e.length) for e in entries]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # in order, never overlapping


_ENTRY_PARTS = st.tuples(
    st.integers(min_value=0, max_value=86_399),
    st.sampled_from([b"", b"# User@Host: a[a] @ h [1.1.1.1]  Id: 5\n", b"# Thread_id: 1  Schema: s  QC_hit: No\n"]),
    st.sampled_from([b"", b"use db;\n", b"SET timestamp=100;\n"]),
    st.sampled_from([b"SELECT 1;\n", b"SELECT\n  2\nFROM t;\n", b"# administrator command: Quit;\n"]),
)


def _render(parts: tuple[int, bytes, bytes, bytes]) -> bytes:
    secs, who, pre, q = parts
    h, m, s = secs // 3600, secs // 60 % 60, secs % 60
    return (f"# Time: 261127 {h:2d}:{m:02d}:{s:02d}\n".encode() + who
            + f"# Query_time: {secs / 1000:.6f}  Lock_time: 0.000000\n".encode() + pre + q)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ENTRY_PARTS, min_size=1, max_size=12), st.data())
def test_splitting_at_entry_boundaries_gives_the_same_entries(parts: list[tuple[int, bytes, bytes, bytes]],
                                                               data: st.DataObject) -> None:
    chunks = [_render(x) for x in parts]
    whole = b"".join(chunks)
    cut = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    head, tail = b"".join(chunks[:cut]), b"".join(chunks[cut:])
    all_entries, _ = run(whole)
    left, _ = run(head)
    right, _ = run(tail, base_offset=len(head))

    def key(e: Entry) -> tuple[object, ...]:
        return (e.query, e.duration, e.end_time, e.start_time, e.db, e.user, e.offset, e.length, e.attrs)

    assert len(all_entries) == len(parts)
    assert [key(e) for e in all_entries] == [key(e) for e in left + right]
