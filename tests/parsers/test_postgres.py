from __future__ import annotations

import calendar
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rds_slowlog.parsers.base import Quarantined
from rds_slowlog.parsers.postgres import (
    RDS_LOG_LINE_PREFIX,
    PostgresLogParser,
    PrefixError,
    compile_prefix,
    parse_postgres,
)

RDS = RDS_LOG_LINE_PREFIX


def parse(text: str | bytes, **kw) -> tuple[list, PostgresLogParser]:
    data = text.encode() if isinstance(text, str) else text
    p = PostgresLogParser("t.log", **kw)
    return list(p.parse(io.BytesIO(data))), p


def epoch(s: str) -> float:
    return float(calendar.timegm(tuple(int(x) for x in s.replace("-", " ").replace(":", " ").split()) + (0, 0, 0)))


# --------------------------------------------------------------------------- prefix compilation

@pytest.mark.parametrize(
    ("prefix", "line", "expect"),
    [
        (RDS, "2020-03-11 20:41:42 CET:[local]:postgres@postgres:[12835]:LOG:  x",
         {"rhost": b"[local]", "user": b"postgres", "db": b"postgres", "pid": b"12835", "tz": b"CET"}),
        (RDS, "2020-03-11 20:41:42 UTC:10.0.0.1(5432):user@db:[123]:LOG:  x",
         {"rhost": b"10.0.0.1", "rport": b"5432", "user": b"user", "db": b"db", "pid": b"123"}),
        (RDS, "2020-03-11 20:40:43 CET::@:[12760]:LOG:  x", {"user": b"", "db": b"", "pid": b"12760"}),
        (RDS, "2020-03-11 20:40:43 UTC:2001:db8::1(5432):u@d:[5]:LOG:  x",  # IPv6 colons are not separators
         {"rhost": b"2001:db8::1", "rport": b"5432", "user": b"u", "db": b"d"}),
        (RDS, "2020-03-11 20:40:43 UTC:10.0.0.1:ab@cd:[5]:LOG:  x", {"rhost": b"10.0.0.1", "rport": None, "user": b"ab"}),
        (RDS, "2020-03-11 20:40:43 UTC:db.example.com(1234):u@d:[5]:LOG:  x", {"rhost": b"db.example.com"}),
        (RDS, "2020-03-11 20:40:43 UTC:10.0.0.1:me@srv@db:[7]:LOG:  x",  # ambiguous: first separator wins
         {"user": b"me", "db": b"srv@db"}),
        ("%t [%p] db=%d ", "2020-03-11 20:40:43 UTC [7] db=my db LOG:  x", {"db": b"my db"}),
        ("%m [%p] ", "2019-10-21 12:03:31.311 MSK [5133] LOG:  x", {"frac": b"311", "pid": b"5133"}),
        ("%n [%p] %c %l %v %x %e %a ", "1700000000.123 [9] 5f0c.2a 17 3/45 0 00000 psql LOG:  x",
         {"epoch": b"1700000000.123", "session": b"5f0c.2a", "lineno": b"17", "sqlstate": b"00000", "app": b"psql"}),
        ("%m [%p] [queryid=%Q] %u@%d ", "2022-02-17 14:45:10.440 UTC [691] [queryid=-42] u@d LOG:  x",
         {"queryid": b"-42", "user": b"u", "db": b"d"}),
        ("%t [%p] %q%u@%d ", "2020-01-01 00:00:00 UTC [1] LOG:  checkpoint starting", {"pid": b"1", "user": None}),
        ("%t [%p] %q%u@%d ", "2020-01-01 00:00:00 UTC [1] bob@app LOG:  x", {"user": b"bob", "db": b"app"}),
        ("%t %-10u|%p ", "2020-01-01 00:00:00 UTC bob       |5 LOG:  x", {"user": b"bob", "pid": b"5"}),
        ("%% %t [%p] ", "% 2020-01-01 00:00:00 +05:30 [5] LOG:  x", {"tz": b"+05:30"}),
    ],
)
def test_prefix_escapes_capture_fields(prefix: str, line: str, expect: dict) -> None:
    for fast in (False, True):
        m = compile_prefix(prefix, fast=fast).match(line.encode())
        if m is None and fast:
            continue  # the fast variant may refuse; the general one must not
        assert m is not None, (prefix, line)
        for k, v in expect.items():
            assert m.group(k) == v, (k, fast)
        assert m.group("level") == b"LOG"


def test_unknown_prefix_escape_is_refused() -> None:
    with pytest.raises(PrefixError, match="%Z"):
        compile_prefix("%t %Z ")


# --------------------------------------------------------------------------- entries

def test_rds_statement_fields_and_provenance() -> None:
    first = "2020-03-11 20:40:43 CET::@:[12760]:LOG:  database system is ready to accept connections\n"
    line = ("2020-03-11 20:41:42 CET:10.0.0.1(50906):gilles@pgbench:[12835]:LOG:  duration: 1.500 ms  "
            "statement: SELECT 1\n")
    out, p = parse(first + line)
    assert len(out) == 1
    e = out[0]
    assert e.engine == "postgres" and e.query == "SELECT 1"
    assert e.duration == pytest.approx(0.0015)
    assert e.end_time == epoch("2020-03-11 19:41:42")  # CET = UTC+1
    assert e.start_time == pytest.approx(e.end_time - 0.0015)
    assert (e.user, e.db, e.host, e.ip, e.thread_id) == ("gilles", "pgbench", "10.0.0.1", "10.0.0.1", 12835)
    assert e.attrs == {"query_step": "statement", "log_level": "LOG", "client_port": 50906}
    assert (e.offset, e.line, e.length) == (len(first), 2, len(line))
    assert e.source == "t.log" and e.flags == () and not e.truncated
    assert (p.stats.entries, p.stats.noise_lines, p.stats.lines, p.stats.bytes) == (1, 1, 2, len(first + line))


def test_single_space_variant_and_local_host() -> None:
    out, _ = parse("2021-05-27 17:00:00 UTC:[local]:u@d:[1]:LOG: duration: 0.054 ms statement: SELECT * FROM t1;\n")
    assert out[0].query == "SELECT * FROM t1;" and out[0].duration == pytest.approx(0.000054)
    assert out[0].host == "[local]" and out[0].ip is None


def test_multiline_statement_tab_continuations_are_joined() -> None:
    text = ("2022-02-17 14:45:13.727 UTC [691] LOG:  duration: 25.450 ms  statement: SELECT a,\n"
            "\t  b\n"
            "\tFROM t\n"
            "2022-02-17 14:45:14.000 UTC [691] LOG:  duration: 1.000 ms  statement: select 2\n")
    out, p = parse(text, log_line_prefix="%m [%p] ")
    assert [e.query for e in out] == ["SELECT a,\n  b\nFROM t", "select 2"]
    assert out[0].end_time == pytest.approx(epoch("2022-02-17 14:45:13") + 0.727)
    assert out[0].length == len(text.splitlines(keepends=True)[0]) + len("\t  b\n") + len("\tFROM t\n")
    assert out[1].line == 4


def test_extended_protocol_parse_bind_execute_phases_and_parameters() -> None:
    pre = "2021-12-03 07:14:48.59{} UTC [4913] user=u1,db=mydb "
    text = (pre.format(3) + "LOG:  duration: 1.163 ms  parse q1: SELECT $1, $2\n"
            + pre.format(4) + "LOG:  duration: 0.700 ms  bind q1: SELECT $1, $2\n"
            + pre.format(4) + "DETAIL:  parameters: $1 = '1', $2 = 'a\n\tb'\n"
            + pre.format(5) + "LOG:  duration: 0.215 ms  execute q1: SELECT $1, $2\n"
            + pre.format(5) + "DETAIL:  parameters: $1 = '1', $2 = 'a\n\tb'\n"
            + pre.format(6) + "LOG:  duration: 0.131 ms  execute q1: SELECT $1, $2\n")
    out, p = parse(text, log_line_prefix="%m [%p] user=%u,db=%d ")
    assert len(out) == 2  # parse/bind are phases, not queries
    e = out[0]
    assert e.attrs["query_step"] == "execute" and e.attrs["query_name"] == "q1"
    assert e.attrs["parse_ms"] == 1.163 and e.attrs["bind_ms"] == 0.7
    assert e.attrs["parameters"] == "$1 = '1', $2 = 'a\nb'"
    assert e.query == "SELECT $1, $2" and e.duration == pytest.approx(0.000215)
    assert "parse_ms" not in out[1].attrs and "parameters" not in out[1].attrs
    assert p.stats.noise_lines == 4  # parse, bind and the bind's DETAIL (2 lines)


def test_unnamed_and_portal_execute_names() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  execute <unnamed>: SELECT 1\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 2 ms  execute S_1/C_2: SELECT 2\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 3 ms  execute fetch from S_3/C_4: SELECT 3\n")
    out, _ = parse(text)
    assert [e.attrs["query_name"] for e in out] == ["<unnamed>", "S_1/C_2", "fetch from S_3/C_4"]
    assert [e.query for e in out] == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_log_statement_and_log_duration_are_paired_per_pid() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  statement: SELECT slow()\n"
            "2020-01-01 00:00:01 UTC:h:u@d:[2]:LOG:  statement: SELECT fast()\n"
            "2020-01-01 00:00:01 UTC:h:u@d:[2]:LOG:  duration: 0.5 ms\n"
            "2020-01-01 00:00:09 UTC:h:u@d:[1]:LOG:  duration: 9000.000 ms\n"
            "2020-01-01 00:00:10 UTC:h:u@d:[3]:LOG:  execute S_1: SELECT $1\n"
            "2020-01-01 00:00:10 UTC:h:u@d:[3]:DETAIL:  parameters: $1 = '7'\n"
            "2020-01-01 00:00:10 UTC:h:u@d:[3]:LOG:  duration: 1.0 ms\n"
            "2020-01-01 00:00:11 UTC:h:u@d:[4]:LOG:  statement: SELECT never_timed()\n")
    out, p = parse(text)
    by_q = {e.query: e for e in out}
    assert set(by_q) == {"SELECT slow()", "SELECT fast()", "SELECT $1", "SELECT never_timed()"}
    slow = by_q["SELECT slow()"]
    assert slow.duration == pytest.approx(9.0) and slow.end_time == epoch("2020-01-01 00:00:09")
    assert slow.start_time == pytest.approx(epoch("2020-01-01 00:00:00"))
    assert slow.line == 1 and slow.thread_id == 1
    assert by_q["SELECT $1"].attrs["parameters"] == "$1 = '7'"
    assert by_q["SELECT $1"].attrs["query_name"] == "S_1"
    nt = by_q["SELECT never_timed()"]
    assert nt.duration is None and nt.start_time is None and "no_duration" in nt.flags
    assert p.stats.no_duration_entries == 1 and p.stats.entries == 4


def test_errors_and_noise_are_counted_not_indexed() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:ERROR:  relation \"nope\" does not exist at character 15\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:STATEMENT:  SELECT * FROM nope\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:FATAL:  password authentication failed\n"
            "2020-01-01 00:00:00 UTC::@:[9]:LOG:  checkpoint starting: time\n"
            "2020-01-01 00:00:00 UTC::@:[9]:LOG:  automatic vacuum of table \"a.b.c\": index scans: 0\n"
            "\tpages: 0 removed\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[2]:LOG:  connection authorized: user=u database=d\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[2]:LOG:  duration: 0.1 ms  plan:\n"
            "\tQuery Text: select 1\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[2]:LOG:  duration: 0.1 ms\n"
            "\n"
            "----------------------- END OF LOG ----------------------\n")
    out, p = parse(text)
    assert out == []
    assert p.stats.errors == 2
    assert p.stats.noise_lines == 12 and p.stats.quarantined_lines == 0 and p.stats.lines == 12


def test_error_statement_does_not_attach_to_a_query() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:ERROR:  boom\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:STATEMENT:  SELECT 2\n")
    out, p = parse(text)
    assert [e.query for e in out] == ["SELECT 1"] and out[0].length == len(text.splitlines(True)[0])
    assert p.stats.errors == 1 and p.stats.noise_lines == 2


def test_orphan_lines_are_quarantined_with_hook() -> None:
    seen: list[Quarantined] = []
    text = "garbage at the start\n2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1\n"
    out, p = parse(text, on_quarantine=seen.append, base_offset=1000)
    assert len(out) == 1 and out[0].offset == 1000 + len("garbage at the start\n")
    assert p.stats.quarantined_lines == 1
    assert seen and seen[0].reason == "no_prefix" and seen[0].offset == 1000 and seen[0].line == 1
    assert seen[0].sample == b"garbage at the start"


def test_rds_truncation_marker_flags_the_entry() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1,\n"
            "\t2, 3 [Your log message was truncated]\n")
    out, p = parse(text)
    assert out[0].query == "SELECT 1,\n2, 3" and out[0].truncated
    assert p.stats.truncated_entries == 1


def test_caps_truncate_line_and_query() -> None:
    long = "x" * 5000
    text = f"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT '{long}'\n"
    out, p = parse(text + text.replace("[1]", "[2]"), max_line_bytes=1024)
    assert len(out) == 2 and all(e.truncated for e in out)
    assert len(out[0].query) < 1024 and p.stats.oversize_lines == 2
    assert out[1].offset == len(text)  # offsets stay exact past a cut line
    out, _ = parse(text, max_query_bytes=100)
    assert len(out[0].query) == 100 and out[0].truncated


def test_invalid_utf8_survives_and_is_flagged() -> None:
    text = b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT '\xff\xfe'\n"
    out, p = parse(text)
    assert out[0].query_bytes() == b"SELECT '\xff\xfe'" and "invalid_utf8" in out[0].flags
    assert p.stats.invalid_utf8_entries == 1


@pytest.mark.parametrize(
    ("tz", "offset_h", "unknown"),
    [("UTC", 0, False), ("CET", 1, False), ("CEST", 2, False), ("MSK", 3, False), ("PDT", -7, False),
     ("-03", -3, False), ("+0530", 5.5, False), ("+05:30", 5.5, False), ("XYZT", 0, True)],
)
def test_time_zones(tz: str, offset_h: float, unknown: bool) -> None:
    out, p = parse(f"2021-05-27 17:00:00 {tz}:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1\n")
    assert out[0].end_time == epoch("2021-05-27 17:00:00") - offset_h * 3600
    assert ("unknown_tz" in out[0].flags) is unknown
    assert p.stats.unknown_tz_entries == int(unknown)


def test_tz_offsets_override() -> None:
    out, _ = parse("2021-05-27 17:00:00 XYZT:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1\n",
                   tz_offsets={"XYZT": 7200})
    assert out[0].end_time == epoch("2021-05-27 15:00:00") and out[0].flags == ()


def test_prefix_attrs_app_session_line_sqlstate_queryid() -> None:
    prefix = "%m [%p]: [%l-1] %c %e app=%a [queryid=%Q] "
    text = ("2023-03-07 09:06:08.001 CET [130096]: [247-1] 6405f0a0.1fc30 00000 app=my app [queryid=99] "
            "LOG:  duration: 778.166 ms  execute <unnamed>: select 1\n")
    out, _ = parse(text, log_line_prefix=prefix)
    a = out[0].attrs
    assert a["session_line"] == 247 and a["session_id"] == "6405f0a0.1fc30"
    assert a["sql_state"] == "00000" and a["application_name"] == "my app" and a["pg_queryid"] == "99"


def test_prefix_without_pid_still_pairs() -> None:
    text = ("2020-01-01 00:00:00 UTC LOG:  statement: SELECT 1\n"
            "2020-01-01 00:00:01 UTC LOG:  duration: 2 ms\n")
    out, _ = parse(text, log_line_prefix="%t ")
    assert len(out) == 1 and out[0].duration == pytest.approx(0.002) and out[0].thread_id is None


def test_parse_postgres_convenience_and_empty_statement() -> None:
    data = b"2020-03-11 20:40:44 CET:[local]:postgres@template1:[12774]:LOG:  duration: 0.027 ms  statement: \n"
    out = list(parse_postgres(io.BytesIO(data), source="x"))
    assert len(out) == 1 and out[0].query == "" and out[0].source == "x"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=80),
    st.sampled_from([
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  statement: SELECT 1",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  statement: SELECT 1",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:DETAIL:  parameters: $1 = 'x'",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  parse a: SELECT $1",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  duration: 1 ms  execute a: SELECT $1",
        b"2020-01-01 00:00:00 UTC:h:u@d:[1]:ERROR:  x", b"\tcontinued", b"",
    ])), max_size=30))
def test_never_raises_and_accounts_every_byte(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    out, p = parse(data)
    assert p.stats.bytes == len(data)
    assert p.stats.lines == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    for e in out:
        assert 0 <= e.offset and e.offset + e.length <= len(data) and e.engine == "postgres"


def test_general_pattern_is_the_fallback_when_the_fast_one_refuses() -> None:
    text = "2020-01-01 00:00:00 UTC [7] db=my db LOG:  duration: 1 ms  statement: SELECT 1\n"
    out, p = parse(text, log_line_prefix="%t [%p] db=%d ")
    assert out[0].db == "my db" and out[0].query == "SELECT 1" and p.stats.quarantined_lines == 0


def test_phases_are_matched_by_pid_when_sessions_interleave() -> None:
    L = "2020-01-01 00:00:00 UTC:h:u@d:[{}]:LOG:  duration: {} ms  {}\n"
    text = (L.format(1, "1.5", "parse a: SELECT 1") + L.format(2, "2.5", "parse b: SELECT 2")
            + L.format(2, "0.25", "bind b: SELECT 2") + L.format(1, "0.5", "bind a: SELECT 1")
            + L.format(2, "3", "execute b: SELECT 2") + L.format(1, "4", "execute a: SELECT 1"))
    out, _ = parse(text)
    got = {e.attrs["query_name"]: (e.attrs["parse_ms"], e.attrs["bind_ms"], e.thread_id) for e in out}
    assert got == {"a": (1.5, 0.5, 1), "b": (2.5, 0.25, 2)}


def test_pending_log_statement_state_is_bounded() -> None:
    text = "".join(f"2020-01-01 00:00:00 UTC:h:u@d:[{pid}]:LOG:  statement: SELECT {pid}\n" for pid in range(10))
    p = PostgresLogParser("t", max_sessions=3)
    it = p.parse(io.BytesIO(text.encode()))
    first = next(it)  # the oldest waiting statement is released once 3 are held
    assert first.query == "SELECT 0" and "no_duration" in first.flags
    assert len(list(it)) == 9


def test_non_statement_log_messages_are_not_taken_for_statements() -> None:
    text = ("2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  statement_timeout reached: whatever\n"
            "2020-01-01 00:00:00 UTC:h:u@d:[1]:LOG:  executed 3 things: fine\n")
    out, p = parse(text)
    assert out == [] and p.stats.noise_lines == 2


@pytest.mark.parametrize("body", [b"x@" * 1_000_000, b"a:" * 1_000_000, b"(" * 2_000_000])
def test_pathological_long_line_is_quarantined_quickly(body: bytes) -> None:
    import time

    line = b"2020-01-01 00:00:00 UTC:h:" + body + b"\n"
    t0 = time.process_time()
    out, p = parse(line)
    assert out == [] and p.stats.quarantined_lines == 1
    assert time.process_time() - t0 < 1.0  # bounded fields: no quadratic backtracking
